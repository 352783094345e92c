"""An in-memory remote for tests: a :class:`~.base.Remote` and a :class:`~.base.Downloader` serving files
given as a dict or read from a folder. Kept next to the contract it fakes, so every test fakes the same
behaviour the production client has (``Unavailable`` for what is not there, a stop past ``size`` bytes,
progress hooks) instead of each test writing its own.

Test hooks: :meth:`FakeRemote.serve_instead` makes a download bring other bytes than the metadata lists (a
lying mirror); :attr:`FakeRemote.fail` makes every download write a few bytes and then raise (a dropped
connection, a full disk). :attr:`FakeRemote.calls` records every download as ``repo_id/path``.
"""

from __future__ import annotations

import hashlib
import threading
from collections.abc import Mapping
from pathlib import Path
from typing import TYPE_CHECKING

from ..errors import IntegrityError, Unavailable
from ..store.hashing import content_commit
from .base import NullProgress, ProgressHook, RemoteFile, RemoteRevision


class FakeRemote:
    def __init__(self, repos: Mapping[str, Mapping[str, bytes]] | None = None, *,
                 endpoint: str = "fake://remote", fail: BaseException | None = None):
        self.endpoint = endpoint
        self.fail = fail
        self.calls: list[str] = []
        self._commits: dict[str, dict[str, dict[str, bytes]]] = {}   # repo -> commit -> path -> bytes
        self._refs: dict[str, dict[str, str]] = {}                     # repo -> revision -> commit
        self._instead: dict[tuple[str, str], bytes] = {}
        self._lock = threading.Lock()
        for repo_id, files in (repos or {}).items():
            self.add(repo_id, files)

    @classmethod
    def from_folder(cls, folder: Path, *, endpoint: str | None = None) -> FakeRemote:
        """Every ``<folder>/<org>/<name>/`` is a repo whose ``main`` holds the files under it."""
        remote = cls(endpoint=endpoint or Path(folder).as_uri())
        for repo in sorted(p for p in Path(folder).glob("*/*") if p.is_dir()):
            remote.add(f"{repo.parent.name}/{repo.name}", read_folder(repo))
        return remote

    def add(self, repo_id: str, files: Mapping[str, bytes], *, revision: str = "main",
            commit: str | None = None) -> str:
        """Publish ``files`` as one commit (derived from the content unless given) that ``revision`` points to."""
        commit = commit or content_commit((p, len(b), hashlib.sha256(b).hexdigest()) for p, b in files.items())
        self._commits.setdefault(repo_id, {})[commit] = dict(files)
        self._refs.setdefault(repo_id, {})[revision] = commit
        return commit

    def serve_instead(self, repo_id: str, path: str, data: bytes) -> None:
        """Downloads of ``repo_id/path`` bring ``data``; ``revision()`` still lists the original file."""
        self._instead[(repo_id, path)] = data

    # -- Remote ------------------------------------------------------------------------------------------
    def revision(self, repo_id: str, revision: str) -> RemoteRevision:
        commits = self._commits.get(repo_id)
        if commits is None:
            raise Unavailable(f"{repo_id} is not on {self.endpoint}")
        commit = self._refs[repo_id].get(revision) or (revision if revision in commits else None)
        if commit is None:
            raise Unavailable(f"{repo_id} has no revision {revision!r} on {self.endpoint}")
        files = {p: RemoteFile(p, len(b), hashlib.sha256(b).hexdigest()) for p, b in commits[commit].items()}
        return RemoteRevision(repo_id, revision, commit, files)

    # -- Downloader --------------------------------------------------------------------------------------
    def download(self, repo_id: str, commit: str, path: str, dest: Path, *, size: int | None = None,
                 progress: ProgressHook | None = None) -> tuple[int, str]:
        with self._lock:
            self.calls.append(f"{repo_id}/{path}")
        if self.fail is not None:
            Path(dest).write_bytes(b"x" * 10)  # what arrived before the failure
            raise self.fail
        data = self._instead.get((repo_id, path))
        if data is None:
            data = self._commits.get(repo_id, {}).get(commit, {}).get(path)
        if data is None:
            raise Unavailable(f"{repo_id}@{commit[:12]} has no {path} on {self.endpoint}")
        if size is not None and len(data) > size:
            raise IntegrityError(f"{repo_id}: {path}: {self.endpoint} sent more than the pinned {size} bytes; "
                                 "stopped the download", path=path, expected=str(size), actual=f">{size}")
        Path(dest).write_bytes(data)
        (progress or NullProgress()).advance(f"{repo_id}/{path}", len(data))  # the caller starts and finishes
        return len(data), hashlib.sha256(data).hexdigest()


def read_folder(folder: Path) -> dict[str, bytes]:
    """Every file under ``folder`` by its POSIX path relative to it."""
    return {p.relative_to(folder).as_posix(): p.read_bytes() for p in sorted(Path(folder).rglob("*")) if p.is_file()}


if TYPE_CHECKING:  # mypy holds the fake and the Hub client to the same contract
    from .base import RemoteClient
    from .hub import HubClient

    def _same_contract(fake: FakeRemote, hub: HubClient) -> tuple[RemoteClient, RemoteClient]:
        return fake, hub


__all__ = ["FakeRemote", "read_folder"]
