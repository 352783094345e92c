"""Inter-process file locks of a cache root (``<root>/.locks/``): writers lock, readers never do.

* :func:`repo_lock`: one repo's writers (fetch, import, adding files, prune, export's clean-up);
* :func:`volume_lock`: every writer of a volume's ``model-metadata.yaml`` (``smm pull``, ``import``,
  ``prune``);
* :func:`held_by_huggingface_hub`: whether huggingface_hub is writing a given ``.incomplete`` blob (it
  holds ``.locks/<repo folder>/<etag>.lock`` meanwhile and takes none of ours);
* :func:`owner_lock`: the lock a staging folder's writer holds for the folder's lifetime, so a later run
  can tell a dead writer's leftovers from a live one's (the kernel drops a dead process's locks).

The kernel's locks (``fcntl.flock`` through filelock) are real: they work across processes and
containers sharing the volume.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from pathlib import Path
from typing import TYPE_CHECKING

from .layout import INCOMPLETE_SUFFIX, LOCKS_DIR, lock_dir

if TYPE_CHECKING:
    from filelock import BaseFileLock


@contextlib.contextmanager
def repo_lock(root: Path, repo_id: str, name: str = "write", timeout: float = 600) -> Iterator[None]:
    """An inter-process lock for writers of one repo (readers never lock). filelock's ``Timeout`` when it
    is not free within ``timeout`` seconds."""
    from filelock import FileLock  # lazily: readers (and mocks) never need it

    folder = lock_dir(root, repo_id)
    folder.mkdir(parents=True, exist_ok=True)
    with FileLock(str(folder / f"{name}.lock"), timeout=timeout):
        yield


@contextlib.contextmanager
def volume_lock(root: Path, timeout: float = 600) -> Iterator[None]:
    """The one lock every writer of ``root``'s volume manifest takes (``smm pull``, ``import``, ``prune``)."""
    from filelock import FileLock  # lazily: readers never lock

    (Path(root) / LOCKS_DIR).mkdir(parents=True, exist_ok=True)
    with FileLock(str(Path(root) / LOCKS_DIR / "model-metadata.lock"), timeout=timeout):
        yield


def owner_lock(path: Path, timeout: float = -1) -> BaseFileLock:
    """A not-yet-acquired lock on ``path`` (a staging folder's ``<uuid>.lock``)."""
    from filelock import FileLock

    return FileLock(str(path), timeout=timeout)


@contextlib.contextmanager
def unless_huggingface_hub_writes(root: Path, repo_folder: str, blob_name: str) -> Iterator[bool]:
    """Yields True, holding huggingface_hub's own lock of an ``<etag>.incomplete`` blob, when no process
    is writing it; yields False (without waiting) when one is."""
    from filelock import FileLock, Timeout

    etag = blob_name[:-len(INCOMPLETE_SUFFIX)] if blob_name.endswith(INCOMPLETE_SUFFIX) else blob_name
    lock = FileLock(str(Path(root) / LOCKS_DIR / repo_folder / f"{etag}.lock"), timeout=0)
    try:
        lock.acquire()
    except Timeout:
        yield False
        return
    try:
        yield True
    finally:
        lock.release()


__all__ = ["owner_lock", "repo_lock", "unless_huggingface_hub_writes", "volume_lock"]
