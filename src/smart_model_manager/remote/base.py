"""The contract with a remote (layer 2): what it says about a revision, and how its bytes come down.

Two halves, each a Protocol, so the code that needs only one is typed against only one:

- :class:`Remote`, the metadata half: ``revision(repo_id, revision) -> RemoteRevision`` (the commit a
  revision points to and every file of it, with sizes and, where the remote knows them, sha256 digests).
  ``smm lock`` and the one-step ``smm pull ORG/NAME`` ask it.
- :class:`Downloader`, the bytes half: ``download(...) -> (bytes, sha256 hex)``. ``store.fetch.fetch_into``
  stages, verifies and publishes what any downloader brings.

``remote.hub.HubClient`` is the production implementation of both; ``remote.fake.FakeRemote`` is an
in-memory one for tests, kept next to the contract (as httpx keeps ``MockTransport`` beside its transport).
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Protocol


@dataclass(frozen=True)
class RemoteFile:
    path: str
    size: int | None
    sha256: str | None       # hex, from LFS metadata; None for small (git) files: their id is a git sha1


@dataclass(frozen=True)
class RemoteRevision:
    repo_id: str
    revision: str
    commit: str
    files: dict[str, RemoteFile]


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


class Remote(Protocol):
    """The metadata half. ``revision`` raises ``Unavailable`` when the repo or revision is not there (or not
    allowed, or the remote is offline) and ``SourceError`` for transient failures it gave up on.
    ``endpoint`` names the remote, for messages."""

    @property
    def endpoint(self) -> str: ...

    def revision(self, repo_id: str, revision: str) -> RemoteRevision: ...


class Downloader(Protocol):
    """The bytes half: brings the bytes of one file of one commit.

    ``download`` streams ``path`` of ``repo_id@commit`` into ``dest`` (created or truncated) and returns
    (bytes written, sha256 hex of those bytes); it may stop early with ``IntegrityError`` once more than
    ``size`` bytes arrive. It raises ``Unavailable`` when the remote does not have the file and
    ``SourceError`` for transient failures it gave up on; it never publishes anything itself.
    ``endpoint`` names where the bytes come from, for messages.
    """

    @property
    def endpoint(self) -> str: ...

    def download(self, repo_id: str, commit: str, path: str, dest: Path, *, size: int | None = None,
                 progress: ProgressHook | None = None) -> tuple[int, str]: ...


class RemoteClient(Remote, Downloader, Protocol):
    """Both halves (``smm lock`` reads the metadata, then downloads the small files it must hash itself)."""


__all__ = ["Downloader", "NullProgress", "ProgressHook", "Remote", "RemoteClient", "RemoteFile", "RemoteRevision"]
