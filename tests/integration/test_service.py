"""The sentiment service on a REAL uvicorn server on 127.0.0.1 (issue 5 acceptance tests)."""

from __future__ import annotations

import asyncio
import json
import logging
import os
import signal
import socket
import threading
import time
from pathlib import Path

import httpx
import pytest
from _service_fixtures import (
    LABELS,
    REPO,
    TABLE,
    BlockingLoader,
    FailingLoader,
    ServerThread,
    TableRunner,
    child_env,
    free_port,
    make_model,
    serve,
    subprocess_server,
    wait_for_ready,
)
from prometheus_client.parser import text_string_to_metric_families

from smart_model_manager.errors import ConfigurationError
from smart_model_manager.service.app import create_app
from smart_model_manager.service.config import ServiceConfig
from smart_model_manager.service.logs import JsonFormatter

pytestmark = pytest.mark.integration


def assert_error(r: httpx.Response, status: int, code: str) -> dict:
    assert r.status_code == status, r.text
    assert r.headers["content-type"].startswith("application/json")
    body = r.json()
    assert body["error"]["code"] == code, body
    assert body["error"]["message"]
    assert body["request_id"] == r.headers["x-request-id"]
    return body["error"]


# --- lifecycle ---------------------------------------------------------------------------------

def test_readiness_flips_only_after_the_model_is_loaded():
    loader = BlockingLoader(make_model())
    app = create_app(config=ServiceConfig(), loader=loader)
    with ServerThread(app) as srv:
        assert loader.called.wait(10)
        # the load is blocked: liveness answers, readiness and work say "not yet"
        h = httpx.get(srv.url + "/healthz")
        assert h.status_code == 200 and h.json() == {"status": "ok", "model_loaded": False}
        assert_error(httpx.get(srv.url + "/readyz"), 503, "not_ready")
        assert_error(httpx.post(srv.url + "/v1/sentiment", json={"texts": ["hi"]}), 503, "not_ready")
        assert_error(httpx.get(srv.url + "/v1/models"), 503, "not_ready")
        time.sleep(0.2)
        assert httpx.get(srv.url + "/readyz").status_code == 503  # still blocked: never flips early
        loader.release()
        ready = wait_for_ready(srv.url, timeout=10)
        assert ready.json()["model"] == {"name": "default", "id": "test/table-sentiment", "commit": "0" * 40, "backend": "fake"}
        assert httpx.get(srv.url + "/healthz").json()["model_loaded"] is True
    assert loader.names == [None]  # no name: the manager applies the one default-model rule


def test_failed_load_is_reported_by_readyz_and_healthz():
    app = create_app(config=ServiceConfig(model="finbert"), loader=FailingLoader())
    with ServerThread(app) as srv:
        deadline = time.monotonic() + 10
        while httpx.get(srv.url + "/healthz").status_code == 200 and time.monotonic() < deadline:
            time.sleep(0.02)
        err = assert_error(httpx.get(srv.url + "/readyz"), 503, "model_load_failed")
        assert "no volume holds finbert" in err["message"]
        assert_error(httpx.get(srv.url + "/healthz"), 503, "model_load_failed")


def test_graceful_sigterm_finishes_in_flight_requests():
    port = free_port()
    args = ["-m", "uvicorn", "--factory", "--app-dir", str(Path(__file__).parent), "_service_fixtures:slow_app",
            "--host", "127.0.0.1", "--port", str(port), "--no-access-log"]
    with subprocess_server(args, child_env(SMM_TEST_DELAY="1.5"), port) as proc:
        url = f"http://127.0.0.1:{port}"
        wait_for_ready(url)
        result: dict = {}

        def call() -> None:
            result["r"] = httpx.post(url + "/v1/sentiment", json={"texts": ["Markets wait for the Fed"]},
                                     timeout=30)

        t = threading.Thread(target=call)
        t.start()
        time.sleep(0.5)  # the request is inside the 1.5 s model call
        proc.send_signal(signal.SIGTERM)
        t.join(30)
        assert result["r"].status_code == 200
        assert result["r"].json()["results"][0]["scores"] == dict(zip(LABELS, TABLE["Markets wait for the Fed"]))
        # uvicorn re-raises the captured SIGTERM after its graceful shutdown, hence -SIGTERM
        assert proc.wait(30) in (0, -signal.SIGTERM)
        output = proc.stdout.read()
        assert "Waiting for application shutdown" in output and "Application shutdown complete" in output


# --- behaviour ---------------------------------------------------------------------------------

def test_sentiment_returns_every_label_in_input_order():
    texts = ["Exchange halts ETH withdrawals after hack", "Bitcoin ETF inflows hit a record"]
    with serve() as (url, _):
        r = httpx.post(url + "/v1/sentiment", json={"texts": texts}, headers={"X-Request-ID": "abc-123"})
    assert r.status_code == 200, r.text
    assert r.headers["x-request-id"] == "abc-123"
    body = r.json()
    assert body["model"] == {"name": "default", "id": "test/table-sentiment", "commit": "0" * 40, "backend": "fake"}
    assert [x["label"] for x in body["results"]] == ["negative", "positive"]
    assert [x["score"] for x in body["results"]] == [0.5, 0.7]
    assert body["results"][1]["scores"] == {"positive": 0.7, "negative": 0.1, "neutral": 0.2}


def test_analyze_aggregates_a_hand_checked_example():
    items = [
        {"id": "a", "text": "Bitcoin ETF inflows hit a record", "source": "wire",
         "published_at": "2026-11-26T08:00:00Z"},                                  # BTC detected
        {"id": "b", "text": "Exchange halts ETH withdrawals after hack", "symbols": ["eth", "$BTC"]},
        {"id": "c", "text": "Ethereum developers schedule a call"},                  # ETH detected
        {"id": "d", "text": "Markets wait for the Fed"},                             # no symbol
    ]
    with serve() as (url, _):
        r = httpx.post(url + "/v1/analyze", json={"items": items})
    assert r.status_code == 200, r.text
    body = r.json()
    got = {it["id"]: it for it in body["items"]}
    assert [it["id"] for it in body["items"]] == ["a", "b", "c", "d"]
    assert got["a"]["symbols"] == ["BTC"] and got["a"]["symbols_detected"] is True
    assert got["a"]["source"] == "wire" and got["a"]["published_at"].startswith("2026-11-26T08:00:00")
    assert got["b"]["symbols"] == ["ETH", "BTC"] and got["b"]["symbols_detected"] is False
    assert got["c"]["symbols"] == ["ETH"] and got["d"]["symbols"] == []
    assert got["a"]["signed_score"] == pytest.approx(0.6)
    assert got["d"]["label"] == "neutral"
    # By hand, from TABLE (s = P+ - P-, c = max p):
    #   a: s=0.6  c=0.7 positive | b: s=-0.3 c=0.5 negative | c: s=0.0 c=0.8 neutral
    #   BTC = {a, b}: mean (0.6-0.3)/2 = 0.15; weighted (0.7*0.6 + 0.5*-0.3)/(0.7+0.5) = 0.225
    #   ETH = {b, c}: mean (-0.3+0)/2 = -0.15; weighted (0.5*-0.3 + 0.8*0)/(0.5+0.8) = -0.1153846
    sym = body["symbols"]
    assert list(sym) == ["BTC", "ETH"]
    assert sym["BTC"]["count"] == 2
    assert sym["BTC"]["mean_signed_score"] == pytest.approx(0.15)
    assert sym["BTC"]["confidence_weighted_score"] == pytest.approx(0.225)
    assert sym["BTC"]["label_counts"] == {"positive": 1, "negative": 1, "neutral": 0}
    assert sym["ETH"]["count"] == 2
    assert sym["ETH"]["mean_signed_score"] == pytest.approx(-0.15)
    assert sym["ETH"]["confidence_weighted_score"] == pytest.approx(-0.15 / 1.3)
    assert sym["ETH"]["label_counts"] == {"positive": 0, "negative": 1, "neutral": 1}


def test_models_endpoint_reports_load_info():
    with serve() as (url, _):
        r = httpx.get(url + "/v1/models")
    assert r.status_code == 200
    (m,) = r.json()["models"]
    assert m["repo_id"] == "test/table-sentiment" and m["source"] == "fake" and m["environment"] == "test"
    assert m["labels"] == list(LABELS) and m["backend"] == "fake"
    assert m["service_load_seconds"] >= 0 and m["load_seconds"] == 0.0


def test_200_concurrent_requests_match_unbatched_results():
    runner = TableRunner(delay=0.01)
    model = make_model(runner)
    reference = TableRunner()  # same maths, called one text at a time, no server
    requests = [[f"headline {i} about BTC", f"story {i * 7} on ETH"][: 1 + i % 2] for i in range(200)]
    cfg = ServiceConfig(max_batch=32, max_wait_ms=5)

    async def fire(url: str):
        limits = httpx.Limits(max_connections=200, max_keepalive_connections=200)
        async with httpx.AsyncClient(base_url=url, limits=limits, timeout=60) as client:
            return await asyncio.gather(*(client.post("/v1/sentiment", json={"texts": t}) for t in requests))

    with serve(model, config=cfg) as (url, _):
        responses = asyncio.run(fire(url))
    assert [r.status_code for r in responses] == [200] * 200
    for texts, r in zip(requests, responses):
        want = [dict(zip(LABELS, reference([t])[0])) for t in texts]
        assert [x["scores"] for x in r.json()["results"]] == want
    n_texts = sum(len(t) for t in requests)
    assert sum(runner.batch_sizes) == n_texts
    assert max(runner.batch_sizes) <= 32
    assert len(runner.batch_sizes) < 200  # really coalesced


def test_a_model_failure_is_a_json_500_and_the_service_keeps_serving():
    class Flaky(TableRunner):
        def __call__(self, texts):
            if "explode" in texts:
                raise RuntimeError("kernel died")
            return super().__call__(texts)

    with serve(make_model(Flaky()), config=ServiceConfig(max_wait_ms=0)) as (url, _):
        bad = httpx.post(url + "/v1/sentiment", json={"texts": ["explode"]}, headers={"X-Request-ID": "boom-1"})
        good = httpx.post(url + "/v1/sentiment", json={"texts": ["Markets wait for the Fed"]})
    err = assert_error(bad, 500, "internal_error")
    assert "kernel died" not in err["message"] and bad.json()["request_id"] == "boom-1"
    assert good.status_code == 200


def test_a_slow_client_does_not_block_others():
    body = json.dumps({"texts": ["Markets wait for the Fed"]}).encode()
    with serve() as (url, _):
        port = int(url.rsplit(":", 1)[1])
        with socket.create_connection(("127.0.0.1", port), timeout=10) as slow:
            slow.sendall(b"POST /v1/sentiment HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
                         b"Content-Length: %d\r\n\r\n" % len(body) + body[:10])  # ...and stalls
            t0 = time.perf_counter()
            others = [httpx.post(url + "/v1/sentiment", json={"texts": [f"other {i}"]}) for i in range(20)]
            elapsed = time.perf_counter() - t0
            assert [r.status_code for r in others] == [200] * 20
            assert elapsed < 5, elapsed
            slow.sendall(body[10:])  # the slow client finishes and still gets its answer
            data = b""
            while b"\r\n\r\n" not in data or not data.rstrip().endswith(b"}"):
                data += slow.recv(65536)
    assert data.startswith(b"HTTP/1.1 200")
    assert json.loads(data.split(b"\r\n\r\n", 1)[1])["results"][0]["label"] == "neutral"


def test_metrics_parse_and_count(caplog):
    with serve() as (url, _):
        for _ in range(3):
            assert httpx.post(url + "/v1/sentiment", json={"texts": ["a b", "c d"]}).status_code == 200
        httpx.post(url + "/v1/sentiment", json={"texts": []})
        text = httpx.get(url + "/metrics").text
    fams = {f.name: f for f in text_string_to_metric_families(text)}
    for name in ("smm_service_requests", "smm_service_request_duration_seconds", "smm_service_batch_size",
                 "smm_service_texts", "smm_service_model_load_seconds", "smm_service_model_info"):
        assert name in fams, sorted(fams)
    reqs = {(s.labels["route"], s.labels["status"]): s.value
            for s in fams["smm_service_requests"].samples if s.name.endswith("_total")}
    assert reqs[("/v1/sentiment", "200")] == 3 and reqs[("/v1/sentiment", "422")] == 1
    texts = [s.value for s in fams["smm_service_texts"].samples if s.name.endswith("_total")]
    assert texts == [6]
    batch_count = [s.value for s in fams["smm_service_batch_size"].samples if s.name.endswith("_count")]
    assert 3 <= batch_count[0] <= 6
    info = next(s for s in fams["smm_service_model_info"].samples)
    assert info.labels["environment"] == "test" and info.labels["backend"] == "fake"
    assert info.labels["source"] == "fake"


def test_logs_are_json_lines_with_request_id_and_never_the_text(caplog):
    secret = "Unpublished: SOL exchange insolvent"
    with caplog.at_level(logging.INFO), serve() as (url, _):
        r = httpx.post(url + "/v1/sentiment", json={"texts": [secret]}, headers={"X-Request-ID": "req-42"})
        assert r.status_code == 200
        bad = httpx.post(url + "/v1/sentiment", json={"texts": [secret, 3]}, headers={"X-Request-ID": "x y"})
    assert bad.status_code == 422 and secret not in bad.text  # errors do not echo input either
    assert bad.headers["x-request-id"] != "x y"  # unsafe ids are replaced
    lines = [json.loads(JsonFormatter().format(rec)) for rec in caplog.records]
    access = [ln for ln in lines if ln["msg"] == "request" and ln.get("request_id") == "req-42"]
    assert access and access[0]["route"] == "/v1/sentiment" and access[0]["status"] == 200
    assert access[0]["n_texts"] == 1
    assert all(secret not in json.dumps(ln) and "insolvent" not in json.dumps(ln) for ln in lines)


def test_openapi_documents_examples():
    with serve() as (url, _):
        spec = httpx.get(url + "/openapi.json").json()
        assert httpx.get(url + "/docs").status_code == 200
    schemas = spec["components"]["schemas"]
    assert schemas["SentimentRequest"]["examples"][0]["texts"]
    assert schemas["AnalyzeRequest"]["examples"][0]["items"]
    assert schemas["SentimentResponse"]["examples"][0]["results"]
    assert "413" in spec["paths"]["/v1/sentiment"]["post"]["responses"]


# --- limits and bad input ----------------------------------------------------------------------

LIMITS = ServiceConfig(max_texts=3, max_chars=50, max_body_bytes=2000)


def test_limits_return_documented_codes():
    with serve(config=LIMITS) as (url, _):
        post = lambda body: httpx.post(url + "/v1/sentiment", json=body)  # noqa: E731
        e = assert_error(post({"texts": ["a"] * 4}), 413, "limit_exceeded")
        assert e["limit"] == "max_texts" and "4 texts" in e["message"]
        e = assert_error(post({"texts": ["ok", "x" * 51]}), 413, "limit_exceeded")
        assert e["limit"] == "max_chars" and e["index"] == 1 and "texts[1]" in e["message"]
        e = assert_error(post({"texts": ["x" * 30] * 3 + ["y" * 2000]}), 413, "limit_exceeded")
        assert e["limit"] == "max_body_bytes"
        e = assert_error(post({"texts": ["fine", "   "]}), 422, "empty_text")
        assert e["index"] == 1 and "texts[1]" in e["message"]
        assert_error(post({"texts": []}), 422, "empty")
        e = assert_error(httpx.post(url + "/v1/analyze", json={"items": [{"id": "1", "text": "ok"},
                                                                          {"id": "2", "text": ""}]}),
                         422, "empty_text")
        assert "items[1].text" in e["message"]
        e = assert_error(httpx.post(url + "/v1/analyze", json={"items": [{"id": "1", "text": "ok",
                                                                          "symbols": ["BTC", "no way"]}]}),
                         422, "invalid_symbol")
        assert "items[0].symbols[1]" in e["message"]
        assert post({"texts": ["x" * 50] * 3}).status_code == 200  # exactly at the limits


def test_streamed_body_over_the_limit_is_cut_off():
    def chunks():
        yield b'{"texts": ["'
        for _ in range(100):
            yield b"x" * 100  # 10 kB, no Content-Length: counted while reading
        yield b'"]}'

    with serve(config=LIMITS) as (url, _):
        r = httpx.post(url + "/v1/sentiment", content=chunks(), headers={"Content-Type": "application/json"})
    e = assert_error(r, 413, "limit_exceeded")
    assert e["limit"] == "max_body_bytes"


def test_huge_declared_body_is_refused_without_reading_it():
    with serve(config=LIMITS) as (url, _):
        port = int(url.rsplit(":", 1)[1])
        with socket.create_connection(("127.0.0.1", port), timeout=10) as s:
            s.sendall(b"POST /v1/sentiment HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
                      b"Content-Length: 1000000000\r\n\r\n")  # and never send the gigabyte
            data = b""
            while b'"request_id"' not in data:
                chunk = s.recv(65536)
                if not chunk:
                    break
                data += chunk
    head, _, body = data.decode("latin-1").partition("\r\n\r\n")
    assert head.startswith("HTTP/1.1 413")
    assert json.loads(body)["error"]["limit"] == "max_body_bytes"


BAD_BODIES = [
    ("invalid_json", b'{"texts": ["a",]}', "application/json", 400, "invalid_json"),
    ("truncated_json", b'{"texts": ["a"', "application/json", 400, "invalid_json"),
    ("non_utf8", b'{"texts": ["caf\xe9"]}', "application/json", 400, "invalid_encoding"),
    ("wrong_type_texts", b'{"texts": "just one"}', "application/json", 422, "invalid_request"),
    ("wrong_type_element", b'{"texts": ["a", 3]}', "application/json", 422, "invalid_request"),
    ("null_element", b'{"texts": [null]}', "application/json", 422, "invalid_request"),
    ("missing_field", b'{"text": ["a"]}', "application/json", 422, "invalid_request"),
    ("not_an_object", b'["a", "b"]', "application/json", 422, "invalid_request"),
    ("json_null", b"null", "application/json", 422, "invalid_request"),
    ("empty_body", b"", "application/json", 422, "invalid_request"),
    ("deep_nesting", b"[" * 100_000 + b"]" * 100_000, "application/json", 413, "limit_exceeded"),
    ("deep_nesting_small", b'{"texts": ' + b"[" * 900 + b"]" * 900 + b"}", "application/json", 422,
     "invalid_request"),
    ("lone_surrogate", b'{"texts": ["ok \\ud800 then"]}', "application/json", 422, "invalid_text"),
    ("plain_text", b"hello", "text/plain", 415, "unsupported_media_type"),
    ("form", b"texts=a", "application/x-www-form-urlencoded", 415, "unsupported_media_type"),
]


@pytest.mark.parametrize(("body", "ctype", "status", "code"), [b[1:] for b in BAD_BODIES],
                         ids=[b[0] for b in BAD_BODIES])
def test_bad_input_is_4xx_json_never_500(bad_input_server, body, ctype, status, code):
    r = httpx.post(bad_input_server + "/v1/sentiment", content=body, headers={"Content-Type": ctype})
    assert_error(r, status, code)


@pytest.mark.parametrize("payload", [
    {"items": [{"text": "no id"}]},
    {"items": [{"id": "1", "text": "x", "published_at": "not a date"}]},
    {"items": [{"id": "1", "text": "x", "symbols": "BTC"}]},
    {"items": [{"id": "1", "text": "x", "extra": 1}]},
    {"items": {}},
    {"items": []},
])
def test_bad_analyze_input_is_4xx_json(bad_input_server, payload):
    r = httpx.post(bad_input_server + "/v1/analyze", json=payload)
    assert 400 <= r.status_code < 500 and r.json()["error"]["code"] in ("invalid_request", "empty")


def test_unknown_route_and_method_are_json(bad_input_server):
    assert_error(httpx.get(bad_input_server + "/nope"), 404, "not_found")
    assert_error(httpx.get(bad_input_server + "/v1/sentiment"), 405, "method_not_allowed")


@pytest.fixture(scope="module")
def bad_input_server():
    with serve(config=ServiceConfig(max_body_bytes=50_000)) as (url, _):
        yield url


# --- configuration ----------------------------------------------------------------------------

def test_config_from_env_mapping():
    cfg = ServiceConfig.from_env({"SMM_SERVICE_MAX_BATCH": "8", "SMM_SERVICE_MAX_WAIT_MS": "2.5",
                                  "SMM_SERVICE_MODEL": "org/other", "SMM_SERVICE_PORT": "", "UNRELATED": "1"})
    assert (cfg.max_batch, cfg.max_wait_ms, cfg.model, cfg.port) == (8, 2.5, "org/other", 8000)
    assert ServiceConfig.from_env(cfg.to_env()) == cfg
    assert ServiceConfig().model == "" and ServiceConfig().model_name is None  # the default rule
    with pytest.raises(ConfigurationError, match="SMM_SERVICE_MAX_TEXTS='many' is not an integer"):
        ServiceConfig.from_env({"SMM_SERVICE_MAX_TEXTS": "many"})
    with pytest.raises(ConfigurationError, match="SMM_SERVICE_MAX_BATCH"):
        ServiceConfig.from_env({"SMM_SERVICE_MAX_BATCH": "0"})


# --- same code everywhere ----------------------------------------------------------------------

def test_unchanged_service_gets_the_mock_in_the_test_environment():
    port = free_port()
    env = child_env(PYTEST_CURRENT_TEST=os.environ.get("PYTEST_CURRENT_TEST", "x"))
    with subprocess_server(["services/enhanced_sentiment_ml_analysis.py", "--port", str(port)], env, port):
        url = f"http://127.0.0.1:{port}"
        wait_for_ready(url)
        (m,) = httpx.get(url + "/v1/models").json()["models"]
        r = httpx.post(url + "/v1/sentiment", json={"texts": ["BTC hits a record high"]})
    assert m["environment"] == "test" and m["source"] == "mock" and m["backend"] == "mock"
    assert m["repo_id"] == "ProsusAI/finbert"
    assert sorted(m["labels"]) == ["negative", "neutral", "positive"]
    assert r.status_code == 200 and set(r.json()["results"][0]["scores"]) == set(m["labels"])


@pytest.fixture(scope="module")
def demo_volume(demo_model_dir: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    from _volumes import make_volume

    from smart_model_manager.sources.known_models import DEMO_REPO_ID

    root = tmp_path_factory.mktemp("service-volume")
    make_volume(root, {DEMO_REPO_ID: demo_model_dir})
    return root


@pytest.mark.ml_models
@pytest.mark.slow
def test_unchanged_service_gets_the_real_demo_model_from_a_production_volume(demo_volume: Path, tmp_path: Path):
    """Same file, same code: SMM_ENV=production + SMM_VOLUME_DIR -> the real model, verified, no mock."""
    from smart_model_manager.formats import manifest

    port = free_port()
    env = child_env(SMM_ENV="production", SMM_VOLUME_DIR=str(demo_volume), SMM_BACKEND="torch",
                    MODEL_CACHE_DIR=str(tmp_path / "cache"), HOME=str(tmp_path))
    texts = ["Bitcoin crashes 20% after exchange hack", "ETF inflows push BTC to a record high",
             "The central bank will publish its minutes on Wednesday"]
    args = ["services/enhanced_sentiment_ml_analysis.py", "--port", str(port), "--model", "finbert-demo"]
    with subprocess_server(args, env, port) as proc:
        url = f"http://127.0.0.1:{port}"
        wait_for_ready(url, timeout=180)
        (m,) = httpx.get(url + "/v1/models").json()["models"]
        r = httpx.post(url + "/v1/sentiment", json={"texts": texts}, timeout=60)
        a = httpx.post(url + "/v1/analyze", json={"items": [{"id": str(i), "text": t} for i, t in enumerate(texts)]},
                       timeout=60)
        proc.send_signal(signal.SIGTERM)
        proc.wait(30)
    man = manifest.load(demo_volume / "model-metadata.yaml")
    (entry,) = (rec.latest() for rec in man.models.values())
    assert (m["environment"], m["source"], m["backend"]) == ("production", "volume", "torch")
    assert m["repo_id"] == "smart-model-manager/finbert-mini-demo" and m["commit"] == entry.commit
    assert m["path"].startswith(str(demo_volume))
    assert r.status_code == 200 and a.status_code == 200
    body = r.json()
    assert body["model"] == {"name": "default", "id": m["repo_id"], "commit": entry.commit, "backend": "torch"}
    # the service's scores are the real model's: plain transformers.pipeline on the same folder
    from transformers import pipeline

    ref = pipeline("text-classification", model=m["path"], top_k=None)(texts)
    for got, want in zip(body["results"], ref):
        for d in want:
            assert got["scores"][d["label"]] == pytest.approx(d["score"], abs=1e-5)
    assert body["results"][0]["label"] == "negative"
    assert a.json()["symbols"]["BTC"]["count"] == 2


def test_repo_root_is_where_we_think():
    assert (REPO / "pyproject.toml").is_file()


def test_cli_serve_sentiment_help_lists_the_options(capsys):
    from smart_model_manager.cli.main import main

    assert main(["serve", "sentiment", "--help"]) == 0
    out = capsys.readouterr().out
    for flag in ("--host", "--port", "--model", "--workers", "--max-batch", "--max-wait-ms"):
        assert flag in out
    assert main(["serve", "sentiment", "--max-batch", "0"]) == 2  # click range check, before any server
