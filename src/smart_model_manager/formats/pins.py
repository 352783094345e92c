"""The one check of a lock against a volume manifest: which files a lock pins that the manifest records
otherwise, or not at all, for the same commit. Each caller keeps its own policy about the answer:
``smm validate`` reports every difference, the volume source refuses to load, ``smm pull --target`` refuses
to overwrite files that pods of an older lock may be reading (there a file the record lacks is fine: the
pull adds it)."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

from .manifest import FileEntry, Manifest, ModelEntry


@dataclass(frozen=True)
class PinDifference:
    path: str
    pinned: FileEntry                # what the lock pins
    recorded: FileEntry | None       # what the manifest records for the same commit; None: not recorded


def pin_differences(pinned: Mapping[str, FileEntry], recorded: Mapping[str, FileEntry]) -> list[PinDifference]:
    """Every pinned file whose record differs (size or sha256) or is missing, by path."""
    return [PinDifference(rel, want, recorded.get(rel)) for rel, want in sorted(pinned.items())
            if recorded.get(rel) != want]


def conflicts(man: Manifest, entry: ModelEntry) -> list[tuple[str, FileEntry, FileEntry]]:
    """(path, recorded, wanted) for each file ``entry`` pins with other bytes than the volume already
    recorded for the same commit. Provisioning it would change files under the pods that use that commit;
    a file the record lacks is not a conflict (provisioning adds it)."""
    prev = man.entry(entry.repo_id, entry.commit)
    if prev is None:
        return []
    return [(d.path, d.recorded, d.pinned) for d in pin_differences(entry.files, prev.files)
            if d.recorded is not None]


__all__ = ["PinDifference", "conflicts", "pin_differences"]
