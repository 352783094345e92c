"""One-step `smm pull ORG/NAME[@REV]` against a real mirror on 127.0.0.1: it adds the model to models.yaml,
locks and pulls it, infers the model type from the config, and writes nothing when it fails."""

from __future__ import annotations

from pathlib import Path

import pytest
from _artifacts_fixtures import closed_port, hub_like_root
from _model_folders import CLASSIFIER, make_model_folder

from smart_model_manager.cli.main import main
from smart_model_manager.formats import lockfile
from smart_model_manager.formats.spec import loads as load_spec
from smart_model_manager.mirror import MirrorServer

pytestmark = pytest.mark.integration


@pytest.fixture
def two_repos(tmp_path: Path):
    root = tmp_path / "upstream"
    fin = make_model_folder(tmp_path / "fin", weights=100_000, architectures=CLASSIFIER, hub_extras=True)
    emb = make_model_folder(tmp_path / "emb", weights=100_000, seed=b"e", architectures=CLASSIFIER, hub_extras=True)
    (emb / "config.json").write_text('{"architectures": ["BertModel"], "hidden_size": 24}')
    commits = {"org/fin": hub_like_root(fin, root, "org/fin"), "org/emb": hub_like_root(emb, root, "org/emb")}
    with MirrorServer(root) as mirror:
        yield mirror, commits


def test_one_step_pull_adds_locks_and_pulls(two_repos, tmp_path: Path, monkeypatch, capsys) -> None:
    import json

    mirror, commits = two_repos
    work = tmp_path / "work"
    work.mkdir()
    monkeypatch.chdir(work)
    cache = tmp_path / "cache"
    assert main(["pull", "org/fin", "--cache-dir", str(cache), "--endpoint", mirror.url, "--json"]) == 0
    out = json.loads(capsys.readouterr().out)
    (m,) = out["models"]
    assert (m["alias"], m["repo_id"], m["commit"]) == ("fin", "org/fin", commits["org/fin"])
    lock = lockfile.load(work / "models.lock")
    assert lock.models["fin"].model_type == "sentiment" and lock.models["fin"].labels[0] == "negative"
    spec = load_spec((work / "models.yaml").read_text(), "models.yaml")
    assert spec.models["fin"].repo_id == "org/fin" and spec.models["fin"].model_type == "sentiment"
    # a second model: type from its config (embeddings), the first stays; `smm lock` keeps both
    assert main(["pull", "org/emb@main", "--cache-dir", str(cache), "--endpoint", mirror.url]) == 0
    capsys.readouterr()
    lock = lockfile.load(work / "models.lock")
    assert sorted(lock.models) == ["emb", "fin"] and lock.models["emb"].model_type == "embeddings"
    before = (work / "models.lock").read_bytes()
    assert main(["lock", "--endpoint", mirror.url, "--check", "--json"]) == 0
    check = json.loads(capsys.readouterr().out)
    assert check["up_to_date"] is True and sorted(check["models"]) == ["emb", "fin"]
    assert (work / "models.lock").read_bytes() == before


def test_one_step_pull_failure_writes_nothing(tmp_path: Path, monkeypatch, capsys) -> None:
    monkeypatch.chdir(tmp_path)
    code = main(["pull", "org/fin", "--cache-dir", str(tmp_path / "cache"), "--endpoint", closed_port()])
    assert code == 1
    assert not (tmp_path / "models.yaml").exists() and not (tmp_path / "models.lock").exists()
    assert main(["pull", "not a repo"]) == 2
    assert "expected ORG/NAME or ORG/NAME@REVISION" in capsys.readouterr().err
