"""Verified publishing into an HF-cache layout root: fetch-into, staging, leftovers cleanup, space checks.

Beside :mod:`store` (which owns the layout and its write primitives); what bytes come from is a
:class:`Downloader`, so any transport (the Hub client, a plain-HTTP or S3 client, a test fake) publishes
the same way.

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
import errno
import logging
import os
import shutil
import threading
import time
import uuid
from collections.abc import Iterator, Mapping
from concurrent.futures import FIRST_EXCEPTION, ThreadPoolExecutor, wait
from dataclasses import dataclass, field
from pathlib import Path
from typing import NoReturn, Protocol

from .._layout import INCOMPLETE_SUFFIX, LOCKS_DIR, STAGING_DIR, TMP_PREFIX, tmp_name
from ..errors import IntegrityError, SourceError
from . import cache as store
from .hashing import PREFIX, sha256_file, strip_prefix

log = logging.getLogger(__name__)

STAGING = STAGING_DIR


# -- the contract with whatever brings the bytes ----------------------------------------------------
class ProgressHook(Protocol):
    """``start`` when a file's download begins, ``advance`` per chunk, ``finish`` only when every
    byte arrived (a failed download gets no ``finish``; the error says what happened)."""

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


class Downloader(Protocol):
    """Brings the bytes of one file of one commit. ``hub_client.HubClient`` is the production one.

    ``download`` streams ``path`` of ``repo_id@commit`` into ``dest`` (created or truncated) and returns
    (bytes written, sha256 hex of those bytes); it may stop early with ``IntegrityError`` once more than
    ``size`` bytes arrive. It raises ``Unavailable`` when the remote does not have the file and
    ``SourceError`` for transient failures it gave up on; it never publishes anything itself.
    ``endpoint`` names where the bytes come from, for messages.
    """

    endpoint: str

    def download(self, repo_id: str, commit: str, path: str, dest: Path, *, size: int | None = None,
                 progress: ProgressHook | None = None) -> tuple[int, str]: ...


class PinnedFile(Protocol):
    """Anything with a size and a ``sha256:``-prefixed digest (a lock or manifest ``FileEntry``)."""

    @property
    def size(self) -> int: ...
    @property
    def sha256(self) -> str: ...


@dataclass(frozen=True)
class Want:
    """What a file must be. ``sha256`` None = not pinned (downloaded and published unverified, logged)."""

    size: int | None = None
    sha256: str | None = None  # hex

    @classmethod
    def from_entry(cls, entry: PinnedFile) -> Want:
        return cls(size=entry.size, sha256=strip_prefix(entry.sha256))


# -- staging ----------------------------------------------------------------------------------------
@contextlib.contextmanager
def staging_dir(root: Path) -> Iterator[Path]:
    """``<root>/.staging/<uuid>/``, held by an owner lock for its lifetime, removed afterwards.

    A SIGKILLed writer's folder stays behind; :func:`clean_stale_staging` removes it once nobody holds
    its lock (the kernel drops a dead process's locks), so a rerun starts clean.
    """
    from filelock import FileLock

    base = Path(root) / STAGING_DIR
    name = uuid.uuid4().hex
    owner = FileLock(str(base / f"{name}.lock"))
    for attempt in range(5):
        base.mkdir(parents=True, exist_ok=True)
        try:
            owner.acquire()
            break
        except FileNotFoundError:  # another writer removed the empty base between our mkdir and here
            if attempt == 4:
                raise
    path = base / name
    try:
        path.mkdir()
        yield path
    finally:
        shutil.rmtree(path, ignore_errors=True)
        with contextlib.suppress(OSError):
            os.unlink(base / f"{name}.lock")
        owner.release()
        # The last writer out removes the empty base, so a good volume holds no bookkeeping folder
        # that `hf cache ls` would report. rmdir fails harmlessly if anyone is inside.
        with contextlib.suppress(OSError):
            base.rmdir()


def clean_stale_staging(root: Path, *, max_lock_age: float = 3600.0) -> int:
    """Remove staging folders whose owner is gone. Returns how many were removed. Never blocks."""
    from filelock import FileLock, Timeout

    base = Path(root) / STAGING_DIR
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
            with contextlib.suppress(OSError):  # its uuid name is never used again
                lock_path.unlink()
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
                if name.startswith(TMP_PREFIX):
                    with contextlib.suppress(OSError):
                        os.unlink(os.path.join(dirpath, name))
                        removed += 1
    for f in (rdir / "blobs").glob("*" + INCOMPLETE_SUFFIX) if (rdir / "blobs").is_dir() else []:
        if f.name.startswith(TMP_PREFIX):  # ours (store.publish_blob): writers hold the repo lock we hold
            f.unlink(missing_ok=True)
            removed += 1
            continue
        # huggingface_hub's: it holds .locks/<repo>/<etag>.lock while writing <etag>.incomplete
        hf_lock = FileLock(str(Path(root) / LOCKS_DIR / rdir.name / (f.name[:-len(INCOMPLETE_SUFFIX)] + ".lock")),
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
    tmp = path.parent / tmp_name(path.name)
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


def fetch_into(root: Path, client: Downloader, repo_id: str, commit: str, files: Mapping[str, Want], *,
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


def _download_all(client: Downloader, repo_id: str, commit: str, files: Mapping[str, Want], missing: list[str],
                  stage: Path, staged: dict[str, tuple[Path, int, str]], jobs: int,
                  progress: ProgressHook) -> None:
    # The first terminal failure stops the queue: a worker must not pick up the next file (and run all its
    # retries against a dead server) in the moment before the main thread cancels what is pending (B7).
    stop = threading.Event()

    def one(i: int, rel: str) -> None:
        if stop.is_set():
            return
        want = files[rel]
        key = f"{repo_id}/{rel}"
        progress.start(key, want.size)
        tmp = stage / f"{i:05d}{INCOMPLETE_SUFFIX}"
        try:
            size, sha = client.download(repo_id, commit, rel, tmp, size=want.size, progress=progress)
            progress.finish(key)  # only when the bytes arrived: no "fetched" line for a failed file
            if (want.size is not None and size != want.size) or (want.sha256 is not None and sha != want.sha256):
                _mismatch(repo_id, rel, want, size, sha, client.endpoint)
        except OSError as err:
            stop.set()
            if err.errno == errno.ENOSPC:  # say where, which file and how much, like the pre-flight check
                left = sum(files[r].size or 0 for r in missing if r not in staged)
                target = stage.parent.parent  # <target>/.staging/<this run>
                raise OSError(errno.ENOSPC, f"{repo_id}@{commit[:12]}: no space left on {target} while "
                              f"writing {rel}; the files not yet published need {left:,} bytes "
                              f"({_mb(left)}) plus slack. Free space or pick another target") from err
            raise
        except BaseException:
            stop.set()
            raise
        staged[rel] = (tmp, size, sha)

    with ThreadPoolExecutor(max_workers=max(1, min(jobs, len(missing)))) as pool:
        futures = [pool.submit(one, i, rel) for i, rel in enumerate(missing)]
        _done, pending = wait(futures, return_when=FIRST_EXCEPTION)
        for f in pending:  # one failure (say a sha256 mismatch) stops the files not yet started
            f.cancel()
    errors = [f.exception() for f in futures if not f.cancelled() and f.exception() is not None]
    if errors:
        raise errors[0]  # type: ignore[misc]


__all__ = ["STAGING", "Downloader", "FetchResult", "NullProgress", "PinnedFile", "ProgressHook", "Want",
           "check_space", "clean_leftovers", "clean_stale_staging", "fetch_into", "staging_dir"]
