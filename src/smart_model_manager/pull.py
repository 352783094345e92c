"""``smm pull`` and ``smm import``: fill a cache or provision a volume from ``models.lock`` / a local folder.

Provisioning protocol for a volume ``V`` (readers never lock; see docs/artifacts.md):

1. pre-flight, before any byte is downloaded: ``V`` is writable, stale ``V/.staging/*`` of dead writers are
   removed, and the free space covers every file not already present;
2. per model, under ``V/.locks/<repo>/write.lock``: present files are re-hashed and reused; the rest are
   downloaded into ``V/.staging/<uuid>/`` and verified against the lock's sha256;
3. verified blobs are renamed into ``blobs/``, the snapshot folder appears by one rename, then ``refs``;
4. ``V/model-metadata.yaml`` is written LAST (atomic rename, under a volume lock, merged with what was
   already listed), so its presence means every model it lists is complete and verified.

A SIGKILL at any step leaves at most a staging folder (never read by anyone) or a complete snapshot without
a manifest entry (ignored by the volume source); rerunning finishes the job.
"""

from __future__ import annotations

import contextlib
import errno
import hashlib
import logging
import time
import uuid
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path

from . import manifest as manifest_mod, store
from ._layout import REPO_ID_EXPECTED, is_repo_id
from ._version import __version__
from .errors import ConfigurationError, FormatError, ModelNotFoundError, Unavailable
from .hashing import with_prefix
from .lockfile import Lock, LockEntry
from .manifest import FileEntry, Manifest, ModelEntry
from .registry import get_model_type
from .hub_client import HubClient
from .publish import Downloader, NullProgress, ProgressHook, Want, check_space, clean_stale_staging, fetch_into
from .sources.base import read_schema

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
        blobs = store.repo_dir(root, e.repo_id) / "blobs"
        for f in e.files.values():
            blob = blobs / f.sha256.removeprefix("sha256:")
            try:
                ok = blob.stat().st_size == f.size
            except OSError:
                ok = False
            total += 0 if ok else f.size
    return total


def pull(lock: Lock, *, target: Path | None = None, cache_dir: Path | None = None, endpoint: str,
         token: str | None = None, jobs: int = 4, progress: ProgressHook | None = None,
         timeout: float = 30.0, retries: int = 3, only: Iterable[str] | None = None,
         client: Downloader | None = None) -> PullReport:
    """Download every locked model (or those named in ``only``), verified, into a cache or a volume."""
    t0 = time.monotonic()
    if (target is None) == (cache_dir is None):
        raise ConfigurationError("pull needs exactly one of target= (a volume) or cache_dir= (a cache)")
    root = Path(target if target is not None else cache_dir).expanduser()  # type: ignore[arg-type]
    entries = _select(lock, only)
    ensure_writable(root, what="target" if target is not None else "cache folder")
    stale = clean_stale_staging(root)
    needed = missing_bytes(root, entries)
    check_space(root, needed, what=f"pull into {root}")
    client = client or HubClient(endpoint, token, timeout=timeout, retries=retries)
    progress = progress or NullProgress()
    results = []
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
    man_path = None
    if target is not None:
        models = {e.repo_id: _manifest_entry(e) for e in entries}
        man_path = update_manifest(root, models, lock_digest=lock_digest(lock))
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


@contextlib.contextmanager
def _volume_lock(root: Path):  # type: ignore[no-untyped-def]
    from filelock import FileLock

    (root / ".locks").mkdir(parents=True, exist_ok=True)
    with FileLock(str(root / ".locks" / "model-metadata.lock"), timeout=600):
        yield


def update_manifest(root: Path, models: dict[str, ModelEntry], *, lock_digest: str | None) -> Path:
    """Merge ``models`` into ``root/model-metadata.yaml`` and write it atomically. Call only when every
    listed snapshot is complete and verified: the manifest's presence is the volume's "ready" signal."""
    path = root / manifest_mod.MANIFEST_NAME
    with _volume_lock(root):
        for leftover in root.glob(f"{store.TMP_PREFIX}{manifest_mod.MANIFEST_NAME}.*"):  # a writer killed mid-write
            leftover.unlink(missing_ok=True)
        current: dict[str, ModelEntry] = {}
        if path.is_file():
            try:
                current = dict(manifest_mod.load(path).models)
            except FormatError as err:
                log.warning("replacing the malformed manifest %s: %s", path, err)
        for rid, entry in models.items():
            for other_rid, other in list(current.items()):  # one owner per alias and per repo (any case)
                if other_rid.lower() == rid.lower():
                    del current[other_rid]
                elif set(other.aliases) & set(entry.aliases):
                    current[other_rid] = ModelEntry(
                        other.repo_id, other.commit, other.model_type, other.files, other.labels, other.dimension,
                        tuple(a for a in other.aliases if a not in entry.aliases), other.extra)
            current[rid] = entry
        man = Manifest(models=current, generated_by=generated_by(), verified_at=manifest_mod.now_iso(),
                       lock_digest=lock_digest)
        text = man.dumps()
        manifest_mod.loads(text, path)  # what we write must parse; a bug here must not ship a broken volume
        store.atomic_write_text(path, text)
    return path


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
    man_path = update_manifest(root, {repo_id: entry}, lock_digest=None) if write_manifest else None
    log.info("imported %s as %s@%s into %s%s", src, repo_id, result.commit[:12], root,
             " (manifest updated)" if man_path else "")
    return ProvisionResult(repo_id, result.commit, result.snapshot, entry, man_path, dict(result.files))


__all__ = ["ModelPull", "ProvisionResult", "PullReport", "ensure_writable", "missing_bytes", "provision_from_folder",
           "pull", "update_manifest"]
