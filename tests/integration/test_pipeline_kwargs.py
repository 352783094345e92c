"""``model(text, **pipeline_kwargs)`` against a real ``transformers.pipeline`` on the demo model.

For every supported keyword combination, for a string and for a list: the same structure, the same
labels in the same order, scores within 1e-4 (torch backend). ``max_length`` is checked to be real on
the torch, ONNX and mock runners (a cut text scores like the cut text, not like the whole one).
"""

from __future__ import annotations

import shutil
from pathlib import Path
from typing import Any

import pytest

from smart_model_manager import ModelManager
from smart_model_manager.demo.build import DEMO_REPO_ID
from smart_model_manager.ops.pull import provision_from_folder

pytestmark = [pytest.mark.integration, pytest.mark.ml_models]

TOL = 1e-4
TEXTS = [
    "Bitcoin crashes 20% after exchange hack",
    "Ethereum rallies to a record high as ETF inflows surge",
    "Central bank holds rates steady, markets wait for guidance from the minutes next week",
]
LONG = ("Regulators open an investigation into the exchange after withdrawals were halted; " * 6
        + "but the token later surges to a record high on strong inflows")

# (our keywords, the pipeline's keywords): the same call unless transformers 5 dropped a spelling
COMBOS: list[tuple[dict[str, Any], dict[str, Any]]] = [
    ({"truncation": True, "max_length": 512}, {"truncation": True, "max_length": 512}),  # the original service
    ({"top_k": None}, {"top_k": None}),
    ({"top_k": 1}, {"top_k": 1}),
    ({"top_k": 2}, {"top_k": 2}),
    ({"top_k": 10}, {"top_k": 10}),
    ({"truncation": True}, {"truncation": True}),
    ({"truncation": False}, {"truncation": False}),
    ({"max_length": 16}, {"max_length": 16}),
    ({"truncation": True, "max_length": 8, "top_k": None}, {"truncation": True, "max_length": 8, "top_k": None}),
    ({"padding": True}, {"padding": True}),
    ({"padding": "max_length", "truncation": True, "max_length": 64, "top_k": None},
     {"padding": "max_length", "truncation": True, "max_length": 64, "top_k": None}),
    ({"batch_size": 2, "top_k": None}, {"batch_size": 2, "top_k": None}),
    ({"function_to_apply": "softmax", "top_k": None}, {"function_to_apply": "softmax", "top_k": None}),
    ({"function_to_apply": "sigmoid", "top_k": None}, {"function_to_apply": "sigmoid", "top_k": None}),
    ({"function_to_apply": "none", "top_k": 2}, {"function_to_apply": "none", "top_k": 2}),
    ({"function_to_apply": "sigmoid"}, {"function_to_apply": "sigmoid"}),
]


def assert_same(ours: Any, theirs: Any, where: str = "out") -> None:
    """Same structure, labels and order; scores within TOL."""
    assert type(ours) is type(theirs), f"{where}: {type(ours).__name__} != {type(theirs).__name__}"
    if isinstance(theirs, dict):
        assert set(ours) == set(theirs) == {"label", "score"}, where
        assert ours["label"] == theirs["label"], f"{where}: {ours} != {theirs}"
        assert abs(ours["score"] - theirs["score"]) <= TOL, f"{where}: {ours} != {theirs}"
    else:
        assert len(ours) == len(theirs), f"{where}: {ours} != {theirs}"
        for i, (a, b) in enumerate(zip(ours, theirs)):
            assert_same(a, b, f"{where}[{i}]")


@pytest.fixture(scope="module")
def demo_cache(demo_model_dir: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    cache = tmp_path_factory.mktemp("pipeline-cache")
    provision_from_folder(demo_model_dir, cache, DEMO_REPO_ID, model_type="sentiment")
    return cache


@pytest.fixture
def torch_model(demo_cache: Path, monkeypatch: pytest.MonkeyPatch) -> Any:
    monkeypatch.setenv("MODEL_CACHE_DIR", str(demo_cache))
    model = ModelManager(environment="dev").load_model(DEMO_REPO_ID, backend="torch")
    assert model.info.source == "cache" and model.backend == "torch"
    return model


@pytest.fixture(scope="module")
def pipe(demo_model_dir: Path) -> Any:
    from transformers import pipeline

    return pipeline("text-classification", model=str(demo_model_dir), device=-1)


@pytest.mark.parametrize("ours,theirs", COMBOS, ids=[repr(c[0]) for c in COMBOS])
def test_same_output_as_the_pipeline(torch_model: Any, pipe: Any, ours: dict[str, Any],
                                     theirs: dict[str, Any]) -> None:
    for inputs in (TEXTS[0], TEXTS, [LONG, TEXTS[1]] if ours.get("truncation") is not False else TEXTS[1:]):
        assert_same(torch_model(inputs, **ours), pipe(inputs, **theirs), f"{ours} on {str(inputs)[:30]!r}")


def test_plain_call_is_the_pipeline_with_top_k_none(torch_model: Any, pipe: Any) -> None:
    assert_same(torch_model(TEXTS[0]), pipe(TEXTS[0], top_k=None))
    assert_same(torch_model(TEXTS), pipe(TEXTS, top_k=None))


def test_return_all_scores_is_the_transformers_4_legacy_spelling(torch_model: Any, pipe: Any) -> None:
    # transformers 5 dropped the keyword; in 4.x, True meant every label in label-id order (unsorted),
    # wrapped in a list for a single string, and False meant the legacy top-1 shape.
    def id_order(rows: list[dict[str, Any]]) -> list[dict[str, Any]]:
        return sorted(rows, key=lambda d: torch_model.labels.index(d["label"]))

    assert_same(torch_model(TEXTS[0], return_all_scores=True), [id_order(pipe(TEXTS[0], top_k=None))])
    assert_same(torch_model(TEXTS, return_all_scores=True), [id_order(r) for r in pipe(TEXTS, top_k=None)])
    assert_same(torch_model(TEXTS[0], return_all_scores=False), pipe(TEXTS[0]))
    assert_same(torch_model(TEXTS, return_all_scores=False), pipe(TEXTS))
    # an explicit top_k wins over the legacy spelling, as it did in transformers 4
    assert_same(torch_model(TEXTS[0], return_all_scores=True, top_k=1), pipe(TEXTS[0], top_k=1))


def test_max_length_is_real_on_torch(torch_model: Any, pipe: Any) -> None:
    full = torch_model(LONG, top_k=None)
    cut = torch_model(LONG, max_length=8, top_k=None)
    assert max(abs(a["score"] - b["score"]) for a, b in zip(
        sorted(full, key=lambda d: d["label"]), sorted(cut, key=lambda d: d["label"]))) > 1e-3
    # the cut text scores exactly like the first 6 word pieces + [CLS]/[SEP]
    tok = pipe.tokenizer
    prefix = tok.decode(tok(LONG, truncation=True, max_length=8)["input_ids"][1:-1])
    assert_same(cut, torch_model(prefix, top_k=None))


def test_truncation_false_refuses_a_text_longer_than_the_model(torch_model: Any) -> None:
    very_long = "bitcoin " * 600
    with pytest.raises(ValueError, match=r"texts\[1\] is \d+ tokens long but the model accepts at most 512"):
        torch_model([TEXTS[0], very_long], truncation=False)
    assert torch_model(very_long, truncation=True, max_length=512)[0]["label"] in torch_model.labels


def test_onnx_runner_honours_the_same_keywords(tiny_bert_dir: Path, tmp_path: Path) -> None:
    from smart_model_manager.loaders import load_runner
    from smart_model_manager.model import LoadInfo, Model
    from smart_model_manager.onnx.export import export_onnx

    folder = tmp_path / "tiny"
    shutil.copytree(tiny_bert_dir, folder)
    export_onnx(folder, "sentiment")
    models = [Model(r, model_type="sentiment", labels=r.labels,
                    info=LoadInfo("org/tiny", "sentiment", "dev", "cache", str(folder), None, None, r.backend, 0.0))
              for r in (load_runner(folder, "sentiment", backend="torch"),
                        load_runner(folder, "sentiment", backend="onnx-fp32"))]
    assert [m.backend for m in models] == ["torch", "onnx"]
    torch_m, onnx_m = models
    for kwargs in ({"max_length": 8, "top_k": None}, {"function_to_apply": "none", "top_k": None},
                   {"truncation": True, "max_length": 512}, {"batch_size": 1, "top_k": 2}):
        assert_same(onnx_m([LONG, *TEXTS], **kwargs), torch_m([LONG, *TEXTS], **kwargs), str(kwargs))
    assert onnx_m(LONG, max_length=8, top_k=None) != onnx_m(LONG, top_k=None)  # the cut is real
    with pytest.raises(ValueError, match="accepts at most 128"):
        onnx_m("bitcoin " * 200, truncation=False)
    # the default tokenizer is not changed by a call with another max_length
    assert_same(onnx_m(LONG), torch_m(LONG))


def test_gpu_runner_on_cpu_honours_the_same_options(tiny_bert_dir: Path) -> None:
    from smart_model_manager.loaders.device import DeviceChoice
    from smart_model_manager.loaders.torch import load_torch_runner
    from smart_model_manager.loaders.torch_cuda import load_cuda_runner
    from smart_model_manager.pipeline_call import RunOptions

    cpu = load_torch_runner(tiny_bert_dir, "sentiment", threads=1)
    gpu_path = load_cuda_runner(tiny_bert_dir, "sentiment", threads=1, token_budget=40,
                                choice=DeviceChoice("cpu", "fp32", "cpu", "fp32", "test"))
    texts = [LONG, *TEXTS]
    for options in (RunOptions(max_length=8), RunOptions(logits=True, batch_size=1), RunOptions(truncation=True)):
        for got, want in zip(gpu_path(texts, options), cpu(texts, options)):
            assert got == pytest.approx(want, abs=1e-5), options
    assert gpu_path(texts, RunOptions(max_length=8)) != gpu_path(texts)  # the cut is real
    with pytest.raises(ValueError, match="accepts at most 128"):
        gpu_path(["bitcoin " * 200], RunOptions(truncation=False))
