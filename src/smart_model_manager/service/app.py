"""The sentiment service: ``create_app()`` builds a FastAPI app around one ``Model``.

Run it with any ASGI server::

    uvicorn --factory smart_model_manager.service.app:create_app     # config from SMM_SERVICE_*
    smm serve sentiment --port 8000

Lifecycle: startup starts the micro-batcher and loads the model in a daemon thread, so ``/healthz``
answers at once and ``/readyz`` turns 200 only when the model is loaded (and validated by the
manager). Shutdown (uvicorn's graceful SIGTERM: stop accepting, finish in-flight requests) then
drains the batcher. Errors are always JSON ``{"error": {...}, "request_id": ...}``; bad input is a
4xx naming the field, limit or index, never a 500.

Under overload (docs/service.md): admission control in estimated tokens (admission.py) answers 503 +
``Retry-After`` at once beyond its bound; a request still queued at its deadline is dropped and
answered 503; texts of a client that disconnected are dropped unseen by the model.
"""

from __future__ import annotations

import asyncio
import logging
import threading
import time
from collections.abc import Callable
from contextlib import asynccontextmanager
from typing import Any

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse, Response
from starlette.exceptions import HTTPException as StarletteHTTPException

from ..settings import environ
from .admission import Admission, Overloaded
from .batching import BatcherClosed, ClientGone, DeadlineExceeded, MicroBatcher
from .config import ServiceConfig
from .deadlines import HEADER, BadTimeout, disconnected, seconds_allowed
from .docs_ui import install_docs
from .memory import TRIM_AFTER_CHARS, return_freed_memory, trim
from .metrics import ServiceMetrics
from .middleware import (
    BodyLimitMiddleware,
    BodyTooLarge,
    RequestContextMiddleware,
    ShedWhenFull,
    error_response,
)
from .routing import DirectRoute, direct
from .schemas import (
    AnalyzeRequest,
    AnalyzeResponse,
    ErrorResponse,
    ModelsResponse,
    SentimentRequest,
    SentimentResponse,
)
from .symbols import aggregate_symbols, detect_symbols, normalise_symbols

log = logging.getLogger(__name__)

Loader = Callable[[str | None], Any]  # name (None: the default model) -> smart_model_manager Model


def default_loader(name: str | None) -> Any:
    """The production path: the public API, exactly as any user calls it (aliases, the default
    model and the lock are resolved there, and only there)."""
    from smart_model_manager import get_model_manager

    return get_model_manager().load_model(name, model_type="sentiment")


class ApiError(Exception):
    """A client error with a stable ``code``; rendered as the JSON error envelope."""

    def __init__(self, status: int, code: str, message: str, *, headers: dict[str, str] | None = None,
                 **extra: Any):
        super().__init__(message)
        self.status, self.code, self.message, self.extra = status, code, message, extra
        self.headers = headers


# --------------------------------------------------------------------------------------------
# The service state: model, batcher, load status


class ServiceState:
    def __init__(self, config: ServiceConfig, loader: Loader, metrics: ServiceMetrics):
        self.config, self.loader, self.metrics = config, loader, metrics
        self.model: Any = None
        self.load_error: str | None = None
        self.service_load_seconds: float | None = None
        self.admission = Admission(max_tokens=config.max_queued_tokens, deadline_s=config.request_timeout_s)
        metrics.watch_admission(self.admission)
        self.batcher = MicroBatcher(self._run, max_batch=config.max_batch, max_wait_ms=config.max_wait_ms,
                                    on_batch=metrics.observe_batch, on_wait=metrics.observe_wait,
                                    admission=self.admission)
        self.loaded = threading.Event()

    def _run(self, texts: list[str]) -> list[list[float]]:
        rows = self.model.raw(texts)
        if sum(map(len, texts)) >= TRIM_AFTER_CHARS:  # long texts: give their buffers back now (issue 9, B1)
            trim()
        return rows

    @property
    def ready(self) -> bool:
        return self.model is not None

    def start_loading(self) -> None:
        """Load in a daemon thread: /healthz answers meanwhile, and a load stuck on I/O never
        blocks process exit."""
        threading.Thread(target=self._load, name="smm-model-load", daemon=True).start()

    def _load(self) -> None:
        name = self.config.model_label
        t0 = time.perf_counter()
        log.info("loading model", extra={"model": name})
        try:
            model = self.loader(self.config.model_name)
            if getattr(model, "model_type", "sentiment") != "sentiment" or not model.labels:
                raise TypeError(f"{name} loaded as model_type={model.model_type!r} with labels "
                                f"{list(model.labels)}; the service needs a sentiment model")
        except Exception as err:  # noqa: BLE001 - reported by /readyz and /healthz, and logged
            self.load_error = f"{type(err).__name__}: {err}"
            log.error("model load failed", extra={"model": name, "error": self.load_error})
            self.loaded.set()
            return
        self.service_load_seconds = time.perf_counter() - t0
        info = model.info.as_dict()
        # batching sized for where the model runs: a GPU wants large batches and little waiting
        max_batch, max_wait_ms = self.config.batching_for(info.get("device") or "cpu")
        self.batcher.resize(max_batch=max_batch, max_wait_ms=max_wait_ms)
        self.metrics.model_loaded(info, self.service_load_seconds, max_batch=max_batch, max_wait_ms=max_wait_ms)
        self.model = model  # last: ready flips only when everything above is done
        self.loaded.set()
        log.info("model ready", extra={k: info.get(k) for k in
                                        ("repo_id", "environment", "source", "backend", "commit", "device", "dtype")}
                 | {"service_load_seconds": round(self.service_load_seconds, 3), "max_batch": max_batch,
                    "max_wait_ms": max_wait_ms})

    def model_ref(self) -> dict[str, Any]:
        i = self.model.info
        return {"id": i.repo_id, "commit": i.commit, "backend": i.backend}

    def require_ready(self) -> None:
        if self.load_error is not None:
            raise ApiError(503, "model_load_failed", f"the model could not be loaded: {self.load_error}")
        if not self.ready:
            raise ApiError(503, "not_ready", "the model is still loading; retry when /readyz is 200")

    def check_texts(self, texts: list[str], where: str) -> None:
        """Limits and blank texts, naming the limit or the index. ``where`` is "texts" or "items"."""
        c = self.config
        if not texts:
            raise ApiError(422, "empty", f"{where} is empty; send at least one")
        if len(texts) > c.max_texts:
            raise ApiError(413, "limit_exceeded", f"{len(texts)} {where}; the limit is {c.max_texts} "
                           "(max_texts)", limit="max_texts")
        field = "" if where == "texts" else ".text"
        for i, t in enumerate(texts):
            if len(t) > c.max_chars:
                raise ApiError(413, "limit_exceeded", f"{where}[{i}]{field} has {len(t)} characters; the "
                               f"limit is {c.max_chars} (max_chars)", limit="max_chars", index=i)
            if not t.strip():
                raise ApiError(422, "empty_text", f"{where}[{i}]{field} is empty or whitespace", index=i)
            try:
                t.encode("utf-8")
            except UnicodeEncodeError as err:  # JSON "\ud800" escapes decode to lone surrogates,
                # which tokenizers reject with a TypeError (a 500, and a failed batch) further down
                raise ApiError(422, "invalid_text", f"{where}[{i}]{field} holds a lone surrogate at "
                               f"character {err.start}; send valid Unicode", index=i) from None

    async def classify(self, texts: list[str], route: str, request: Request) -> list[list[float]]:
        try:
            timeout = seconds_allowed(request.headers.get(HEADER), self.config.deadline_s)
        except BadTimeout as err:
            raise ApiError(400, "invalid_timeout", str(err)) from None
        watch = (lambda: asyncio.ensure_future(disconnected(request.receive))) if self.config.drop_disconnected else None
        try:
            rows = await self.batcher.submit(texts, timeout=timeout, abandon=watch)
        except BatcherClosed as err:
            raise ApiError(503, "shutting_down", str(err)) from err
        except Overloaded as err:
            raise self._refused("queue_full", "overloaded", str(err), err.retry_after) from None
        except DeadlineExceeded as err:
            raise self._refused("deadline", "deadline_exceeded", str(err), self.admission.retry_after()) from None
        except ClientGone as err:  # nobody reads this answer; 499 (nginx's "client closed") in logs and metrics
            self.metrics.reject("disconnected")
            raise ApiError(499, "client_closed_request", str(err)) from None
        self.metrics.count_texts(route, len(texts))
        return rows

    def _refused(self, reason: str, code: str, message: str, retry_after: int) -> ApiError:
        self.metrics.reject(reason)
        return ApiError(503, code, message, headers={"Retry-After": str(retry_after)}, retry_after=retry_after)

    def result(self, probs: list[float]) -> dict[str, Any]:
        labels = self.model.labels
        top = max(range(len(probs)), key=lambda j: (probs[j], -j))
        return {"label": labels[top], "score": float(probs[top]),
                "scores": {lab: float(p) for lab, p in zip(labels, probs)}}


# --------------------------------------------------------------------------------------------
# The app


_ERRORS: dict[int | str, dict[str, Any]] = {
    s: {"model": ErrorResponse} for s in (400, 413, 415, 422, 503)}


def create_app(model: str | None = None, *, config: ServiceConfig | None = None,
               loader: Loader | None = None) -> FastAPI:
    """Build the app. ``model`` overrides ``config.model``; ``config`` defaults to ``SMM_SERVICE_*``
    from ``os.environ``; ``loader(name) -> Model`` defaults to ``get_model_manager().load_model``."""
    if config is None:
        config = ServiceConfig.from_env(environ())  # the ASGI factory is an edge: it may read the env
    if model is not None:
        config = config.with_overrides(model=model)
    metrics = ServiceMetrics()
    state = ServiceState(config, loader or default_loader, metrics)

    @asynccontextmanager
    async def lifespan(app: FastAPI):  # type: ignore[no-untyped-def]
        return_freed_memory()  # before the model loads: big buffers are unmapped when freed (issue 9, B1)
        state.batcher.start()
        state.start_loading()
        try:
            yield
        finally:
            await state.batcher.close()
            log.info("service stopped", extra={"batches": state.batcher.batches, "texts": state.batcher.texts})

    app = FastAPI(
        title="smart-model-manager sentiment service",
        version="0.1.0",
        description="Crypto-news sentiment with per-symbol aggregates. Model: "
                    f"`{config.model_label}` via smart-model-manager. Limits: {config.max_texts} texts per "
                    f"request, {config.max_chars} characters per text, {config.max_body_bytes} body bytes.",
        lifespan=lifespan,
        docs_url=None,   # served from local files by install_docs (no CDN)
        redoc_url=None,  # ReDoc would load from a CDN too
    )
    app.state.smm = state
    app.add_middleware(BodyLimitMiddleware, max_bytes=config.max_body_bytes)
    app.add_middleware(ShedWhenFull, admission=state.admission, metrics=metrics,
                       paths=frozenset({"/v1/sentiment", "/v1/analyze"}))
    app.add_middleware(RequestContextMiddleware, metrics=metrics)  # outermost: sees every response
    _install_error_handlers(app)
    install_docs(app, app.title)

    @app.get("/healthz", tags=["ops"], summary="Liveness: 200 while the process works (also while loading)")
    async def healthz() -> JSONResponse:
        if state.load_error is not None:  # a failed load never heals: let the orchestrator restart us
            return error_response(503, "model_load_failed", state.load_error)
        return JSONResponse({"status": "ok", "model_loaded": state.ready})

    @app.get("/readyz", tags=["ops"], summary="Readiness: 200 once the model is loaded, also when saturated",
             responses={503: {"model": ErrorResponse}})
    async def readyz() -> JSONResponse:
        try:
            state.require_ready()
        except ApiError as e:
            return error_response(e.status, e.code, e.message)
        # Stays 200 when saturated: a single-pod Service must keep its endpoint, and admission control
        # already refuses the excess in milliseconds (docs/service.md, "Under overload").
        return JSONResponse({"status": "ready", "model": state.model_ref(), "saturated": state.admission.saturated})

    @app.get("/metrics", tags=["ops"], summary="Prometheus metrics")
    async def metrics_endpoint() -> Response:
        body, content_type = metrics.render()
        return Response(body, media_type=content_type)

    @app.get("/v1/models", tags=["sentiment"], response_model=ModelsResponse, responses=_ERRORS)
    async def models() -> dict[str, Any]:
        state.require_ready()
        info = state.model.info.as_dict()
        return {"models": [info | {"labels": list(state.model.labels),
                                   "service_load_seconds": state.service_load_seconds,
                                   "max_batch": state.batcher.max_batch,
                                   "max_wait_ms": round(state.batcher.max_wait * 1000, 3),
                                   "admission": state.admission.as_dict()}]}

    @direct(SentimentRequest)
    async def sentiment(body: SentimentRequest, request: Request) -> dict[str, Any]:
        state.require_ready()
        state.check_texts(body.texts, "texts")
        request.scope["smm_n_texts"] = len(body.texts)
        rows = await state.classify(body.texts, "/v1/sentiment", request)
        return {"model": state.model_ref(), "results": [state.result(r) for r in rows]}

    # /v1/sentiment skips FastAPI's per-request dependency solving when the request is well formed
    # (routing.py); its errors and OpenAPI schema are FastAPI's, as declared here. /v1/analyze stays on
    # FastAPI's path: its reply has datetimes that the response model serializes.
    app.router.add_api_route("/v1/sentiment", sentiment, methods=["POST"], tags=["sentiment"],
                             response_model=SentimentResponse, responses=_ERRORS, summary="Classify texts",
                             route_class_override=DirectRoute)

    @app.post("/v1/analyze", tags=["sentiment"], response_model=AnalyzeResponse, responses=_ERRORS,
              summary="Classify news items and aggregate per symbol")
    async def analyze(body: AnalyzeRequest, request: Request) -> dict[str, Any]:
        state.require_ready()
        items = body.items
        state.check_texts([it.text for it in items], "items")
        symbols: list[tuple[list[str], bool]] = []
        for i, it in enumerate(items):
            if it.symbols is None:
                symbols.append((detect_symbols(it.text), True))
                continue
            try:
                symbols.append((normalise_symbols(it.symbols), False))
            except ValueError as err:
                raise ApiError(422, "invalid_symbol", f"items[{i}].{err}", index=i) from err
        request.scope["smm_n_texts"] = len(items)
        rows = await state.classify([it.text for it in items], "/v1/analyze", request)
        labels = list(state.model.labels)
        out = []
        for it, (syms, detected), probs in zip(items, symbols, rows):
            r = state.result(probs)
            r.update(id=it.id, symbols=syms, symbols_detected=detected, source=it.source,
                     published_at=it.published_at, signed_score=_signed(r["scores"]))
            out.append(r)
        try:
            agg = aggregate_symbols([(syms, probs) for (syms, _), probs in zip(symbols, rows)], labels)
        except ValueError as err:  # a model without positive/negative labels: our setup, not the client
            raise ApiError(503, "model_not_polar", str(err)) from err
        return {"model": state.model_ref(), "items": out, "symbols": agg}

    return app


def _signed(scores: dict[str, float]) -> float:
    lowered = {k.lower(): v for k, v in scores.items()}
    return lowered.get("positive", 0.0) - lowered.get("negative", 0.0)


def _install_error_handlers(app: FastAPI) -> None:
    @app.exception_handler(ApiError)
    async def api_error(request: Request, exc: ApiError) -> JSONResponse:
        return error_response(exc.status, exc.code, exc.message, headers=exc.headers, **exc.extra)

    @app.exception_handler(RequestValidationError)
    async def validation_error(request: Request, exc: RequestValidationError) -> JSONResponse:
        errors = list(exc.errors())
        if any(e.get("type") == "json_invalid" for e in errors):
            e = next(e for e in errors if e.get("type") == "json_invalid")
            pos = e["loc"][-1] if e.get("loc") else "?"
            reason = (e.get("ctx") or {}).get("error", "invalid JSON")
            return error_response(400, "invalid_json", f"request body is not valid JSON: {reason} at "
                                  f"character {pos}")
        ctype = request.headers.get("content-type", "")
        if "json" not in ctype.lower() and any(isinstance(e.get("input"), (bytes, bytearray)) for e in errors):
            return error_response(415, "unsupported_media_type",
                                  f"send the body as JSON with 'Content-Type: application/json' (got "
                                  f"{ctype or 'no Content-Type'!r})")
        details = [{"loc": ".".join(str(p) for p in e.get("loc", ())), "msg": e.get("msg"),
                    "type": e.get("type")} for e in errors]  # no "input": it may echo the texts
        first = details[0] if details else {"loc": "body", "msg": "invalid"}
        return error_response(422, "invalid_request", f"{first['loc']}: {first['msg']}", details=details)

    @app.exception_handler(StarletteHTTPException)
    async def http_error(request: Request, exc: StarletteHTTPException) -> JSONResponse:
        if isinstance(exc, BodyTooLarge):
            return error_response(413, "limit_exceeded", f"request body exceeds {exc.limit} bytes "
                                  "(max_body_bytes)", limit="max_body_bytes")
        cause = exc.__cause__
        if isinstance(cause, UnicodeDecodeError):
            return error_response(400, "invalid_encoding", f"request body is not valid UTF-8: {cause.reason} "
                                  f"at byte {cause.start}")
        if exc.status_code == 400 and cause is not None:
            return error_response(400, "invalid_body", f"request body could not be parsed "
                                  f"({type(cause).__name__})")
        code = {404: "not_found", 405: "method_not_allowed"}.get(exc.status_code, "http_error")
        return error_response(exc.status_code, code, str(exc.detail))


__all__ = ["ApiError", "create_app", "default_loader"]

