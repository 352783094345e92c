"""Check a folder, or one file before a runtime opens it, against pinned file entries (a manifest or a lock)."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING

from ..errors import IntegrityError, MissingFileError
from ..store.cache import check_inside
from ..store.hashing import verify_file
from ..telemetry import span

if TYPE_CHECKING:
    from ..formats.manifest import FileEntry
    from .base import Resolved


def verify_folder(folder: Path, files: dict[str, FileEntry], *, full: bool, model: str,
                  root: Path | None = None) -> None:
    """Raise MissingFileError / IntegrityError naming the model and the file. Writes nothing.

    With ``root``, the folder and every file must also resolve inside it (symlinks followed), in quick
    mode too: bytes outside a verified volume can change after verification."""
    with span("smm.verify", model=model, files=len(files), full=full):
        _verify_folder(folder, files, full=full, model=model, root=root)


def _verify_folder(folder: Path, files: dict[str, FileEntry], *, full: bool, model: str,
                   root: Path | None) -> None:
    if root is not None:
        check_inside(root, folder, f"{model}: snapshot {folder.name}")
    for rel, entry in sorted(files.items()):
        p = folder / rel
        if root is not None and p.exists():
            check_inside(root, p, f"{model}: {rel}")
        if not p.is_file():
            raise MissingFileError(
                f"{model}: file {rel!r} is listed with sha256 {entry.sha256} but missing from {folder}",
                path=p, expected=entry.sha256, actual=None)
        verify_file(p, sha256=entry.sha256, size=entry.size, full=full, label=f"{model}: {p}")


def pinned_file_verifier(resolved: Resolved) -> Callable[[Path], None]:
    """A ``loaders.VerifyHook``: hash a file (an ``.onnx``) before a runtime opens it, so a corrupt export
    never reaches ONNX Runtime. Pinned models (manifest or lock) must list the file; unpinned cache folders
    are accepted as they are."""

    def verify(path: Path) -> None:
        assert resolved.path is not None
        p = Path(path)  # not resolved: snapshot files are symlinks into blobs/
        rel = p.relative_to(resolved.path).as_posix() if p.is_relative_to(resolved.path) else p.name
        entry = resolved.files.get(rel)
        if entry is None:
            if resolved.files:
                raise IntegrityError(f"{resolved.repo_id}: {rel} is not pinned by the manifest/lock that pins this "
                                     f"model; re-provision or re-lock after `smm export onnx`", path=path)
            return
        verify_file(path, sha256=entry.sha256, size=entry.size, full=True, label=f"{resolved.repo_id}: {path}")

    return verify


__all__ = ["pinned_file_verifier", "verify_folder"]
