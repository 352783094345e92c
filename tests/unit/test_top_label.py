"""The top label has one tie rule (pipeline_call.top_index: the first label wins), and every place that
names "the top label" goes through it: the pipeline output, the service's result, the polarity of a
result, the int8 gate's agreement, ``smm analyze`` and the best-first ranking of ``Model`` and the per-symbol label counts."""

from __future__ import annotations

import ast
import json
from pathlib import Path
from types import SimpleNamespace

import pytest

from smart_model_manager import pipeline_call, polarity
from smart_model_manager.model import LoadInfo, Model, RunnerDefaults
from smart_model_manager.onnx.gate import score
from smart_model_manager.service.multi import Route

pytestmark = pytest.mark.unit

SRC = Path(pipeline_call.__file__).parent
LABELS = ("positive", "negative", "neutral")
POLS = ("positive", "negative", "neutral")
TIED = [0.1, 0.45, 0.45]  # negative and neutral tie: negative (the lower label id) is the top label


def test_the_rule() -> None:
    assert pipeline_call.top_index(TIED) == 1
    assert pipeline_call.top_index([0.2, 0.3, 0.5]) == 2
    assert pipeline_call.top_index([1 / 3] * 3) == 0
    with pytest.raises(ValueError, match="at least one"):
        pipeline_call.top_index([])


def test_every_caller_breaks_a_tie_the_same_way() -> None:
    call = pipeline_call.parse({"return_all_scores": False}, "sentiment", classifies=True)
    assert pipeline_call.format_row(LABELS, TIED, call)["label"] == "negative"
    assert polarity.top_polarity(TIED, POLS) == "negative"
    route = SimpleNamespace(model=SimpleNamespace(labels=LABELS), polarity=POLS)
    got = Route.result(route, TIED)
    assert got["label"] == "negative" and got["polarity"] == "negative"
    # the gate: a tie in fp32 and a clear negative in int8 agree; a clear neutral is a flip from negative
    assert score("sentiment", [TIED, TIED], [[0.1, 0.5, 0.4], [0.1, 0.4, 0.5]], labels=LABELS).flips \
        == {"negative -> neutral": 1}
    info = LoadInfo("org/m", "sentiment", "test", "mock", None, None, None, "mock", 0.0)
    class Tied(RunnerDefaults):
        def __call__(self, texts: list[str], options: object = None) -> list[list[float]]:
            return [TIED for _ in texts]

    model = Model(Tied(), model_type="sentiment", labels=LABELS, info=info)
    assert model("x")[0]["label"] == "negative"
    from smart_model_manager.service.symbols import aggregate_symbols

    assert aggregate_symbols([(["BTC"], TIED)], LABELS)["BTC"]["label_counts"]["negative"] == 1


def test_smm_analyze_names_the_same_top_label(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from smart_model_manager import api

    tied = SimpleNamespace(labels=LABELS, raw=lambda texts: [[0.1, 0.4500001, 0.4499999] for _ in texts])
    monkeypatch.setattr(api, "get_model_manager", lambda: SimpleNamespace(load_model=lambda *a: tied))
    src = tmp_path / "news.txt"
    src.write_text("BTC flat\n")
    rows = _analyze_rows(src)
    # rounded to 6 digits the scores tie; the raw scores decide, as everywhere else
    assert rows[0]["label"] == "negative"


def _analyze_rows(src: Path) -> list[dict[str, object]]:
    from click.testing import CliRunner

    from smart_model_manager.cli.main import cli

    out = CliRunner().invoke(cli, ["analyze", "--file", str(src), "--format", "jsonl"], catch_exceptions=False)
    assert out.exit_code == 0, out.output
    return [json.loads(line) for line in out.output.splitlines() if line.startswith("{")]


def test_no_other_copy_of_the_rule() -> None:
    """``max(range(...), key=...)`` is how the copies were spelled; only top_index may spell it now."""
    for path in SRC.rglob("*.py"):
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.Call) and getattr(node.func, "id", None) == "max" and node.args \
                    and isinstance(node.args[0], ast.Call) and getattr(node.args[0].func, "id", None) == "range":
                assert path.name == "pipeline_call.py", f"{path.relative_to(SRC)}:{node.lineno} picks a top label itself"
