"""Mocks: FinBERT's schema, deterministic across processes, plausible, no heavy imports."""

from __future__ import annotations

import json
import math
import subprocess
import sys

import pytest

from smart_model_manager import ModelManager, get_model_manager

pytestmark = pytest.mark.unit

HEAVY = ("torch", "transformers", "onnxruntime", "huggingface_hub", "numpy", "tokenizers")


def test_finbert_in_a_test_has_finbert_labels_and_imports_nothing_heavy():
    model = get_model_manager().load_model("ProsusAI/finbert", "sentiment")
    assert model.labels == ("positive", "negative", "neutral")  # FinBERT config.json id2label order
    assert model.info.environment == "test" and model.info.source == "mock" and model.info.backend == "mock"
    out = model("Bitcoin crashes 20% after exchange hack")
    assert [d["label"] for d in out][0] == "negative"
    assert {d["label"] for d in out} == set(model.labels)
    assert math.isclose(sum(d["score"] for d in out), 1.0, rel_tol=1e-9)
    assert [d["score"] for d in out] == sorted((d["score"] for d in out), reverse=True)
    # no heavy import: asserted in a fresh process below (this process may hold torch from other tests)


@pytest.mark.parametrize("text,label", [
    ("Bitcoin crashes 20% after exchange hack", "negative"),
    ("ETF inflows push BTC to a record high", "positive"),
    ("Solana network halted for five hours", "negative"),
    ("Ethereum rallies as staking demand surges", "positive"),
    ("Fed minutes to be released on Wednesday", "neutral"),
    ("Bitcoin did not crash after the halving", "neutral"),
])
def test_lexicon_gives_plausible_labels(text, label):
    model = ModelManager(environment="test").load_model("ProsusAI/finbert")
    assert model(text)[0]["label"] == label


SCRIPT = """
import json, sys
from smart_model_manager import get_model_manager
m = get_model_manager().load_model("ProsusAI/finbert", "sentiment")
e = get_model_manager().load_model("sentence-transformers/all-MiniLM-L6-v2", "embeddings")
texts = ["Bitcoin crashes 20% after exchange hack", "ETF inflows push BTC to a record high", "Fed holds rates"]
heavy = sorted({k.split(".")[0] for k in sys.modules} & set(HEAVY_LIST))
print(json.dumps({"s": m(texts), "e": e(texts[0])[:8], "heavy": heavy}))
""".replace("HEAVY_LIST", repr(HEAVY))


def test_identical_output_across_processes_with_different_hash_seeds():
    outs = []
    for seed in ("1", "2"):
        env = {"TESTING": "true", "PYTHONHASHSEED": seed, "PATH": "/usr/bin:/bin"}
        r = subprocess.run([sys.executable, "-c", SCRIPT], capture_output=True, text=True, env=env, timeout=60,
                           check=True)
        outs.append(json.loads(r.stdout))
    assert outs[0] == outs[1]
    assert outs[0]["heavy"] == []


def test_embeddings_mock_has_the_real_dimension_and_unit_norm():
    e = ModelManager(environment="test").load_model("sentence-transformers/all-MiniLM-L6-v2", "embeddings")
    v = e("Bitcoin price")
    assert len(v) == 384 and math.isclose(sum(x * x for x in v), 1.0, rel_tol=1e-9)
    a, b, c = e(["bitcoin price rally", "bitcoin price rally today", "central bank minutes"])
    cos = lambda x, y: sum(p * q for p, q in zip(x, y))  # noqa: E731
    assert cos(a, b) > cos(a, c)
    assert len(ModelManager(environment="test").load_model("BAAI/bge-base-en-v1.5", "embeddings")("x")) == 768


def test_unknown_model_gets_the_documented_default_schema():
    m = ModelManager(environment="test").load_model("someone/unknown-sentiment")
    assert m.labels == ("positive", "negative", "neutral")


def test_labels_come_from_a_local_config_json(smm_cache, tmp_path):
    from smart_model_manager.store import cache as store

    src = tmp_path / "m"
    src.mkdir()
    (src / "config.json").write_text(json.dumps({"id2label": {"0": "bearish", "1": "bullish"}}))
    store.import_folder(src, smm_cache, "org/two-labels")
    m = ModelManager(environment="test").load_model("org/two-labels")
    assert m.labels == ("bearish", "bullish")
    assert m("Bitcoin crashes after hack")[0]["label"] == "bearish"


def test_labels_come_from_the_lock(tmp_path, monkeypatch):
    lock = tmp_path / "models.lock"
    lock.write_text(
        "version: 1\nmodels:\n  fin:\n    repo_id: org/fin\n    revision: main\n    commit: " + "a" * 40 + "\n"
        "    model_type: sentiment\n    labels: [neutral, positive, negative]\n    files:\n"
        "      config.json: {size: 2, sha256: 'sha256:" + "0" * 64 + "'}\n")
    monkeypatch.setenv("SMM_LOCK", str(lock))
    m = ModelManager(environment="test").load_model("fin")
    assert m.labels == ("neutral", "positive", "negative")
    assert m.info.repo_id == "org/fin" and m.info.commit == "a" * 40
