"""The store's blob writer: ``store.writer.publish_blob`` verifies the copy it made before publishing it, so a bug
(or a file changed between hashing and copying) cannot ship a blob that is not the announced bytes."""

from __future__ import annotations

import hashlib
from pathlib import Path

import pytest

from smart_model_manager.errors import IntegrityError
from smart_model_manager.store import writer as store_writer

pytestmark = pytest.mark.unit


def test_publish_blob_refuses_a_copy_that_is_not_the_announced_bytes(tmp_path: Path) -> None:
    src = tmp_path / "weights.bin"
    src.write_bytes(b"the bytes that were hashed")
    announced = hashlib.sha256(b"the bytes that were hashed").hexdigest()
    src.write_bytes(b"other bytes, same length!!")  # changed between hashing and copying
    blobs = tmp_path / "blobs"
    with pytest.raises(IntegrityError, match="changed while importing") as exc:
        store_writer.publish_blob(blobs, src, announced, src.stat().st_size)
    assert exc.value.expected == "sha256:" + announced
    assert not (blobs / announced).exists()
    assert list(blobs.iterdir()) == []  # no temp file left either


def test_publish_blob_publishes_verified_bytes(tmp_path: Path) -> None:
    src = tmp_path / "weights.bin"
    src.write_bytes(b"good")
    sha = hashlib.sha256(b"good").hexdigest()
    blob = store_writer.publish_blob(tmp_path / "blobs", src, sha, 4)
    assert blob.read_bytes() == b"good" and blob.name == sha
