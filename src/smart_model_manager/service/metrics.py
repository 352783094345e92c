"""Prometheus metrics of one service instance, in its own ``CollectorRegistry``.

A registry per app (not the process-global default) so several apps in one test process never
collide and ``/metrics`` shows only this service. Route labels are route *templates*
(``/v1/sentiment``), never raw paths, so a scanner cannot blow up label cardinality. Per-model
series carry a ``model`` label: the service's route name (``default`` for a one-model service,
``crypto``, ``stock``, ...), a fixed set from the configuration.
"""

from __future__ import annotations

from typing import Any

from prometheus_client import CONTENT_TYPE_LATEST, CollectorRegistry, Counter, Gauge, Histogram, Info
from prometheus_client.exposition import generate_latest

LATENCY_BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.075, 0.1, 0.25, 0.5, 0.75, 1.0, 2.5, 5.0, 10.0)
BATCH_BUCKETS = (1, 2, 4, 8, 16, 32, 64, 128, 256)
WAIT_BUCKETS = (0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.0, 5.0, 10.0)
REJECT_REASONS = ("queue_full", "deadline", "disconnected")


class ServiceMetrics:
    def __init__(self) -> None:
        self.registry = CollectorRegistry(auto_describe=True)
        r = self.registry
        self.requests = Counter("smm_service_requests", "HTTP requests by route, method and status.",
                                ["route", "method", "status"], registry=r)
        self.latency = Histogram("smm_service_request_duration_seconds", "HTTP request latency by route.",
                                 ["route", "method"], buckets=LATENCY_BUCKETS, registry=r)
        self.batch_size = Histogram("smm_service_batch_size", "Texts per model call, by model.", ["model"],
                                    buckets=BATCH_BUCKETS, registry=r)
        self.batch_seconds = Histogram("smm_service_batch_duration_seconds", "Model call duration, by model.",
                                       ["model"], buckets=LATENCY_BUCKETS, registry=r)
        self.texts = Counter("smm_service_texts", "Texts classified, by HTTP route and model.", ["route", "model"],
                             registry=r)
        self.load_seconds = Gauge("smm_service_model_load_seconds",
                                  "Wall time from startup until the model was ready.", ["model"], registry=r)
        self.ready = Gauge("smm_service_ready", "1 when every required model is loaded and requests are served.",
                           registry=r)
        self.loaded = Gauge("smm_service_model_loaded", "1 when the model is loaded, 0 when its load failed.",
                            ["model"], registry=r)
        self.model = Info("smm_service_model", "The loaded model: environment, source, backend, device, dtype.",
                          ["model"], registry=r)
        self.int8_fallback = Gauge("smm_int8_fallback", "1 when this process serves fp32 although an int8 file "
                                   "passed its export gate: this CPU disagreed with the fp32 references, or "
                                   "they were missing (see /v1/models int8_check).", ["model"], registry=r)
        self.max_batch = Gauge("smm_service_max_batch", "Texts per model call (sized for the model's device).",
                               ["model"], registry=r)
        self.max_wait = Gauge("smm_service_max_wait_seconds", "How long a queued text waits for company.",
                              ["model"], registry=r)
        self.rejected = Counter("smm_requests_rejected", "Requests refused or dropped before the model: "
                                "queue_full (503 at admission), deadline (503: the deadline passed while "
                                "queued), disconnected (the client left while queued).", ["reason"], registry=r)
        for reason in REJECT_REASONS:
            self.rejected.labels(reason)  # exported at 0 from the start: rate() needs the series
        self.queue_wait = Histogram("smm_service_queue_wait_seconds", "Time a computed text waited from "
                                    "admission until its model call started.", buckets=WAIT_BUCKETS, registry=r)
        self.queued_texts = Gauge("smm_service_queued_texts", "Texts admitted and not finished (queued or "
                                  "being computed).", registry=r)
        self.queued_tokens = Gauge("smm_service_queued_tokens", "Estimated tokens admitted and not finished "
                                   "(queued or being computed): the queue depth to scale on.", registry=r)
        self.queue_limit = Gauge("smm_service_queue_limit_tokens", "The admission bound in estimated tokens "
                                 "for a request with the default deadline (-1: no bound).", registry=r)
        self.fill = Gauge("smm_service_queue_fill_ratio", "Queued estimated tokens / the admission bound "
                          "(1: new requests are refused; 0 when there is no bound). Scale on this.", registry=r)
        self.throughput = Gauge("smm_service_model_tokens_per_second", "Measured model throughput in "
                                "estimated tokens per second of model time (moving average).", registry=r)
        self.model_queued_tokens = Gauge("smm_service_model_queued_tokens", "Estimated tokens admitted and not "
                                         "finished, per model (the unlabelled gauges are the whole service).",
                                         ["model"], registry=r)

    def watch_admission(self, admission: Any) -> None:
        """Queue gauges read at scrape time: no cost on the request path."""
        self.queued_texts.set_function(lambda: float(admission.texts))
        self.queued_tokens.set_function(lambda: float(admission.tokens))
        self.queue_limit.set_function(lambda: float(-1 if admission.limit() is None else admission.limit()))
        self.throughput.set_function(lambda: float(admission.rate or 0.0))
        self.fill.set_function(lambda: admission.tokens / admission.limit() if admission.limit() else 0.0)

    def watch_model_admission(self, model: str, admission: Any) -> None:
        self.model_queued_tokens.labels(model).set_function(lambda: float(admission.tokens))

    def reject(self, reason: str) -> None:
        self.rejected.labels(reason).inc()

    def observe_wait(self, seconds: float) -> None:
        self.queue_wait.observe(seconds)

    def observe_request(self, route: str, method: str, status: int, seconds: float) -> None:
        self.requests.labels(route, method, str(status)).inc()
        self.latency.labels(route, method).observe(seconds)

    def observe_batch(self, size: int, seconds: float, *, model: str = "default") -> None:
        self.batch_size.labels(model).observe(size)
        self.batch_seconds.labels(model).observe(seconds)

    def count_texts(self, route: str, n: int, *, model: str = "default") -> None:
        self.texts.labels(route, model).inc(n)

    def model_loaded(self, info: dict[str, Any], service_seconds: float, *, max_batch: int | None = None,
                     max_wait_ms: float | None = None, model: str = "default") -> None:
        self.load_seconds.labels(model).set(service_seconds)
        self.loaded.labels(model).set(1)
        self.model.labels(model).info({k: str(info.get(k) or "") for k in
                                       ("repo_id", "environment", "source", "backend", "commit", "device", "dtype")})
        check = info.get("int8_check") or {}
        self.int8_fallback.labels(model).set(1 if check.get("status") in ("fallback", "not-gated") else 0)
        if max_batch is not None:
            self.max_batch.labels(model).set(max_batch)
        if max_wait_ms is not None:
            self.max_wait.labels(model).set(max_wait_ms / 1000.0)

    def model_failed(self, model: str) -> None:
        self.loaded.labels(model).set(0)

    def render(self) -> tuple[bytes, str]:
        return generate_latest(self.registry), CONTENT_TYPE_LATEST
