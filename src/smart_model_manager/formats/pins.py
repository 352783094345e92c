"""The one check of a lock against a volume manifest: which files a lock pins that the manifest records
otherwise, or not at all, for the same commit. Each caller keeps its own policy about the answer:
``smm validate`` reports every difference, the volume source refuses to load, ``smm pull --target`` refuses
to overwrite files that pods of an older lock may be reading (there a file the record lacks is fine: the
pull adds it)."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

from .manifest import FileEntry


@dataclass(frozen=True)
class PinDifference:
    path: str
    pinned: FileEntry                # what the lock pins
    recorded: FileEntry | None       # what the manifest records for the same commit; None: not recorded


def pin_differences(pinned: Mapping[str, FileEntry], recorded: Mapping[str, FileEntry]) -> list[PinDifference]:
    """Every pinned file whose record differs (size or sha256) or is missing, by path."""
    return [PinDifference(rel, want, recorded.get(rel)) for rel, want in sorted(pinned.items())
            if recorded.get(rel) != want]


__all__ = ["PinDifference", "pin_differences"]
