"""Adding a model type with an existing head is one registration in registry.py (docs/design.md, "How to add
a model type"): the mocks, the loaders, the ONNX export and its int8 gate all ask the type's head, never its
name. Here a test-only ``topic`` type (a classifier with its own default labels) goes through each of them.
"""

from __future__ import annotations

import shutil
from collections.abc import Iterator
from pathlib import Path

import pytest

from smart_model_manager import registry
from smart_model_manager.api import ModelManager
from smart_model_manager.errors import UnknownModelTypeError
from smart_model_manager.registry import CLASSIFICATION, ModelType, register_model_type
from smart_model_manager.settings import Settings

pytestmark = pytest.mark.unit
TOPICS = ("crypto", "macro", "equities")


@pytest.fixture()
def topic(monkeypatch: pytest.MonkeyPatch) -> Iterator[ModelType]:
    """Register ``topic`` for one test (the registry is restored afterwards)."""
    monkeypatch.setattr(registry, "_REGISTRY", dict(registry._REGISTRY))
    mt = ModelType("topic", "text-classification", CLASSIFICATION, default_labels=TOPICS,
                   description="news topic; every topic with its score, best first")
    register_model_type(mt)
    yield mt


def test_the_head_decides_everything_the_layers_ask(topic: ModelType) -> None:
    assert topic.has_labels and topic.classifies and not topic.pools
    assert "topic" in registry.runnable_types() and "topic" in registry.model_types()
    with pytest.raises(ValueError, match="head 'crf' is not one of"):
        ModelType("ner", "token-classification", "crf")


def test_the_mock_serves_it_with_its_default_labels(topic: ModelType, tmp_path: Path) -> None:
    model = ModelManager("test", settings=Settings(cache_dir=tmp_path)).load_model("org/topic-model", "topic")
    assert model.labels == TOPICS and model.info.backend == "mock"
    out = model(["BTC ETF inflows", "rates on hold"])
    assert [sorted(d["label"] for d in row) for row in out] == [sorted(TOPICS)] * 2
    assert all(abs(sum(d["score"] for d in row) - 1) < 1e-6 for row in out)


def test_its_int8_gate_is_its_heads_gate(topic: ModelType) -> None:
    from smart_model_manager.onnx.quantize import GATE_METRICS, GATE_THRESHOLDS, gate

    fp32 = [[0.7, 0.2, 0.1], [0.1, 0.8, 0.1]] * 50
    int8 = [[0.69, 0.21, 0.1], [0.1, 0.79, 0.11]] * 50
    result = gate("topic", fp32, int8, GATE_THRESHOLDS[CLASSIFICATION], "all", labels=TOPICS)
    assert result.metric == GATE_METRICS[CLASSIFICATION] == "label_agreement"
    assert result.value == 1.0 and result.details["agree"] == 100


def test_a_type_without_a_head_is_refused_by_the_export(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    from smart_model_manager.onnx.export import export_onnx

    monkeypatch.setattr(registry, "_REGISTRY", dict(registry._REGISTRY))
    register_model_type(ModelType("ner", "token-classification"))
    with pytest.raises(UnknownModelTypeError, match="no head a runner runs; exportable types: sentiment, embeddings"):
        export_onnx(tmp_path, "ner")


def test_torch_and_the_onnx_export_run_it(topic: ModelType, tiny_bert_dir: Path, tmp_path: Path) -> None:
    from smart_model_manager.loaders import load_runner
    from smart_model_manager.onnx.export import export_onnx

    folder = tmp_path / "topic-model"
    shutil.copytree(tiny_bert_dir, folder)
    model = ModelManager("dev", settings=Settings(cache_dir=tmp_path / "cache")).load_model(
        str(folder), "topic", backend="torch")
    assert model.info.backend == "torch" and len(model.labels) == 3  # the checkpoint's own labels
    report = export_onnx(folder, "topic", int8=False)
    assert report.model_type == "topic" and report.fp32_max_abs_diff < 1e-3
    texts = ["Bitcoin rallies", "Fed holds rates"]
    torch_rows = load_runner(folder, "topic", backend="torch")(texts)
    onnx_rows = load_runner(folder, "topic", backend="onnx-fp32")(texts)
    assert max(abs(a - b) for r, s in zip(torch_rows, onnx_rows) for a, b in zip(r, s)) < 1e-4


def test_docs_design_states_the_count_this_test_proves() -> None:
    design = Path(__file__).resolve().parents[2] / "docs" / "design.md"
    assert '**A model type with an existing head** (a news-topic classifier, say): **1 file**' in design.read_text()
