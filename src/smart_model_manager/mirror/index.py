"""Read a Hugging Face hub cache layout as a set of repos, commits and files (what the mirror serves).

A root holds ``models--{org}--{name}/`` folders (``datasets--`` and ``spaces--`` work the same way)::

    blobs/<etag>                         the bytes; a 64-hex name is a sha256 (LFS-like), 40-hex a git sha1
    snapshots/<commit>/<path>            relative symlinks into ../../blobs/<etag>, or plain files
    refs/<branch>                        the 40-hex commit a branch or tag points to (refs/refs/pr/1 for PRs)

Everything is read from disk on each call, so a cache that is being filled is served as it is now. Only
sha256 digests of plain (non-blob) files are remembered, keyed by ``(device, inode, size, mtime_ns)``, so
an edited file is re-hashed. Commits are the snapshot folder names, so they stay the same across restarts.

Safety: every path a client sends goes through :func:`check_rel_path`, and every file must resolve
(symlinks followed) to a regular file inside its repo folder; anything else does not exist here.
"""

from __future__ import annotations

import hashlib
import logging
import os
import re
import stat
import threading
from dataclasses import dataclass
from pathlib import Path

from .._layout import COMMIT as HEX40, HEX64, is_repo_id
from ..errors import MirrorError
from ..store.hashing import sha256_file

log = logging.getLogger(__name__)

REPO_TYPES = {"model": "models", "dataset": "datasets", "space": "spaces"}
DEFAULT_BRANCH = "main"


class NotFound(LookupError):
    """A repo, revision or entry the mirror does not have. ``code`` is the Hub's X-Error-Code."""

    def __init__(self, code: str, message: str, *, commit: str | None = None):
        self.code = code
        self.commit = commit
        super().__init__(message)


class BadPath(ValueError):
    """A client-supplied path that can never name a file here (``..``, absolute, backslash, NUL)."""


def check_rel_path(path: str) -> str:
    """Return ``path`` if it is a clean relative POSIX path, else raise :class:`BadPath`."""
    if not path:
        raise BadPath("empty path")
    if "\\" in path or "\0" in path:
        raise BadPath("backslash or NUL in path")
    if path.startswith("/") or re.match(r"[A-Za-z]:", path):
        raise BadPath("absolute path")
    for part in path.split("/"):
        if part in ("", ".", ".."):
            raise BadPath(f"path segment {part!r} is not allowed")
    return path


def valid_repo_id(repo_id: str) -> bool:
    return is_repo_id(repo_id)


def lfs_pointer(sha256: str, size: int) -> bytes:
    """The git-lfs pointer the Hub stores in git for an LFS file; its git sha1 is the tree ``oid``."""
    return f"version https://git-lfs.github.com/spec/v1\noid sha256:{sha256}\nsize {size}\n".encode()


def git_sha1_bytes(data: bytes) -> str:
    return hashlib.sha1(b"blob %d\0" % len(data) + data).hexdigest()


@dataclass(frozen=True)
class FileEntry:
    """One servable file of one commit."""

    path: str            # POSIX path inside the repo
    real: str            # absolute resolved path on disk (inside the repo folder)
    size: int
    etag: str            # blob name: sha256 (64 hex) or git sha1 (40 hex)
    sha256: str | None   # known sha256 of the bytes (None when the etag is a git sha1)

    @property
    def oid(self) -> str:
        """The git blob id of the tree entry: the LFS pointer's sha1 for LFS-like files."""
        if self.sha256 is None:
            return self.etag
        return git_sha1_bytes(lfs_pointer(self.sha256, self.size))

    def tree_entry(self) -> dict[str, object]:
        entry: dict[str, object] = {"type": "file", "oid": self.oid, "size": self.size, "path": self.path}
        if self.sha256 is not None:
            # Never "xetHash": it would switch the client to the Xet protocol (huggingface_hub's file_download.py switches to Xet when the header is present).
            entry["lfs"] = {"oid": self.sha256, "size": self.size,
                            "pointerSize": len(lfs_pointer(self.sha256, self.size))}
        return entry


class _HashCache:
    """sha256 of plain files keyed by stat; one thread hashes a given file, others wait for it."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._digests: dict[tuple[int, int, int, int], str] = {}
        self._busy: dict[tuple[int, int, int, int], threading.Lock] = {}

    def sha256(self, real: str, st: os.stat_result) -> str:
        key = (st.st_dev, st.st_ino, st.st_size, st.st_mtime_ns)
        with self._lock:
            if key in self._digests:
                return self._digests[key]
            busy = self._busy.setdefault(key, threading.Lock())
        with busy:
            with self._lock:
                if key in self._digests:
                    return self._digests[key]
            log.debug("hashing %s (%d bytes)", real, st.st_size)
            digest = sha256_file(real)
            with self._lock:
                self._digests[key] = digest
                self._busy.pop(key, None)
            return digest


class Repo:
    """One ``{type}s--{org}--{name}`` folder."""

    def __init__(self, index: MirrorIndex, repo_type: str, repo_id: str, folder: Path):
        self.index = index
        self.repo_type = repo_type
        self.repo_id = repo_id
        self.folder = folder
        self._real = os.path.realpath(folder)

    # -- revisions ------------------------------------------------------------------------------
    def commits(self) -> list[str]:
        """Snapshot folder names that are 40-hex commits, sorted."""
        snaps = self.folder / "snapshots"
        try:
            names = [e.name for e in os.scandir(snaps) if e.is_dir(follow_symlinks=False)]
        except OSError:
            return []
        return sorted(n for n in names if HEX40.fullmatch(n))

    def refs(self) -> dict[str, str]:
        """Ref name -> commit, for refs whose commit has a snapshot. ``refs/pr/1`` keeps its slashes."""
        out: dict[str, str] = {}
        refs_dir = self.folder / "refs"
        commits = set(self.commits())
        for dirpath, _dirs, files in os.walk(refs_dir):
            for name in files:
                if name.startswith("."):  # a writer's temp file (store.atomic_write_text), not a ref
                    continue
                full = Path(dirpath) / name
                rel = full.relative_to(refs_dir).as_posix()
                target = self._read_ref(full)
                if target in commits:
                    out[rel] = target
        if not out and len(commits) == 1:
            # A folder filled without refs (copied snapshot): its only commit is the default branch.
            out[DEFAULT_BRANCH] = next(iter(commits))
        return out

    @staticmethod
    def _read_ref(path: Path) -> str | None:
        try:
            if path.is_symlink() or path.stat().st_size > 1024:
                return None
            return path.read_text(encoding="ascii", errors="replace").strip()
        except OSError:
            return None

    def resolve(self, revision: str | None) -> str:
        """A branch, tag, ``refs/pr/N`` or 40-hex commit -> a commit with a snapshot here."""
        rev = revision or DEFAULT_BRANCH
        if HEX40.fullmatch(rev):
            if rev in self.commits():
                return rev
            raise NotFound("RevisionNotFound", f"Invalid rev id: {rev} (commit not on this mirror)")
        try:
            check_rel_path(rev)
        except BadPath as err:
            raise NotFound("RevisionNotFound", f"Invalid rev id: {rev!r}: {err}") from err
        commit = self.refs().get(rev)
        if commit is None:
            raise NotFound("RevisionNotFound", f"Invalid rev id: {rev} (no such branch, tag or commit "
                                               f"in {self.repo_id})")
        return commit

    # -- files ----------------------------------------------------------------------------------
    def _inside(self, real: str) -> bool:
        return real == self._real or real.startswith(self._real + os.sep)

    def file(self, commit: str, path: str) -> FileEntry:
        """The file ``path`` of ``commit``; NotFound(EntryNotFound) for anything that is not a safe file."""
        try:
            check_rel_path(path)
        except BadPath as err:
            raise NotFound("EntryNotFound", f"{path!r}: {err}", commit=commit) from err
        entry = self._entry(commit, path)
        if entry is None:
            raise NotFound("EntryNotFound", f"{path} does not exist at commit {commit} of {self.repo_id}",
                           commit=commit)
        return entry

    def _entry(self, commit: str, path: str) -> FileEntry | None:
        link = self.folder / "snapshots" / commit / path
        # Only the last component may be a link (snapshot file -> blob); a symlinked folder on the way
        # (or a symlinked snapshot) is refused, so what resolve serves is exactly what the tree lists.
        if os.path.realpath(link.parent) != os.path.join(self._real, "snapshots", commit, *path.split("/")[:-1]):
            log.warning("refusing %s: a folder on its path is a symlink", link)
            return None
        real = os.path.realpath(link)
        if not self._inside(real):
            log.warning("refusing %s: it resolves outside %s", link, self.folder)
            return None
        if real.endswith(".incomplete"):
            return None
        try:
            st = os.stat(real)
        except OSError:
            return None  # dangling symlink: a partial snapshot
        if not stat.S_ISREG(st.st_mode):
            return None
        blob = os.path.basename(real)
        in_blobs = os.path.dirname(real) == os.path.join(self._real, "blobs")
        if in_blobs and HEX64.fullmatch(blob):
            return FileEntry(path, real, st.st_size, blob, blob)
        if in_blobs and HEX40.fullmatch(blob):
            return FileEntry(path, real, st.st_size, blob, None)
        digest = self.index.hashes.sha256(real, st)  # plain file: hashed once per (inode, size, mtime)
        return FileEntry(path, real, st.st_size, digest, digest)

    def files(self, commit: str) -> list[FileEntry]:
        """Every servable file of ``commit``, sorted by path. Unsafe or dangling entries are skipped."""
        base = self.folder / "snapshots" / commit
        out: list[FileEntry] = []
        for dirpath, dirs, names in os.walk(base):  # does not descend into symlinked folders
            dirs[:] = sorted(d for d in dirs if not os.path.islink(os.path.join(dirpath, d)))
            for name in names:
                rel = Path(dirpath, name).relative_to(base).as_posix()
                try:
                    check_rel_path(rel)
                except BadPath:
                    continue
                entry = self._entry(commit, rel)
                if entry is not None:
                    out.append(entry)
        return sorted(out, key=lambda e: e.path)

    def tree(self, commit: str, folder: str = "", recursive: bool = False) -> list[dict[str, object]]:
        """Tree entries (files and directories) under ``folder``, as the Hub's /tree endpoint lists them."""
        prefix = ""
        if folder:
            try:
                prefix = check_rel_path(folder.strip("/")) + "/"
            except BadPath as err:
                raise NotFound("EntryNotFound", f"{folder!r}: {err}", commit=commit) from err
        files = [f for f in self.files(commit) if f.path.startswith(prefix)]
        if prefix and not files:
            raise NotFound("EntryNotFound", f"{folder} is not a folder at commit {commit} of {self.repo_id}",
                           commit=commit)
        dirs: dict[str, list[str]] = {}
        for f in files:
            parts = f.path[len(prefix):].split("/")
            for i in range(1, len(parts)):
                dirs.setdefault(prefix + "/".join(parts[:i]), []).append(f.oid)
        entries: list[dict[str, object]] = []
        for d in sorted(dirs):
            depth = d[len(prefix):].count("/")
            if recursive or depth == 0:
                oid = hashlib.sha1("\n".join(sorted(dirs[d])).encode()).hexdigest()
                entries.append({"type": "directory", "oid": oid, "size": 0, "path": d})
        for f in files:
            if recursive or "/" not in f.path[len(prefix):]:
                entries.append(f.tree_entry())
        return entries


class MirrorIndex:
    """All repos under one root. Cheap to build; reads the disk on each lookup."""

    def __init__(self, root: str | os.PathLike[str]):
        self.root = Path(root)
        if not self.root.is_dir():
            raise MirrorError(f"mirror root {self.root} is not a folder; pass an HF hub cache folder "
                              f"(one holding models--org--name/)")
        self.hashes = _HashCache()

    def repo(self, repo_id: str, repo_type: str = "model") -> Repo:
        if repo_type not in REPO_TYPES or not valid_repo_id(repo_id):
            raise NotFound("RepoNotFound", f"Repository Not Found: {repo_id!r} is not a valid repo id")
        folder = self.root / f"{REPO_TYPES[repo_type]}--{repo_id.replace('/', '--')}"
        if not folder.exists():
            # The Hub matches repo ids case-insensitively (prosusai/finbert is ProsusAI/finbert); so
            # do we, answering with the id as stored. Exact spelling wins when both exist.
            wanted = folder.name.lower()
            match = next((p for p in sorted(self.root.glob(f"{REPO_TYPES[repo_type]}--*"))
                          if p.name.lower() == wanted), None)
            if match is not None:
                folder = match
                repo_id = folder.name[len(REPO_TYPES[repo_type]) + 2:].replace("--", "/")
        if folder.is_symlink() and (folder / "snapshots").is_dir():
            # A symlinked repo folder would widen "inside the repo" to wherever it points; refuse it.
            log.warning("mirror: ignoring %s: repo folders must not be symlinks", folder)
        if folder.is_symlink() or not (folder / "snapshots").is_dir():
            raise NotFound("RepoNotFound", f"Repository Not Found: {repo_type} {repo_id} is not on this mirror")
        return Repo(self, repo_type, repo_id, folder)

    def has_repo(self, repo_id: str, repo_type: str = "model") -> bool:
        try:
            self.repo(repo_id, repo_type)
            return True
        except NotFound:
            return False

    def repos(self) -> list[Repo]:
        out = []
        for repo_type, plural in REPO_TYPES.items():
            for folder in sorted(self.root.glob(f"{plural}--*")):
                repo_id = folder.name[len(plural) + 2:].replace("--", "/")
                if valid_repo_id(repo_id) and not folder.is_symlink() and (folder / "snapshots").is_dir():
                    out.append(Repo(self, repo_type, repo_id, folder))
        return out

    def warm(self) -> int:
        """Hash every plain file now (so the first HEAD answers fast); returns how many files were seen."""
        n = 0
        for repo in self.repos():
            for commit in repo.commits():
                n += len(repo.files(commit))
        return n
