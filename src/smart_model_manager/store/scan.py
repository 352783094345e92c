"""Read a cache root as repos -> revisions (snapshots) -> refs, files and blobs. Reads only; creates nothing.

The one walk of the layout every policy uses (``smm ls``/``prune``, ``smm validate``, the environment
probe, the mirror, the cache source, export): each module decides what to report, keep, prune or serve;
none lists folders itself. One rule each for:

* **temp names**: :func:`store.layout.is_temp_name` (``.tmp-*``, ``*.incomplete``, older export temps).
  A temp entry is never a repo, a revision or a ref; inside a snapshot it is listed with ``temp=True``.
* **links**: a symlinked repo folder or snapshot folder is listed with ``is_link=True`` (policies differ:
  the mirror refuses it, prune removes the link, validate checks what it points to).
* **directory-link cycles**: a folder link leading back to a folder already walked is listed once, as
  an entry of kind ``cycle``, and not followed, so every walk ends.
* **targets outside the root**: :func:`resolves_outside` (every link followed, the root may be a link).

Cheap parts are read eagerly (repo folders, snapshot names, refs); files and blobs are read when asked
(:meth:`Revision.files`, :meth:`Repo.blobs`), so a startup probe reads only what it checks.
"""

from __future__ import annotations

import os
import stat
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

from .._layout import is_commit
from .layout import (
    BLOBS,
    REFS,
    REPO_FOLDER_PREFIX,
    SNAPSHOTS,
    is_temp_name,
    repo_folder_name,
    repo_id_from_folder,
)

FileKind = Literal["file", "dangling", "cycle", "other"]


def resolves_outside(root: Path, path: Path) -> str | None:
    """Where ``path`` really is (every symlink followed) when that is outside ``root``; None when inside.

    The mirror's rule for what it serves, applied to volumes and caches too: a link leaving the root
    points at bytes the verified, read-only volume never held, which can change later from wherever
    the link points. ``root`` itself may be a link (a mount point often is).
    """
    real_root = os.path.realpath(root)
    real = os.path.realpath(path)
    if real == real_root or real.startswith(real_root.rstrip(os.sep) + os.sep):
        return None
    return real


@dataclass(frozen=True, slots=True)
class SnapshotFile:
    """One non-folder entry of a snapshot (folder links followed, except into a cycle)."""

    rel: str            # POSIX path inside the snapshot
    where: str          # the entry itself (usually a link into blobs/), as os.scandir names it
    kind: FileKind      # file | dangling (a link to nothing) | cycle (a folder link back up) | other
    temp: bool          # a temp name (the entry's own name, or a folder on its way)
    via_link: bool      # a folder on its way (below the snapshot) is a link

    @property
    def path(self) -> Path:
        # built on demand: the startup probe walks every entry and needs the Path of few
        return Path(self.where)


@dataclass(frozen=True)
class Ref:
    name: str           # main, v1.0, pr/1
    path: Path
    commit: str | None  # None when unreadable or not a 40-hex commit
    is_link: bool = False  # the ref file is a symlink (read through; the mirror refuses it)


@dataclass(frozen=True)
class Blob:
    name: str
    path: Path
    size: int
    temp: bool          # an ``*.incomplete`` or ``.tmp-*`` leftover, not a blob


@dataclass(frozen=True)
class Revision:
    commit: str         # the snapshot folder's name
    path: Path
    is_link: bool       # the snapshot folder itself is a symlink

    def files(self) -> tuple[SnapshotFile, ...]:
        """Every entry, sorted by path; OSError when the snapshot cannot be listed."""
        return tuple(sorted(walk_snapshot(self.path), key=lambda f: f.rel))


@dataclass(frozen=True)
class Repo:
    repo_id: str
    path: Path          # the models--org--name folder
    is_link: bool
    revisions: tuple[Revision, ...]   # sorted by commit; temp names excluded
    refs: tuple[Ref, ...]             # sorted by name; temp names excluded

    def revision(self, commit: str) -> Revision | None:
        return next((r for r in self.revisions if r.commit == commit), None)

    def ref_targets(self) -> dict[str, list[str]]:
        """commit -> names of the refs pointing to it."""
        out: dict[str, list[str]] = {}
        for ref in self.refs:
            if ref.commit is not None:
                out.setdefault(ref.commit, []).append(ref.name)
        return out

    def blobs(self) -> tuple[Blob, ...]:
        """Every regular file in ``blobs/`` (temps flagged), sorted by name."""
        out = []
        try:
            with os.scandir(self.path / BLOBS) as it:
                for e in it:
                    try:
                        st = e.stat(follow_symlinks=False)
                    except OSError:
                        continue
                    if stat.S_ISREG(st.st_mode):
                        out.append(Blob(e.name, Path(e.path), st.st_size, is_temp_name(e.name)))
        except OSError:
            return ()
        return tuple(sorted(out, key=lambda b: b.name))

    def temps(self) -> Iterator[Path]:
        """Temp entries anywhere under the repo folder (not below a temp folder)."""
        for dirpath, dirs, files in os.walk(self.path):
            for name in sorted(dirs + files):
                if is_temp_name(name):
                    yield Path(dirpath) / name
            dirs[:] = sorted(d for d in dirs if not is_temp_name(d))


@dataclass(frozen=True)
class Cache:
    root: Path
    repos: tuple[Repo, ...]    # sorted by folder name


def scan(root: str | os.PathLike[str], *, prefix: str = REPO_FOLDER_PREFIX, links: bool = True) -> Cache:
    """Every repo folder under ``root`` (a missing or unreadable root holds none). ``links=False`` leaves
    symlinked repo folders out (the mirror's rule). ``prefix``: the mirror's dataset and space folders."""
    return Cache(Path(root), tuple(iter_repos(root, prefix=prefix, links=links)))


def iter_repos(root: str | os.PathLike[str], *, prefix: str = REPO_FOLDER_PREFIX,
               links: bool = True) -> Iterator[Repo]:
    """:func:`scan`'s repos one at a time, sorted by folder name (to stop at the first that answers)."""
    for repo_id, folder, _is_link in repo_folders(root, prefix=prefix, links=links):
        yield read_repo(folder, repo_id)


def repo_folders(root: str | os.PathLike[str], *, prefix: str = REPO_FOLDER_PREFIX,
                 links: bool = True) -> list[tuple[str, Path, bool]]:
    """(repo id, folder, is a link) of every repo folder, sorted by name; names only, nothing inside read."""
    try:
        with os.scandir(root) as it:
            entries = sorted(it, key=lambda e: e.name)
    except OSError:
        return []
    out = []
    for e in entries:
        repo_id = repo_id_from_folder(e.name, prefix)
        if repo_id is not None and e.is_dir() and (links or not e.is_symlink()):
            out.append((repo_id, Path(e.path), e.is_symlink()))
    return out


def find_repo_folder(root: str | os.PathLike[str], repo_id: str, *,
                     prefix: str = REPO_FOLDER_PREFIX) -> tuple[str, Path] | None:
    """(the id as stored, its folder), matched case-insensitively as the Hub matches ids; exact first."""
    found = [(rid, folder) for rid, folder, _ in repo_folders(root, prefix=prefix)]
    exact = next((f for f in found if f[0] == repo_id), None)
    return exact or next((f for f in found if f[0].lower() == repo_id.lower()), None)


def scan_repo(root: str | os.PathLike[str], repo_id: str) -> Repo | None:
    """One repo by its id, exactly as spelled (None when its folder is absent)."""
    folder = Path(root) / repo_folder_name(repo_id)
    return read_repo(folder, repo_id) if folder.is_dir() else None


def read_repo(folder: Path, repo_id: str) -> Repo:
    return Repo(repo_id, folder, folder.is_symlink(), read_revisions(folder), read_refs(folder))


def read_revisions(folder: Path) -> tuple[Revision, ...]:
    """A repo folder's revisions alone (:attr:`Repo.revisions`), for readers that need no refs."""
    out = []
    try:
        with os.scandir(folder / SNAPSHOTS) as it:
            for e in it:
                if not is_temp_name(e.name) and not e.name.startswith(".") and e.is_dir():
                    out.append(Revision(e.name, Path(e.path), e.is_symlink()))
    except OSError:
        return ()
    return tuple(sorted(out, key=lambda r: r.commit))


def read_ref_file(path: Path) -> str | None:
    """The commit a ref file holds, or None (unreadable, oversized, or not a 40-hex commit)."""
    try:
        if path.stat().st_size > 1024:
            return None
        commit = path.read_text(encoding="ascii", errors="replace").strip()
    except OSError:
        return None
    return commit if is_commit(commit) else None


def read_refs(folder: Path) -> tuple[Ref, ...]:
    """A repo folder's refs alone (:attr:`Repo.refs`)."""
    base = folder / REFS
    out = []
    for dirpath, dirs, files in os.walk(base):
        dirs[:] = [d for d in dirs if not is_temp_name(d)]
        for name in files:
            if is_temp_name(name) or name.startswith("."):
                continue
            p = Path(dirpath) / name
            out.append(Ref(p.relative_to(base).as_posix(), p, read_ref_file(p), p.is_symlink()))
    return tuple(sorted(out, key=lambda r: r.name))


def root_temps(root: str | os.PathLike[str]) -> list[Path]:
    """Temp entries directly under a root (a killed writer's manifest or lock copy)."""
    try:
        with os.scandir(root) as it:
            return sorted(Path(e.path) for e in it if is_temp_name(e.name))
    except OSError:
        return []


def regular_bytes(path: Path) -> int:
    """Apparent size of the regular files under ``path`` (links are not followed, not counted)."""
    try:
        st = os.lstat(path)
    except OSError:
        return 0
    if stat.S_ISREG(st.st_mode):
        return st.st_size
    if not stat.S_ISDIR(st.st_mode):
        return 0
    total = 0
    for dirpath, _dirs, files in os.walk(path):
        for f in files:
            try:
                st = os.lstat(os.path.join(dirpath, f))
            except OSError:
                continue
            if stat.S_ISREG(st.st_mode):
                total += st.st_size
    return total


def linked_files(snapshot: Path) -> dict[str, int]:
    """Real path -> size of every file a snapshot holds (links resolved; dangling ones and cycles skipped):
    the blobs a kept snapshot keeps, and the bytes it holds."""
    out: dict[str, int] = {}
    try:
        entries = list(walk_snapshot(snapshot))
    except OSError:
        return out
    for f in entries:
        if f.kind == "file":
            real = os.path.realpath(f.where)
            try:
                out[real] = os.stat(real).st_size
            except OSError:
                continue
    return out


def walk_snapshot(snapshot: Path, *, follow: bool = True) -> Iterator[SnapshotFile]:
    """Every non-folder entry under ``snapshot``, folder links followed once (a cycle is an entry).
    ``follow=False``: folder links are neither followed nor listed (the mirror serves none)."""
    yield from _walk(Path(snapshot), "", {os.path.realpath(snapshot)}, False, False, follow)


def _walk(folder: Path, prefix: str, seen: set[str], temp: bool, via_link: bool,
          follow: bool) -> Iterator[SnapshotFile]:
    with os.scandir(folder) as it:
        entries = sorted(it, key=lambda e: e.name)
    for e in entries:
        rel = prefix + e.name
        is_temp = temp or is_temp_name(e.name)
        if e.is_dir():
            if not follow and e.is_symlink():
                continue
            real = os.path.realpath(e.path)
            if real in seen:
                yield SnapshotFile(rel, e.path, "cycle", is_temp, via_link)
                continue
            seen.add(real)
            yield from _walk(Path(e.path), rel + "/", seen, is_temp, via_link or e.is_symlink(), follow)
            continue
        try:
            regular = e.is_file()
        except OSError:
            regular = False
        kind: FileKind = "file" if regular else "dangling" if not os.path.exists(e.path) else "other"
        yield SnapshotFile(rel, e.path, kind, is_temp, via_link)


def snapshot_files(snapshot: Path) -> dict[str, Path]:
    """Relative POSIX path -> path of every non-folder entry a loader may read (dangling links included, so
    the caller's checks see them); temps and cycle links left out. What the cache source checks and loads,
    and what ``smm import`` hashes."""
    return {f.rel: f.path for f in walk_snapshot(snapshot) if f.kind != "cycle" and not f.temp}


__all__ = [
    "Blob", "Cache", "FileKind", "Ref", "Repo", "Revision", "SnapshotFile", "find_repo_folder", "iter_repos",
    "linked_files", "read_ref_file", "read_refs", "read_repo", "read_revisions", "regular_bytes", "repo_folders",
    "resolves_outside", "root_temps", "scan", "scan_repo", "snapshot_files", "walk_snapshot",
]
