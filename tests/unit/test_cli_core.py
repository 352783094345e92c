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
