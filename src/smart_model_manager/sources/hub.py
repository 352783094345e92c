"""Download on demand from the Hub (or any ``HF_ENDPOINT`` mirror), verified BEFORE anything is published.

The only module that talks to a Hub: ``huggingface_hub`` is the transport (URLs, headers, its shared HTTP
session, its error types), imported inside functions so ``import smart_model_manager`` stays light.
``endpoint=`` and ``token=`` are always passed explicitly: huggingface_hub freezes its environment variables
at import time, so a process that sets ``HF_ENDPOINT`` late would otherwise talk to huggingface.co.

Why not ``hf_hub_download``: its GET has no timeout we can set per call (the shared client is built with
``timeout=None``; huggingface_hub #2038/#2399: downloads that hang forever on a stalled connection), and a
half-written ``.incomplete`` blob can be reused (#3371). Here every request has a timeout, retries are
bounded, bytes are hashed while they stream, and a file reaches ``blobs/`` only after its sha256 matched.

Publishing protocol (:func:`fetch_into`), under the per-repo writer lock:
1. files already present and matching their sha256 are reused (hashed, never trusted by name);
2. the rest stream into ``<root>/.staging/<uuid>/`` (same filesystem), guarded by an owner lock so a
   later run can tell a dead writer's leftovers from a live one's;
3. every sha256 is checked; one mismatch -> IntegrityError, nothing is published, no retry, no fallthrough;
4. blobs move into ``blobs/<sha256>`` by rename; a new snapshot is assembled in staging and appears as
   ``snapshots/<commit>`` by one rename; then ``refs/<revision>``.
"""

from __future__ import annotations

import contextlib
import hashlib
import logging
import os
import shutil
import time
import uuid
from collections.abc import Callable, Iterator, Mapping
from concurrent.futures import FIRST_EXCEPTION, ThreadPoolExecutor, wait
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, NoReturn, Protocol, TypeVar

from .. import store
from ..errors import ConfigurationError, IntegrityError, SourceError
from ..hashing import PREFIX, sha256_file, strip_prefix
from ..settings import Settings
from .base import Request, Resolved, Unavailable, read_schema

log = logging.getLogger(__name__)

CHUNK = 1 << 20
STAGING = ".staging"
LIBRARY = "smart-model-manager"
T = TypeVar("T")


# -- what the remote says ------------------------------------------------------------------------
@dataclass(frozen=True)
class RemoteFile:
    path: str
    size: int | None
    sha256: str | None       # hex, from LFS metadata; None for small (git) files: their id is a git sha1
    blob_id: str | None = None


@dataclass(frozen=True)
class RemoteRevision:
    repo_id: str
    revision: str
    commit: str
    files: dict[str, RemoteFile]


@dataclass(frozen=True)
class Want:
    """What a file must be. ``sha256`` None = not pinned (downloaded and published unverified, logged)."""

    size: int | None = None
    sha256: str | None = None  # hex

    @classmethod
    def from_entry(cls, entry: Any) -> Want:
        return cls(size=entry.size, sha256=strip_prefix(entry.sha256))


class ProgressHook(Protocol):
    def start(self, key: str, total: int | None) -> None: ...
    def advance(self, key: str, n: int) -> None: ...
    def finish(self, key: str) -> None: ...


class NullProgress:
    def start(self, key: str, total: int | None) -> None:
        pass

    def advance(self, key: str, n: int) -> None:
        pass

    def finish(self, key: str) -> None:
        pass


# -- the transport ---------------------------------------------------------------------------------
class HubClient:
    """Metadata and file bytes from one endpoint, with a timeout on every request and bounded retries.

    Raises ``Unavailable`` for "does not exist / not allowed / offline" (with the reason) and
    ``SourceError`` for transient failures that outlived the retries.
    """

    def __init__(self, endpoint: str, token: str | None = None, *, timeout: float = 30.0, retries: int = 3,
                 offline: bool = False, backoff: float = 0.5):
        self.endpoint = endpoint.rstrip("/")
        self.token = token
        self.timeout = timeout
        self.retries = max(0, retries)
        self.offline = offline
        self.backoff = backoff

    @classmethod
    def from_settings(cls, settings: Settings) -> HubClient:
        return cls(settings.endpoint, settings.token, timeout=settings.timeout, retries=settings.retries,
                   offline=settings.offline)

    # error classification: each branch says whether it means "retry", "next source" or "fatal"
    def _classify(self, err: BaseException, what: str) -> BaseException:
        import httpx2
        from huggingface_hub import errors as hf

        if isinstance(err, hf.OfflineModeIsEnabled):
            return Unavailable(f"offline: huggingface_hub is in offline mode ({err})",
                               hint="unset HF_HUB_OFFLINE, or use `smm pull` on a connected machine")
        if isinstance(err, hf.GatedRepoError):
            return Unavailable(f"{what}: the repo is gated at {self.endpoint}: {_first_line(err)}",
                               hint="accept the license on the Hub and set HF_TOKEN")
        if isinstance(err, hf.RepositoryNotFoundError):
            return Unavailable(f"{what}: repository not found at {self.endpoint} (or private: set HF_TOKEN)")
        if isinstance(err, hf.RevisionNotFoundError):
            return Unavailable(f"{what}: revision not found at {self.endpoint}")
        if isinstance(err, hf.RemoteEntryNotFoundError):
            return Unavailable(f"{what}: file not found at {self.endpoint}")
        if isinstance(err, hf.HfHubHTTPError):
            status = err.response.status_code if err.response is not None else None
            if status in (401, 403):
                return Unavailable(f"{what}: access denied ({status}) by {self.endpoint}",
                                   hint="set HF_TOKEN to a token that can read the repo")
            return SourceError(f"{what}: HTTP {status} from {self.endpoint}: {_first_line(err)}")
        if isinstance(err, httpx2.TimeoutException):
            return SourceError(f"{what}: no answer from {self.endpoint} within {self.timeout:g}s "
                               f"({type(err).__name__}); raise SMM_TIMEOUT if the link is just slow")
        if isinstance(err, (httpx2.TransportError, ConnectionError)):
            return SourceError(f"{what}: cannot reach {self.endpoint}: {type(err).__name__}: {err}")
        return err  # e.g. ENOSPC while writing: local, not retried, not disguised as a network error

    def _retry(self, what: str, fn: Callable[[], T]) -> T:
        if self.offline:
            raise Unavailable("offline (HF_HUB_OFFLINE or SMM_OFFLINE is set)",
                              hint="unset HF_HUB_OFFLINE/SMM_OFFLINE or provision with `smm pull` beforehand")
        attempts = self.retries + 1
        for attempt in range(1, attempts + 1):
            try:
                return fn()
            except (Unavailable, IntegrityError):
                raise
            except Exception as err:  # noqa: BLE001 - classified right below
                mapped = self._classify(err, what)
                if mapped is err:  # not a network condition: a bug or a local problem, raised as is
                    raise
                if not isinstance(mapped, SourceError):  # "does not exist" / "not allowed": next source
                    raise mapped from err
                if attempt == attempts:
                    raise SourceError(f"{mapped} (gave up after {attempts} attempt(s); SMM_RETRIES)") from err
                delay = min(self.backoff * 2 ** (attempt - 1), 8.0)
                log.info("%s; retry %d/%d in %.1fs", mapped, attempt, attempts - 1, delay)
                time.sleep(delay)
        raise AssertionError("unreachable")  # pragma: no cover

    def revision(self, repo_id: str, revision: str) -> RemoteRevision:
        """The commit ``revision`` points to and every file of that commit (size, LFS sha256), in ONE request.

        ``model_info(files_metadata=True)`` rather than ``list_repo_tree``: the latter takes no timeout in
        huggingface_hub 2.x, and one request cannot see a branch move between "which commit" and "which files".
        """
        from huggingface_hub import HfApi

        api = HfApi(endpoint=self.endpoint, token=self.token, library_name=LIBRARY)

        def call() -> RemoteRevision:
            info = api.model_info(repo_id, revision=revision, files_metadata=True, timeout=self.timeout)
            files = {}
            for sib in info.siblings or []:
                lfs = sib.lfs
                sha = lfs.get("sha256") if isinstance(lfs, dict) else getattr(lfs, "sha256", None)
                files[sib.rfilename] = RemoteFile(sib.rfilename, sib.size, sha or None, sib.blob_id)
            if not info.sha:
                raise SourceError(f"{repo_id}@{revision}: {self.endpoint} did not say which commit it is")
            return RemoteRevision(repo_id, revision, info.sha, files)

        return self._retry(f"{repo_id}@{revision}", call)

    def download(self, repo_id: str, commit: str, path: str, dest: Path, *, size: int | None = None,
                 progress: ProgressHook | None = None) -> tuple[int, str]:
        """Stream one file into ``dest``; returns (bytes, sha256 hex). Resumes with Range after a drop."""
        from huggingface_hub import __version__ as hf_version, hf_hub_url
        from huggingface_hub.utils import build_hf_headers, get_session, hf_raise_for_status

        from .. import __version__

        url = hf_hub_url(repo_id, path, revision=commit, endpoint=self.endpoint)
        headers = build_hf_headers(token=self.token, library_name=LIBRARY, library_version=__version__,
                                   user_agent={"huggingface_hub": hf_version})
        headers["Accept-Encoding"] = "identity"  # byte offsets must be file offsets for Range resumes
        progress = progress or NullProgress()
        key = f"{repo_id}/{path}"
        state = {"written": 0, "hash": hashlib.sha256()}
        with open(dest, "wb") as fh:
            def attempt() -> None:
                done = state["written"]
                if size is not None and done == size and done > 0:
                    return  # the drop happened after the last byte
                h = dict(headers)
                if done:
                    h["Range"] = f"bytes={done}-"
                with get_session().stream("GET", url, headers=h, timeout=self.timeout) as resp:
                    if resp.status_code >= 400:
                        resp.read()
                        hf_raise_for_status(resp)
                    if done and resp.status_code != 206:  # the server ignored Range: start over
                        fh.seek(0)
                        fh.truncate()
                        state["written"], state["hash"] = 0, hashlib.sha256()
                    for chunk in resp.iter_bytes():  # as received: a drop keeps every byte already read
                        if size is not None and state["written"] + len(chunk) > size:
                            # never let a wrong (or hostile) endpoint fill the disk past what the lock pins
                            raise IntegrityError(
                                f"{repo_id}: {path}: {self.endpoint} sent more than the pinned {size} bytes; "
                                "stopped the download", path=path, expected=str(size),
                                actual=f">{size}")
                        fh.write(chunk)
                        state["hash"].update(chunk)
                        state["written"] += len(chunk)
                        progress.advance(key, len(chunk))

            self._retry(f"{repo_id}@{commit[:12]}: {path}", attempt)
            fh.flush()
            os.fsync(fh.fileno())
        return state["written"], state["hash"].hexdigest()


def _first_line(err: BaseException) -> str:
    return (str(err).strip().splitlines() or [type(err).__name__])[0]


# -- staging ----------------------------------------------------------------------------------------
@contextlib.contextmanager
def staging_dir(root: Path) -> Iterator[Path]:
    """``<root>/.staging/<uuid>/``, held by an owner lock for its lifetime, removed afterwards.

    A SIGKILLed writer's folder stays behind; :func:`clean_stale_staging` removes it once nobody holds
    its lock (the kernel drops a dead process's locks), so a rerun starts clean.
    """
    from filelock import FileLock

    base = Path(root) / STAGING
    base.mkdir(parents=True, exist_ok=True)
    name = uuid.uuid4().hex
    owner = FileLock(str(base / f"{name}.lock"))
    owner.acquire()
    path = base / name
    try:
        path.mkdir()
        yield path
    finally:
        shutil.rmtree(path, ignore_errors=True)
        with contextlib.suppress(OSError):
            os.unlink(base / f"{name}.lock")
        owner.release()


def clean_stale_staging(root: Path, *, max_lock_age: float = 3600.0) -> int:
    """Remove staging folders whose owner is gone. Returns how many were removed. Never blocks."""
    from filelock import FileLock, Timeout

    base = Path(root) / STAGING
    try:
        entries = list(base.iterdir())
    except OSError:
        return 0
    removed = 0
    for d in entries:
        if not d.is_dir():
            continue
        lock_path = base / f"{d.name}.lock"
        lock = FileLock(str(lock_path), timeout=0)
        try:
            lock.acquire()
        except Timeout:
            continue  # a live writer
        try:
            shutil.rmtree(d, ignore_errors=True)
            removed += 1
            log.info("removed stale staging folder %s (its writer died)", d)
        finally:
            lock.release()
    now = time.time()
    for f in base.glob("*.lock"):  # lock files of dead writers; never young ones (their owner may be starting)
        with contextlib.suppress(OSError):
            if not (base / f.stem).exists() and now - f.stat().st_mtime > max_lock_age:
                f.unlink()
    return removed


def clean_leftovers(root: Path, repo_id: str) -> int:
    """Under the repo writer lock: drop what killed writers leave behind. Returns how many entries went.

    ``blobs/*.incomplete`` nobody is writing (huggingface_hub #3371 reuses them), and our ``.tmp-*`` names
    in ``refs/`` and inside snapshots (a kill between ``symlink`` and ``rename`` leaves one; ``hf cache
    scan`` would read it as a ref or a file).
    """
    from filelock import FileLock, Timeout

    rdir = store.repo_dir(Path(root), repo_id)
    removed = 0
    for sub in ("refs", "snapshots"):
        for dirpath, dirnames, filenames in os.walk(rdir / sub):
            for name in filenames + [d for d in dirnames if os.path.islink(os.path.join(dirpath, d))]:
                if name.startswith(store.TMP_PREFIX):
                    with contextlib.suppress(OSError):
                        os.unlink(os.path.join(dirpath, name))
                        removed += 1
    for f in (rdir / "blobs").glob("*.incomplete") if (rdir / "blobs").is_dir() else []:
        if f.name.startswith(store.TMP_PREFIX):  # ours (store.publish_blob): writers hold the repo lock we hold
            f.unlink(missing_ok=True)
            removed += 1
            continue
        # huggingface_hub's: it holds .locks/<repo>/<etag>.lock while writing <etag>.incomplete
        hf_lock = FileLock(str(Path(root) / ".locks" / rdir.name / (f.name[:-len(".incomplete")] + ".lock")),
                           timeout=0)
        try:
            with hf_lock:
                f.unlink(missing_ok=True)
                removed += 1
        except Timeout:
            continue
    return removed


def check_space(root: Path, needed: int, *, what: str) -> None:
    """Fail before downloading when ``root``'s filesystem cannot hold ``needed`` more bytes (+5% slack)."""
    if needed <= 0:
        return
    probe = Path(root)
    while not probe.exists() and probe != probe.parent:
        probe = probe.parent
    free = shutil.disk_usage(probe).free
    want = int(needed * 1.05) + (16 << 20)
    if free < want:
        import errno

        raise OSError(errno.ENOSPC,
                      f"{what}: needs {_mb(want)} free on {probe} (downloads {_mb(needed)} + slack) but only "
                      f"{_mb(free)} is free; short by {_mb(want - free)}. Free space or pick another target")


def _mb(n: int) -> str:
    return f"{n / 1e6:,.1f} MB"


# -- fetch into a cache root -------------------------------------------------------------------------
@dataclass
class FetchResult:
    repo_id: str
    commit: str
    snapshot: Path
    downloaded: list[str] = field(default_factory=list)
    reused: list[str] = field(default_factory=list)
    repaired: list[str] = field(default_factory=list)
    unverified: list[str] = field(default_factory=list)
    bytes_downloaded: int = 0
    files: dict[str, tuple[int, str]] = field(default_factory=dict)  # rel -> (size, sha256 hex)


def _existing(snap: Path, blobs: Path, rel: str, want: Want) -> tuple[Path | None, bool]:
    """(a verified local copy of ``rel``, whether the snapshot entry itself is broken)."""
    entry = snap / rel
    broken = False
    if entry.is_file():
        size_ok = want.size is None or entry.stat().st_size == want.size
        if want.sha256 is None and size_ok:
            return entry, False  # not pinned: trust what is there (reported as unverified)
        if size_ok and sha256_file(entry) == want.sha256:
            return entry, False
        broken = True
    elif entry.is_symlink() or entry.exists():
        broken = True
    if want.sha256 is not None:
        blob = blobs / want.sha256
        if blob.is_file() and (want.size is None or blob.stat().st_size == want.size) \
                and sha256_file(blob) == want.sha256:
            return blob, broken
    return None, broken


def _relink(path: Path, target: str) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.parent / f"{store.TMP_PREFIX}{path.name}.{uuid.uuid4().hex}"
    os.symlink(target, tmp)
    os.replace(tmp, path)


def _complete(snap: Path, files: Mapping[str, Want], local: Mapping[str, Path]) -> bool:
    """Whether every entry of an existing snapshot already points at the verified copy."""
    return all((snap / rel).is_file() and os.path.samefile(snap / rel, local[rel]) for rel in files)


def _mismatch(repo_id: str, rel: str, want: Want, size: int, sha: str, endpoint: str) -> NoReturn:
    if want.size is not None and size != want.size:
        raise IntegrityError(
            f"{repo_id}: {rel}: size mismatch: expected {want.size} bytes, got {size} bytes from {endpoint}; "
            "nothing was published (not retried: the lock pins other bytes)",
            path=rel, expected=str(want.size), actual=str(size))
    raise IntegrityError(
        f"{repo_id}: {rel}: sha256 mismatch: expected {PREFIX}{want.sha256}, actual {PREFIX}{sha} "
        f"(downloaded from {endpoint}); nothing was published (not retried: the lock pins other bytes)",
        path=rel, expected=PREFIX + str(want.sha256), actual=PREFIX + sha)


def fetch_into(root: Path, client: HubClient, repo_id: str, commit: str, files: Mapping[str, Want], *,
               revision: str | None = None, jobs: int = 4, progress: ProgressHook | None = None,
               lock_timeout: float = 3600.0) -> FetchResult:
    """Make ``<root>/models--.../snapshots/<commit>`` hold ``files``, verified. Safe across processes."""
    from filelock import Timeout

    root = Path(root)
    rdir = store.repo_dir(root, repo_id)
    snap, blobs = rdir / "snapshots" / commit, rdir / "blobs"
    progress = progress or NullProgress()
    result = FetchResult(repo_id, commit, snap)
    try:
        with store.repo_lock(root, repo_id, timeout=lock_timeout):
            # Re-check presence only now: another process may have finished while we waited.
            clean_leftovers(root, repo_id)
            local: dict[str, Path] = {}
            broken: set[str] = set()
            missing: list[str] = []
            for rel, want in sorted(files.items()):
                have, bad = _existing(snap, blobs, rel, want)
                if bad:
                    broken.add(rel)
                if have is None:
                    missing.append(rel)
                else:
                    local[rel] = have
            check_space(root, sum(files[r].size or 0 for r in missing), what=f"{repo_id}@{commit[:12]}")
            staged: dict[str, tuple[Path, int, str]] = {}
            with staging_dir(root) as stage:
                if missing:
                    _download_all(client, repo_id, commit, files, missing, stage, staged, jobs, progress)
                # Every download verified; publish blobs by rename (content-addressed, so idempotent).
                for rel, (tmp, size, sha) in sorted(staged.items()):
                    blob = blobs / sha
                    blobs.mkdir(parents=True, exist_ok=True)
                    if not (blob.is_file() and blob.stat().st_size == size and sha256_file(blob) == sha):
                        os.replace(tmp, blob)
                    local[rel] = blob
                    result.bytes_downloaded += size
                # The snapshot: a new one appears complete by one rename; an existing one is fixed per file.
                if not snap.is_dir():
                    tmp_snap = stage / "snapshot"
                    for rel in sorted(files):
                        target = os.path.relpath(local[rel], (snap / rel).parent)
                        (tmp_snap / rel).parent.mkdir(parents=True, exist_ok=True)
                        os.symlink(target, tmp_snap / rel)
                    snap.parent.mkdir(parents=True, exist_ok=True)
                    try:
                        os.rename(tmp_snap, snap)
                    except OSError:
                        if not snap.is_dir():  # a writer outside our lock (huggingface_hub) made it meanwhile
                            raise
                if snap.is_dir() and not _complete(snap, files, local):
                    for rel in sorted(files):
                        if rel in staged or rel in broken or not (snap / rel).is_file():
                            _relink(snap / rel, os.path.relpath(local[rel], (snap / rel).parent))
            if revision and revision != commit:
                store.atomic_write_text(rdir / "refs" / revision, commit)
    except Timeout as err:
        raise SourceError(f"{repo_id}: another process has held the writer lock under {root}/.locks for "
                          f"{lock_timeout:g}s; is a download stuck?") from err
    for rel, want in sorted(files.items()):
        p = snap / rel
        if rel in staged:
            (result.repaired if rel in broken else result.downloaded).append(rel)
        else:
            result.reused.append(rel)
        if want.sha256 is None:
            result.unverified.append(rel)
        size = p.stat().st_size
        result.files[rel] = (size, staged[rel][2] if rel in staged else (want.sha256 or sha256_file(p)))
    if result.repaired:
        log.warning("%s@%s: replaced corrupt local copies of %s", repo_id, commit[:12], ", ".join(result.repaired))
    if result.unverified:
        log.warning("%s@%s: %d file(s) published WITHOUT a pinned sha256 (no lock entry): %s; pin them with "
                    "`smm lock`", repo_id, commit[:12], len(result.unverified), ", ".join(result.unverified))
    return result


def _download_all(client: HubClient, repo_id: str, commit: str, files: Mapping[str, Want], missing: list[str],
                  stage: Path, staged: dict[str, tuple[Path, int, str]], jobs: int,
                  progress: ProgressHook) -> None:
    def one(i: int, rel: str) -> None:
        want = files[rel]
        key = f"{repo_id}/{rel}"
        progress.start(key, want.size)
        tmp = stage / f"{i:05d}.incomplete"
        try:
            size, sha = client.download(repo_id, commit, rel, tmp, size=want.size, progress=progress)
        finally:
            progress.finish(key)
        if (want.size is not None and size != want.size) or (want.sha256 is not None and sha != want.sha256):
            _mismatch(repo_id, rel, want, size, sha, client.endpoint)
        staged[rel] = (tmp, size, sha)

    with ThreadPoolExecutor(max_workers=max(1, min(jobs, len(missing)))) as pool:
        futures = [pool.submit(one, i, rel) for i, rel in enumerate(missing)]
        _done, pending = wait(futures, return_when=FIRST_EXCEPTION)
        for f in pending:  # one failure (say a sha256 mismatch) stops the files not yet started
            f.cancel()
    errors = [f.exception() for f in futures if not f.cancelled() and f.exception() is not None]
    if errors:
        raise errors[0]  # type: ignore[misc]


# -- the source ------------------------------------------------------------------------------------
class HubSource:
    """Download on demand into the local cache (``fill_cache=True``) and return the verified snapshot.

    With a lock entry for the requested commit, every file is checked against its pinned sha256 before
    it is published. Without one, the revision's files are fetched and published unverified (LFS files
    are still checked against the sha256 the endpoint lists), and a warning says so.
    """

    name = "hub"

    def __init__(self, settings: Settings, fill_cache: bool = True, *, client: HubClient | None = None,
                 root: Path | None = None, jobs: int = 4):
        if not fill_cache and root is None:
            raise ConfigurationError("HubSource(fill_cache=False) needs root=: the folder to download into")
        self.settings = settings
        self.root = Path(root) if root is not None else Path(settings.cache_dir)
        self.client = client or HubClient.from_settings(settings)
        self.jobs = jobs

    def resolve(self, request: Request) -> Resolved:
        from ..spec import select_files

        if self.settings.offline:
            raise Unavailable("offline (HF_HUB_OFFLINE or SMM_OFFLINE is set): no download attempted",
                              hint="provision beforehand with `smm pull` or unset HF_HUB_OFFLINE")
        pinned = request.pinned
        commit = request.want_commit
        revision = request.revision or getattr(pinned, "revision", None) or "main"
        if pinned is not None and commit == pinned.commit and pinned.files:
            wants = {rel: Want.from_entry(e) for rel, e in pinned.files.items()}
            verified = "full"
        else:
            remote = self.client.revision(request.repo_id, commit or revision)
            commit = remote.commit
            wants = {rel: Want(remote.files[rel].size, remote.files[rel].sha256)
                     for rel in select_files(remote.files)}
            if not wants:
                raise Unavailable(f"{request.repo_id}@{revision} at {self.client.endpoint} has no loadable files")
            verified = "lfs-only" if any(w.sha256 for w in wants.values()) else "none"
        ref = revision if revision != commit and len(revision) != 40 else None
        clean_stale_staging(self.root)  # leftovers of a killed process; live writers hold their lock
        result = fetch_into(self.root, self.client, request.repo_id, commit, wants, revision=ref, jobs=self.jobs)
        labels, dim = read_schema(result.snapshot)
        log.info("hub: %s@%s ready in %s (%d downloaded, %d reused, verified=%s)", request.repo_id, commit[:12],
                 self.root, len(result.downloaded) + len(result.repaired), len(result.reused), verified)
        return Resolved(repo_id=request.repo_id, source=self.name, path=result.snapshot, commit=commit,
                        revision=request.revision, labels=tuple(getattr(pinned, "labels", ()) or labels),
                        dimension=getattr(pinned, "dimension", None) or dim,
                        files=dict(getattr(pinned, "files", {}) or {}), verified=verified)
