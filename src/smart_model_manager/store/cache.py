"""On-disk layout: the standard Hugging Face hub cache, atomic writes and inter-process file locks.

Layout (identical to what huggingface_hub writes, so each side reads the other's caches)::

    <root>/models--{org}--{name}/
        blobs/<etag>                               the bytes; our imports use the sha256 hex as etag
        snapshots/<commit>/<path> -> ../../blobs/<etag>
        refs/<revision>                            "<commit>", no newline
    <root>/.locks/models--{org}--{name}/...        filelock files (never on read paths)

Writes follow pooch: temp file in the destination folder, verify, ``os.replace``, clean up in ``finally``.
A snapshot folder is built under a temp name and renamed into place, so ``snapshots/<commit>`` is
complete whenever it exists. Read functions never create anything (read-only volumes just work).
"""

from __future__ import annotations

import contextlib
import os
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path

from .._layout import (
    INCOMPLETE_SUFFIX,
    LOCKS_DIR,
    REPO_ID_EXPECTED,
    TMP_PREFIX as TMP_PREFIX,
    is_commit,
    is_repo_id,
    repo_folder,
    repo_id_from_folder as repo_id_from_folder,
    tmp_name,
)
from ..errors import ConfigurationError, IntegrityError


def repo_folder_name(repo_id: str) -> str:
    if not is_repo_id(repo_id):
        raise ConfigurationError(f"{repo_id!r} is not a valid repo id (expected {REPO_ID_EXPECTED})")
    return repo_folder(repo_id)


def repo_dir(root: Path, repo_id: str) -> Path:
    return Path(root) / repo_folder_name(repo_id)


def read_ref(root: Path, repo_id: str, revision: str = "main") -> str | None:
    """The commit a revision points to in this cache, or None. A 40-hex revision is returned as is."""
    if is_commit(revision):
        return revision
    ref = repo_dir(root, repo_id) / "refs" / revision
    try:
        commit = ref.read_text().strip()
    except OSError:
        return None
    return commit if is_commit(commit) else None


def find_snapshot(root: Path, repo_id: str, revision: str = "main") -> Path | None:
    """``snapshots/<commit>`` for a revision, if present. Creates nothing."""
    commit = read_ref(root, repo_id, revision)
    if commit is None:
        return None
    snap = repo_dir(root, repo_id) / "snapshots" / commit
    return snap if snap.is_dir() else None


def resolves_outside(root: Path, path: Path) -> str | None:
    """Where ``path`` really is (every symlink followed) when that is outside ``root``; None when inside.

    The mirror's rule for what it serves, applied to volumes and caches too: a link
    leaving the root points at bytes the verified, read-only volume never held, which can change later
    from wherever the link points. ``root`` itself may be a link (a mount point often is).
    """
    real_root = os.path.realpath(root)
    real = os.path.realpath(path)
    if real == real_root or real.startswith(real_root.rstrip(os.sep) + os.sep):
        return None
    return real


def check_inside(root: Path, path: Path, what: str) -> None:
    """Raise IntegrityError (fatal: never falls through to another source) if ``path`` leaves ``root``."""
    real = resolves_outside(root, path)
    if real is not None:
        raise IntegrityError(f"{what}: {path} resolves outside {root} (to {real}); a model's files must lie "
                             f"inside the volume or cache they are loaded from. Re-provision it, or remove "
                             f"the link", path=path, expected=f"a path inside {root}", actual=real)


def snapshot_files(snapshot: Path) -> dict[str, Path]:
    """Relative POSIX path -> path, for every file in a snapshot (following symlinks)."""
    out: dict[str, Path] = {}
    for dirpath, dirnames, filenames in os.walk(snapshot, followlinks=True):
        dirnames[:] = sorted(d for d in dirnames if not d.startswith(TMP_PREFIX))
        for f in sorted(filenames):
            if f.endswith(INCOMPLETE_SUFFIX) or f.startswith(TMP_PREFIX):
                continue
            p = Path(dirpath) / f
            out[p.relative_to(snapshot).as_posix()] = p
    return out


@contextlib.contextmanager
def repo_lock(root: Path, repo_id: str, name: str = "write", timeout: float = 600) -> Iterator[None]:
    """An inter-process lock for writers of one repo (readers never lock)."""
    from filelock import FileLock  # lazily: readers (and mocks) never need it

    lock_dir = Path(root) / LOCKS_DIR / repo_folder_name(repo_id)
    lock_dir.mkdir(parents=True, exist_ok=True)
    with FileLock(str(lock_dir / f"{name}.lock"), timeout=timeout):
        yield


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


def publish_blob(blobs: Path, src: Path, sha256: str, size: int) -> Path:
    """Copy src into ``blobs/<sha256>`` atomically, verifying the copy. Returns the blob path."""
    blob = blobs / sha256
    if blob.is_file() and blob.stat().st_size == size:
        return blob
    blobs.mkdir(parents=True, exist_ok=True)
    tmp = blobs / (tmp_name(sha256) + INCOMPLETE_SUFFIX)
    try:
        import shutil  # here: the read paths (find_snapshot, a mock start) never copy

        from .hashing import sha256_file

        shutil.copyfile(src, tmp)
        actual = sha256_file(tmp)
        if actual != sha256:
            raise IntegrityError(f"{src}: changed while importing: expected sha256:{sha256}, actual sha256:{actual}",
                                 path=src, expected="sha256:" + sha256, actual="sha256:" + actual)
        os.replace(tmp, blob)
    finally:
        with contextlib.suppress(FileNotFoundError):
            tmp.unlink()
    return blob


def _link(snapshot_dir: Path, rel: str, blob: Path) -> None:
    dest = snapshot_dir / rel
    dest.parent.mkdir(parents=True, exist_ok=True)
    target = os.path.relpath(blob, dest.parent)
    tmp = dest.parent / tmp_name(dest.name)
    os.symlink(target, tmp)
    os.replace(tmp, dest)


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


def import_folder(src: Path, root: Path, repo_id: str, *, revision: str = "main",
                  commit: str | None = None) -> ImportResult:
    """Import a model folder into an HF-cache-layout root; content-derived commit unless one is given.

    Safe to run concurrently from several processes: blobs are content-addressed and verified, the
    snapshot appears by one rename, and the ref is written atomically under a per-repo lock.
    """
    src = Path(src)
    if not src.is_dir():
        raise FileNotFoundError(f"{src} is not a folder; `smm import` takes a model folder")
    files = hash_folder(src)
    if not files:
        raise FileNotFoundError(f"{src} holds no files to import")
    from .hashing import content_commit

    commit = commit or content_commit((rel, size, sha) for rel, (size, sha) in files.items())
    rdir = repo_dir(Path(root), repo_id)
    snap = rdir / "snapshots" / commit
    with repo_lock(Path(root), repo_id):
        for rel, (size, sha) in files.items():
            publish_blob(rdir / "blobs", src / rel, sha, size)
        if not snap.is_dir():
            staging = rdir / "snapshots" / tmp_name(commit)
            try:
                for rel, (_size, sha) in files.items():
                    _link(staging, rel, rdir / "blobs" / sha)
                os.rename(staging, snap)
            finally:
                if staging.exists():
                    import shutil

                    shutil.rmtree(staging, ignore_errors=True)
        atomic_write_text(rdir / "refs" / revision, commit)
    return ImportResult(repo_id=repo_id, commit=commit, snapshot=snap, files=files)


def add_files(root: Path, repo_id: str, commit: str, files: Mapping[str, Path]) -> dict[str, tuple[int, str]]:
    """Add (or replace) files in an existing snapshot, e.g. exported ``onnx/model.onnx``. Atomic per file."""
    rdir = repo_dir(Path(root), repo_id)
    snap = rdir / "snapshots" / commit
    if not snap.is_dir():
        raise FileNotFoundError(f"no snapshot {commit} of {repo_id} under {root}")
    from .hashing import sha256_file

    added: dict[str, tuple[int, str]] = {}
    with repo_lock(Path(root), repo_id):
        for rel, src in sorted(files.items()):
            size, sha = Path(src).stat().st_size, sha256_file(src)
            blob = publish_blob(rdir / "blobs", Path(src), sha, size)
            _link(snap, rel, blob)
            added[rel] = (size, sha)
    return added
