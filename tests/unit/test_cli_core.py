"""`smm env`, `smm analyze`, exit codes and error messages, tested in-process."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from smart_model_manager.cli.main import main

pytestmark = pytest.mark.unit


def run(capsys, *argv: str) -> tuple[int, str, str]:
    code = main(list(argv))
    out, err = capsys.readouterr()
    return code, out, err


def test_env_json_reports_environment_reason_and_settings(capsys):
    code, out, _ = run(capsys, "env", "--json")
    rep = json.loads(out)
    assert code == 0
    assert rep["environment"] == "test" and "PYTEST_CURRENT_TEST" in rep["reason"]
    for key in ("cache_dir", "cache_dir_writable", "volume_dir", "endpoint", "offline", "sources"):
        assert key in rep


def test_env_text(capsys):
    code, out, _ = run(capsys, "env")
    assert code == 0 and out.startswith("environment: test")


def test_bad_environment_value_is_a_usage_error_without_traceback(capsys, monkeypatch):
    monkeypatch.setenv("SMM_ENV", "prod")
    code, _, err = run(capsys, "env")
    assert code == 2
    assert "valid values: test, dev, ci, production, hub" in err and "Traceback" not in err


def test_debug_shows_the_traceback(monkeypatch):
    monkeypatch.setenv("SMM_ENV", "prod")
    monkeypatch.setenv("SMM_DEBUG", "1")
    from smart_model_manager import ConfigurationError

    with pytest.raises(ConfigurationError):
        main(["env"])


def test_analyze_arguments_jsonl(capsys):
    code, out, _ = run(capsys, "analyze", "--format", "jsonl", "Bitcoin crashes 20% after exchange hack",
                       "ETF inflows push BTC to a record high")
    rows = [json.loads(line) for line in out.splitlines()]
    assert code == 0 and [r["label"] for r in rows] == ["negative", "positive"]
    assert rows[0]["symbols"] == ["BTC"] and set(rows[0]["scores"]) == {"positive", "negative", "neutral"}


def test_analyze_file_txt_and_jsonl_with_symbols(capsys, tmp_path: Path):
    txt = tmp_path / "h.txt"
    txt.write_text("Bitcoin crashes after hack\n\nEther rallies to record high\n")
    code, out, _ = run(capsys, "analyze", "--file", str(txt), "--symbols", "--format", "jsonl")
    lines = [json.loads(x) for x in out.splitlines()]
    assert code == 0 and len(lines) == 3
    assert set(lines[-1]["symbols"]) == {"BTC", "ETH"}
    js = tmp_path / "h.jsonl"
    js.write_text('{"id": "a", "text": "Solana plunges", "symbols": ["sol"]}\n')
    code, out, _ = run(capsys, "analyze", "--file", str(js), "--format", "jsonl")
    assert code == 0 and json.loads(out)["symbols"] == ["SOL"] and json.loads(out)["id"] == "a"


def test_analyze_table_output(capsys):
    code, out, _ = run(capsys, "analyze", "--format", "table", "--symbols", "BTC surges")
    assert code == 0 and "BTC" in out and "per symbol" in out and "source=mock" in out
    assert max(len(line) for line in out.splitlines()) <= 100


@pytest.mark.parametrize("content,match", [
    ('{"text": ""}\n', "h.jsonl:1"),
    ('not json\n', "h.jsonl:1: invalid JSON"),
    ('{"id": 1}\n', 'non-empty "text"'),
])
def test_analyze_bad_file_names_file_and_line(capsys, tmp_path: Path, content, match):
    f = tmp_path / "h.jsonl"
    f.write_text(content)
    code, _, err = run(capsys, "analyze", "--file", str(f))
    assert code == 2 and match in err


def test_analyze_without_input_is_a_usage_error(capsys):
    code, _, err = run(capsys, "analyze")
    assert code == 2 and "no headlines" in err


def test_unknown_model_outside_tests_exits_1_with_what_was_tried(capsys, monkeypatch):
    monkeypatch.setenv("SMM_ENV", "dev")
    monkeypatch.setenv("SMM_OFFLINE", "1")
    code, _, err = run(capsys, "analyze", "--model", "org/nope", "BTC up")
    assert code == 1 and "model not found" in err and "Sources tried" in err and "Traceback" not in err


@pytest.mark.parametrize(("smm_model", "repo"), [(None, "ProsusAI/finbert"),
                                                 ("finbert-demo", "smart-model-manager/finbert-mini-demo")])
def test_analyze_uses_the_same_default(smm_model: str | None, repo: str, capsys, monkeypatch) -> None:
    if smm_model:
        monkeypatch.setenv("SMM_MODEL", smm_model)
    assert main(["analyze", "--format", "table", "BTC surges"]) == 0
    assert f"model {repo} @" in capsys.readouterr().out


def test_default_model_not_found_offline_suggests_the_demo_model(capsys, monkeypatch) -> None:
    monkeypatch.setenv("SMM_ENV", "dev")
    monkeypatch.setenv("SMM_OFFLINE", "1")
    assert main(["analyze", "BTC up"]) == 1
    err = capsys.readouterr().err
    assert "'finbert' is the default model" in err and "--model finbert-demo" in err


def _stdin(monkeypatch, data: bytes) -> None:
    import io
    import sys

    monkeypatch.setattr(sys, "stdin", io.TextIOWrapper(io.BytesIO(data), encoding="utf-8"))


@pytest.mark.parametrize("args", [["-"], []])
def test_analyze_reads_headlines_from_stdin(args: list[str], capsys, monkeypatch) -> None:
    import json

    _stdin(monkeypatch, b"Bitcoin crashes 20% after exchange hack\n\nETF inflows push BTC to a record high\n")
    assert main(["analyze", "--format", "jsonl", *args]) == 0
    rows = [json.loads(line) for line in capsys.readouterr().out.splitlines()]
    assert [r["text"] for r in rows] == ["Bitcoin crashes 20% after exchange hack",
                                         "ETF inflows push BTC to a record high"]
    assert [r["id"] for r in rows] == [1, 3] and rows[0]["symbols"] == ["BTC"]


def test_analyze_empty_stdin_is_a_usage_error(capsys, monkeypatch) -> None:
    _stdin(monkeypatch, b"\n  \n")
    assert main(["analyze", "-"]) == 2
    assert "<stdin> holds no headlines" in capsys.readouterr().err


def test_analyze_binary_file_names_the_file_and_line(tmp_path: Path, capsys) -> None:
    f = tmp_path / "model.bin"
    f.write_bytes(b"fine first line\n\x89PNG\r\n\x1a\n\xff\xfe\x00")
    assert main(["analyze", "--file", str(f)]) == 2
    err = capsys.readouterr().err
    assert f"{f}:2: not UTF-8 text" in err and "Traceback" not in err


def test_env_shows_the_thread_count_that_will_be_used(capsys, monkeypatch) -> None:
    import json

    from smart_model_manager.loaders.cpu import default_threads

    assert main(["env", "--json"]) == 0
    info = json.loads(capsys.readouterr().out)
    assert info["num_threads"] == default_threads() and info["num_threads"] >= 1
    monkeypatch.setenv("SMM_NUM_THREADS", "3")
    assert main(["env", "--json"]) == 0
    info = json.loads(capsys.readouterr().out)
    assert (info["num_threads"], info["num_threads_from"]) == (3, "SMM_NUM_THREADS")


def test_analyze_table_header_fits_80_columns(capsys, monkeypatch) -> None:
    assert main(["analyze", "--format", "table", "BTC surges"]) == 0
    out = capsys.readouterr().out.splitlines()
    assert out[0] == "model ProsusAI/finbert @ -" and out[1].startswith("  env=test source=mock")
    assert len(out[0]) <= 80 and len(out[1]) <= 80
