"""`smm lock` / `smm pull` on the newcomer's path (issue 11), in-process against a real mirror on
127.0.0.1: only what happened is printed, failures end with one line saying what to try, no empty
bookkeeping folder is left, a wrong model_type is refused, `--check` without a lock needs no network."""

from __future__ import annotations

from pathlib import Path

import pytest

from smart_model_manager.cli.main import main
from smart_model_manager.formats import lockfile
from smart_model_manager.formats.spec import loads as load_spec
from smart_model_manager.mirror import MirrorServer
from smart_model_manager.ops.lock import resolve_lock

try:
    from ._artifacts_fixtures import closed_port, hub_like_root, make_sentiment_folder, write
except ImportError:
    from _artifacts_fixtures import closed_port, hub_like_root, make_sentiment_folder, write

pytestmark = pytest.mark.integration

SPEC = "models:\n  fin:\n    repo_id: org/fin\n    model_type: sentiment\n"


@pytest.fixture
def upstream(tmp_path: Path):  # type: ignore[no-untyped-def]
    root = tmp_path / "upstream"
    hub_like_root(make_sentiment_folder(tmp_path / "src", weights=200_000), root, "org/fin")
    with MirrorServer(root) as mirror:
        lock = resolve_lock(load_spec(SPEC, "models.yaml"), mirror.url, timeout=10, retries=0)
        path = tmp_path / "models.lock"
        lockfile.write_lock(path, lock)
        yield mirror, path


def test_failed_pull_prints_no_fetched_line_and_ends_with_what_to_try(upstream, tmp_path: Path,
                                                                     capsys) -> None:  # type: ignore[no-untyped-def]
    _mirror, lock_path = upstream
    vol = tmp_path / "vol"
    code = main(["pull", "--lock", str(lock_path), "--target", str(vol), "--endpoint", closed_port(),
                 "--no-progress"])
    err = capsys.readouterr().err
    assert code == 1
    assert "fetched" not in err  # nothing was fetched, so nothing says so
    last = err.strip().splitlines()[-1]
    assert last.startswith("smm pull failed: a download from http://127.0.0.1:")
    assert "Try: check that the endpoint is reachable" in last
    assert not (vol / ".staging").exists() and not (vol / "model-metadata.yaml").exists()


def test_good_pull_says_fetched_and_leaves_no_staging_folder(upstream, tmp_path: Path,
                                                            capsys) -> None:  # type: ignore[no-untyped-def]
    mirror, lock_path = upstream
    vol = tmp_path / "vol"
    assert main(["pull", "--lock", str(lock_path), "--target", str(vol), "--endpoint", mirror.url]) == 0
    err = capsys.readouterr().err
    assert err.count("fetched org/fin/") == len(lockfile.load(lock_path).models["fin"].files)
    assert not (vol / ".staging").exists()
    assert sorted(p.name for p in vol.iterdir()) == [".locks", "model-metadata.yaml", "models--org--fin"]


def test_lock_check_without_a_lock_needs_no_network(tmp_path: Path, monkeypatch, capsys) -> None:  # type: ignore[no-untyped-def]
    monkeypatch.chdir(tmp_path)
    write(tmp_path / "models.yaml", SPEC)
    # a closed port: any request would fail with a connection error, not with this message
    assert main(["lock", "--check", "--endpoint", closed_port()]) == 1
    err = capsys.readouterr().err
    assert err.strip() == "models.lock does not exist; create it with `smm lock` and commit it"


def test_lock_refuses_a_classifier_declared_as_embeddings(upstream, tmp_path: Path, monkeypatch,
                                                         capsys) -> None:  # type: ignore[no-untyped-def]
    mirror, _ = upstream
    work = tmp_path / "work"
    write(work / "models.yaml", "models:\n  fin:\n    repo_id: org/fin\n    model_type: embeddings\n")
    monkeypatch.chdir(work)
    assert main(["lock", "--endpoint", mirror.url]) == 1
    err = capsys.readouterr().err
    assert "models.yaml:2: models.fin: org/fin@" in err
    assert "cannot be locked as model_type 'embeddings'" in err and "load it as 'sentiment'" in err
    assert not (work / "models.lock").exists()


# --- one-step pull and --json ---------------------------------------------------------------------

@pytest.fixture
def two_repos(tmp_path: Path):  # type: ignore[no-untyped-def]
    root = tmp_path / "upstream"
    fin = make_sentiment_folder(tmp_path / "fin", weights=100_000)
    emb = make_sentiment_folder(tmp_path / "emb", weights=100_000, seed=b"e")
    (emb / "config.json").write_text('{"architectures": ["BertModel"], "hidden_size": 24}')
    commits = {"org/fin": hub_like_root(fin, root, "org/fin"), "org/emb": hub_like_root(emb, root, "org/emb")}
    with MirrorServer(root) as mirror:
        yield mirror, commits


def test_one_step_pull_adds_locks_and_pulls(two_repos, tmp_path: Path, monkeypatch, capsys) -> None:  # type: ignore[no-untyped-def]
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


def test_one_step_pull_failure_writes_nothing(tmp_path: Path, monkeypatch, capsys) -> None:  # type: ignore[no-untyped-def]
    monkeypatch.chdir(tmp_path)
    code = main(["pull", "org/fin", "--cache-dir", str(tmp_path / "cache"), "--endpoint", closed_port()])
    assert code == 1
    assert not (tmp_path / "models.yaml").exists() and not (tmp_path / "models.lock").exists()
    assert main(["pull", "not a repo"]) == 2
    assert "expected ORG/NAME or ORG/NAME@REVISION" in capsys.readouterr().err


def test_lock_json(upstream, tmp_path: Path, monkeypatch, capsys) -> None:  # type: ignore[no-untyped-def]
    import json

    mirror, _ = upstream
    work = tmp_path / "work"
    write(work / "models.yaml", SPEC)
    monkeypatch.chdir(work)
    assert main(["lock", "--endpoint", mirror.url, "--json"]) == 0
    out = json.loads(capsys.readouterr().out)
    assert out["written"] is True and out["models"]["fin"]["repo_id"] == "org/fin"
    assert out["models"]["fin"]["files"] == len(lockfile.load(work / "models.lock").models["fin"].files)
