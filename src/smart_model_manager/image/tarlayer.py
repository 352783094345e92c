"""Deterministic tar layers: the same entries give the same bytes on any machine, at any time, as any user.

Every entry has mtime 0, uid/gid 0, no user or group names, no xattrs, fixed modes (dirs 0755, files
0644, symlinks 0777); entries are written in sorted order with every parent folder before its children.
Layers are uncompressed tar (``application/vnd.oci.image.layer.v1.tar``): model weights barely compress
(measured in docs/benchmarks.md), and an uncompressed layer's digest is its ``diff_id``, so nothing
depends on a compressor's version.
"""

from __future__ import annotations

import hashlib
import io
import tarfile
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import BinaryIO

from ..errors import IntegrityError, MissingFileError
from ..store.hashing import with_prefix

DIR_MODE, FILE_MODE, LINK_MODE = 0o755, 0o644, 0o777
CHUNK = 1 << 20


@dataclass(frozen=True)
class Entry:
    """One regular file, symlink or folder of a layer. ``source`` (a file on disk) or ``data`` gives the
    bytes of a regular file; a file from ``source`` must hash to ``sha256`` (hex) or the layer is refused."""

    path: str                        # POSIX, relative, no leading "/"
    kind: str = "file"               # "file" | "symlink" | "dir"
    source: Path | None = None
    data: bytes | None = None
    size: int = 0
    sha256: str | None = None        # hex, for ``source`` files: checked while the bytes are packed
    target: str = ""                 # for symlinks
    what: str = ""                   # for messages: "alias: path"


@dataclass(frozen=True)
class Layer:
    digest: str                      # "sha256:<hex>" of the tar bytes (= diff_id: uncompressed)
    size: int
    path: Path


class _HashingWriter(io.RawIOBase):
    def __init__(self, out: BinaryIO):
        self.out, self.h, self.n = out, hashlib.sha256(), 0

    def writable(self) -> bool:
        return True

    def tell(self) -> int:
        return self.n

    def write(self, b: bytes) -> int:  # type: ignore[override]
        self.out.write(b)
        self.h.update(b)
        self.n += len(b)
        return len(b)


class _VerifyingReader(io.RawIOBase):
    def __init__(self, f: BinaryIO):
        self.f, self.h, self.n = f, hashlib.sha256(), 0

    def readable(self) -> bool:
        return True

    def read(self, size: int = -1) -> bytes:
        b = self.f.read(size)
        self.h.update(b)
        self.n += len(b)
        return b


def _info(path: str, kind: str) -> tarfile.TarInfo:
    ti = tarfile.TarInfo(path)
    ti.mtime, ti.uid, ti.gid, ti.uname, ti.gname = 0, 0, 0, "", ""
    ti.type = {"file": tarfile.REGTYPE, "symlink": tarfile.SYMTYPE, "dir": tarfile.DIRTYPE}[kind]
    ti.mode = {"file": FILE_MODE, "symlink": LINK_MODE, "dir": DIR_MODE}[kind]
    return ti


def with_parents(entries: Iterable[Entry]) -> list[Entry]:
    """The entries plus a folder entry for every parent, sorted so that parents come first."""
    out = {e.path: e for e in entries}
    for e in list(out.values()):
        parts = e.path.split("/")[:-1]
        for i in range(1, len(parts) + 1):
            d = "/".join(parts[:i])
            out.setdefault(d, Entry(d, kind="dir"))
    return [out[p] for p in sorted(out)]


def write_layer(dest: Path, entries: Iterable[Entry]) -> Layer:
    """Write ``entries`` (and their parent folders) as one tar into ``dest``; verify each source file's
    sha256 while its bytes go in. A mismatch or a vanished file raises before the layer is returned: the
    caller discards the folder it was writing into, so no mismatching byte is ever published."""
    with open(dest, "wb") as raw:
        hw = _HashingWriter(raw)
        with tarfile.open(fileobj=hw, mode="w", format=tarfile.PAX_FORMAT) as tar:
            for e in with_parents(entries):
                _add(tar, e)
    return Layer(digest=with_prefix(hw.h.hexdigest()), size=hw.n, path=dest)


def _add(tar: tarfile.TarFile, e: Entry) -> None:
    ti = _info(e.path, e.kind)
    if e.kind == "symlink":
        ti.linkname = e.target
        tar.addfile(ti)
    elif e.kind == "dir":
        tar.addfile(ti)
    elif e.data is not None:
        ti.size = len(e.data)
        tar.addfile(ti, io.BytesIO(e.data))
    else:
        assert e.source is not None
        ti.size = e.size
        try:
            f = open(e.source, "rb")  # noqa: SIM115 - closed below
        except FileNotFoundError as err:
            raise MissingFileError(f"{e.what}: {e.source} vanished while the image was built", path=e.source) from err
        with f:
            reader = _VerifyingReader(f)
            try:
                tar.addfile(ti, reader)
            except OSError as err:  # tarfile: "unexpected end of data" when the file shrank
                if "unexpected end of data" not in str(err):
                    raise
            actual = reader.h.hexdigest()
            if reader.n != e.size or actual != e.sha256 or f.read(1):
                raise IntegrityError(
                    f"{e.what}: {e.source} changed while the image was built (expected {e.size} bytes "
                    f"{with_prefix(str(e.sha256))}, read {with_prefix(actual)}); nothing was written", path=e.source,
                    expected=with_prefix(str(e.sha256)), actual=with_prefix(actual))
