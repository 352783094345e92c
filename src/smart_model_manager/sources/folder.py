"""A local model folder given where a model name goes (``load_model("./my-model")``), dev only.

What counts as a folder is decided by the name's *spelling*, never by what happens to exist on disk:
``/abs/path``, ``./rel``, ``../rel``, ``~/x``, ``.`` or ``..``, or a name with more than one ``/``. A bare
``my-model`` or ``org/name`` stays a repo id, as on the Hub (``transformers`` would silently prefer a
same-named folder in the working directory; we would rather say "did you mean ./my-model").

Every file is hashed (sha256) when it is resolved; the commit id is the content-derived one
``smm import`` gives the same folder (``hashing.content_commit``), so a folder and its imported copy
report the same commit. Production never takes a folder: it loads from the verified volume only.
"""

from __future__ import annotations

from pathlib import Path

from ..errors import ConfigurationError
from .base import Request, Resolved, Verified, read_schema

_PATH_PREFIXES = ("/", "./", "../", "~", ".\\", "..\\")


def is_folder_ref(name: str) -> bool:
    """True when ``name`` is spelled as a path (see the module docstring)."""
    return name in (".", "..") or name.startswith(_PATH_PREFIXES) or name.count("/") > 1 \
        or "\\" in name


class FolderSource:
    name = "folder"

    def resolve(self, request: Request) -> Resolved:
        folder = Path(request.name).expanduser()
        if not folder.is_dir():
            what = "is a file, not a model folder" if folder.exists() else "does not exist"
            raise ConfigurationError(f"{request.name!r} is spelled as a path, but {folder} {what}; "
                                     "pass a model folder (with config.json) or a repo id like org/name")
        if not (folder / "config.json").is_file():
            raise ConfigurationError(f"{folder} has no config.json, so it is not a model folder "
                                     "(save one with save_pretrained(), or pass a repo id)")
        # only on this path: hashing (OpenSSL), the store and PyYAML stay off a mock start
        from ..formats.manifest import FileEntry
        from ..store import cache as store
        from ..store.hashing import content_commit, with_prefix

        folder = folder.resolve()
        hashed = store.hash_folder(folder)
        commit = content_commit((rel, size, sha) for rel, (size, sha) in hashed.items())
        files = {rel: FileEntry(size=size, sha256=with_prefix(sha)) for rel, (size, sha) in hashed.items()}
        labels, dim = read_schema(folder)
        return Resolved(repo_id=str(folder), source=self.name, path=folder, commit=commit,
                        revision=None, labels=labels, dimension=dim, files=files, verified=Verified.FULL)


__all__ = ["FolderSource", "is_folder_ref"]
