"""`smm lock` against a real mirror on 127.0.0.1: commits, computed sha256, labels, --check, byte stability."""

from __future__ import annotations

import hashlib
import os
from pathlib import Path

import pytest

from smart_model_manager.cli.main import main
from smart_model_manager.formats import lockfile
from smart_model_manager.mirror import MirrorServer

try:
    from ._artifacts_fixtures import git_sha1, hub_like_root, make_sentiment_folder, write
except ImportError:
    from _artifacts_fixtures import git_sha1, hub_like_root, make_sentiment_folder, write

pytestmark = pytest.mark.integration

SPEC = """\
models:
  fin:
    repo_id: org/fin
    model_type: sentiment
  emb:
    repo_id: org/emb
    model_type: embeddings
    include: ["*.json", "*.safetensors"]
"""


@pytest.fixture
def upstream(tmp_path: Path):  # type: ignore[no-untyped-def]
    root = tmp_path / "upstream"
    fin = make_sentiment_folder(tmp_path / "fin")
    emb = make_sentiment_folder(tmp_path / "emb", seed=b"e")
    (emb / "config.json").write_text('{"architectures": ["BertModel"], "hidden_size": 24}')
    commits = {"org/fin": hub_like_root(fin, root, "org/fin"), "org/emb": hub_like_root(emb, root, "org/emb")}
    with MirrorServer(root) as mirror:
        yield mirror, root, {"fin": fin, "emb": emb}, commits


@pytest.fixture
def workdir(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    work = tmp_path / "work"
    work.mkdir()
    monkeypatch.chdir(work)
    for k in list(os.environ):
        if k.startswith(("HF_", "SMM_")):
            monkeypatch.delenv(k)
    monkeypatch.setenv("SMM_TIMEOUT", "10")
    monkeypatch.setenv("SMM_RETRIES", "1")
    write(work / "models.yaml", SPEC)
    return work


def test_lock_pins_commit_sha256_labels_and_dimension(upstream, workdir: Path, capsys) -> None:  # type: ignore[no-untyped-def]
    mirror, _root, src, commits = upstream
    assert main(["lock", "--endpoint", mirror.url]) == 0
    lock = lockfile.load(workdir / "models.lock")
    fin, emb = lock.models["fin"], lock.models["emb"]
    assert fin.commit == commits["org/fin"] and emb.commit == commits["org/emb"]
    # default selection drops tf_model.h5; include narrows emb to json + safetensors
    assert sorted(fin.files) == ["config.json", "model.safetensors", "tokenizer_config.json", "vocab.txt"]
    assert sorted(emb.files) == ["config.json", "model.safetensors", "tokenizer_config.json"]
    for rel, entry in fin.files.items():
        data = (src["fin"] / rel).read_bytes()
        assert entry.size == len(data)
        assert entry.sha256 == "sha256:" + hashlib.sha256(data).hexdigest(), rel
    # small files are git blobs upstream: their etag is a sha1; the lock must hold the real sha256
    vocab = (src["fin"] / "vocab.txt").read_bytes()
    assert git_sha1(vocab) not in fin.files["vocab.txt"].sha256
    assert fin.labels == ("negative", "neutral", "positive") and fin.dimension is None
    assert emb.labels == () and emb.dimension == 24
    # only small files were downloaded to be hashed; LFS weights were not fetched at all
    stats = mirror.stats.files()
    assert stats["org/fin/vocab.txt"].full_gets == 1
    assert "org/fin/model.safetensors" not in stats
    assert "wrote" in capsys.readouterr().out


def test_relock_is_byte_identical_and_untouched_and_check_passes(upstream, workdir: Path) -> None:  # type: ignore[no-untyped-def]
    mirror, *_ = upstream
    assert main(["lock", "--endpoint", mirror.url]) == 0
    path = workdir / "models.lock"
    first = path.read_bytes()
    os.utime(path, (2_000_000, 2_000_000))
    before = sum(s.full_gets for s in mirror.stats.files().values())
    assert main(["lock", "--endpoint", mirror.url]) == 0
    assert path.read_bytes() == first and path.stat().st_mtime == 2_000_000
    # unchanged commits reuse the old digests: no file was downloaded again
    assert sum(s.full_gets for s in mirror.stats.files().values()) == before
    assert main(["lock", "--endpoint", mirror.url, "--check"]) == 0


def test_check_fails_when_upstream_moves_and_writes_nothing(upstream, workdir: Path, capsys) -> None:  # type: ignore[no-untyped-def]
    mirror, root, src, commits = upstream
    assert main(["lock", "--endpoint", mirror.url]) == 0
    path = workdir / "models.lock"
    first = path.read_bytes()
    (src["fin"] / "vocab.txt").write_text("[PAD]\n[UNK]\nbitcoin\nether\n")
    new_commit = hub_like_root(src["fin"], root, "org/fin")  # moves refs/main
    assert new_commit != commits["org/fin"]
    capsys.readouterr()
    assert main(["lock", "--endpoint", mirror.url, "--check"]) == 1
    err = capsys.readouterr().err
    assert f"fin: org/fin moved {commits['org/fin'][:12]} -> {new_commit[:12]}" in err
    assert path.read_bytes() == first
    assert main(["lock", "--endpoint", mirror.url]) == 0
    assert lockfile.load(path).models["fin"].commit == new_commit
    assert main(["lock", "--endpoint", mirror.url, "--check"]) == 0


def test_check_without_a_lock_fails(upstream, workdir: Path) -> None:  # type: ignore[no-untyped-def]
    mirror, *_ = upstream
    assert main(["lock", "--endpoint", mirror.url, "--check"]) == 1
    assert not (workdir / "models.lock").exists()


def test_missing_repo_upstream_is_named(upstream, workdir: Path, capsys) -> None:  # type: ignore[no-untyped-def]
    mirror, *_ = upstream
    write(workdir / "models.yaml", SPEC + "  ghost:\n    repo_id: org/ghost\n    model_type: sentiment\n")
    assert main(["lock", "--endpoint", mirror.url]) == 1
    err = capsys.readouterr().err
    assert "models.yaml:9: models.ghost: org/ghost@main cannot be locked" in err
    assert "repository not found" in err
    assert not (workdir / "models.lock").exists()


def test_missing_revision_upstream_is_named(upstream, workdir: Path, capsys) -> None:  # type: ignore[no-untyped-def]
    mirror, *_ = upstream
    write(workdir / "models.yaml", "models:\n  fin:\n    repo_id: org/fin\n    revision: v9\n    model_type: sentiment\n")
    assert main(["lock", "--endpoint", mirror.url]) == 1
    assert "org/fin@v9" in capsys.readouterr().err


def test_malformed_spec_exit_code_and_location(workdir: Path, capsys) -> None:  # type: ignore[no-untyped-def]
    write(workdir / "models.yaml", "models:\n  fin:\n    repo_id: org/fin\n    model_type: 3\n")
    assert main(["lock", "--endpoint", "http://127.0.0.1:9"]) == 1
    assert "models.yaml:4: models.fin.model_type" in capsys.readouterr().err
