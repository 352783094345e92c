"""Check a folder against pinned file entries (from a manifest or a lock)."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

from ..errors import MissingFileError
from ..hashing import verify_file

if TYPE_CHECKING:
    from ..manifest import FileEntry


def verify_folder(folder: Path, files: dict[str, FileEntry], *, full: bool, model: str) -> None:
    """Raise MissingFileError / IntegrityError naming the model and the file. Writes nothing."""
    for rel, entry in sorted(files.items()):
        p = folder / rel
        if not p.is_file():
            raise MissingFileError(
                f"{model}: file {rel!r} is listed with sha256 {entry.sha256} but missing from {folder}",
                path=p, expected=entry.sha256, actual=None)
        verify_file(p, sha256=entry.sha256, size=entry.size, full=full, label=f"{model}: {p}")
