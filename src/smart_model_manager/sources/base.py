"""The source interface (the contract every source keeps) and the values passed along the chain.

A source is one way to obtain a verified local copy of a model (mock, cache, volume, hub; a test-only
local-directory remote in ``tests/``). The resolver (``resolver.resolve_chain``) asks each source of the
environment's chain in turn (``sources.chains``); what a source raises decides what happens next.
"""

from __future__ import annotations

import enum
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Protocol

from ..errors import Unavailable as Unavailable  # its home is errors.py; imported from here by sources
from ..formats.labels import read_schema as read_schema  # its home is labels.py; imported from here by sources

if TYPE_CHECKING:  # keep the mock path free of PyYAML
    from ..formats.manifest import FileEntry


class Pinned(Protocol):
    """What a lock entry (``lockfile.LockEntry``) pins for one model; sources read nothing else of it."""

    @property
    def repo_id(self) -> str: ...
    @property
    def revision(self) -> str: ...
    @property
    def commit(self) -> str: ...
    @property
    def model_type(self) -> str: ...
    @property
    def files(self) -> Mapping[str, FileEntry]: ...
    @property
    def labels(self) -> tuple[str, ...]: ...
    @property
    def dimension(self) -> int | None: ...


class Verified(str, enum.Enum):
    """What a source checked before it returned a folder (``Resolved.verified``). Compares equal to its value."""

    NONE = "none"          # nothing was checked (an unpinned cache folder, or a download with no digest at all)
    LFS_ONLY = "lfs-only"  # downloaded without a lock: files the endpoint lists a sha256 for were checked
    QUICK = "quick"        # every pinned file exists with its pinned size (SMM_VERIFY=quick)
    FULL = "full"          # every pinned file's sha256 matched (SMM_VERIFY=full, or bytes downloaded against a lock)
    SCHEMA = "schema"      # a mock: no bytes at all, only labels/dimension (see Resolved.schema_origin)

    def __str__(self) -> str:
        return self.value


@dataclass(frozen=True)
class Request:
    name: str                       # what the caller passed (alias or repo id)
    repo_id: str
    revision: str | None            # requested revision (branch, tag or commit), None = pinned/default
    model_type: str
    pinned: Pinned | None = None    # the lock entry for this model, when there is one
    verify: str = "quick"           # quick | full (SMM_VERIFY)

    @property
    def want_commit(self) -> str | None:
        """The commit this request must resolve to, if it names one (the pinned one, or a 40-hex revision)."""
        if self.pinned is not None and self.revision in (None, self.pinned.revision, self.pinned.commit):
            return self.pinned.commit
        if self.revision and len(self.revision) == 40:
            return self.revision
        return None


@dataclass(frozen=True)
class Resolved:
    """A source's answer. Every field has one meaning, whichever source filled it."""

    repo_id: str                    # the canonical repo id (the manifest's spelling on a volume)
    source: str                     # the ``name`` of the source that answered
    path: Path | None               # the local snapshot folder, complete; None only for mocks
    commit: str | None              # the 40-hex commit of ``path``; None for an unpinned mock
    revision: str | None            # the revision the caller asked for (not what it resolved to)
    labels: tuple[str, ...] = ()    # label names in id order (from the lock/manifest, else config.json)
    dimension: int | None = None    # output width of a label-less model, when known
    files: dict[str, FileEntry] = field(default_factory=dict)  # what pins this folder (lock/manifest); {} if unpinned
    verified: Verified = Verified.NONE  # what was checked before returning
    schema_origin: str | None = None    # mocks only: where labels/dimension came from ("lock", "built-in table", ...)


class Source(Protocol):
    """One way to obtain a model. The contract every source keeps:

    ``resolve(request)`` returns a :class:`Resolved` whose ``path`` is complete and checked as ``verified``
    says, or raises:

    * :class:`Unavailable` -- "I do not have it" (not here, wrong commit, offline, not allowed). The
      resolver records ``reason`` (and ``hint``) and asks the next source. Nothing was written.
    * :class:`~..errors.SourceError` -- a transient failure (network, timeout) outlived the retries; also
      recorded, next source.
    * :class:`~..errors.IntegrityError` (and ``MissingFileError`` for a pinned file that is gone from a
      folder that must be complete) -- the bytes are not the pinned ones. FATAL: it never falls through
      to another source, and nothing unverified was published.
    * :class:`~..errors.FormatError` -- a malformed manifest/lock/config. Fatal, names file and line.

    A source writes only into its own root (the cache for ``hub``); a read-only source (``volume``)
    writes nothing at all. ``name`` is what ``Resolved.source``, logs and ``ModelNotFoundError`` show.
    To add one: docs/design.md, "How to add a source".
    """

    name: str

    def resolve(self, request: Request) -> Resolved: ...


__all__ = ["Pinned", "Request", "Resolved", "Source", "Unavailable", "Verified", "read_schema"]
