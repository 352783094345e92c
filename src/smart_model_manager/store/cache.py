"""Reading a snapshot by revision, atomic writes, and the two ways files enter a cache root besides a
download: ``smm import`` (:func:`import_folder`) and adding files to a snapshot (:func:`add_files`, export).

The layout and its names are :mod:`store.layout`; walking it is :mod:`store.scan`; the file locks are
:mod:`store.locks`; every snapshot is written by :mod:`store.writer`. Writes follow pooch: temp file in the
destination folder, verify, ``os.replace``, clean up in ``finally``. Read functions never create anything
(read-only volumes just work).
"""

from __future__ import annotations

import contextlib
import os
from collections.abc import Collection, Mapping
from dataclasses import dataclass
from pathlib import Path

from .._layout import is_commit
from ..errors import IntegrityError
from .layout import (
    BLOBS,
    DEFAULT_REVISION,
    REFS,
    SNAPSHOTS,
    repo_dir,
    tmp_name,
)
from .locks import repo_lock
from .scan import read_ref_file, resolves_outside, snapshot_files
from .writer import link, publish_blob, staging_dir, write_snapshot


def read_ref(root: Path, repo_id: str, revision: str = DEFAULT_REVISION) -> str | None:
    """The commit a revision points to in this cache, or None. A 40-hex revision is returned as is."""
    if is_commit(revision):
        return revision
    return read_ref_file(repo_dir(root, repo_id) / REFS / revision)


def find_snapshot(root: Path, repo_id: str, revision: str = DEFAULT_REVISION) -> Path | None:
    """``snapshots/<commit>`` for a revision, if present. Creates nothing."""
    commit = read_ref(root, repo_id, revision)
    if commit is None:
        return None
    snap = repo_dir(root, repo_id) / SNAPSHOTS / commit
    return snap if snap.is_dir() else None


def check_inside(root: Path, path: Path, what: str) -> None:
    """Raise IntegrityError (fatal: never falls through to another source) if ``path`` leaves ``root``."""
    real = resolves_outside(root, path)
    if real is not None:
        raise IntegrityError(f"{what}: {path} resolves outside {root} (to {real}); a model's files must lie "
                             f"inside the volume or cache they are loaded from. Re-provision it, or remove "
                             f"the link", path=path, expected=f"a path inside {root}", actual=real)


def atomic_write_bytes(path: Path, data: bytes) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.parent / tmp_name(path.name)
    try:
        with open(tmp, "wb") as fh:
            fh.write(data)
            fh.flush()
            os.fsync(fh.fileno())
        os.replace(tmp, path)
    finally:
        with contextlib.suppress(FileNotFoundError):
            tmp.unlink()


def atomic_write_text(path: Path, text: str) -> None:
    atomic_write_bytes(path, text.encode("utf-8"))


@dataclass(frozen=True)
class ImportResult:
    repo_id: str
    commit: str
    snapshot: Path
    files: dict[str, tuple[int, str]]  # rel -> (size, sha256 hex)


def hash_folder(src: Path) -> dict[str, tuple[int, str]]:
    from .hashing import sha256_file  # the write paths import hashlib; a mock start reads only

    files: dict[str, tuple[int, str]] = {}
    for rel, p in snapshot_files(Path(src)).items():
        if rel.split("/")[0] in (".git", ".cache") or rel.startswith(".") and rel.endswith(".lock"):
            continue
        files[rel] = (p.stat().st_size, sha256_file(p))
    return files


def import_folder(src: Path, root: Path, repo_id: str, *, revision: str = DEFAULT_REVISION,
                  commit: str | None = None) -> ImportResult:
    """Import a model folder into an HF-cache-layout root; content-derived commit unless one is given.

    Safe to run concurrently from several processes: blobs are content-addressed and verified, the
    snapshot appears by one rename (:func:`store.writer.write_snapshot`), and the ref is written
    atomically, all under the per-repo lock.
    """
    src = Path(src)
    if not src.is_dir():
        raise FileNotFoundError(f"{src} is not a folder; `smm import` takes a model folder")
    files = hash_folder(src)
    if not files:
        raise FileNotFoundError(f"{src} holds no files to import")
    from .hashing import content_commit

    commit = commit or content_commit((rel, size, sha) for rel, (size, sha) in files.items())
    root = Path(root)
    rdir = repo_dir(root, repo_id)
    with repo_lock(root, repo_id):
        blobs = {rel: publish_blob(rdir / BLOBS, src / rel, sha, size) for rel, (size, sha) in files.items()}
        with staging_dir(root) as stage:
            snap = write_snapshot(root, repo_id, commit, blobs, stage)
        atomic_write_text(rdir / REFS / revision, commit)
    return ImportResult(repo_id=repo_id, commit=commit, snapshot=snap, files=files)


def add_files(root: Path, repo_id: str, commit: str, files: Mapping[str, Path]) -> dict[str, tuple[int, str]]:
    """Add (or replace) files in an existing snapshot, e.g. exported ``onnx/model.onnx``. Atomic per file."""
    rdir = repo_dir(Path(root), repo_id)
    snap = rdir / SNAPSHOTS / commit
    if not snap.is_dir():
        raise FileNotFoundError(f"no snapshot {commit} of {repo_id} under {root}")
    from .hashing import sha256_file

    added: dict[str, tuple[int, str]] = {}
    with repo_lock(Path(root), repo_id):
        for rel, src in sorted(files.items()):
            size, sha = Path(src).stat().st_size, sha256_file(src)
            link(snap / rel, publish_blob(rdir / BLOBS, Path(src), sha, size))
            added[rel] = (size, sha)
    return added


def remove_files(root: Path, repo_id: str, commit: str, rels: Collection[str]) -> list[str]:
    """Remove entries from an existing snapshot under the repo lock (a writer of the same snapshot may be
    relinking them). Returns the ones that were there. Their blobs stay for ``smm prune`` to judge."""
    snap = repo_dir(Path(root), repo_id) / SNAPSHOTS / commit
    removed = []
    with repo_lock(Path(root), repo_id):
        for rel in sorted(rels):
            entry = snap / rel
            if entry.is_symlink() or entry.exists():
                entry.unlink()
                removed.append(rel)
    return removed
