"""TEI-compatible /predict and /info, checked against the shapes of text-embeddings-inference's OpenAPI schema.

The schemas below restate TEI's published components (``Prediction``, ``PredictResponse``, ``Info`` with
``ModelType``/``ClassifierModel``, ``ErrorResponse``/``ErrorType``): required fields, types and enums, in
JSON Schema. Every reply of the real server on 127.0.0.1 is validated against them with jsonschema.
"""

from __future__ import annotations

import math
from typing import Any

import httpx
import pytest
from _service_fixtures import serve
from jsonschema import Draft202012Validator

from smart_model_manager.service.app import default_loader

pytestmark = pytest.mark.integration

PREDICTION = {"type": "object", "required": ["score", "label"],
              "properties": {"label": {"type": "string"}, "score": {"type": "number"}}}
PREDICT_RESPONSE = {"oneOf": [{"type": "array", "items": PREDICTION},
                              {"type": "array", "items": {"type": "array", "items": PREDICTION}}]}
CLASSIFIER = {"type": "object", "required": ["id2label", "label2id"],
              "properties": {"id2label": {"type": "object", "additionalProperties": {"type": "string"}},
                             "label2id": {"type": "object",
                                          "additionalProperties": {"type": "integer", "minimum": 0}}}}
UINT = {"type": "integer", "minimum": 0}
INFO = {"type": "object",
        "required": ["model_id", "model_dtype", "model_type", "max_concurrent_requests", "max_input_length",
                     "max_batch_tokens", "max_client_batch_size", "auto_truncate", "tokenization_workers",
                     "version"],
        "properties": {
            "model_id": {"type": "string"}, "model_sha": {"type": ["string", "null"]},
            "model_dtype": {"type": "string"},
            "model_type": {"oneOf": [
                {"type": "object", "required": ["classifier"], "properties": {"classifier": CLASSIFIER}},
                {"type": "object", "required": ["embedding"]},
                {"type": "object", "required": ["reranker"], "properties": {"reranker": CLASSIFIER}}]},
            "max_concurrent_requests": UINT, "max_input_length": UINT, "max_batch_tokens": UINT,
            "max_client_batch_size": UINT, "max_batch_requests": {"type": ["integer", "null"], "minimum": 0},
            "auto_truncate": {"type": "boolean"}, "tokenization_workers": UINT, "version": {"type": "string"},
            "sha": {"type": ["string", "null"]}, "docker_label": {"type": ["string", "null"]}}}
ERROR = {"type": "object", "required": ["error", "error_type"],
         "properties": {"error": {"type": "string"},
                        "error_type": {"enum": ["Unhealthy", "Backend", "Overloaded", "Validation", "Tokenizer"]}}}


def _valid(schema: dict[str, Any], value: Any) -> None:
    errors = sorted(Draft202012Validator(schema).iter_errors(value), key=str)
    assert not errors, [e.message for e in errors]


@pytest.fixture(scope="module")
def url():
    # the library's own path: under pytest load_model() gives the deterministic mock model (real labels,
    # per-call options such as logits and truncation=False supported)
    with serve(loader=default_loader) as (base, _):
        yield base


def test_info_has_tei_shape_and_describes_the_served_classifier(url: str) -> None:
    info = httpx.get(url + "/info").json()
    _valid(INFO, info)
    model = httpx.get(url + "/v1/models").json()["models"][0]
    assert info["model_id"] == model["repo_id"] and info["model_sha"] == model["commit"]
    labels = model["labels"]
    assert info["model_type"]["classifier"]["id2label"] == {str(i): lab for i, lab in enumerate(labels)}
    assert info["model_type"]["classifier"]["label2id"] == {lab: i for i, lab in enumerate(labels)}
    assert info["auto_truncate"] is True and info["max_client_batch_size"] == 64 and info["max_input_length"] > 0


def test_single_input_gives_every_label_best_first_matching_v1_sentiment(url: str) -> None:
    text = "Bitcoin crashes 20% after exchange hack"
    preds = httpx.post(url + "/predict", json={"inputs": text}).json()
    _valid(PREDICT_RESPONSE, preds)
    assert isinstance(preds[0], dict) and [p["score"] for p in preds] == sorted((p["score"] for p in preds),
                                                                                 reverse=True)
    ours = httpx.post(url + "/v1/sentiment", json={"texts": [text]}).json()["results"][0]
    assert {p["label"]: p["score"] for p in preds} == pytest.approx(ours["scores"])
    assert preds[0]["label"] == ours["label"] and math.isclose(sum(p["score"] for p in preds), 1.0, rel_tol=1e-5)
    assert httpx.post(url + "/predict", json={"inputs": [text]}).json() == preds  # [string] is one text too


def test_batch_input_gives_one_list_per_text_in_order(url: str) -> None:
    texts = ["ETF inflows push BTC to a record high", "Ether slides as regulator sues exchange", "SOL flat"]
    preds = httpx.post(url + "/predict", json={"inputs": [[t] for t in texts]}).json()
    _valid(PREDICT_RESPONSE, preds)
    assert len(preds) == 3 and all(isinstance(row, list) for row in preds)
    singles = [httpx.post(url + "/predict", json={"inputs": t}).json() for t in texts]
    assert preds == singles


def test_raw_scores_are_logits_whose_softmax_is_the_default_answer(url: str) -> None:
    text = "Regulator approves spot ETH ETF"
    probs = {p["label"]: p["score"] for p in httpx.post(url + "/predict", json={"inputs": text}).json()}
    raw = httpx.post(url + "/predict", json={"inputs": text, "raw_scores": True}).json()
    _valid(PREDICT_RESPONSE, raw)
    logits = {p["label"]: p["score"] for p in raw}
    z = sum(math.exp(v) for v in logits.values())
    assert {k: math.exp(v) / z for k, v in logits.items()} == pytest.approx(probs, abs=1e-5)
    assert [p["label"] for p in raw] == sorted(logits, key=lambda k: -logits[k])


def test_truncate_false_refuses_a_text_the_model_would_cut(url: str) -> None:
    info = httpx.get(url + "/info").json()
    long_text = " ".join(["up"] * (info["max_input_length"] + 10))  # within max_chars, past the token limit
    cut = httpx.post(url + "/predict", json={"inputs": long_text})
    assert cut.status_code == 200  # default: cut on the right, as auto_truncate says
    assert httpx.post(url + "/predict", json={"inputs": long_text, "truncate": True}).json() == cut.json()
    r = httpx.post(url + "/predict", json={"inputs": long_text, "truncate": False})
    assert r.status_code == 413, r.text
    _valid(ERROR, r.json())
    assert r.json()["error_type"] == "Validation" and "truncate=false" in r.json()["error"]
    short = httpx.post(url + "/predict", json={"inputs": "BTC up", "truncate": False})
    assert short.status_code == 200 and short.json() == httpx.post(url + "/predict", json={"inputs": "BTC up"}).json()


@pytest.mark.parametrize("body,status,needle", [
    ({"inputs": ["a", "b"]}, 422, "pair of texts"),
    ({"inputs": [["a", "b"]]}, 422, "inputs[0] is a pair"),
    ({"inputs": ["a", "b", "c"]}, 422, "[[string], [string], ...]"),
    ({"inputs": "a", "truncation_direction": "left"}, 422, "\"left\" is not supported"),
    ({"inputs": "a", "truncation_direction": "middle"}, 422, "truncation_direction must be"),
    ({"inputs": "a", "parameters": {"top_k": 1}}, 422, "unsupported field(s) parameters"),
    ({"inputs": "a", "raw_scores": "yes"}, 422, "raw_scores must be true or false"),
    ({"text": "a"}, 422, "unsupported field(s) text"),
    ({}, 422, "missing field \"inputs\""),
    ({"inputs": []}, 422, "non-empty batch"),
    ({"inputs": "   "}, 422, "inputs[0].text is empty"),
    ({"inputs": [["x"]] * 65}, 413, "the limit is 64"),
    ({"inputs": "x" * 2001}, 413, "the limit is 2000"),
])
def test_bad_requests_get_tei_errors_naming_the_problem(url: str, body: dict[str, Any], status: int,
                                                        needle: str) -> None:
    r = httpx.post(url + "/predict", json=body)
    assert r.status_code == status, r.text
    _valid(ERROR, r.json())
    assert r.json()["error_type"] == "Validation" and needle in r.json()["error"], r.json()
    assert r.json()["request_id"] == r.headers["x-request-id"]


def test_invalid_json_is_a_tei_422(url: str) -> None:
    r = httpx.post(url + "/predict", content=b"{nope", headers={"content-type": "application/json"})
    assert r.status_code == 422 and r.json()["error_type"] == "Validation" and "not valid JSON" in r.json()["error"]


def test_predict_is_counted_under_its_own_route(url: str) -> None:
    httpx.post(url + "/predict", json={"inputs": "BTC up"})
    metrics = httpx.get(url + "/metrics").text
    assert 'smm_service_requests_total{method="POST",route="/predict",status="200"}' in metrics
    assert 'smm_service_texts_total{model="default",route="/predict"}' in metrics


def test_not_ready_is_a_tei_503() -> None:
    from _service_fixtures import FailingLoader

    with serve(loader=FailingLoader(), wait_ready=False) as (base, app):
        app.state.smm.routes.settled.wait(10)
        for r in (httpx.post(base + "/predict", json={"inputs": "a"}), httpx.get(base + "/info")):
            assert r.status_code == 503
            _valid(ERROR, r.json())
            assert r.json()["error_type"] == "Unhealthy" and "could not be loaded" in r.json()["error"]


def test_openapi_documents_the_tei_routes(url: str) -> None:
    spec = httpx.get(url + "/openapi.json").json()
    body = spec["paths"]["/predict"]["post"]["requestBody"]["content"]["application/json"]["schema"]
    assert set(body["properties"]) == {"inputs", "raw_scores", "truncate", "truncation_direction"}
    assert "/info" in spec["paths"]
