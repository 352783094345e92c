"""The OCI image layout on disk (``oci-layout``, ``index.json``, ``blobs/sha256/<hex>``) and canonical JSON.

JSON documents are written canonically (sorted keys, no spaces), so the manifest's digest is a function of
its content only; a client that re-serialises a manifest changes its digest, which is why pushing sends
these exact bytes (:mod:`.registry`).
"""

from __future__ import annotations

import hashlib
import json
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from ..errors import FormatError, IntegrityError
from ..store.hashing import with_prefix

LAYOUT_VERSION = {"imageLayoutVersion": "1.0.0"}
MT_MANIFEST = "application/vnd.oci.image.manifest.v1+json"
MT_INDEX = "application/vnd.oci.image.index.v1+json"
MT_CONFIG = "application/vnd.oci.image.config.v1+json"
MT_LAYER = "application/vnd.oci.image.layer.v1.tar"
MT_LAYER_GZIP = "application/vnd.oci.image.layer.v1.tar+gzip"
REF_NAME = "org.opencontainers.image.ref.name"


def canonical(doc: Any) -> bytes:
    return json.dumps(doc, sort_keys=True, separators=(",", ":"), ensure_ascii=False).encode("utf-8")


def digest_of(data: bytes) -> str:
    return with_prefix(hashlib.sha256(data).hexdigest())


def blob_path(layout: Path, digest: str) -> Path:
    algo, _, hexd = digest.partition(":")
    if algo != "sha256" or len(hexd) != 64 or not all(c in "0123456789abcdef" for c in hexd):
        raise FormatError(f"unsupported digest {digest!r}: expected sha256:<64 hex>")
    return layout / "blobs" / "sha256" / hexd


def put_blob(layout: Path, data: bytes) -> tuple[str, int]:
    d = digest_of(data)
    p = blob_path(layout, d)
    p.parent.mkdir(parents=True, exist_ok=True)
    p.write_bytes(data)
    return d, len(data)


def write_index(layout: Path, manifest_digest: str, manifest_size: int, tag: str | None) -> None:
    desc: dict[str, Any] = {"mediaType": MT_MANIFEST, "digest": manifest_digest, "size": manifest_size}
    if tag:
        desc["annotations"] = {REF_NAME: tag}
    (layout / "oci-layout").write_bytes(canonical(LAYOUT_VERSION))
    (layout / "index.json").write_bytes(canonical({"schemaVersion": 2, "mediaType": MT_INDEX, "manifests": [desc]}))


@dataclass(frozen=True)
class Image:
    """An image read from a layout: the manifest (its exact bytes and digest), config and layers."""

    layout: Path
    tag: str | None
    manifest_bytes: bytes
    manifest_digest: str
    manifest: dict[str, Any]
    config: dict[str, Any]

    @property
    def layers(self) -> list[dict[str, Any]]:
        return list(self.manifest["layers"])

    @property
    def blobs(self) -> list[dict[str, Any]]:
        """Every blob the manifest references, config first."""
        return [self.manifest["config"], *self.layers]


def read_image(layout: Path, tag: str | None = None) -> Image:
    """The image tagged ``tag`` (or the only one) in an OCI layout; every referenced blob is checked to be
    present with its recorded size, and the manifest and config bytes to hash to their digests."""
    layout = Path(layout)
    index_path = layout / "index.json"
    try:
        index = json.loads(index_path.read_bytes())
    except FileNotFoundError:
        raise FormatError(f"{layout} is not an OCI image layout (no index.json); build one with `smm image build`") from None
    except ValueError as err:
        raise FormatError(f"{index_path}: not JSON ({err})") from err
    descs = [d for d in index.get("manifests", []) if d.get("mediaType") == MT_MANIFEST]
    if tag is not None:
        descs = [d for d in descs if d.get("annotations", {}).get(REF_NAME) == tag]
    if len(descs) != 1:
        tags = sorted(d.get("annotations", {}).get(REF_NAME, "?") for d in index.get("manifests", []))
        raise FormatError(f"{index_path}: expected one image{f' tagged {tag!r}' if tag else ''}, found "
                          f"{len(descs)} (tags: {', '.join(tags) or 'none'})")
    desc = descs[0]
    mbytes = _checked_blob(layout, desc)
    manifest = json.loads(mbytes)
    config = json.loads(_checked_blob(layout, manifest["config"]))
    for layer in manifest["layers"]:
        p = blob_path(layout, layer["digest"])
        if not p.is_file() or p.stat().st_size != layer["size"]:
            raise IntegrityError(f"{layout}: layer {layer['digest']} is missing or has the wrong size", path=p,
                                 expected=layer["digest"])
    return Image(layout, desc.get("annotations", {}).get(REF_NAME), mbytes, desc["digest"], manifest, config)


def _checked_blob(layout: Path, desc: dict[str, Any]) -> bytes:
    p = blob_path(layout, desc["digest"])
    try:
        data = p.read_bytes()
    except FileNotFoundError:
        raise IntegrityError(f"{layout}: blob {desc['digest']} is missing", path=p, expected=desc["digest"]) from None
    actual = digest_of(data)
    if actual != desc["digest"] or len(data) != desc["size"]:
        raise IntegrityError(f"{p}: expected {desc['digest']} ({desc['size']} bytes), got {actual} ({len(data)} bytes)",
                             path=p, expected=desc["digest"], actual=actual)
    return data


def fsync_tree(root: Path) -> None:
    """Flush every file under ``root`` (before the rename that publishes it)."""
    for dirpath, _dirs, files in os.walk(root):
        for name in files:
            fd = os.open(os.path.join(dirpath, name), os.O_RDONLY)
            try:
                os.fsync(fd)
            finally:
                os.close(fd)
