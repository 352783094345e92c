"""The service under overload, on a real uvicorn on 127.0.0.1 with a gated fake model: the queue bound
answers 503 + Retry-After at once, a request whose deadline passes while queued is dropped before the
model, a client that disconnects is dropped and never computed, /healthz and /readyz stay 200, and the
metrics count all of it. No timed asserts: waits poll for a state, with generous limits."""

from __future__ import annotations

import json
import socket
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager

import httpx
import pytest
from _service_fixtures import TableRunner, make_model, serve
from prometheus_client.parser import text_string_to_metric_families

from smart_model_manager.service.config import ServiceConfig

pytestmark = pytest.mark.integration


class GatedRunner(TableRunner):
    """Blocks every model call until ``gate`` opens; records every text it computed."""

    def __init__(self) -> None:
        super().__init__()
        self.gate = threading.Event()
        self.entered = threading.Event()
        self.seen: list[str] = []

    def __call__(self, texts: list[str]) -> list[list[float]]:
        self.entered.set()
        assert self.gate.wait(30), "test gate never opened"
        self.seen.extend(texts)
        return super().__call__(texts)


def metrics(url: str) -> dict[str, float]:
    out = {}
    for fam in text_string_to_metric_families(httpx.get(url + "/metrics").text):
        for s in fam.samples:
            key = s.name + ("{" + ",".join(f"{k}={v}" for k, v in sorted(s.labels.items())) + "}" if s.labels else "")
            out[key] = s.value
    return out


def wait_until(what: str, check, limit: float = 20.0) -> None:
    end = time.monotonic() + limit
    while not check():
        if time.monotonic() > end:
            raise AssertionError(f"never happened: {what}")
        time.sleep(0.02)


@contextmanager
def blocked_service(config: ServiceConfig) -> Iterator[tuple[str, GatedRunner, list[httpx.Response]]]:
    """A served fake model whose first request ("Markets wait for the Fed") is stuck in the model."""
    runner = GatedRunner()
    first: list[httpx.Response] = []
    with serve(make_model(runner), config=config) as (url, _):
        t = threading.Thread(target=lambda: first.append(
            httpx.post(url + "/v1/sentiment", json={"texts": ["Markets wait for the Fed"]}, timeout=30)))
        t.start()
        try:
            assert runner.entered.wait(20)
            yield url, runner, first
        finally:
            runner.gate.set()
            t.join(30)


def assert_refusal(r: httpx.Response, code: str) -> dict:
    assert r.status_code == 503, r.text
    assert r.headers["content-type"].startswith("application/json")
    retry = int(r.headers["retry-after"])
    body = r.json()
    assert body["error"]["code"] == code and body["error"]["retry_after"] == retry >= 1, body
    assert body["request_id"] == r.headers["x-request-id"] and body["error"]["message"]
    return body["error"]


def test_beyond_the_queue_bound_the_answer_is_an_immediate_503_with_retry_after():
    with blocked_service(ServiceConfig(max_queued_tokens=20, max_wait_ms=0, request_timeout_s=0)) as (url, runner, first):
        r = httpx.post(url + "/v1/sentiment", json={"texts": ["Bitcoin ETF inflows hit a record " * 3]}, timeout=30)
        err = assert_refusal(r, "overloaded")
        assert "bound is 20" in err["message"]
        r2 = httpx.post(url + "/v1/analyze", json={"items": [{"id": "n1", "text": "BTC rallies " * 10}]}, timeout=30)
        assert_refusal(r2, "overloaded")
        m = metrics(url)
        assert m['smm_requests_rejected_total{reason=queue_full}'] == 2
        assert m["smm_service_queued_texts"] == 1 and m["smm_service_queued_tokens"] > 0
        assert m["smm_service_queue_limit_tokens"] == 20
        # liveness never flaps; readiness stays 200 (a single pod keeps its endpoint) and says saturated
        assert httpx.get(url + "/healthz").status_code == 200
        ready = httpx.get(url + "/readyz")
        assert ready.status_code == 200 and ready.json()["saturated"] is True
        runner.gate.set()
        wait_until("the first request answered", lambda: bool(first))
    assert first[0].status_code == 200
    assert runner.seen == ["Markets wait for the Fed"]  # the refused texts never reached the model


def test_with_the_bound_off_everything_is_queued():
    with blocked_service(ServiceConfig(max_queued_tokens=-1, request_timeout_s=0, max_wait_ms=0)) as (url, runner, _):
        results: list[httpx.Response] = []
        t = threading.Thread(target=lambda: results.append(httpx.post(
            url + "/v1/sentiment", json={"texts": ["BTC rallies " * 100]}, timeout=30)))
        t.start()
        wait_until("the second request queued", lambda: metrics(url)["smm_service_queued_texts"] == 2)
        runner.gate.set()
        t.join(30)
    assert results[0].status_code == 200


def test_a_request_whose_deadline_passes_while_queued_is_dropped_before_the_model():
    # the first request may wait a minute (it is held in the model); the second lowers its deadline
    with blocked_service(ServiceConfig(max_wait_ms=0, request_timeout_s=60)) as (url, runner, first):
        r = httpx.post(url + "/v1/sentiment", json={"texts": ["Exchange halts ETH withdrawals after hack"]},
                       headers={"X-Request-Timeout": "0.2"}, timeout=30)
        err = assert_refusal(r, "deadline_exceeded")
        assert "dropped before being computed" in err["message"]
        assert metrics(url)['smm_requests_rejected_total{reason=deadline}'] == 1
        runner.gate.set()
        wait_until("the first request answered", lambda: bool(first))
        ok = httpx.post(url + "/v1/sentiment", json={"texts": ["Ethereum developers schedule a call"]}, timeout=30)
        assert ok.status_code == 200
        m = metrics(url)
    assert runner.seen == ["Markets wait for the Fed", "Ethereum developers schedule a call"]
    assert m["smm_service_queue_wait_seconds_count"] == 2  # one per computed text


@pytest.mark.parametrize("value", ["soon", "0", "-1", "nan", "inf"])
def test_a_malformed_request_timeout_is_a_400(value: str):
    with serve() as (url, _):
        r = httpx.post(url + "/v1/sentiment", json={"texts": ["a"]}, headers={"X-Request-Timeout": value})
    assert r.status_code == 400 and r.json()["error"]["code"] == "invalid_timeout", r.text


def test_a_client_that_disconnects_is_dropped_and_never_computed():
    body = json.dumps({"texts": ["Exchange halts ETH withdrawals after hack"]}).encode()
    with blocked_service(ServiceConfig(max_wait_ms=0, request_timeout_s=0)) as (url, runner, first):
        port = int(url.rsplit(":", 1)[1])
        with socket.create_connection(("127.0.0.1", port), timeout=10) as s:
            s.sendall(b"POST /v1/sentiment HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
                      b"Content-Length: %d\r\n\r\n%s" % (len(body), body))
            wait_until("the request queued", lambda: metrics(url)["smm_service_queued_texts"] == 2)
        # the socket is closed: the service notices and drops the queued text
        wait_until("the disconnect counted",
                   lambda: metrics(url)['smm_requests_rejected_total{reason=disconnected}'] == 1)
        assert metrics(url)["smm_service_queued_texts"] == 1
        runner.gate.set()
        wait_until("the first request answered", lambda: bool(first))
    assert runner.seen == ["Markets wait for the Fed"]


def test_models_endpoint_shows_the_admission_settings():
    with serve(config=ServiceConfig(max_queued_tokens=5000, request_timeout_s=1.5)) as (url, _):
        adm = httpx.get(url + "/v1/models").json()["models"][0]["admission"]
        m = metrics(url)
    assert adm["mode"] == "fixed" and adm["max_queued_tokens"] == 5000 and adm["deadline_s"] == 1.5
    assert adm["queued_tokens"] == 0 and adm["queued_texts"] == 0
    for reason in ("queue_full", "deadline", "disconnected"):  # exported at 0 from the start
        assert m[f"smm_requests_rejected_total{{reason={reason}}}"] == 0


def test_auto_mode_learns_the_throughput_from_served_requests():
    with serve(config=ServiceConfig()) as (url, _):
        for i in range(5):
            assert httpx.post(url + "/v1/sentiment", json={"texts": [f"headline {i}"]}).status_code == 200
        adm = httpx.get(url + "/v1/models").json()["models"][0]["admission"]
    assert adm["mode"] == "auto" and adm["measured_tokens_per_second"] > 0
    assert adm["max_queued_tokens"] >= 1


def test_when_the_queue_is_full_requests_are_refused_before_their_body_is_read():
    # the held request alone (8 estimated tokens) fills a bound of 5: everything else is shed up front
    with blocked_service(ServiceConfig(max_queued_tokens=5, max_wait_ms=0, request_timeout_s=0)) as (url, runner, first):
        r = httpx.post(url + "/v1/sentiment", content=b"this is not even JSON",
                       headers={"Content-Type": "application/json"})
        err = assert_refusal(r, "overloaded")  # not a 400: the body was never parsed
        assert "bound is 5" in err["message"]
        assert httpx.get(url + "/healthz").status_code == 200  # other routes are not shed
        assert metrics(url)['smm_requests_rejected_total{reason=queue_full}'] == 1
        runner.gate.set()
        wait_until("the first request answered", lambda: bool(first))
        ok = httpx.post(url + "/v1/sentiment", json={"texts": ["Markets wait for the Fed"]}, timeout=30)
    assert first[0].status_code == 200 and ok.status_code == 200
