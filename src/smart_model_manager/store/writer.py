"""The one snapshot writer: staging folders, blob publishing and atomic snapshot assembly.

Both writers of a cache root use it: :func:`store.fetch.fetch_into` (downloads) and
:func:`store.cache.import_folder` (``smm import``), and ``store.cache.add_files`` (export) links through it.

One staging scheme: ``<root>/.staging/<uuid>/``, on the root's filesystem (so publishing is a rename),
held by an owner lock for its lifetime. A killed writer's folder is removed by the next writer
(:func:`clean_stale_staging`) once nobody holds its lock. ``snapshots/`` never holds a half-built snapshot:
a new one is assembled in staging and appears as ``snapshots/<commit>`` by one rename; an existing one is
fixed per file, each link replaced by a rename.

Writers hold the repo lock (:func:`store.locks.repo_lock`) around every call here. ``shutil`` and
``uuid`` are imported where they are used: a mock start imports this module and never writes.
"""

from __future__ import annotations

import contextlib
import logging
import os
import time
from collections.abc import Collection, Iterator, Mapping
from pathlib import Path

from ..errors import IntegrityError
from .layout import BLOBS, SNAPSHOTS, STAGING_DIR, TMP_PREFIX, incomplete_name, repo_dir, tmp_name
from .locks import owner_lock, unless_huggingface_hub_writes

log = logging.getLogger(__name__)


@contextlib.contextmanager
def staging_dir(root: Path) -> Iterator[Path]:
    """``<root>/.staging/<uuid>/``, held by an owner lock for its lifetime, removed afterwards."""
    import shutil
    import uuid

    base = Path(root) / STAGING_DIR
    name = uuid.uuid4().hex
    owner = owner_lock(base / f"{name}.lock")
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
    import shutil

    from filelock import Timeout

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
        lock = owner_lock(lock_path, timeout=0)
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


def publish_blob(blobs: Path, src: Path, sha256: str, size: int) -> Path:
    """Copy src into ``blobs/<sha256>`` atomically, verifying the copy. Returns the blob path."""
    blob = blobs / sha256
    if blob.is_file() and blob.stat().st_size == size:
        return blob
    blobs.mkdir(parents=True, exist_ok=True)
    tmp = blobs / incomplete_name(sha256)
    try:
        import shutil

        from .hashing import sha256_file, with_prefix  # hashlib only when a blob is written

        shutil.copyfile(src, tmp)
        actual = sha256_file(tmp)
        if actual != sha256:
            expected, got = with_prefix(sha256), with_prefix(actual)
            raise IntegrityError(f"{src}: changed while importing: expected {expected}, actual {got}",
                                 path=src, expected=expected, actual=got)
        os.replace(tmp, blob)
    finally:
        with contextlib.suppress(FileNotFoundError):
            tmp.unlink()
    return blob


def link(entry: Path, target: Path) -> None:
    """Make ``entry`` a relative symlink to ``target``, replacing whatever is there by one rename."""
    entry.parent.mkdir(parents=True, exist_ok=True)
    tmp = entry.parent / tmp_name(entry.name)
    os.symlink(os.path.relpath(target, entry.parent), tmp)
    os.replace(tmp, entry)


def write_snapshot(root: Path, repo_id: str, commit: str, files: Mapping[str, Path], stage: Path, *,
                   replace: Collection[str] = ()) -> Path:
    """Make ``snapshots/<commit>`` hold ``files`` (rel -> its verified copy, usually a blob). Returns it.

    A new snapshot is assembled under ``stage`` (a :func:`staging_dir`) and appears complete by one
    rename. In an existing one, each entry in ``replace``, or not already the same file as its copy, is
    relinked; entries not in ``files`` are left alone. The caller holds the repo lock.
    """
    snap = repo_dir(root, repo_id) / SNAPSHOTS / commit
    if not snap.is_dir():
        tmp_snap = stage / SNAPSHOTS
        for rel in sorted(files):
            entry = tmp_snap / rel
            entry.parent.mkdir(parents=True, exist_ok=True)
            # relative to where the entry will be, so the rename keeps every link valid
            os.symlink(os.path.relpath(files[rel], (snap / rel).parent), entry)
        snap.parent.mkdir(parents=True, exist_ok=True)
        try:
            os.rename(tmp_snap, snap)
            return snap
        except OSError:
            if not snap.is_dir():  # a writer outside our lock (huggingface_hub) made it meanwhile
                raise
    for rel in sorted(files):
        entry = snap / rel
        if rel in replace or not (entry.is_file() and os.path.samefile(entry, files[rel])):
            link(entry, files[rel])
    return snap


def blob_path(root: Path, repo_id: str, sha256: str) -> Path:
    return repo_dir(root, repo_id) / BLOBS / sha256




def clean_leftovers(root: Path, repo_id: str) -> int:
    """Under the repo writer lock: drop what killed writers left in one repo. Returns how many entries went.

    Every temp name (:func:`store.layout.is_temp_name`) in ``refs/`` and inside snapshots (a kill between
    ``symlink`` and ``rename`` leaves one; ``hf cache scan`` would read it as a ref or a file), our own
    blob copies in flight, and huggingface_hub's ``blobs/*.incomplete`` that nobody is writing (it reuses
    them, huggingface_hub #3371; it holds its own lock while it writes one).
    """
    from .scan import scan_repo

    repo = scan_repo(root, repo_id)
    if repo is None:
        return 0
    removed = 0
    for path in list(repo.temps()):
        if path.parent == repo.path / BLOBS and not path.name.startswith(TMP_PREFIX):
            with unless_huggingface_hub_writes(root, repo.path.name, path.name) as free:
                if free:
                    removed += _remove(path)
            continue
        removed += _remove(path)  # ours: its writer held the repo lock we hold now, so it is dead
    return removed


def _remove(path: Path) -> int:
    import shutil

    try:
        if path.is_dir() and not path.is_symlink():
            shutil.rmtree(path)
        else:
            path.unlink()
    except FileNotFoundError:
        return 0
    return 1


__all__ = ["blob_path", "clean_leftovers", "clean_stale_staging", "link", "publish_blob", "staging_dir", "write_snapshot"]
