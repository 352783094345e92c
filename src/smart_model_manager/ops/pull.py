"""``smm pull`` and ``smm import``: fill a cache or provision a volume from ``models.lock`` / a local folder.

Provisioning protocol for a volume ``V`` (readers never lock; see docs/artifacts.md):

1. pre-flight, before any byte is downloaded: ``V`` is writable, stale ``V/.staging/*`` of dead writers are
   removed, and the free space covers every file not already present;
2. per model, under ``V/.locks/<repo>/write.lock``: present files are re-hashed and reused; the rest are
   downloaded into ``V/.staging/<uuid>/`` and verified against the lock's sha256;
3. verified blobs are renamed into ``blobs/``, the snapshot folder appears by one rename, then ``refs``;
4. ``V/model-metadata.yaml`` is written LAST (atomic rename, under a volume lock, merged with what was
   already recorded: :func:`manifest.record`), so every commit it lists is complete and verified;
5. the volume is validated (quick) against the lock: a pull that exits 0 leaves a volume that validates.

A pull ADDS the lock's commits; it never removes another commit or file (pods of an older lock may be
loading them; ``smm prune --keep-locks N`` removes what no recent lock pins). A lock that pins a subset of
a commit's files leaves the others in place, recorded; a lock that pins *other bytes* for a path of a
commit already on the volume is refused before any download.

A SIGKILL at any step leaves at most a staging folder (never read by anyone) or a complete snapshot without
a manifest entry (ignored by the volume source); rerunning finishes the job.
"""

from __future__ import annotations

import dataclasses
import errno
import hashlib
import logging
import os
import time
import uuid
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path

from .._layout import REPO_ID_EXPECTED, is_repo_id
from .._version import __version__
from ..errors import ConfigurationError, FormatError, IntegrityError, ModelNotFoundError, Unavailable
from ..formats import manifest as manifest_mod
from ..formats.lockfile import Lock, LockEntry
from ..formats.manifest import FileEntry, ModelEntry
from ..formats.pins import conflicts
from ..registry import get_model_type
from ..remote.base import Downloader, NullProgress, ProgressHook
from ..remote.hub import HubClient
from ..sources.base import read_schema
from ..store import cache as store
from ..store.fetch import Want, check_space, fetch_into
from ..store.hashing import is_sha256, sha256_file, strip_prefix, with_prefix
from ..store.layout import BLOBS, blobs_dir, repo_dir, snapshot_dir
from ..store.scan import snapshot_files
from ..store.writer import clean_stale_staging

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class ModelPull:
    alias: str
    repo_id: str
    commit: str
    snapshot: Path
    downloaded: tuple[str, ...]
    reused: tuple[str, ...]
    repaired: tuple[str, ...]
    bytes_downloaded: int


@dataclass(frozen=True)
class PullReport:
    root: Path
    is_volume: bool
    models: tuple[ModelPull, ...]
    manifest_path: Path | None
    seconds: float
    stale_staging_removed: int = 0
    needed_bytes: int = 0

    @property
    def bytes_downloaded(self) -> int:
        return sum(m.bytes_downloaded for m in self.models)

    @property
    def files_downloaded(self) -> int:
        return sum(len(m.downloaded) + len(m.repaired) for m in self.models)


def generated_by() -> str:
    return f"smart-model-manager {__version__}"


def lock_digest(lock: Lock) -> str:
    return lock.digest or with_prefix(hashlib.sha256(lock.dumps().encode()).hexdigest())


def ensure_writable(root: Path, *, what: str) -> None:
    """Create ``root`` if needed and prove a file can be created in it; a clear error otherwise."""
    try:
        root.mkdir(parents=True, exist_ok=True)
        probe = root / f".smm-write-probe-{uuid.uuid4().hex}"
        probe.write_bytes(b"")
        probe.unlink()
    except OSError as err:
        raise OSError(err.errno or errno.EACCES,
                      f"{what} {root} is not writable ({err.strerror or err}); provisioning needs write access "
                      "(mount it read-write for `smm pull`, read-only for the pods)") from err


def _wants(entry: LockEntry) -> dict[str, Want]:
    return {rel: Want.from_entry(f) for rel, f in entry.files.items()}


def missing_bytes(root: Path, entries: Iterable[LockEntry]) -> int:
    """Bytes to download: files whose blob is absent or has the wrong size (cheap: no hashing)."""
    total = 0
    for e in entries:
        blobs = blobs_dir(repo_dir(root, e.repo_id))
        for f in e.files.values():
            blob = blobs / strip_prefix(f.sha256)
            try:
                ok = blob.stat().st_size == f.size
            except OSError:
                ok = False
            total += 0 if ok else f.size
    return total


def pull(lock: Lock, *, target: Path | None = None, cache_dir: Path | None = None, endpoint: str,
         token: str | None = None, jobs: int = 4, progress: ProgressHook | None = None,
         timeout: float = 30.0, retries: int = 3, only: Iterable[str] | None = None,
         client: Downloader | None = None, offline: str | None = None) -> PullReport:
    """Download every locked model (or those named in ``only``), verified, into a cache or a volume.

    ``offline`` names the variable that forbids the network (``Settings.offline_origin``): a pull with
    anything left to download then fails before it starts, and one with everything present still verifies.
    """
    t0 = time.monotonic()
    if (target is None) == (cache_dir is None):
        raise ConfigurationError("pull needs exactly one of target= (a volume) or cache_dir= (a cache)")
    root = Path(target if target is not None else cache_dir).expanduser()  # type: ignore[arg-type]
    entries = _select(lock, only)
    ensure_writable(root, what="target" if target is not None else "cache folder")
    current = refuse_conflicts(root, entries) if target is not None else None
    stale = clean_stale_staging(root)
    needed = missing_bytes(root, entries)
    check_space(root, needed, what=f"pull into {root}")
    if offline and needed:
        raise ModelNotFoundError(f"{needed / 1e6:,.1f} MB of {len(entries)} model(s) still to download, but "
                                 f"{offline} is set: no download attempted", attempts=[("hub", "offline")])
    client = client or HubClient(endpoint, token, timeout=timeout, retries=retries)
    progress = progress or NullProgress()
    results = []
    records: list[ModelEntry] = []
    for e in entries:
        revision = e.revision if e.revision != e.commit else None
        try:
            r = fetch_into(root, client, e.repo_id, e.commit, _wants(e), revision=revision, jobs=jobs,
                           progress=progress)
        except Unavailable as why:
            raise ModelNotFoundError(f"{e.alias}: {e.repo_id}@{e.commit[:12]}: {why.reason}",
                                     attempts=[("hub", why.reason)]) from None
        results.append(ModelPull(e.alias, e.repo_id, e.commit, r.snapshot, tuple(r.downloaded), tuple(r.reused),
                                 tuple(r.repaired), r.bytes_downloaded))
        log.info("pulled %s (%s@%s): %d downloaded, %d reused, %d repaired", e.alias, e.repo_id, e.commit[:12],
                 len(r.downloaded), len(r.reused), len(r.repaired))
        if target is not None:
            prev = current.entry(e.repo_id, e.commit) if current is not None else None
            adopted = adopt_unrecorded(r.snapshot, set(e.files) | set(prev.files if prev else ()))
            records.append(dataclasses.replace(_manifest_entry(e), files={**adopted, **e.files}))
    man_path = None
    if target is not None:
        manifest_mod.record(root, records, generated_by=generated_by(), lock_digest=lock_digest(lock))
        man_path = root / manifest_mod.MANIFEST_NAME
        check_pulled(root, lock, entries)
    return PullReport(root=root, is_volume=target is not None, models=tuple(results), manifest_path=man_path,
                      seconds=round(time.monotonic() - t0, 3), stale_staging_removed=stale, needed_bytes=needed)


def _select(lock: Lock, only: Iterable[str] | None) -> list[LockEntry]:
    if not lock.models:
        raise ConfigurationError(f"{lock.path or 'the lock'} lists no models")
    if not only:
        return [lock.models[a] for a in sorted(lock.models)]
    out = []
    for name in only:
        e = lock.find(name)
        if e is None:
            raise ConfigurationError(f"{name!r} is not in {lock.path or 'the lock'}; locked: "
                                     f"{', '.join(sorted(lock.models))}")
        out.append(e)
    return out


def _manifest_entry(e: LockEntry) -> ModelEntry:
    aliases = (e.alias,) if e.alias.lower() != e.repo_id.lower() else ()
    return ModelEntry(repo_id=e.repo_id, commit=e.commit, model_type=e.model_type, files=dict(e.files),
                      labels=e.labels, dimension=e.dimension, aliases=aliases)


def refuse_conflicts(root: Path, entries: Iterable[LockEntry]) -> manifest_mod.Manifest | None:
    """Before any download: a lock that pins other bytes for a path of a commit the volume already holds
    would change files under the pods that load that commit. Refuse, naming both digests. Returns the
    manifest read (None if absent or malformed: update() replaces a malformed one, with a warning)."""
    path = root / manifest_mod.MANIFEST_NAME
    if not path.is_file():
        return None
    try:
        current = manifest_mod.load(path)
    except FormatError:
        return None
    for e in entries:
        for rel, recorded, wanted in conflicts(current, _manifest_entry(e)):
            raise IntegrityError(
                f"{e.alias}: {e.repo_id}@{e.commit[:12]}: {rel} is already on {root} as {recorded.size} bytes "
                f"{recorded.sha256}, but the lock pins {wanted.size} bytes {wanted.sha256}; the same commit must keep the same files, because pods of an "
                "older lock may be loading it. Give the changed file another commit (re-export, re-import) or, "
                "once no pod uses the old lock, remove the commit with `smm prune --keep-locks N` and pull again",
                path=snapshot_dir(root, e.repo_id, e.commit) / rel,
                expected=wanted.sha256, actual=recorded.sha256)
    return current


def adopt_unrecorded(snapshot: Path, known: set[str]) -> dict[str, FileEntry]:
    """Files in a snapshot that nothing records but whose blob is named by its sha256 and hashes to it:
    what an older version left behind (it recorded only the smaller lock's files). They are
    verified here and recorded, so the volume validates; anything else stays unrecorded and validation
    reports it."""
    out: dict[str, FileEntry] = {}
    for rel, p in snapshot_files(snapshot).items():
        if rel in known:
            continue
        real = Path(os.path.realpath(p))
        if real.parent.name == BLOBS and is_sha256(real.name) and sha256_file(real) == real.name:
            out[rel] = FileEntry(size=real.stat().st_size, sha256=with_prefix(real.name))
            log.warning("%s: %s was on the volume but not recorded; verified (sha256 %s) and recorded", snapshot,
                        rel, real.name[:12])
    return out


def check_pulled(root: Path, lock: Lock, entries: list[LockEntry]) -> None:
    """A pull that exits 0 leaves a volume that validates against the lock it was pulled with."""
    from .validate import validate

    sub = Lock(models={e.alias: e for e in entries}, path=lock.path, digest=lock.digest)
    report = validate(root, lock=sub, mode="quick", require_manifest=True)
    if not report.ok:
        lines = "; ".join(f"{f.kind} {f.where}: {f.message}" for f in report.errors[:10])
        raise IntegrityError(f"the pull finished but {root} does not validate against "
                             f"{lock.path or 'the lock'}: {lines}; run `smm validate --dir {root}` for the report")


def update_manifest(root: Path, models: dict[str, ModelEntry], *, lock_digest: str | None) -> Path:
    """Record ``models`` (verified, complete snapshots) in ``root/model-metadata.yaml`` next to every commit
    already recorded (written in the current format). ``smm migrate`` records every imported folder with
    it in one update; the format lives in :mod:`manifest`."""
    manifest_mod.record(root, models.values(), generated_by=generated_by(), lock_digest=lock_digest)
    return root / manifest_mod.MANIFEST_NAME


@dataclass(frozen=True)
class ProvisionResult:
    repo_id: str
    commit: str
    snapshot: Path
    entry: ModelEntry
    manifest_path: Path | None = None
    files: dict[str, tuple[int, str]] = field(default_factory=dict)


def provision_from_folder(src: Path, root: Path, repo_id: str, *, model_type: str, alias: str | None = None,
                          revision: str = "main", write_manifest: bool = False,
                          commit: str | None = None) -> ProvisionResult:
    """Import a local model folder (air-gapped path) into a cache or volume; with ``write_manifest`` the
    volume manifest is updated last. Labels/dimension come from the folder's ``config.json``."""
    if not is_repo_id(repo_id):  # refuse before anything is written
        raise ConfigurationError(f"{repo_id!r} is not a valid repo id: expected {REPO_ID_EXPECTED}")
    mt = get_model_type(model_type)
    root = Path(root).expanduser()
    labels, dim = read_schema(Path(src))
    if mt.has_labels and not labels:  # refuse before anything is written
        raise ConfigurationError(f"{Path(src) / 'config.json'} has no id2label; a {model_type} model needs its "
                                 "labels (add id2label to config.json)")
    ensure_writable(root, what="target" if write_manifest else "cache folder")
    result = store.import_folder(Path(src), root, repo_id, revision=revision, commit=commit)
    files = {rel: FileEntry(size=size, sha256=with_prefix(sha)) for rel, (size, sha) in result.files.items()}
    aliases = (alias,) if alias and alias.lower() != repo_id.lower() else ()
    entry = ModelEntry(repo_id=repo_id, commit=result.commit, model_type=model_type, files=files,
                       labels=labels if mt.has_labels else (), dimension=None if mt.has_labels else dim,
                       aliases=aliases)
    man_path = None
    if write_manifest:
        manifest_mod.record(root, [entry], generated_by=generated_by())
        man_path = root / manifest_mod.MANIFEST_NAME
    log.info("imported %s as %s@%s into %s%s", src, repo_id, result.commit[:12], root,
             " (manifest updated)" if man_path else "")
    return ProvisionResult(repo_id, result.commit, result.snapshot, entry, man_path, dict(result.files))


__all__ = ["ModelPull", "ProvisionResult", "PullReport", "ensure_writable", "missing_bytes", "provision_from_folder",
           "pull", "update_manifest"]
