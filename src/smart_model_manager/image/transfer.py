"""``smm image push`` / ``smm image pull``: an OCI image layout to and from a v2 registry.

Push sends the exact bytes the layout holds (blobs first, each skipped when the registry already has
it; the manifest LAST), then checks that the registry's ``Docker-Content-Digest`` is the digest built
locally. A push stopped halfway leaves uploaded blobs but no tag and no manifest: nothing anyone can
pull; rerunning skips what arrived and finishes.

Pull writes a layout in a temp folder next to the destination and renames it into place: every blob is
checked against its digest and size while it streams in; blobs of the layout already at the destination
(the previous version) are reused, not downloaded, so pulling version 2 after version 1 moves only the
changed layers (``bytes_downloaded`` in the report).
"""

from __future__ import annotations

import contextlib
import hashlib
import os
import shutil
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from ..errors import ConfigurationError, IntegrityError
from ..store.hashing import with_prefix
from . import layout as oci
from .registry import Reference, RegistryClient, RegistryError

ACCEPT = ", ".join([oci.MT_MANIFEST, "application/vnd.docker.distribution.manifest.v2+json"])
CHUNK = 1 << 20


@dataclass(frozen=True)
class PushReport:
    reference: str          # REGISTRY/REPO:TAG@DIGEST
    digest: str
    blobs_uploaded: int
    blobs_skipped: int
    bytes_uploaded: int
    seconds: float


@dataclass(frozen=True)
class PullReport:
    reference: str
    digest: str
    path: Path
    blobs_downloaded: int
    blobs_reused: int
    bytes_downloaded: int
    bytes_reused: int
    seconds: float


def push(layout: Path, ref: Reference, client: RegistryClient, *, layout_tag: str | None = None,
         on_blob: Callable[[str], None] | None = None) -> PushReport:
    """Push the image of ``layout`` to ``ref`` (its tag, default the layout's tag). ``on_blob`` is called
    after each blob is on the registry (progress; tests use it to interrupt a push)."""
    t0 = time.monotonic()
    img = oci.read_image(Path(layout), layout_tag)
    if ref.digest and ref.digest != img.manifest_digest:
        raise ConfigurationError(f"{ref} pins {ref.digest} but {layout} holds {img.manifest_digest}")
    tag = ref.tag or img.tag or "latest"
    uploaded = skipped = nbytes = 0
    for desc in img.blobs:
        digest, size = desc["digest"], int(desc["size"])
        if client.has_blob(ref.repository, digest):
            skipped += 1
        else:
            with open(oci.blob_path(img.layout, digest), "rb") as f:
                client.upload_blob(ref.repository, digest, size, f)
            uploaded += 1
            nbytes += size
        if on_blob is not None:
            on_blob(digest)
    got = client.put_manifest(ref.repository, tag, img.manifest_bytes, oci.MT_MANIFEST)
    if got and got != img.manifest_digest:
        raise RegistryError(f"registry {ref.registry} stored the manifest as {got}, not {img.manifest_digest}: it "
                            "rewrote the manifest; a digest-pinned pod would not find the image")
    full = f"{ref.registry}/{ref.repository}:{tag}@{img.manifest_digest}"
    return PushReport(full, img.manifest_digest, uploaded, skipped, nbytes, round(time.monotonic() - t0, 3))


def pull(ref: Reference, dest: Path, client: RegistryClient) -> PullReport:
    """Pull ``ref`` into the OCI layout folder ``dest`` (replaced atomically), verified."""
    t0 = time.monotonic()
    dest = Path(dest)
    if dest.exists() and not (dest / "oci-layout").is_file():
        raise ConfigurationError(f"{dest} exists and is not an OCI image layout; refusing to replace it")
    data, ctype = client.get_manifest(ref.repository, ref.target, ACCEPT)
    digest = oci.digest_of(data)
    if ref.digest and digest != ref.digest:
        raise IntegrityError(f"{ref}: the registry sent a manifest that hashes to {digest}", expected=ref.digest,
                             actual=digest)
    if "index" in ctype or "manifest.list" in ctype:
        raise ConfigurationError(f"{ref} is a multi-platform index ({ctype}); pull one platform's digest")
    import json

    manifest = json.loads(data)
    dest.parent.mkdir(parents=True, exist_ok=True)
    tmp = dest.parent / f".{dest.name}.tmp-{uuid.uuid4().hex}"
    counts = [0, 0, 0, 0]  # downloaded, reused, bytes downloaded, bytes reused
    try:
        (tmp / "blobs" / "sha256").mkdir(parents=True)
        for desc in [manifest["config"], *manifest["layers"]]:
            _fetch_blob(client, ref, desc, tmp, dest, counts)
        oci.put_blob(tmp, data)
        oci.write_index(tmp, digest, len(data), ref.tag)
        oci.read_image(tmp)  # everything referenced is there, with the right size
        oci.fsync_tree(tmp)
        old = None
        if dest.exists():
            old = dest.parent / f".{dest.name}.old-{uuid.uuid4().hex}"
            os.rename(dest, old)
        os.rename(tmp, dest)
        if old is not None:
            shutil.rmtree(old, ignore_errors=True)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    return PullReport(f"{ref.registry}/{ref.repository}@{digest}", digest, dest, counts[0], counts[1], counts[2],
                      counts[3], round(time.monotonic() - t0, 3))


def _fetch_blob(client: RegistryClient, ref: Reference, desc: dict[str, Any], tmp: Path, dest: Path, counts: list[int]) -> None:
    digest, size = desc["digest"], int(desc["size"])
    final = oci.blob_path(tmp, digest)
    if final.exists():
        return
    have = oci.blob_path(dest, digest)
    if have.is_file() and have.stat().st_size == size and _sha256(have) == digest:
        with contextlib.suppress(OSError):
            os.link(have, final)
        if not final.exists():
            shutil.copyfile(have, final)
        counts[1] += 1
        counts[3] += size
        return
    part = final.with_name(final.name + ".part")
    h, n = hashlib.sha256(), 0
    with client.open_blob(ref.repository, digest) as resp, open(part, "wb") as out:
        while chunk := resp.read(CHUNK):
            n += len(chunk)
            if n > size:
                break
            h.update(chunk)
            out.write(chunk)
    actual = with_prefix(h.hexdigest())
    if n != size or actual != digest:
        raise IntegrityError(f"{ref}: blob {digest} arrived as {n} bytes hashing to {actual} (expected {size} bytes); "
                             "nothing was written", expected=digest, actual=actual)
    os.replace(part, final)
    counts[0] += 1
    counts[2] += size


def _sha256(path: Path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        while chunk := f.read(CHUNK):
            h.update(chunk)
    return with_prefix(h.hexdigest())


__all__ = ["PullReport", "PushReport", "pull", "push"]
