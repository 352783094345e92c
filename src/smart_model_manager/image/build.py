"""``smm image build``: a verified production volume packed into a reproducible OCI image layout.

The image's root filesystem IS a volume as ``smm pull --target`` writes it: ``models--org--name/{blobs/
<sha256>, snapshots/<commit>/<path> -> ../../blobs/<sha256>, refs/<revision>}`` plus ``model-metadata.yaml``
(built by the same :mod:`..pull` / :mod:`..manifest` code). Mounted at ``/app/models`` it validates and
loads unchanged.

Layers (all uncompressed tar, see :mod:`.tarlayer`):

* one layer per blob of at least ``LAYER_MIN_BYTES`` (the weights): its tar holds only that blob under
  its content address, so two versions of a lock share the layer of every unchanged file;
* one layer with the smaller blobs (configs, tokenizers), grouped so that an image never gets near the
  ~127-layer limit of overlay filesystems: at most ``MAX_LAYERS`` layers in all, the biggest files first;
* one last layer with what is not content: snapshot symlinks, refs and ``model-metadata.yaml``.

Reproducible: no time, user, host or path goes into any byte. ``created`` is omitted; the manifest
records no ``verified_at``/``provisioned_at`` time (the image's digest is its identity).
Verified: every file is hashed against the lock before anything is written, and again while it is
packed. A mismatch or a missing file is refused with the path and both digests; nothing is published.
Atomic: everything is written into a temp folder next to the output, which is renamed into place last.
"""

from __future__ import annotations

import contextlib
import dataclasses
import os
import posixpath
import shutil
import time
import uuid
from dataclasses import dataclass
from pathlib import Path

from .._layout import MANIFEST_NAME
from ..errors import ConfigurationError, IntegrityError, MissingFileError
from ..formats import manifest as manifest_mod
from ..formats.lockfile import Lock, LockEntry
from ..formats.manifest import LockRecord, Manifest
from ..ops.pull import _manifest_entry, generated_by, lock_digest
from ..store import cache as store
from ..store.fetch import check_space
from ..store.hashing import sha256_file
from . import layout as oci
from .tarlayer import Entry, Layer, write_layer

LAYER_MIN_BYTES = 1 << 20   # files from 1 MiB up get a layer of their own
MAX_LAYERS = 64             # overlayfs stacks at most ~127 lower layers; stay far below
ANNOTATION_PREFIX = "dev.smart-model-manager"
LOCK_DIGEST_KEY = f"{ANNOTATION_PREFIX}.lock.digest"
MODELS_KEY = f"{ANNOTATION_PREFIX}.models"


@dataclass(frozen=True)
class PlannedFile:
    entry: LockEntry
    rel: str
    source: Path
    size: int
    sha256: str  # hex

    @property
    def blob_path(self) -> str:
        return f"{store.repo_folder_name(self.entry.repo_id)}/blobs/{self.sha256}"

    @property
    def what(self) -> str:
        return f"{self.entry.alias}: {self.rel}"


@dataclass(frozen=True)
class LayerInfo:
    digest: str
    size: int
    holds: str  # what is in it, for people


@dataclass(frozen=True)
class BuildReport:
    path: Path
    tag: str
    digest: str                 # the manifest digest: what a pod pins
    layers: tuple[LayerInfo, ...]
    config_digest: str
    files: int
    bytes_packed: int
    seconds: float

    @property
    def size(self) -> int:
        return sum(la.size for la in self.layers)


def plan(lock: Lock, source: Path) -> list[PlannedFile]:
    """Every locked file, found in ``source`` (a cache or a volume: the HF-cache layout). A file that is
    missing or has the wrong size is refused here, all of them named, before anything is hashed."""
    out, missing = [], []
    for alias in sorted(lock.models):
        e = lock.models[alias]
        snap = store.repo_dir(source, e.repo_id) / "snapshots" / e.commit
        for rel, f in sorted(e.files.items()):
            p = snap / rel
            try:
                size = p.stat().st_size
            except OSError:
                missing.append(f"{alias}: {rel}")
                continue
            if size != f.size:
                raise IntegrityError(f"{alias}: {p} is {size} bytes but the lock pins {f.size} bytes "
                                     f"({f.sha256}); nothing was built", path=p, expected=f.sha256)
            out.append(PlannedFile(e, rel, p, f.size, f.sha256.removeprefix("sha256:")))
    if missing:
        first = missing[:5]
        more = f" and {len(missing) - 5} more" if len(missing) > 5 else ""
        raise MissingFileError(f"{len(missing)} locked file(s) are not in {source}: {', '.join(first)}{more}; "
                               f"fill it first (`smm pull --cache-dir {source}`) or build with --endpoint",
                               path=source)
    return out


def verify(files: list[PlannedFile]) -> None:
    """sha256 of every file against the lock, exactly as ``pull`` verifies a download."""
    for f in files:
        actual = sha256_file(f.source)
        if actual != f.sha256:
            raise IntegrityError(f"{f.what}: {f.source} does not match the lock: expected sha256:{f.sha256}, "
                                 f"got sha256:{actual}; it was not packed and no image was written",
                                 path=f.source, expected=f"sha256:{f.sha256}", actual=f"sha256:{actual}")


def group(files: list[PlannedFile], *, min_bytes: int = LAYER_MIN_BYTES,
          max_layers: int = MAX_LAYERS) -> tuple[list[PlannedFile], list[PlannedFile]]:
    """(files with a layer each, files grouped into one layer). Blobs are unique per repo folder.
    Two layers are kept for the grouped blobs and the metadata."""
    unique = {f.blob_path: f for f in files}
    ordered = sorted(unique.values(), key=lambda f: (-f.size, f.blob_path))
    own = [f for f in ordered if f.size >= min_bytes][: max_layers - 2]
    taken = {f.blob_path for f in own}
    return sorted(own, key=lambda f: f.blob_path), sorted((f for f in ordered if f.blob_path not in taken),
                                                         key=lambda f: f.blob_path)


def metadata_entries(lock: Lock, files: list[PlannedFile]) -> list[Entry]:
    """Snapshot symlinks, refs and model-metadata.yaml: what ``pull --target`` writes besides the blobs."""
    out = []
    for f in files:
        link = f"{store.repo_folder_name(f.entry.repo_id)}/snapshots/{f.entry.commit}/{f.rel}"
        out.append(Entry(link, kind="symlink", target=posixpath.relpath(f.blob_path, posixpath.dirname(link))))
    for e in lock.models.values():
        if e.revision != e.commit:
            out.append(Entry(f"{store.repo_folder_name(e.repo_id)}/refs/{e.revision}", data=e.commit.encode()))
    out.append(Entry(MANIFEST_NAME, data=volume_manifest(lock).encode("utf-8")))
    return out


def volume_manifest(lock: Lock) -> str:
    """model-metadata.yaml for exactly this lock, with no time in it (the image is immutable)."""
    digest = lock_digest(lock)
    entries = [dataclasses.replace(_manifest_entry(lock.models[a]), lock_digest=digest) for a in sorted(lock.models)]
    rec = LockRecord(digest, "", {e.repo_id: e.commit for e in entries})
    text = Manifest.of(entries, locks=[rec], generated_by=generated_by()).dumps()
    manifest_mod.loads(text, MANIFEST_NAME)  # a bug here must not ship a broken volume
    return text


def image_annotations(lock: Lock, extra: dict[str, str] | None = None) -> dict[str, str]:
    models = ",".join(f"{a}={e.repo_id}@{e.commit}" for a, e in sorted(lock.models.items()))
    ann = {
        "org.opencontainers.image.title": "models: " + ", ".join(sorted(lock.models)),
        "org.opencontainers.image.description": "A verified model volume (HF cache layout + model-metadata.yaml) "
                                                "for /app/models, built by `smm image build`",
        "org.opencontainers.image.vendor": "smart-model-manager",
        LOCK_DIGEST_KEY: lock_digest(lock),
        MODELS_KEY: models,
    }
    ann.update(extra or {})
    return dict(sorted(ann.items()))


def build_image(lock: Lock, source: Path, out: Path, *, tag: str = "latest", platform: str = "linux/amd64",
                labels: dict[str, str] | None = None) -> BuildReport:
    """Write the OCI image layout of ``lock`` (files taken from ``source``) to ``out``, atomically."""
    t0 = time.monotonic()
    out = Path(out)
    if out.exists() and not (out / "oci-layout").is_file() and not _empty_dir(out):
        raise ConfigurationError(f"{out} exists and is not an OCI image layout; refusing to replace it "
                                 "(pick an empty or new folder)")
    if not lock.models:
        raise ConfigurationError(f"{lock.path or 'the lock'} lists no models")
    os_name, _, arch = platform.partition("/")
    if not os_name or not arch:
        raise ConfigurationError(f"--platform {platform!r}: expected OS/ARCH such as linux/amd64")
    files = plan(lock, Path(source))
    verify(files)
    out.parent.mkdir(parents=True, exist_ok=True)
    check_space(out.parent, sum(f.size for f in {f.blob_path: f for f in files}.values()) + (1 << 20),
                what=f"image build into {out}")
    tmp = out.parent / f".{out.name}.tmp-{uuid.uuid4().hex}"
    try:
        layers = _write_layers(lock, files, tmp)
        ann = image_annotations(lock, labels)
        config = {"architecture": arch, "os": os_name, "config": {"Labels": ann},
                  "rootfs": {"type": "layers", "diff_ids": [la.digest for la, _ in layers]}}
        cdigest, csize = oci.put_blob(tmp, oci.canonical(config))
        manifest = {"schemaVersion": 2, "mediaType": oci.MT_MANIFEST,
                    "config": {"mediaType": oci.MT_CONFIG, "digest": cdigest, "size": csize},
                    "layers": [{"mediaType": oci.MT_LAYER, "digest": la.digest, "size": la.size,
                                "annotations": {"org.opencontainers.image.title": holds}} for la, holds in layers],
                    "annotations": ann}
        mdigest, msize = oci.put_blob(tmp, oci.canonical(manifest))
        oci.write_index(tmp, mdigest, msize, tag)
        oci.fsync_tree(tmp)
        _publish(tmp, out)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    return BuildReport(out, tag, mdigest, tuple(LayerInfo(la.digest, la.size, h) for la, h in layers), cdigest,
                       len(files), sum(la.size for la, _ in layers), round(time.monotonic() - t0, 3))


def _write_layers(lock: Lock, files: list[PlannedFile], tmp: Path) -> list[tuple[Layer, str]]:
    own, grouped = group(files)
    (tmp / "blobs" / "sha256").mkdir(parents=True)
    scratch = tmp / "layer.tmp"
    groups: list[tuple[list[Entry], str]] = [([_blob_entry(f)], f.what) for f in own]
    if grouped:
        groups.append(([_blob_entry(f) for f in grouped], f"{len(grouped)} smaller file(s)"))
    groups.append((metadata_entries(lock, files), "snapshots, refs, model-metadata.yaml"))
    layers = []
    for entries, holds in groups:
        layer = write_layer(scratch, entries)
        final = oci.blob_path(tmp, layer.digest)
        os.replace(scratch, final)
        layers.append((dataclasses.replace(layer, path=final), holds))
    return layers


def _blob_entry(f: PlannedFile) -> Entry:
    return Entry(f.blob_path, source=f.source, size=f.size, sha256=f.sha256, what=f.what)


def _empty_dir(p: Path) -> bool:
    return p.is_dir() and not any(p.iterdir())


def _publish(tmp: Path, out: Path) -> None:
    """Rename the finished layout into place; an older layout at ``out`` is swapped out, then removed."""
    old = None
    if _empty_dir(out):
        out.rmdir()
    if out.exists():
        old = out.parent / f".{out.name}.old-{uuid.uuid4().hex}"
        os.rename(out, old)
    try:
        os.rename(tmp, out)
    except OSError:
        if old is not None:
            os.rename(old, out)
        raise
    if old is not None:
        with contextlib.suppress(OSError):
            shutil.rmtree(old)


__all__ = ["LAYER_MIN_BYTES", "MAX_LAYERS", "BuildReport", "LayerInfo", "PlannedFile", "build_image", "group",
           "plan", "verify", "volume_manifest"]
