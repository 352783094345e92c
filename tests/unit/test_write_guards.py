"""Two write guards no test caught when a review planted bugs in them (issue 9, test gaps):
``store.publish_blob`` verifies the copy it made before publishing it, and ``manifest.update`` parses the
text it is about to write before writing it, so a bug cannot ship a blob or a manifest that is wrong."""

from __future__ import annotations

import hashlib
from pathlib import Path

import pytest

from smart_model_manager.errors import IntegrityError, ManifestError
from smart_model_manager.formats import manifest
from smart_model_manager.formats.manifest import FileEntry, Manifest, ModelEntry
from smart_model_manager.store import cache as store

pytestmark = pytest.mark.unit
SHA = "sha256:" + "ab" * 32


def test_publish_blob_refuses_a_copy_that_is_not_the_announced_bytes(tmp_path: Path) -> None:
    src = tmp_path / "weights.bin"
    src.write_bytes(b"the bytes that were hashed")
    announced = hashlib.sha256(b"the bytes that were hashed").hexdigest()
    src.write_bytes(b"other bytes, same length!!")  # changed between hashing and copying
    blobs = tmp_path / "blobs"
    with pytest.raises(IntegrityError, match="changed while importing") as exc:
        store.publish_blob(blobs, src, announced, src.stat().st_size)
    assert exc.value.expected == "sha256:" + announced
    assert not (blobs / announced).exists()
    assert list(blobs.iterdir()) == []  # no temp file left either


def test_publish_blob_publishes_verified_bytes(tmp_path: Path) -> None:
    src = tmp_path / "weights.bin"
    src.write_bytes(b"good")
    sha = hashlib.sha256(b"good").hexdigest()
    blob = store.publish_blob(tmp_path / "blobs", src, sha, 4)
    assert blob.read_bytes() == b"good" and blob.name == sha


def _entry(model_type: str) -> ModelEntry:
    return ModelEntry(repo_id="org/model", commit="c" * 40, model_type=model_type,
                      files={"config.json": FileEntry(size=10, sha256=SHA)})


def test_manifest_update_never_writes_text_it_cannot_read_back(tmp_path: Path) -> None:
    manifest.update(tmp_path, lambda m: Manifest.of([_entry("sentiment")]), generated_by="tests")
    path = tmp_path / manifest.MANIFEST_NAME
    before = path.read_bytes()
    # a bug upstream: an entry whose model type the format forbids (it serialises fine)
    with pytest.raises(ManifestError, match="model_type"):
        manifest.update(tmp_path, lambda m: m.with_entry(_entry("Not A Type!")), generated_by="tests")
    assert path.read_bytes() == before  # the good manifest is untouched
    assert manifest.load(path).find("org/model") is not None
    assert not list(tmp_path.glob(".*model-metadata.yaml*"))
