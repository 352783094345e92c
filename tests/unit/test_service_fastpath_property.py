"""The fast path never changes an answer: arbitrary bodies and content types get the same status and the
same JSON envelope from /v1/sentiment with DirectRoute as from the same route on FastAPI's own handler,
including hostile bodies (JSON nested deeper than the parser's recursion limit: 400, never a 500)."""

from __future__ import annotations

import json
import time
from collections.abc import Iterator

import fastapi.routing
import pytest
from fastapi.testclient import TestClient
from hypothesis import HealthCheck, given, settings, strategies as st

from smart_model_manager.model import LoadInfo, Model
from smart_model_manager.service import app as service_app
from smart_model_manager.service.config import ServiceConfig

pytestmark = pytest.mark.unit


def _model() -> Model:
    def run(texts: list[str]) -> list[list[float]]:
        return [[0.5, 0.3, 0.2] if len(t) % 2 else [0.1, 0.2, 0.7] for t in texts]

    info = LoadInfo(repo_id="test/fast-path", model_type="sentiment", environment="test", source="fake", path=None,
                    commit="0" * 40, revision=None, backend="fake", load_seconds=0.0)
    return Model(run, model_type="sentiment", labels=("positive", "negative", "neutral"), info=info)


def _client(app) -> TestClient:
    c = TestClient(app, raise_server_exceptions=False)
    c.__enter__()
    end = time.monotonic() + 30
    while c.get("/readyz").status_code != 200:
        assert time.monotonic() < end, "never ready"
        time.sleep(0.01)
    return c


@pytest.fixture(scope="module")
def clients() -> Iterator[tuple[TestClient, TestClient]]:
    model = _model()
    config = ServiceConfig(max_wait_ms=0, max_texts=8, max_chars=50, max_body_bytes=100_000)
    fast = _client(service_app.create_app(config=config, loader=lambda name: model))
    real = service_app.DirectRoute
    service_app.DirectRoute = fastapi.routing.APIRoute  # the same endpoint on FastAPI's own handler
    try:
        slow = _client(service_app.create_app(config=config, loader=lambda name: model))
    finally:
        service_app.DirectRoute = real
    assert type(next(r for r in slow.app.routes if getattr(r, "path", "") == "/v1/sentiment")) is fastapi.routing.APIRoute
    yield fast, slow
    fast.__exit__(None, None, None)
    slow.__exit__(None, None, None)


def _answer(c: TestClient, body: bytes, ctype: str | None) -> tuple[int, object]:
    headers = {"Content-Type": ctype} if ctype is not None else {}
    r = c.post("/v1/sentiment", content=body, headers=headers)
    try:
        data = r.json()
    except ValueError:
        return r.status_code, r.text
    if isinstance(data, dict):
        data.pop("request_id", None)  # differs per request by design
    return r.status_code, data


json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text(max_size=60),
    lambda inner: st.lists(inner, max_size=5) | st.dictionaries(st.text(max_size=8), inner, max_size=4),
    max_leaves=20)
sentiment_like = st.fixed_dictionaries({"texts": st.lists(st.text(max_size=60), max_size=10)},
                                       optional={"extra": json_values})
bodies = st.one_of(
    st.binary(max_size=200),
    json_values.map(lambda v: json.dumps(v).encode()),
    sentiment_like.map(lambda v: json.dumps(v).encode()),
    sentiment_like.map(lambda v: json.dumps(v, ensure_ascii=False).encode("utf-16")),
    st.integers(1, 3000).map(lambda n: b"[" * n),
    st.integers(1, 3000).map(lambda n: b'{"a":' * n + b"1" + b"}" * n),
    st.integers(1, 3000).map(lambda n: b'{"texts": ' + b"[" * n + b"]" * n + b"}"),
)
ctypes = st.one_of(st.none(), st.sampled_from([
    "application/json", "application/json; charset=utf-8", "application/vnd.x+json", "text/plain",
    "application/x-www-form-urlencoded", "multipart/form-data; boundary=x", "", "application/json;;",
    "APPLICATION/JSON", "application/+json"]), st.text(st.characters(min_codepoint=32, max_codepoint=126), max_size=30))


@settings(max_examples=300, derandomize=True, deadline=None, database=None,
          suppress_health_check=[HealthCheck.too_slow, HealthCheck.function_scoped_fixture])
@given(body=bodies, ctype=ctypes)
def test_fast_path_and_fastapi_give_the_same_status_and_envelope(clients, body: bytes, ctype: str | None):
    fast, slow = clients
    a, b = _answer(fast, body, ctype), _answer(slow, body, ctype)
    assert a == b
    assert a[0] < 500, a


@pytest.mark.parametrize("body", [b"[" * 5000, b'{"a":' * 5000, b'{"texts": ' + b"[" * 5000])
def test_deeply_nested_json_is_a_400_not_a_500(clients, body: bytes):
    for c in clients:
        status, data = _answer(c, body, "application/json")
        assert status == 400 and data["error"]["code"] in ("invalid_body", "invalid_json"), data
