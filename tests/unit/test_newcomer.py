"""The newcomer's path (issue 11): mistakes are caught early and said plainly, in-process CLI tests."""

from __future__ import annotations

from pathlib import Path

import pytest

from smart_model_manager.cli.main import main
from smart_model_manager.demo import build as demo

pytestmark = pytest.mark.unit


def _never(*args: object, **kwargs: object) -> None:
    raise AssertionError("training started although the target cannot be written")


@pytest.mark.parametrize("flag", ["--target", "--cache-dir"])
def test_build_demo_checks_the_destination_before_training(flag: str, tmp_path: Path, capsys,
                                                           monkeypatch) -> None:  # type: ignore[no-untyped-def]
    monkeypatch.setattr(demo, "build_demo_model", _never)
    blocker = tmp_path / "a-file"
    blocker.write_text("not a folder")
    dest = blocker / "vol"
    assert main(["models", "build-demo", flag, str(dest)]) == 1
    err = capsys.readouterr().err
    assert f"{dest} is not writable" in err
    assert "building the demo model" not in err


# --- one default model ----------------------------------------------------------------------------

def test_library_default_model_is_finbert_unless_smm_model(monkeypatch) -> None:  # type: ignore[no-untyped-def]
    from smart_model_manager import ModelManager

    m = ModelManager(environment="test").load_model()
    assert (m.info.repo_id, m.info.alias) == ("ProsusAI/finbert", "finbert")
    monkeypatch.setenv("SMM_MODEL", "finbert-demo")
    m = ModelManager(environment="test").load_model()
    assert m.info.repo_id == "smart-model-manager/finbert-mini-demo"
    assert ModelManager(environment="test").resolve().repo_id == "smart-model-manager/finbert-mini-demo"


@pytest.mark.parametrize(("smm_model", "repo"), [(None, "ProsusAI/finbert"),
                                                 ("finbert-demo", "smart-model-manager/finbert-mini-demo")])
def test_analyze_uses_the_same_default(smm_model: str | None, repo: str, capsys, monkeypatch) -> None:  # type: ignore[no-untyped-def]
    if smm_model:
        monkeypatch.setenv("SMM_MODEL", smm_model)
    assert main(["analyze", "--format", "table", "BTC surges"]) == 0
    assert f"model {repo} @" in capsys.readouterr().out


def test_default_model_not_found_offline_suggests_the_demo_model(capsys, monkeypatch) -> None:  # type: ignore[no-untyped-def]
    monkeypatch.setenv("SMM_ENV", "dev")
    monkeypatch.setenv("SMM_OFFLINE", "1")
    assert main(["analyze", "BTC up"]) == 1
    err = capsys.readouterr().err
    assert "'finbert' is the default model" in err and "--model finbert-demo" in err


# --- stdin and files --------------------------------------------------------------------------------

def _stdin(monkeypatch, data: bytes) -> None:  # type: ignore[no-untyped-def]
    import io
    import sys

    monkeypatch.setattr(sys, "stdin", io.TextIOWrapper(io.BytesIO(data), encoding="utf-8"))


@pytest.mark.parametrize("args", [["-"], []])
def test_analyze_reads_headlines_from_stdin(args: list[str], capsys, monkeypatch) -> None:  # type: ignore[no-untyped-def]
    import json

    _stdin(monkeypatch, b"Bitcoin crashes 20% after exchange hack\n\nETF inflows push BTC to a record high\n")
    assert main(["analyze", "--format", "jsonl", *args]) == 0
    rows = [json.loads(line) for line in capsys.readouterr().out.splitlines()]
    assert [r["text"] for r in rows] == ["Bitcoin crashes 20% after exchange hack",
                                         "ETF inflows push BTC to a record high"]
    assert [r["id"] for r in rows] == [1, 3] and rows[0]["symbols"] == ["BTC"]


def test_analyze_empty_stdin_is_a_usage_error(capsys, monkeypatch) -> None:  # type: ignore[no-untyped-def]
    _stdin(monkeypatch, b"\n  \n")
    assert main(["analyze", "-"]) == 2
    assert "<stdin> holds no headlines" in capsys.readouterr().err


def test_analyze_binary_file_names_the_file_and_line(tmp_path: Path, capsys) -> None:  # type: ignore[no-untyped-def]
    f = tmp_path / "model.bin"
    f.write_bytes(b"fine first line\n\x89PNG\r\n\x1a\n\xff\xfe\x00")
    assert main(["analyze", "--file", str(f)]) == 2
    err = capsys.readouterr().err
    assert f"{f}:2: not UTF-8 text" in err and "Traceback" not in err


# --- local folders ----------------------------------------------------------------------------------

def _folder(tmp_path: Path, archs: list[str], name: str = "my-model") -> Path:
    import json

    d = tmp_path / name
    d.mkdir()
    (d / "config.json").write_text(json.dumps({"architectures": archs, "hidden_size": 16,
                                               "id2label": {"0": "bearish", "1": "bullish"}}))
    (d / "model.safetensors").write_bytes(b"weights" * 100)
    return d


def test_a_folder_resolves_in_dev_hashed_with_the_import_commit(tmp_path: Path, monkeypatch) -> None:  # type: ignore[no-untyped-def]
    from smart_model_manager import ModelManager
    from smart_model_manager.store import cache as store

    d = _folder(tmp_path, ["BertForSequenceClassification"])
    monkeypatch.chdir(tmp_path)
    r = ModelManager(environment="dev").resolve("./my-model")
    imported = store.import_folder(d, tmp_path / "cache", "org/my-model")
    assert (r.source, r.path, r.repo_id) == ("folder", d.resolve(), str(d.resolve()))
    assert r.commit == imported.commit and r.labels == ("bearish", "bullish")
    assert sorted(r.files) == ["config.json", "model.safetensors"] and r.verified == "full"
    assert r.files["model.safetensors"].sha256 == "sha256:" + imported.files["model.safetensors"][1]


def test_a_folder_is_refused_in_production_and_a_mock_in_tests(tmp_path: Path) -> None:
    from smart_model_manager import ConfigurationError, ModelManager

    d = _folder(tmp_path, ["BertForSequenceClassification"])
    with pytest.raises(ConfigurationError, match="production loads only from the verified volume"):
        ModelManager(environment="production").resolve(str(d))
    m = ModelManager(environment="test").load_model(str(d))
    assert m.info.source == "mock" and m.labels == ("bearish", "bullish")


def test_folder_spelling_rules_and_errors(tmp_path: Path, monkeypatch) -> None:  # type: ignore[no-untyped-def]
    from smart_model_manager import ConfigurationError, ModelManager, ModelNotFoundError
    from smart_model_manager.sources.folder import is_folder_ref

    assert [is_folder_ref(n) for n in ("./m", "../m", "/abs/m", "~/m", ".", "a/b/c")] == [True] * 6
    assert [is_folder_ref(n) for n in ("my-model", "org/name", "finbert")] == [False] * 3
    monkeypatch.chdir(tmp_path)
    with pytest.raises(ConfigurationError, match="does not exist"):
        ModelManager(environment="dev").resolve("./nope")
    (tmp_path / "empty").mkdir()
    with pytest.raises(ConfigurationError, match="has no config.json"):
        ModelManager(environment="dev").resolve("./empty")
    _folder(tmp_path, ["BertForSequenceClassification"])
    monkeypatch.setenv("SMM_OFFLINE", "1")
    with pytest.raises(ModelNotFoundError, match=r"write \./my-model to load it"):
        ModelManager(environment="dev").resolve("my-model")  # a bare name stays a repo id


# --- no silent wrong answers ------------------------------------------------------------------------

def test_a_classifier_is_refused_as_embeddings_before_any_weights_load(tmp_path: Path) -> None:
    from smart_model_manager import ConfigurationError, ModelManager

    d = _folder(tmp_path, ["BertForSequenceClassification"])
    with pytest.raises(ConfigurationError, match=r"cannot be loaded as 'embeddings'.*load it as 'sentiment'"):
        ModelManager(environment="dev").load_model(str(d), "embeddings")
    enc = _folder(tmp_path, ["BertModel"], name="encoder")
    with pytest.raises(ConfigurationError, match="no sequence-classification head"):
        ModelManager(environment="dev").load_model(str(enc), "sentiment")


def test_config_mismatch_rules() -> None:
    from smart_model_manager.registry import config_mismatch

    assert config_mismatch("sentiment", {"architectures": ["BertForSequenceClassification"]}) is None
    assert config_mismatch("embeddings", {"architectures": ["BertModel"]}) is None
    assert config_mismatch("embeddings", {}) is None  # nothing declared: nothing to judge
    assert "classifier" in (config_mismatch("embeddings", {"architectures": ["RobertaForSequenceClassification"]}) or "")


# --- typos --------------------------------------------------------------------------------------------

@pytest.mark.parametrize("command", ["ls", "prune"])
def test_ls_and_prune_on_a_missing_dir_exit_2(command: str, tmp_path: Path, capsys) -> None:  # type: ignore[no-untyped-def]
    assert main([command, "--dir", str(tmp_path / "no-such-volume")]) == 2
    assert "does not exist" in capsys.readouterr().err


def test_testing_maybe_warns_and_is_ignored(caplog) -> None:  # type: ignore[no-untyped-def]
    from smart_model_manager.settings import Settings
    from smart_model_manager.sources.environment import detect

    with caplog.at_level("WARNING", logger="smart_model_manager.sources.environment"):
        d = detect(Settings.from_env({"TESTING": "maybe", "MODEL_CACHE_DIR": "/nonexistent-cache"}))
    assert d.environment == "hub"
    assert any("TESTING='maybe' is not a boolean" in r.getMessage() for r in caplog.records)


def test_a_near_miss_alias_is_refused_before_any_network(capsys, monkeypatch) -> None:  # type: ignore[no-untyped-def]
    from smart_model_manager import ConfigurationError, ModelManager

    with pytest.raises(ConfigurationError, match="did you mean 'finbert'"):
        ModelManager(environment="test").load_model("finbrt")
    # outside tests too; HF_ENDPOINT is a closed port here, so a network attempt would say "Sources tried"
    monkeypatch.setenv("SMM_ENV", "dev")
    assert main(["analyze", "--model", "finbrt", "BTC up"]) == 2
    err = capsys.readouterr().err
    assert "did you mean 'finbert'" in err and "Sources tried" not in err
    assert ModelManager(environment="test").load_model("bert-base-uncased").info.repo_id == "bert-base-uncased"


# --- messages that drifted ------------------------------------------------------------------------

@pytest.mark.parametrize(("value", "expected"), [("0", 0), ("5", 5), ("", 3)])
def test_smm_retries_accepts_zero(value: str, expected: int) -> None:
    from smart_model_manager.settings import Settings

    assert Settings.from_env({"SMM_RETRIES": value}).retries == expected


def test_smm_retries_negative_says_ge_0() -> None:
    from smart_model_manager import ConfigurationError
    from smart_model_manager.settings import Settings

    with pytest.raises(ConfigurationError, match=r"SMM_RETRIES='-1' must be >= 0"):
        Settings.from_env({"SMM_RETRIES": "-1"})


def test_env_shows_the_thread_count_that_will_be_used(capsys, monkeypatch) -> None:  # type: ignore[no-untyped-def]
    import json

    from smart_model_manager.loaders.cpu import default_threads

    assert main(["env", "--json"]) == 0
    info = json.loads(capsys.readouterr().out)
    assert info["num_threads"] == default_threads() and info["num_threads"] >= 1
    monkeypatch.setenv("SMM_NUM_THREADS", "3")
    assert main(["env", "--json"]) == 0
    info = json.loads(capsys.readouterr().out)
    assert (info["num_threads"], info["num_threads_from"]) == (3, "SMM_NUM_THREADS")


# --- 80 columns ---------------------------------------------------------------------------------------

def test_pull_progress_fits_80_columns() -> None:
    import io

    from rich.console import Console

    from smart_model_manager.cli.artifacts import _RichProgress

    console = Console(width=80, color_system=None, record=True, file=io.StringIO())
    bars = _RichProgress(console)
    bars.start("sentence-transformers/all-MiniLM-L6-v2/onnx/model.int8.onnx", 23_000_000)
    bars.start("ProsusAI/finbert/config.json", 758)
    bars.advance("sentence-transformers/all-MiniLM-L6-v2/onnx/model.int8.onnx", 5_000_000)
    bars.close()
    lines = [line for line in console.export_text().splitlines() if line.strip()]
    assert len(lines) == 2 and all(len(line) <= 80 for line in lines)  # one line per file, no wrap
    assert "5.0/23.0 MB" in lines[0] and lines[0].startswith("sentence-transformers/all-MiniLM")


def test_analyze_table_header_fits_80_columns(capsys, monkeypatch) -> None:  # type: ignore[no-untyped-def]
    assert main(["analyze", "--format", "table", "BTC surges"]) == 0
    out = capsys.readouterr().out.splitlines()
    assert out[0] == "model ProsusAI/finbert @ -" and out[1].startswith("  env=test source=mock")
    assert len(out[0]) <= 80 and len(out[1]) <= 80
