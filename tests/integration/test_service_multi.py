"""One sentiment service, two models, on a REAL uvicorn server on 127.0.0.1: routing per item (explicit,
market, detected, fallback), labels that mean the same thing (a 2-label and a 3-label model), the refusal
of an unmappable model, the optional-model fallback, per-model metrics and aggregates across models."""

from __future__ import annotations

import logging

import httpx
import pytest
from _service_fixtures import ServerThread, wait_for_ready
from prometheus_client.parser import text_string_to_metric_families

from smart_model_manager.errors import ConfigurationError
from smart_model_manager.model import LoadInfo, Model, RunnerDefaults
from smart_model_manager.service.app import create_app
from smart_model_manager.service.config import ServiceConfig

pytestmark = pytest.mark.integration

CRYPTO_TEXT = "Bitcoin ETF inflows hit a record"          # detector: crypto
STOCK_TEXT = "Apple earnings beat estimates on strong iPhone sales"  # detector: stock
BOTH_TEXT = "Coinbase shares jump after earnings"      # detector: stock (1 crypto keyword vs 2 stock)

# hand-picked probabilities in each model's label order
CRYPTO_ROWS = {CRYPTO_TEXT: [0.2, 0.8], STOCK_TEXT: [0.9, 0.1], BOTH_TEXT: [0.4, 0.6]}   # LABEL_0, LABEL_1
STOCK_ROWS = {CRYPTO_TEXT: [0.1, 0.1, 0.8], STOCK_TEXT: [0.7, 0.1, 0.2], BOTH_TEXT: [0.1, 0.6, 0.3]}  # pos, neg, neu


class Runner(RunnerDefaults):
    def __init__(self, rows: dict[str, list[float]], width: int):
        self.rows, self.width, self.calls = rows, width, []

    def __call__(self, texts: list[str]) -> list[list[float]]:
        self.calls.append(list(texts))
        return [self.rows.get(t, [1.0 / self.width] * self.width) for t in texts]


def fake(repo_id: str, labels: tuple[str, ...], rows: dict[str, list[float]], commit: str) -> Model:
    info = LoadInfo(repo_id=repo_id, model_type="sentiment", environment="test", source="fake", path=None,
                    commit=commit, revision=None, backend="fake", load_seconds=0.0)
    return Model(Runner(rows, len(labels)), model_type="sentiment", labels=labels, info=info)


def crypto_model() -> Model:
    return fake("kk08/CryptoBERT", ("LABEL_0", "LABEL_1"), CRYPTO_ROWS, "c" * 40)


def stock_model() -> Model:
    return fake("ProsusAI/finbert", ("positive", "negative", "neutral"), STOCK_ROWS, "f" * 40)


class Loader:
    def __init__(self, models: dict[str, Model | Exception]):
        self.models = models

    def __call__(self, name: str | None) -> Model:
        m = self.models[name or ""]
        if isinstance(m, Exception):
            raise m
        return m


TWO = ServiceConfig(models="crypto=kk08/CryptoBERT,stock=finbert")


def start(config: ServiceConfig = TWO, models: dict[str, Model | Exception] | None = None, declared=None,
          ready: bool = True) -> ServerThread:
    models = models if models is not None else {"kk08/CryptoBERT": crypto_model(), "finbert": stock_model()}
    srv = ServerThread(create_app(config=config, loader=Loader(models), declared=declared)).__enter__()
    if ready:
        wait_for_ready(srv.url, timeout=20)
    return srv


def analyze(url: str, items: list[dict]) -> httpx.Response:
    return httpx.post(url + "/v1/analyze", json={"items": items}, timeout=20)


@pytest.fixture()
def two():
    srv = start()
    yield srv.url
    srv.__exit__(None, None, None)


def test_every_rule_routes_and_says_which_model_answered_and_why(two):
    body = analyze(two, [
        {"id": "explicit", "text": CRYPTO_TEXT, "model": "stock"},
        {"id": "market", "text": CRYPTO_TEXT, "market": "stock"},
        {"id": "detected-crypto", "text": CRYPTO_TEXT},
        {"id": "detected-stock", "text": STOCK_TEXT},
    ]).json()
    got = {it["id"]: (it["model"], it["route"], it["market"]) for it in body["items"]}
    assert got == {"explicit": ("stock", "explicit", None), "market": ("stock", "market", "stock"),
                   "detected-crypto": ("crypto", "detected", "crypto"),
                   "detected-stock": ("stock", "detected", "stock")}
    assert body["model"] is None  # two models answered
    assert body["models"] == {"stock": {"name": "stock", "id": "ProsusAI/finbert", "commit": "f" * 40,
                                        "backend": "fake"},
                              "crypto": {"name": "crypto", "id": "kk08/CryptoBERT", "commit": "c" * 40,
                                         "backend": "fake"}}
    by_id = {it["id"]: it for it in body["items"]}
    # the binary model's LABEL_1 is positive: 0.8 - 0.2, never a silent "neutral"
    assert by_id["detected-crypto"]["label"] == "LABEL_1" and by_id["detected-crypto"]["polarity"] == "positive"
    assert by_id["detected-crypto"]["signed_score"] == pytest.approx(0.6)
    assert by_id["explicit"]["scores"] == pytest.approx({"positive": 0.1, "negative": 0.1, "neutral": 0.8})
    assert by_id["explicit"]["polarity"] == "neutral" and by_id["explicit"]["signed_score"] == pytest.approx(0.0)


def test_sentiment_takes_an_optional_model_and_defaults_to_the_first(two):
    r = httpx.post(two + "/v1/sentiment", json={"texts": [STOCK_TEXT]}).json()
    assert r["model"]["name"] == "crypto" and r["results"][0]["label"] == "LABEL_0"
    assert r["results"][0]["signed_score"] == pytest.approx(-0.8)
    r = httpx.post(two + "/v1/sentiment", json={"texts": [STOCK_TEXT], "model": "stock"}).json()
    assert r["model"] == {"name": "stock", "id": "ProsusAI/finbert", "commit": "f" * 40, "backend": "fake"}
    assert r["results"][0]["label"] == "positive" and r["results"][0]["signed_score"] == pytest.approx(0.6)


def test_unknown_model_or_market_is_a_4xx_listing_the_valid_ones(two):
    for r, code, valid in (
            (httpx.post(two + "/v1/sentiment", json={"texts": ["x"], "model": "bonds"}), "unknown_model",
             ["crypto", "stock"]),
            (analyze(two, [{"id": "1", "text": "x"}, {"id": "2", "text": "y", "model": "finbert"}]),
             "unknown_model", ["crypto", "stock"]),
            (analyze(two, [{"id": "1", "text": "x", "market": "forex"}]), "unknown_market", ["crypto", "stock"])):
        assert r.status_code == 422, r.text
        err = r.json()["error"]
        assert err["code"] == code and err["valid"] == valid and "crypto, stock" in err["message"]
    assert "items[1].model='finbert'" in analyze(two, [{"id": "1", "text": "x"},
                                                       {"id": "2", "text": "y", "model": "finbert"}]).text


def test_v1_models_lists_every_model_with_commit_backend_labels_and_polarity(two):
    models = {m["name"]: m for m in httpx.get(two + "/v1/models").json()["models"]}
    assert list(models) == ["crypto", "stock"]
    c, s = models["crypto"], models["stock"]
    assert (c["repo_id"], c["commit"], c["backend"], c["status"], c["optional"]) == (
        "kk08/CryptoBERT", "c" * 40, "fake", "ready", False)
    assert c["labels"] == ["LABEL_0", "LABEL_1"] and c["polarity"] == {"LABEL_0": "negative", "LABEL_1": "positive"}
    assert s["polarity"] == {"positive": "positive", "negative": "negative", "neutral": "neutral"}
    assert c["max_batch"] == s["max_batch"] == 32  # each has its own batcher, sized for its device
    ready = httpx.get(two + "/readyz").json()
    assert ready["status"] == "ready" and set(ready["models"]) == {"crypto", "stock"}


def test_aggregates_combine_items_across_models_by_polarity(two):
    body = analyze(two, [
        {"id": "a", "text": CRYPTO_TEXT, "symbols": ["BTC"]},              # crypto model: +0.6, positive, c=0.8
        {"id": "b", "text": STOCK_TEXT, "symbols": ["BTC"]},               # stock model: +0.6, positive, c=0.7
        {"id": "c", "text": BOTH_TEXT, "symbols": ["BTC", "COIN"]},        # stock model: -0.5, negative, c=0.6
        {"id": "d", "text": STOCK_TEXT, "symbols": ["COIN"], "model": "crypto"},  # crypto: -0.8, negative, c=0.9
    ]).json()
    btc, coin = body["symbols"]["BTC"], body["symbols"]["COIN"]
    assert btc["count"] == 3
    assert btc["mean_signed_score"] == pytest.approx((0.6 + 0.6 - 0.5) / 3)
    assert btc["confidence_weighted_score"] == pytest.approx((0.8 * 0.6 + 0.7 * 0.6 - 0.6 * 0.5) / (0.8 + 0.7 + 0.6))
    # counted by polarity, whichever model's label names: LABEL_1 and "positive" add up
    assert btc["label_counts"] == {"positive": 2, "negative": 1, "neutral": 0}
    assert btc["model_counts"] == {"crypto": 1, "stock": 2}
    assert coin["mean_signed_score"] == pytest.approx((-0.5 - 0.8) / 2)
    assert coin["label_counts"] == {"positive": 0, "negative": 2, "neutral": 0}
    assert coin["model_counts"] == {"stock": 1, "crypto": 1}


def test_per_model_metrics_and_batchers(two):
    analyze(two, [{"id": "1", "text": CRYPTO_TEXT}, {"id": "2", "text": CRYPTO_TEXT, "market": "crypto"},
                  {"id": "3", "text": STOCK_TEXT}])
    httpx.post(two + "/v1/sentiment", json={"texts": ["a", "b"], "model": "stock"})
    fams = {f.name: f for f in text_string_to_metric_families(httpx.get(two + "/metrics").text)}
    texts = {(s.labels["route"], s.labels["model"]): s.value for s in fams["smm_service_texts"].samples
             if s.name.endswith("_total")}
    assert texts == {("/v1/analyze", "crypto"): 2, ("/v1/analyze", "stock"): 1, ("/v1/sentiment", "stock"): 2}
    batches = {s.labels["model"]: s.value for s in fams["smm_service_batch_size"].samples if s.name.endswith("_sum")}
    assert batches == {"crypto": 2, "stock": 3}
    info = {s.labels["model"]: s.labels["repo_id"] for s in fams["smm_service_model_info"].samples}
    assert info == {"crypto": "kk08/CryptoBERT", "stock": "ProsusAI/finbert"}
    loaded = {s.labels["model"]: s.value for s in fams["smm_service_model_loaded"].samples}
    assert loaded == {"crypto": 1, "stock": 1}


def test_an_unmappable_model_is_refused_at_startup_naming_its_labels():
    mystery = fake("acme/mystery", ("LABEL_0", "LABEL_1"), {}, "d" * 40)
    srv = start(models={"kk08/CryptoBERT": crypto_model(), "acme/mystery": mystery}, ready=False,
                config=ServiceConfig(models="crypto=kk08/CryptoBERT,stock=acme/mystery"))
    try:
        r = _wait_status(srv.url + "/readyz", "model_load_failed")
        err = r.json()["error"]
        assert "stock (acme/mystery)" in err["message"] and "['LABEL_0', 'LABEL_1']" in err["message"]
        assert err["models"] == [{"name": "stock", "model": "acme/mystery", "status": "failed",
                                  "error": err["models"][0]["error"]}]
        assert httpx.get(srv.url + "/healthz").status_code == 503  # never heals: restart
        assert httpx.post(srv.url + "/v1/sentiment", json={"texts": ["x"]}).status_code == 503  # nothing served
    finally:
        srv.__exit__(None, None, None)


def test_a_declared_map_makes_an_odd_model_servable():
    odd = fake("acme/odd", ("up", "flat", "down"), {CRYPTO_TEXT: [0.5, 0.3, 0.2]}, "e" * 40)
    declared = lambda name, repo_id: {"up": "positive", "flat": "neutral", "down": "negative"}  # noqa: E731
    srv = start(models={"acme/odd": odd}, config=ServiceConfig(model="acme/odd"), declared=declared)
    try:
        r = httpx.post(srv.url + "/v1/sentiment", json={"texts": [CRYPTO_TEXT]}).json()
        assert r["results"][0]["polarity"] == "positive" and r["results"][0]["signed_score"] == pytest.approx(0.3)
    finally:
        srv.__exit__(None, None, None)


def test_optional_model_failing_falls_back_logged_once_and_shown(caplog):
    caplog.set_level(logging.ERROR, logger="smart_model_manager.service.multi")
    srv = start(config=ServiceConfig(models="crypto=kk08/CryptoBERT,stock=finbert", optional="stock"),
                models={"kk08/CryptoBERT": crypto_model(), "finbert": OSError("disk on fire")})
    try:
        models = {m["name"]: m for m in httpx.get(srv.url + "/v1/models").json()["models"]}
        assert models["stock"]["status"] == "failed" and models["stock"]["optional"] is True
        assert "disk on fire" in models["stock"]["error"] and models["crypto"]["status"] == "ready"
        body = analyze(srv.url, [{"id": "1", "text": STOCK_TEXT}, {"id": "2", "text": CRYPTO_TEXT},
                                 {"id": "3", "text": STOCK_TEXT, "market": "stock"}]).json()
        assert [(it["model"], it["route"], it["market"]) for it in body["items"]] == [
            ("crypto", "fallback", "stock"), ("crypto", "detected", "crypto"), ("crypto", "fallback", "stock")]
        r = httpx.post(srv.url + "/v1/sentiment", json={"texts": ["x"], "model": "stock"})
        assert r.status_code == 503 and r.json()["error"]["code"] == "model_unavailable"  # asked for it by name
        assert "disk on fire" in r.json()["error"]["message"]
        assert httpx.get(srv.url + "/healthz").json() == {"status": "ok", "model_loaded": True}
    finally:
        srv.__exit__(None, None, None)
    failures = [rec for rec in caplog.records if rec.getMessage() == "model load failed"]
    assert len(failures) == 1 and failures[0].route == "stock"  # logged once, not per request


def test_a_required_model_failing_keeps_the_service_unready_with_name_and_reason():
    srv = start(models={"kk08/CryptoBERT": crypto_model(), "finbert": OSError("no such volume")}, ready=False)
    try:
        err = _wait_status(srv.url + "/readyz", "model_load_failed").json()["error"]
        assert "stock (finbert): OSError: no such volume" in err["message"]
    finally:
        srv.__exit__(None, None, None)


def test_routes_must_match_the_detectors_markets():
    with pytest.raises(ConfigurationError, match=r"no route is named \['crypto', 'stock'\]"):
        create_app(config=ServiceConfig(models="a=kk08/CryptoBERT,b=finbert"), loader=Loader({}))


def _wait_status(url: str, code: str, timeout: float = 20) -> httpx.Response:
    import time

    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        r = httpx.get(url)
        if r.status_code == 503 and r.json()["error"]["code"] == code:
            return r
        time.sleep(0.05)
    raise AssertionError(f"{url} never answered {code}: {r.text}")


class GatedRunner(Runner):
    """Blocks every model call until ``gate`` is set; ``entered`` says a call has started."""

    def __init__(self, rows: dict[str, list[float]], width: int):
        super().__init__(rows, width)
        import threading

        self.gate, self.entered = threading.Event(), threading.Event()

    def __call__(self, texts: list[str]) -> list[list[float]]:
        self.entered.set()
        assert self.gate.wait(20)
        return super().__call__(texts)


def test_admission_applies_per_model_and_in_total():
    import threading

    text = "x" * 60  # 60 // 4 + 2 = 17 estimated tokens
    crypto_runner = GatedRunner({}, 2)
    crypto = Model(crypto_runner, model_type="sentiment", labels=("LABEL_0", "LABEL_1"),
                   info=crypto_model().info)
    config = ServiceConfig(models="crypto=kk08/CryptoBERT,stock=finbert", max_queued_tokens=30,
                           request_timeout_s=0, max_wait_ms=0)
    srv = start(config=config, models={"kk08/CryptoBERT": crypto, "finbert": stock_model()})
    first: list[httpx.Response] = []
    try:
        t = threading.Thread(target=lambda: first.append(
            httpx.post(srv.url + "/v1/sentiment", json={"texts": [text], "model": "crypto"}, timeout=30)))
        t.start()
        assert crypto_runner.entered.wait(10)  # 17 tokens admitted for crypto, and for the service
        # the same model again: over crypto's own bound (17 + 17 > 30)
        r = httpx.post(srv.url + "/v1/sentiment", json={"texts": [text], "model": "crypto"})
        assert r.status_code == 503 and r.json()["error"]["code"] == "overloaded", r.text
        assert "model 'crypto'" in r.json()["error"]["message"] and r.headers["retry-after"]
        # the other model is empty, but the service's total is not (17 + 17 > 30)
        r = httpx.post(srv.url + "/v1/sentiment", json={"texts": [text], "model": "stock"})
        assert r.status_code == 503 and "the service has 17 estimated tokens" in r.json()["error"]["message"]
        admission = {m["name"]: m["admission"] for m in httpx.get(srv.url + "/v1/models").json()["models"]}
        assert admission["crypto"]["queued_tokens"] == 17 and admission["stock"]["queued_tokens"] == 0
        fams = {f.name: f for f in text_string_to_metric_families(httpx.get(srv.url + "/metrics").text)}
        per_model = {s.labels["model"]: s.value for s in fams["smm_service_model_queued_tokens"].samples}
        assert per_model == {"crypto": 17, "stock": 0}
        assert [s.value for s in fams["smm_service_queued_tokens"].samples] == [17]  # the service's total
    finally:
        crypto_runner.gate.set()
        t.join(20)
        srv.__exit__(None, None, None)
    assert first[0].status_code == 200  # the admitted request was served


def test_the_real_library_path_with_mocks_serves_both_models_by_the_same_table(monkeypatch):
    """No fake loader: the models come from get_model_manager() (mocks under pytest), which give
    kk08/CryptoBERT its binary LABEL_0/LABEL_1 head; the service maps them by the known table."""
    from smart_model_manager.api import reset_model_manager

    monkeypatch.setenv("SMM_ENV", "test")
    reset_model_manager()
    app = create_app(config=ServiceConfig(models="crypto=kk08/CryptoBERT,stock=ProsusAI/finbert"))
    with ServerThread(app) as srv:
        wait_for_ready(srv.url, timeout=30)
        body = analyze(srv.url, [{"id": "c", "text": "Bitcoin rallies to a record high on ETF inflows"},
                                 {"id": "s", "text": "Apple stock surges after record quarterly earnings"}]).json()
        models = {m["name"]: m for m in httpx.get(srv.url + "/v1/models").json()["models"]}
    c, s = body["items"]
    assert (c["model"], c["route"], c["label"], c["polarity"]) == ("crypto", "detected", "LABEL_1", "positive")
    assert (s["model"], s["route"], s["label"], s["polarity"]) == ("stock", "detected", "positive", "positive")
    assert c["signed_score"] > 0.5 and s["signed_score"] > 0.5
    assert models["crypto"]["polarity"] == {"LABEL_0": "negative", "LABEL_1": "positive"}
    assert models["crypto"]["backend"] == models["stock"]["backend"] == "mock"
    reset_model_manager()


@pytest.mark.parametrize("executor", ["shared", "per-model"])
def test_both_ways_of_sharing_the_cpu_serve_both_models(executor):
    srv = start(config=ServiceConfig(models="crypto=kk08/CryptoBERT,stock=finbert", model_executor=executor))
    try:
        state = srv.config.app.state.smm
        crypto_b, stock_b = (state.routes.routes[n].batcher for n in ("crypto", "stock"))
        assert crypto_b is not stock_b  # a micro-batcher per model, always
        assert (crypto_b._executor is stock_b._executor) == (executor == "shared")  # one model thread, or one each
        body = analyze(srv.url, [{"id": "1", "text": CRYPTO_TEXT}, {"id": "2", "text": STOCK_TEXT}]).json()
        assert [it["model"] for it in body["items"]] == ["crypto", "stock"]
        assert crypto_b.texts == 1 and stock_b.texts == 1
    finally:
        srv.__exit__(None, None, None)
