"""The Hugging Face hub cache layout: its names, the repo-folder rule and the temp-name rule (one home each).

A root (a dev cache, a provisioned volume, a mirror's folder) holds::

    <root>/models--{org}--{name}/
        blobs/<etag>                               the bytes; our writes use the sha256 hex as etag
        snapshots/<commit>/<path> -> ../../blobs/<etag>
        refs/<revision>                            "<commit>", no newline (refs/pr/1 keeps its slashes)
    <root>/.locks/models--{org}--{name}/...        filelock files (never on read paths)
    <root>/.staging/<uuid>/                        a writer's downloads and new snapshot, before publishing

Every other module asks this package for these names: nothing outside ``store/`` spells them, which a
unit test enforces. Stdlib only, like ``_layout``.
"""

from __future__ import annotations

import re
from pathlib import Path

from .._layout import REPO_ID_EXPECTED, is_repo_id
from ..errors import ConfigurationError

REPO_FOLDER_PREFIX = "models--"     # huggingface_hub's folder of a model repo; "--" stands for "/"
# the folder prefix of each repo type huggingface_hub caches (the mirror serves all three)
REPO_TYPE_PREFIXES = {"model": REPO_FOLDER_PREFIX, "dataset": "datasets--", "space": "spaces--"}
SNAPSHOTS = "snapshots"
BLOBS = "blobs"
REFS = "refs"
LOCKS_DIR = ".locks"                # <root>/.locks/<repo folder>/: filelock files
STAGING_DIR = ".staging"            # <root>/.staging/<uuid>/: a writer's work before it is published
DEFAULT_REVISION = "main"

# -- temp names: the one rule every scanner, cleaner and reader applies ------------------------------
TMP_PREFIX = ".tmp-"                # every temp entry we create starts with this
INCOMPLETE_SUFFIX = ".incomplete"   # huggingface_hub's partial download (and our blob copies in flight)
# Older exports named their int8 attempts ``.{name}.tmp-<12 hex>``; a volume may still hold one.
_OLD_EXPORT_TEMP = re.compile(r"\..+\.tmp-[0-9a-f]{12}")


def tmp_name(name: str) -> str:
    """A unique temp name for ``name`` in the same folder: ``.tmp-<name>.<uuid hex>``."""
    import uuid  # here, not at the top: uuid imports platform, which a mock start does not need

    return f"{TMP_PREFIX}{name}.{uuid.uuid4().hex}"


def incomplete_name(name: str) -> str:
    """A unique temp name that huggingface_hub's tools also read as a partial download."""
    return tmp_name(name) + INCOMPLETE_SUFFIX


def is_temp_name(name: str) -> bool:
    """Whether a file or folder name is a leftover of a write in progress (ours or huggingface_hub's)."""
    return (name.startswith(TMP_PREFIX) or name.endswith(INCOMPLETE_SUFFIX)
            or name[:1] == "." and _OLD_EXPORT_TEMP.fullmatch(name) is not None)


# -- repo folders -----------------------------------------------------------------------------------
def repo_folder_name(repo_id: str, prefix: str = REPO_FOLDER_PREFIX) -> str:
    """``org/name`` -> ``models--org--name``; ConfigurationError for anything that is not a repo id."""
    if not is_repo_id(repo_id):
        raise ConfigurationError(f"{repo_id!r} is not a valid repo id (expected {REPO_ID_EXPECTED})")
    return prefix + repo_id.replace("/", "--")


def repo_id_from_folder(name: str, prefix: str = REPO_FOLDER_PREFIX) -> str | None:
    """``models--org--name`` -> ``org/name``; None for anything that does not encode one valid repo id.

    The inverse of :func:`repo_folder_name`, so ``models--a--b--c`` (which would read as ``a/b/c``) and
    ``models--a----b`` are refused: no repo id encodes to them. ``prefix`` serves the mirror's
    ``datasets--`` and ``spaces--`` folders, which follow the same rule."""
    if not name.startswith(prefix):
        return None
    repo_id = name[len(prefix):].replace("--", "/")
    if not is_repo_id(repo_id) or prefix + repo_id.replace("/", "--") != name:
        return None
    return repo_id


def repo_dir(root: str | Path, repo_id: str) -> Path:
    return Path(root) / repo_folder_name(repo_id)


def snapshots_dir(repo: Path) -> Path:
    return repo / SNAPSHOTS


def blobs_dir(repo: Path) -> Path:
    return repo / BLOBS


def refs_dir(repo: Path) -> Path:
    return repo / REFS


def snapshot_dir(root: str | Path, repo_id: str, commit: str) -> Path:
    """``<root>/models--org--name/snapshots/<commit>`` (whether it exists or not)."""
    return repo_dir(root, repo_id) / SNAPSHOTS / commit


def ref_path(root: str | Path, repo_id: str, revision: str) -> Path:
    return repo_dir(root, repo_id) / REFS / revision


def lock_dir(root: str | Path, repo_id: str) -> Path:
    return Path(root) / LOCKS_DIR / repo_folder_name(repo_id)


def snapshot_of(path: Path) -> tuple[Path, str, str] | None:
    """(root, repo id, commit) when ``path`` is ``<root>/models--org--name/snapshots/<commit>`` of a cache
    (its repo folder has a ``blobs`` folder); None for any other folder."""
    if path.parent.name != SNAPSHOTS or not (path.parents[1] / BLOBS).is_dir():
        return None
    repo_id = repo_id_from_folder(path.parents[1].name)
    return (path.parents[2], repo_id, path.name) if repo_id else None


def blob_rel(repo_id: str, etag: str) -> str:
    """``models--org--name/blobs/<etag>``: a POSIX path relative to a root (an image layer's entries)."""
    return f"{repo_folder_name(repo_id)}/{BLOBS}/{etag}"


def snapshot_rel(repo_id: str, commit: str, rel: str) -> str:
    return f"{repo_folder_name(repo_id)}/{SNAPSHOTS}/{commit}/{rel}"


def ref_rel(repo_id: str, revision: str) -> str:
    return f"{repo_folder_name(repo_id)}/{REFS}/{revision}"


def snapshot_glob(rel: str) -> str:
    """A glob, relative to a root, for file ``rel`` in every snapshot of every model repo."""
    return f"{REPO_FOLDER_PREFIX}*/{SNAPSHOTS}/*/{rel}"


def snapshot_label(path: Path) -> str:
    """``org/name@<commit 12>`` for a file directly under a snapshot's sub-folder chain, for messages:
    ``path`` is ``<root>/models--org--name/snapshots/<commit>/<rel>`` with ``rel`` of any depth."""
    parts = path.parts
    i = len(parts) - 1 - parts[::-1].index(SNAPSHOTS) if SNAPSHOTS in parts else -1
    repo_id = repo_id_from_folder(parts[i - 1]) if i > 0 else None
    commit = parts[i + 1] if 0 < i < len(parts) - 1 else ""
    return f"{repo_id or path.parent}@{commit[:12]}"


# Example of the folder naming, for help texts and messages.
REPO_FOLDER_EXAMPLE = repo_folder_name("org/name")


__all__ = [
    "BLOBS", "DEFAULT_REVISION", "INCOMPLETE_SUFFIX", "LOCKS_DIR", "REFS", "REPO_FOLDER_EXAMPLE",
    "REPO_FOLDER_PREFIX", "REPO_TYPE_PREFIXES", "SNAPSHOTS", "STAGING_DIR", "TMP_PREFIX", "blob_rel", "blobs_dir", "incomplete_name", "is_temp_name",
    "lock_dir", "ref_path", "ref_rel", "refs_dir", "repo_dir", "repo_folder_name", "repo_id_from_folder", "snapshot_dir",
    "snapshot_glob", "snapshot_label", "snapshot_of", "snapshot_rel", "snapshots_dir", "tmp_name",
]
