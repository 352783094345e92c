"""Digests: sha256 of files, git blob sha1, content-derived commit ids. stdlib only."""

from __future__ import annotations

import hashlib
import os
from collections.abc import Iterable

from ..errors import IntegrityError

CHUNK = 1 << 20
PREFIX = "sha256:"


def sha256_file(path: str | os.PathLike[str]) -> str:
    """Hex sha256 of a file, read in 1 MiB chunks."""
    h = hashlib.sha256()
    with open(path, "rb") as fh:
        while chunk := fh.read(CHUNK):
            h.update(chunk)
    return h.hexdigest()


def with_prefix(hexdigest: str) -> str:
    return hexdigest if hexdigest.startswith(PREFIX) else PREFIX + hexdigest


def strip_prefix(digest: str) -> str:
    return digest[len(PREFIX):] if digest.startswith(PREFIX) else digest


def is_sha256(value: str) -> bool:
    v = strip_prefix(value)
    return len(v) == 64 and all(c in "0123456789abcdef" for c in v)


def content_commit(files: Iterable[tuple[str, int, str]]) -> str:
    """A 40-hex commit id derived from (posix path, size, sha256) of every file; stable across machines."""
    lines = sorted(f"{p}\0{size}\0{strip_prefix(digest)}" for p, size, digest in files)
    return hashlib.sha1("\n".join(lines).encode()).hexdigest()


def verify_file(path: str | os.PathLike[str], *, sha256: str | None, size: int | None,
                full: bool = True, label: str | None = None) -> None:
    """Raise IntegrityError naming the file, the expected and the actual value on any mismatch."""
    name = label or str(path)
    actual_size = os.path.getsize(path)
    if size is not None and actual_size != size:
        raise IntegrityError(
            f"{name}: size mismatch: expected {size} bytes, found {actual_size} bytes",
            path=path, expected=str(size), actual=str(actual_size))
    if full and sha256 is not None:
        actual = sha256_file(path)
        if actual != strip_prefix(sha256):
            raise IntegrityError(
                f"{name}: sha256 mismatch: expected {with_prefix(sha256)}, actual {PREFIX}{actual}",
                path=path, expected=with_prefix(sha256), actual=PREFIX + actual)
