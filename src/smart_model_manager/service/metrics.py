"""Prometheus metrics of one service instance, in its own ``CollectorRegistry``.

A registry per app (not the process-global default) so several apps in one test process never
collide and ``/metrics`` shows only this service. Route labels are route *templates*
(``/v1/sentiment``), never raw paths, so a scanner cannot blow up label cardinality.
"""

from __future__ import annotations

from typing import Any

from prometheus_client import CONTENT_TYPE_LATEST, CollectorRegistry, Counter, Gauge, Histogram, Info
from prometheus_client.exposition import generate_latest

LATENCY_BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.075, 0.1, 0.25, 0.5, 0.75, 1.0, 2.5, 5.0, 10.0)
BATCH_BUCKETS = (1, 2, 4, 8, 16, 32, 64, 128, 256)


class ServiceMetrics:
    def __init__(self) -> None:
        self.registry = CollectorRegistry(auto_describe=True)
        r = self.registry
        self.requests = Counter("smm_service_requests", "HTTP requests by route, method and status.",
                                ["route", "method", "status"], registry=r)
        self.latency = Histogram("smm_service_request_duration_seconds", "HTTP request latency by route.",
                                 ["route", "method"], buckets=LATENCY_BUCKETS, registry=r)
        self.batch_size = Histogram("smm_service_batch_size", "Texts per model call.",
                                    buckets=BATCH_BUCKETS, registry=r)
        self.batch_seconds = Histogram("smm_service_batch_duration_seconds", "Model call duration.",
                                       buckets=LATENCY_BUCKETS, registry=r)
        self.texts = Counter("smm_service_texts", "Texts classified.", ["route"], registry=r)
        self.load_seconds = Gauge("smm_service_model_load_seconds",
                                  "Wall time from startup until the model was ready.", registry=r)
        self.ready = Gauge("smm_service_ready", "1 when the model is loaded and requests are served.",
                           registry=r)
        self.model = Info("smm_service_model", "The loaded model: environment, source, backend, device, dtype.",
                          registry=r)
        self.int8_fallback = Gauge("smm_int8_fallback", "1 when this process serves fp32 although an int8 file "
                                   "passed its export gate: this CPU disagreed with the fp32 references, or "
                                   "they were missing (see /v1/models int8_check).", registry=r)
        self.max_batch = Gauge("smm_service_max_batch", "Texts per model call (sized for the model's device).",
                               registry=r)
        self.max_wait = Gauge("smm_service_max_wait_seconds", "How long a queued text waits for company.",
                              registry=r)

    def observe_request(self, route: str, method: str, status: int, seconds: float) -> None:
        self.requests.labels(route, method, str(status)).inc()
        self.latency.labels(route, method).observe(seconds)

    def observe_batch(self, size: int, seconds: float) -> None:
        self.batch_size.observe(size)
        self.batch_seconds.observe(seconds)

    def count_texts(self, route: str, n: int) -> None:
        self.texts.labels(route).inc(n)

    def model_loaded(self, info: dict[str, Any], service_seconds: float, *, max_batch: int | None = None,
                     max_wait_ms: float | None = None) -> None:
        self.load_seconds.set(service_seconds)
        self.ready.set(1)
        self.model.info({k: str(info.get(k) or "") for k in
                         ("repo_id", "environment", "source", "backend", "commit", "device", "dtype")})
        check = info.get("int8_check") or {}
        self.int8_fallback.set(1 if check.get("status") in ("fallback", "not-gated") else 0)
        if max_batch is not None:
            self.max_batch.set(max_batch)
        if max_wait_ms is not None:
            self.max_wait.set(max_wait_ms / 1000.0)

    def render(self) -> tuple[bytes, str]:
        return generate_latest(self.registry), CONTENT_TYPE_LATEST
