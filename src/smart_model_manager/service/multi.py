"""The models of one service: a ``Route`` per configured model, and the ``ModelSet`` that loads and picks them.

Each route has its own model, label -> polarity map, micro-batcher (its own ``max_batch``, sized for
the device its model runs on) and load status. Loading runs in one daemon thread, route by route in
configured order, so ``/healthz`` answers at once.

Readiness: the service is ready when every required route is loaded and every optional one has either
loaded or failed. A required route that fails makes the service unready for good (``/readyz`` and
``/healthz`` name it and the reason). An optional route that fails is logged once and shown in
``/v1/models``; items routed to it by market or detection go to the first loaded route instead
(reason ``fallback``), the original service's rule, and only for routes marked optional. An item that
names the failed route explicitly gets a 503: answering it with another model would not be what it
asked for.

Picking a route for an item (``reason``):

* ``explicit``: the item names ``model`` (a route name);
* ``market``: the item names ``market``; the route of that name answers;
* ``detected``: neither; the detector (``service.market``) says the market;
* ``default``: a one-model service, or ``/v1/sentiment`` without ``model`` (the first route);
* ``fallback``: the route chosen above is optional and failed to load.
"""

from __future__ import annotations

import concurrent.futures
import logging
import threading
import time
from collections.abc import Callable, Sequence
from typing import Any

from .. import polarity as polarity_mod
from ..pipeline_call import top_index
from .admission import Admission
from .batching import MicroBatcher
from .config import ServiceConfig
from .market import load_detector
from .memory import TRIM_AFTER_CHARS, trim
from .metrics import ServiceMetrics
from .routes_config import SINGLE, RouteSpec

log = logging.getLogger(__name__)

Loader = Callable[[str | None], Any]           # name (None: the default model) -> Model
Declared = Callable[[str | None, str], dict[str, str]]  # (configured name, repo id) -> declared polarity map


class RouteError(Exception):
    """A request names a route, a market or a model that cannot answer it."""

    def __init__(self, status: int, code: str, message: str, **extra: Any):
        super().__init__(message)
        self.status, self.code, self.message, self.extra = status, code, message, extra


class Route:
    def __init__(self, spec: RouteSpec, config: ServiceConfig, metrics: ServiceMetrics,
                 executor: concurrent.futures.ThreadPoolExecutor | None, total: Admission | None):
        self.spec, self.name, self.optional = spec, spec.name, spec.optional
        self.config, self.metrics = config, metrics
        self.model: Any = None
        self.polarity: tuple[str, ...] = ()      # per label, in label order
        self.load_error: str | None = None
        self.service_load_seconds: float | None = None
        # admission per model, inside the service's total (``total``; None for a one-model service)
        self.admission = Admission(max_tokens=config.max_queued_tokens, deadline_s=config.request_timeout_s,
                                   parent=total, name=f"model {self.name!r}" if total is not None else "service")
        metrics.watch_model_admission(self.name, self.admission)
        self.batcher = MicroBatcher(self._run, max_batch=config.max_batch, max_wait_ms=config.max_wait_ms,
                                    on_batch=lambda n, s: metrics.observe_batch(n, s, model=self.name),
                                    on_wait=metrics.observe_wait, admission=self.admission, executor=executor)

    @property
    def configured(self) -> str:
        return self.spec.model or self.config.model_label

    def _run(self, texts: list[str]) -> list[list[float]]:
        rows = self.model.raw(texts)
        if sum(map(len, texts)) >= TRIM_AFTER_CHARS:  # long texts: give their buffers back now
            trim()
        return rows

    @property
    def status(self) -> str:
        return "ready" if self.model is not None else "failed" if self.load_error is not None else "loading"

    def load(self, loader: Loader, declared: Declared) -> None:
        t0 = time.perf_counter()
        log.info("loading model", extra={"model": self.configured, "route": self.name})
        try:
            model = loader(self.spec.model or None)
            if getattr(model, "model_type", "sentiment") != "sentiment" or not model.labels:
                raise TypeError(f"{self.configured} loaded as model_type={model.model_type!r} with labels "
                                f"{list(model.labels)}; the service needs a sentiment model")
            pairs = polarity_mod.resolve(model.info.repo_id, model.labels,
                                         declared(self.spec.model or None, model.info.repo_id), name=self.name)
        except Exception as err:  # noqa: BLE001 - reported by /readyz, /v1/models and logged once
            self.load_error = f"{type(err).__name__}: {err}"
            log.error("model load failed", extra={"model": self.configured, "route": self.name,
                                                  "optional": self.optional, "error": self.load_error})
            self.metrics.model_failed(self.name)
            return
        self.service_load_seconds = time.perf_counter() - t0
        info = model.info.as_dict()
        max_batch, max_wait_ms = self.config.batching_for(info.get("device") or "cpu")
        self.batcher.resize(max_batch=max_batch, max_wait_ms=max_wait_ms)
        self.metrics.model_loaded(info, self.service_load_seconds, max_batch=max_batch, max_wait_ms=max_wait_ms,
                                  model=self.name)
        self.polarity = tuple(p for _, p in pairs)
        self.model = model  # last: the route is usable only when everything above is done
        log.info("model ready", extra={k: info.get(k) for k in
                                        ("repo_id", "environment", "source", "backend", "commit", "device", "dtype")}
                 | {"route": self.name, "service_load_seconds": round(self.service_load_seconds, 3),
                    "max_batch": max_batch, "max_wait_ms": max_wait_ms})

    def ref(self) -> dict[str, Any]:
        i = self.model.info
        return {"name": self.name, "id": i.repo_id, "commit": i.commit, "backend": i.backend}

    def describe(self) -> dict[str, Any]:
        """This route's entry in /v1/models."""
        base: dict[str, Any] = {"name": self.name, "optional": self.optional, "status": self.status,
                                "configured": self.configured}
        if self.model is None:
            return base | {"error": self.load_error}
        info = self.model.info.as_dict()
        return base | info | {
            "labels": list(self.model.labels),
            "polarity": dict(zip(self.model.labels, self.polarity)),
            "service_load_seconds": self.service_load_seconds,
            "max_batch": self.batcher.max_batch, "max_wait_ms": round(self.batcher.max_wait * 1000, 3),
            "admission": self.admission.as_dict()}

    def result(self, probs: Sequence[float]) -> dict[str, Any]:
        labels = self.model.labels
        top = top_index(probs)
        return {"label": labels[top], "score": float(probs[top]),
                "scores": {lab: float(p) for lab, p in zip(labels, probs)},
                "polarity": self.polarity[top],
                "signed_score": polarity_mod.signed_score(probs, self.polarity)}


class ModelSet:
    def __init__(self, config: ServiceConfig, loader: Loader, declared: Declared, metrics: ServiceMetrics):
        self.config, self.loader, self.declared, self.metrics = config, loader, declared, metrics
        specs = config.routes()
        self.executor: concurrent.futures.ThreadPoolExecutor | None = None
        if config.model_executor == "shared" and len(specs) > 1:
            # one model thread: the models' batches take turns, each using its threads (no oversubscription)
            self.executor = concurrent.futures.ThreadPoolExecutor(max_workers=1, thread_name_prefix="smm-model")
        # several models: each one's admission bound, and one for the whole service (same rule: fixed N, or
        # auto from the throughput of every model call; see Admission.observe)
        self.total: Admission | None = None
        if len(specs) > 1:
            self.total = Admission(max_tokens=config.max_queued_tokens, deadline_s=config.request_timeout_s,
                                   name="service")
        self.routes: dict[str, Route] = {s.name: Route(s, config, metrics, self.executor, self.total)
                                         for s in specs}
        metrics.watch_admission(self.admission)
        self.single = len(self.routes) == 1
        self.detector, markets = load_detector(config.detector)
        self.markets: tuple[str, ...] = markets if markets is not None else tuple(self.routes)
        if not self.single:
            missing = [m for m in self.markets if m not in self.routes]
            if missing:
                from ..errors import ConfigurationError

                raise ConfigurationError(
                    f"the market detector returns {list(self.markets)} but no route is named {missing}; name the "
                    f"routes after the markets (e.g. --model crypto=... --model stock=...) or set "
                    f"SMM_SERVICE_DETECTOR (routes: {list(self.routes)})")
        self.settled = threading.Event()

    @property
    def admission(self) -> Admission:
        """The service-wide admission: the total of several models, or the one model's own."""
        return self.total if self.total is not None else self.default.admission

    @property
    def default(self) -> Route:
        return next(iter(self.routes.values()))

    # -- lifecycle ---------------------------------------------------------------------------
    def start(self) -> None:
        for r in self.routes.values():
            r.batcher.start()
        threading.Thread(target=self._load_all, name="smm-model-load", daemon=True).start()

    def _load_all(self) -> None:
        for r in self.routes.values():
            r.load(self.loader, self.declared)
        if self.ready:
            self.metrics.ready.set(1)
        self.settled.set()

    async def close(self) -> None:
        for r in self.routes.values():
            await r.batcher.close()
        if self.executor is not None:
            self.executor.shutdown(wait=True)

    @property
    def ready(self) -> bool:
        return all(r.model is not None or (r.optional and r.load_error is not None) for r in self.routes.values())

    def failed_required(self) -> list[Route]:
        return [r for r in self.routes.values() if r.load_error is not None and not r.optional]

    def not_ready(self) -> list[dict[str, Any]]:
        return [{"name": r.name, "model": r.configured, "status": r.status, "error": r.load_error}
                for r in self.routes.values() if r.model is None and not (r.optional and r.load_error)]

    # -- routing -----------------------------------------------------------------------------
    def _valid(self) -> str:
        return ", ".join(self.routes)

    def pick(self, model: str | None = None, market: str | None = None, text: str | None = None,
             *, where: str = "") -> tuple[Route, str, str | None]:
        """(route, reason, market) for one item; RouteError (4xx/503) naming the valid choices."""
        if model is not None:
            if model not in self.routes:
                raise RouteError(422, "unknown_model", f"{where}model={model!r} is not a model of this service; "
                                 f"valid: {self._valid()}", valid=list(self.routes))
            route = self.routes[model]
            if route.model is None:
                raise RouteError(503, "model_unavailable", f"{where}model={model!r} is not loaded "
                                 f"({route.load_error or 'still loading'}); loaded: "
                                 f"{', '.join(r.name for r in self.routes.values() if r.model is not None)}")
            return route, "explicit", None
        if market is not None:
            if market not in self.markets:
                raise RouteError(422, "unknown_market", f"{where}market={market!r} is not a market of this "
                                 f"service; valid: {', '.join(self.markets)}", valid=list(self.markets))
            return self._serve(market, "market") if not self.single else (self.default, "default", market)
        if self.single or text is None:
            return self.default, "default", None
        found = self.detector(text)
        if found not in self.routes:
            raise RouteError(503, "detector_failed", f"the market detector returned {found!r}, which no route "
                             f"serves; routes: {self._valid()}")
        return self._serve(found, "detected")

    def _serve(self, name: str, reason: str) -> tuple[Route, str, str | None]:
        route = self.routes[name]
        if route.model is not None:
            return route, reason, name
        for other in self.routes.values():  # only optional routes can be failed while ready
            if other.model is not None:
                return other, "fallback", name
        raise RouteError(503, "not_ready", "no model is loaded")


__all__ = ["SINGLE", "ModelSet", "Route", "RouteError"]
