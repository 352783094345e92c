"""The remote contract (remote/base.py) and the fake next to it (remote/fake.py): ``smm lock``, the
one-step pull and ``smm pull`` run against the fake exactly as against the Hub client, which is typed
against the same Protocols (``Remote`` for the metadata, ``Downloader`` for the bytes)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from smart_model_manager.errors import IntegrityError, Unavailable
from smart_model_manager.formats import spec as spec_mod
from smart_model_manager.ops.lock import resolve_lock
from smart_model_manager.ops.pull import pull
from smart_model_manager.ops.quickpull import add_model
from smart_model_manager.remote.fake import FakeRemote, read_folder
from smart_model_manager.store.fetch import Want, fetch_into

pytestmark = pytest.mark.unit
REPO = "org/tiny-fin"
FILES = {"config.json": json.dumps({"architectures": ["BertForSequenceClassification"],
                                    "id2label": {"0": "negative", "1": "positive"}}).encode(),
         "model.safetensors": b"weights" * 50, "tokenizer.json": b"{}"}


def test_revision_lists_the_files_and_download_brings_their_bytes(tmp_path: Path) -> None:
    remote = FakeRemote({REPO: FILES})
    rev = remote.revision(REPO, "main")
    assert set(rev.files) == set(FILES) and rev.files["model.safetensors"].size == 350
    assert remote.revision(REPO, rev.commit).commit == rev.commit  # a commit is a revision too
    n, sha = remote.download(REPO, rev.commit, "model.safetensors", tmp_path / "f", size=350)
    assert n == 350 and sha == rev.files["model.safetensors"].sha256 and remote.calls == [f"{REPO}/model.safetensors"]
    with pytest.raises(Unavailable, match="org/ghost is not on fake://remote"):
        remote.revision("org/ghost", "main")
    with pytest.raises(Unavailable, match="no revision 'v2'"):
        remote.revision(REPO, "v2")
    with pytest.raises(Unavailable, match="has no nope.bin"):
        remote.download(REPO, rev.commit, "nope.bin", tmp_path / "g")
    with pytest.raises(IntegrityError, match="more than the pinned 10 bytes"):
        remote.download(REPO, rev.commit, "model.safetensors", tmp_path / "h", size=10)


def test_from_folder_serves_each_org_name_folder(tmp_path: Path) -> None:
    (tmp_path / "org" / "tiny-fin").mkdir(parents=True)
    for rel, data in FILES.items():
        (tmp_path / "org" / "tiny-fin" / rel).write_bytes(data)
    remote = FakeRemote.from_folder(tmp_path)
    assert remote.endpoint == tmp_path.as_uri()
    assert remote.revision(REPO, "main").commit == FakeRemote({REPO: FILES}).revision(REPO, "main").commit
    assert read_folder(tmp_path / "org" / "tiny-fin") == FILES


def test_lock_then_pull_against_the_fake(tmp_path: Path) -> None:
    remote = FakeRemote({REPO: FILES})
    spec_path = tmp_path / "models.yaml"
    spec_path.write_text(f"models:\n  fin:\n    repo_id: {REPO}\n    model_type: sentiment\n")
    lock = resolve_lock(spec_mod.load(spec_path), "unused", client=remote)
    entry = lock.models["fin"]
    assert entry.commit == remote.revision(REPO, "main").commit and entry.labels == ("negative", "positive")
    assert remote.calls == [f"{REPO}/config.json"]  # the lock reads the config it pins (labels, type)
    remote.calls.clear()
    report = pull(lock, target=tmp_path / "vol", endpoint="unused", client=remote)
    assert report.is_volume and [m.repo_id for m in report.models] == [REPO]
    assert sorted(c.split("/")[-1] for c in remote.calls) == sorted(FILES)  # each file downloaded once
    assert [p.read_bytes() for p in (tmp_path / "vol").rglob("model.safetensors")] == [FILES["model.safetensors"]]


def test_the_one_step_pull_pins_through_the_remote_protocol(tmp_path: Path) -> None:
    remote = FakeRemote({REPO: FILES})
    alias, lock, wrote = add_model(REPO, spec_path=tmp_path / "models.yaml", lock_path=tmp_path / "models.lock",
                                   endpoint="unused", client=remote)
    assert wrote and lock.models[alias].model_type == "sentiment"  # inferred from the pinned config.json


def test_a_lying_remote_is_caught_and_nothing_is_published(tmp_path: Path) -> None:
    remote = FakeRemote({REPO: FILES})
    rev = remote.revision(REPO, "main")
    remote.serve_instead(REPO, "model.safetensors", b"wicked!" * 50)  # same size, other bytes
    wants = {p: Want(f.size, f.sha256) for p, f in rev.files.items()}
    with pytest.raises(IntegrityError, match="sha256 mismatch"):
        fetch_into(tmp_path / "cache", remote, REPO, rev.commit, wants)
    assert not list((tmp_path / "cache").rglob("model.safetensors"))


def test_a_failing_remote_leaves_nothing_behind(tmp_path: Path) -> None:
    remote = FakeRemote({REPO: FILES}, fail=OSError("connection reset"))
    rev = remote.revision(REPO, "main")
    wants = {p: Want(f.size, f.sha256) for p, f in rev.files.items()}
    with pytest.raises(OSError, match="connection reset"):
        fetch_into(tmp_path / "cache", remote, REPO, rev.commit, wants, jobs=1)
    assert len(remote.calls) == 1 and not list((tmp_path / "cache").rglob("config.json"))
