"""Pipeline keywords on Model: validation, output shapes, options reaching the runner (mock runners).

The same calls are compared with a real ``transformers.pipeline`` in
tests/integration/test_pipeline_kwargs.py; here the shapes are pinned without torch.
"""

from __future__ import annotations

import math

import pytest

from smart_model_manager import ModelManager
from smart_model_manager.errors import BackendError
from smart_model_manager.model import LoadInfo, Model, RunnerDefaults
from smart_model_manager.pipeline_call import ACCEPTED, RunOptions

pytestmark = pytest.mark.unit

NEG = "Bitcoin crashes 20% after exchange hack"
POS = "ETF inflows push BTC to a record high"


@pytest.fixture
def finbert() -> Model:
    return ModelManager(environment="test").load_model("ProsusAI/finbert")


def test_plain_call_keeps_the_model_contract(finbert: Model) -> None:
    out = finbert(NEG)
    assert [d["label"] for d in out][0] == "negative" and len(out) == 3
    assert finbert([NEG, POS]) == [finbert(NEG), finbert(POS)]


def test_legacy_default_is_top1_wrapped_for_a_string(finbert: Model) -> None:
    best = finbert(NEG)[0]
    assert finbert(NEG, truncation=True, max_length=512) == [best]
    assert finbert([NEG, POS], truncation=True) == [finbert(NEG)[0], finbert(POS)[0]]


@pytest.mark.parametrize("k,n", [(None, 3), (1, 1), (2, 2), (7, 3)])
def test_top_k_shapes(finbert: Model, k: int | None, n: int) -> None:
    one = finbert(NEG, top_k=k)
    assert isinstance(one, list) and len(one) == n and all(isinstance(d, dict) for d in one)
    assert one == finbert(NEG)[:n]  # best first
    many = finbert([NEG, POS], top_k=k)
    assert [len(r) for r in many] == [n, n] and many[1] == finbert(POS)[:n]


def test_return_all_scores_is_label_id_order_and_wrapped(finbert: Model) -> None:
    out = finbert(NEG, return_all_scores=True)
    assert len(out) == 1 and [d["label"] for d in out[0]] == list(finbert.labels)
    many = finbert([NEG, POS], return_all_scores=True)
    assert [[d["label"] for d in r] for r in many] == [list(finbert.labels)] * 2
    assert finbert(NEG, return_all_scores=False) == [finbert(NEG)[0]]
    assert finbert(NEG, return_all_scores=True, top_k=1) == [finbert(NEG)[0]]  # top_k wins


def test_function_to_apply(finbert: Model) -> None:
    probs = {d["label"]: d["score"] for d in finbert(NEG)}
    logits = {d["label"]: d["score"] for d in finbert(NEG, function_to_apply="none", top_k=None)}
    sig = {d["label"]: d["score"] for d in finbert(NEG, function_to_apply="SIGMOID", top_k=None)}
    z = sum(math.exp(v) for v in logits.values())
    for lab in probs:
        assert probs[lab] == pytest.approx(math.exp(logits[lab]) / z, abs=1e-12)
        assert sig[lab] == pytest.approx(1 / (1 + math.exp(-logits[lab])), abs=1e-12)
    assert {d["label"]: d["score"] for d in finbert(NEG, function_to_apply="softmax", top_k=None)} == probs
    with pytest.raises(ValueError, match="function_to_apply must be one of softmax, sigmoid, none"):
        finbert(NEG, function_to_apply="relu")


def test_max_length_is_real_on_the_mock(finbert: Model) -> None:
    text = "calm day " * 5 + "crash " * 3 + "surge " * 10
    assert finbert(text)[0]["label"] == "positive"
    cut = finbert(text, max_length=15, top_k=None)  # 13 words survive: the crashes, not the surges
    assert cut[0]["label"] == "negative"
    assert cut == finbert("calm day " * 5 + "crash crash crash", top_k=None)
    with pytest.raises(ValueError, match=r"texts\[1\] is 602 tokens long but the model accepts at most 512"):
        finbert([NEG, "word " * 600], truncation=False)
    assert finbert("word " * 600, truncation="longest_first")[0]["label"] == "neutral"  # cut, not refused
    with pytest.raises(ValueError, match="accepts at most 512"):
        finbert("word " * 600, truncation="do_not_truncate")


@pytest.mark.parametrize("kwargs,match", [
    ({"top_k": 0}, "top_k must be a positive integer or None"),
    ({"top_k": True}, "top_k must be a positive integer"),
    ({"max_length": -3}, "max_length must be a positive integer"),
    ({"batch_size": 0}, "batch_size must be a positive integer"),
    ({"truncation": "sometimes"}, "truncation must be"),
    ({"padding": "everywhere"}, "padding must be one of"),
    ({"return_all_scores": "yes"}, "return_all_scores must be True or False"),
])
def test_bad_values_are_value_errors(finbert: Model, kwargs: dict, match: str) -> None:
    with pytest.raises(ValueError, match=match):
        finbert(NEG, **kwargs)


def test_unknown_keyword_is_a_type_error_naming_the_accepted_ones(finbert: Model) -> None:
    with pytest.raises(TypeError, match="unexpected keyword argument.*'device'.*accepted: " + ", ".join(ACCEPTED)):
        finbert(NEG, device=0)


def test_embeddings_take_truncation_but_not_sentiment_keywords() -> None:
    emb = ModelManager(environment="test").load_model("sentence-transformers/all-MiniLM-L6-v2", "embeddings")
    assert emb("BTC up", truncation=True, max_length=512, batch_size=4) == emb("BTC up")
    assert emb("a b c d e f", max_length=4) == emb("a b")
    with pytest.raises(ValueError, match="top_k only apply to models with labels"):
        emb("BTC up", top_k=1)


def test_a_runner_without_options_refuses_them_instead_of_ignoring_them() -> None:
    class Custom(RunnerDefaults):  # supports_options is False: it takes no RunOptions
        backend = "custom"

        def __call__(self, texts: list[str], options: object = None) -> list[list[float]]:
            return [[0.2, 0.8] for _ in texts]

    info = LoadInfo("org/m", "sentiment", "test", "mock", None, None, None, "custom", 0.0)
    model = Model(Custom(), model_type="sentiment", labels=("neg", "pos"), info=info)
    assert model("x", top_k=1) == [{"label": "pos", "score": 0.8}]  # formatting only: fine
    with pytest.raises(BackendError, match="does not support per-call options"):
        model("x", max_length=8)
    assert RunOptions().is_default and not RunOptions(max_length=8).is_default


def test_call_defaults_apply_only_to_pipeline_keyword_calls(finbert: Model) -> None:
    m = finbert.with_call_defaults(return_all_scores=True)
    assert m(NEG) == finbert(NEG)  # plain call: the Model contract
    assert m(NEG, truncation=True, max_length=512) == finbert(NEG, return_all_scores=True)
    assert m(NEG, top_k=1) == finbert(NEG, top_k=1)
    with pytest.raises(ValueError):
        finbert.with_call_defaults(top_k=0)
