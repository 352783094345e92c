"""Verified downloads into an HF-cache layout root (:func:`fetch_into`) and the space check before them.

Staging, leftovers cleanup and snapshot assembly are :mod:`store.writer`'s (the one snapshot writer, which
``smm import`` uses too); the locks are :mod:`store.locks`'. What bytes come from is a
:class:`Downloader`, so any transport (the Hub client, a plain-HTTP or S3 client, a test fake) publishes
the same way.

Publishing protocol (:func:`fetch_into`), under the per-repo writer lock:
1. files already present and matching their sha256 are reused (hashed, never trusted by name);
2. the rest stream into ``<root>/.staging/<uuid>/`` (same filesystem), guarded by an owner lock so a
   later run can tell a dead writer's leftovers from a live one's;
3. every sha256 is checked; one mismatch -> IntegrityError, nothing is published, no retry, no fallthrough;
4. blobs move into ``blobs/<sha256>`` by rename; :func:`store.writer.write_snapshot` assembles a new
   snapshot in staging, which appears as ``snapshots/<commit>`` by one rename; then ``refs/<revision>``.
"""

from __future__ import annotations

import errno
import logging
import os
import shutil
import threading
from collections.abc import Mapping
from concurrent.futures import FIRST_EXCEPTION, ThreadPoolExecutor, wait
from dataclasses import dataclass, field
from pathlib import Path
from typing import NoReturn, Protocol

from ..errors import IntegrityError, SourceError
from ..remote.base import Downloader, NullProgress, ProgressHook
from .cache import atomic_write_text
from .hashing import PREFIX, sha256_file, strip_prefix
from .layout import BLOBS, INCOMPLETE_SUFFIX, LOCKS_DIR, REFS, SNAPSHOTS, STAGING_DIR, repo_dir
from .locks import repo_lock
from .writer import (
    clean_leftovers,
    staging_dir,
    write_snapshot,
)

log = logging.getLogger(__name__)

STAGING = STAGING_DIR


# -- the contract with whatever brings the bytes ----------------------------------------------------
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
    """Make ``<root>/<repo folder>/<snapshot of commit>`` hold ``files``, verified. Safe across processes."""
    from filelock import Timeout

    root = Path(root)
    rdir = repo_dir(root, repo_id)
    snap, blobs = rdir / SNAPSHOTS / commit, rdir / BLOBS
    result = FetchResult(repo_id, commit, snap)
    staged: dict[str, tuple[Path, int, str]] = {}
    try:
        with repo_lock(root, repo_id, timeout=lock_timeout):
            # Re-check presence only now: another process may have finished while we waited.
            clean_leftovers(root, repo_id)
            local, broken, missing = _inventory(snap, blobs, files)
            check_space(root, sum(files[r].size or 0 for r in missing), what=f"{repo_id}@{commit[:12]}")
            with staging_dir(root) as stage:
                if missing:
                    _download_all(client, repo_id, commit, files, missing, stage, staged, jobs,
                                  progress or NullProgress())
                # Every download verified; publish blobs by rename (content-addressed, so idempotent).
                for rel, (tmp, size, sha) in sorted(staged.items()):
                    local[rel] = _publish_staged(blobs, tmp, size, sha)
                    result.bytes_downloaded += size
                write_snapshot(root, repo_id, commit, local, stage, replace=set(staged) | broken)
            if revision and revision != commit:
                atomic_write_text(rdir / REFS / revision, commit)
    except Timeout as err:
        raise SourceError(f"{repo_id}: another process has held the writer lock under {root / LOCKS_DIR} for "
                          f"{lock_timeout:g}s; is a download stuck?") from err
    _report(result, files, staged, broken)
    return result


def _inventory(snap: Path, blobs: Path, files: Mapping[str, Want]) -> tuple[dict[str, Path], set[str], list[str]]:
    """(verified local copies, broken snapshot entries, files to download)."""
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
    return local, broken, missing


def _publish_staged(blobs: Path, tmp: Path, size: int, sha: str) -> Path:
    blob = blobs / sha
    blobs.mkdir(parents=True, exist_ok=True)
    if not (blob.is_file() and blob.stat().st_size == size and sha256_file(blob) == sha):
        os.replace(tmp, blob)
    return blob


def _report(result: FetchResult, files: Mapping[str, Want], staged: Mapping[str, tuple[Path, int, str]],
            broken: set[str]) -> None:
    repo_id, commit = result.repo_id, result.commit
    for rel, want in sorted(files.items()):
        p = result.snapshot / rel
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


def _download_all(client: Downloader, repo_id: str, commit: str, files: Mapping[str, Want], missing: list[str],
                  stage: Path, staged: dict[str, tuple[Path, int, str]], jobs: int,
                  progress: ProgressHook) -> None:
    # The first terminal failure stops the queue: a worker must not pick up the next file (and run all its
    # retries against a dead server) in the moment before the main thread cancels what is pending.
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


__all__ = ["STAGING", "FetchResult", "PinnedFile", "Want", "check_space", "fetch_into"]
