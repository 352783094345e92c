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
        self.max_batch = Gauge("smm_service_max_batch", "Texts per model call (sized for the model's device).",
                               ["model"], registry=r)
        self.max_wait = Gauge("smm_service_max_wait_seconds", "How long a queued text waits for company.",
                              ["model"], registry=r)

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
        if max_batch is not None:
            self.max_batch.labels(model).set(max_batch)
        if max_wait_ms is not None:
            self.max_wait.labels(model).set(max_wait_ms / 1000.0)

    def model_failed(self, model: str) -> None:
        self.loaded.labels(model).set(0)

    def render(self) -> tuple[bytes, str]:
        return generate_latest(self.registry), CONTENT_TYPE_LATEST
