"""The source interface and the values passed along the chain."""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, Protocol

from ..errors import Unavailable as Unavailable  # its home is errors.py; imported from here by sources

if TYPE_CHECKING:  # keep the mock path free of PyYAML
    from ..manifest import FileEntry


@dataclass(frozen=True)
class Request:
    name: str                       # what the caller passed (alias or repo id)
    repo_id: str
    revision: str | None            # requested revision (branch, tag or commit), None = pinned/default
    model_type: str
    pinned: Any = None              # a lock entry (commit, files, labels, dimension), when one exists
    verify: str = "quick"           # quick | full

    @property
    def want_commit(self) -> str | None:
        if self.pinned is not None and self.revision in (None, getattr(self.pinned, "revision", None),
                                                         getattr(self.pinned, "commit", None)):
            return self.pinned.commit
        if self.revision and len(self.revision) == 40:
            return self.revision
        return None


@dataclass(frozen=True)
class Resolved:
    repo_id: str
    source: str
    path: Path | None               # verified local folder (None for mocks)
    commit: str | None
    revision: str | None
    labels: tuple[str, ...] = ()
    dimension: int | None = None
    files: dict[str, FileEntry] = field(default_factory=dict)
    verified: str = "none"          # none | quick | full: what was checked before returning


class Source(Protocol):
    name: str

    def resolve(self, request: Request) -> Resolved: ...


def read_schema(folder: Path) -> tuple[tuple[str, ...], int | None]:
    """(labels in id order, hidden size) from a model folder's config.json; empty when absent."""
    try:
        cfg = json.loads((folder / "config.json").read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return (), None
    labels: tuple[str, ...] = ()
    id2label = cfg.get("id2label")
    if isinstance(id2label, dict) and id2label:
        try:
            labels = tuple(str(v) for _, v in sorted(id2label.items(), key=lambda kv: int(kv[0])))
        except ValueError:
            labels = ()
    dim = cfg.get("hidden_size") or cfg.get("dim") or cfg.get("d_model")
    return labels, dim if isinstance(dim, int) else None
