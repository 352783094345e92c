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
from collections.abc import Callable
from contextlib import asynccontextmanager
from typing import Any

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse, Response
from starlette.exceptions import HTTPException as StarletteHTTPException

from ..settings import environ
from .admission import Overloaded
from .analyze import analyze_reply
from .batching import BatcherClosed, ClientGone, DeadlineExceeded
from .config import ServiceConfig
from .deadlines import HEADER, BadTimeout, disconnected, seconds_allowed
from .docs_ui import install_docs
from .memory import return_freed_memory
from .metrics import ServiceMetrics
from .middleware import (
    BodyLimitMiddleware,
    BodyTooLarge,
    RequestContextMiddleware,
    ShedWhenFull,
    error_response,
)
from .multi import Declared, ModelSet, Route, RouteError
from .routing import DirectRoute, direct
from .schemas import (
    AnalyzeRequest,
    AnalyzeResponse,
    ErrorResponse,
    ModelsResponse,
    SentimentRequest,
    SentimentResponse,
)
from .symbols import detect_symbols, normalise_symbols

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
    """The models (``routes``: a ``ModelSet``), the limits, and the checks every route shares."""

    def __init__(self, config: ServiceConfig, loader: Loader, metrics: ServiceMetrics,
                 declared: Declared | None = None):
        self.config, self.loader, self.metrics = config, loader, metrics
        self.routes = ModelSet(config, loader, declared or _no_declared, metrics)

    @property
    def ready(self) -> bool:
        return self.routes.settled.is_set() and self.routes.ready

    @property
    def admission(self) -> Any:
        """The service-wide admission (several models: their total; one model: its own)."""
        return self.routes.admission

    @property
    def load_error(self) -> str | None:
        """The failure that makes this service unready for good (a required model), else None."""
        failed = self.routes.failed_required()
        return "; ".join(f"{r.name} ({r.configured}): {r.load_error}" for r in failed) if failed else None

    def start_loading(self) -> None:
        self.routes.start()

    def require_ready(self) -> None:
        if self.load_error is not None:
            raise ApiError(503, "model_load_failed", f"the model could not be loaded: {self.load_error}",
                           models=self.routes.not_ready())
        if not self.ready:
            waiting = ", ".join(f"{r['name']} ({r['model']})" for r in self.routes.not_ready()) or "models"
            raise ApiError(503, "not_ready", f"still loading: {waiting}; retry when /readyz is 200",
                           models=self.routes.not_ready())

    def pick(self, model: str | None = None, market: str | None = None, text: str | None = None,
             where: str = "") -> tuple[Route, str, str | None]:
        try:
            return self.routes.pick(model, market, text, where=where)
        except RouteError as err:
            raise ApiError(err.status, err.code, err.message, **err.extra) from None

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

    async def classify(self, route: Route, texts: list[str], http_route: str, request: Request) -> list[list[float]]:
        return await self.classify_routed([route] * len(texts), texts, http_route, request)

    async def classify_routed(self, picks: list[Route], texts: list[str], http_route: str,
                              request: Request) -> list[list[float]]:
        """Each text on its own route's batcher (each with its own admission, inside the service's total),
        all at once, under one deadline and one disconnect watch; rows back in input order. The first
        refusal cancels the other groups' texts: a request is answered whole or not at all."""
        try:
            timeout = seconds_allowed(request.headers.get(HEADER), self.config.deadline_s)
        except BadTimeout as err:
            raise ApiError(400, "invalid_timeout", str(err)) from None
        groups: dict[str, list[int]] = {}
        for i, r in enumerate(picks):
            groups.setdefault(r.name, []).append(i)
        routes = [self.routes.routes[n] for n in groups]
        # made by each batcher only for admitted texts (and cancelled when its submit returns)
        watch = (lambda: asyncio.ensure_future(disconnected(request.receive))) if self.config.drop_disconnected else None
        tasks = [asyncio.ensure_future(r.batcher.submit([texts[i] for i in groups[r.name]], timeout=timeout,
                                                        abandon=watch)) for r in routes]
        try:
            results = await asyncio.gather(*tasks)
        except BatcherClosed as err:
            raise ApiError(503, "shutting_down", str(err)) from err
        except Overloaded as err:
            raise self._refused("queue_full", "overloaded", str(err), err.retry_after) from None
        except DeadlineExceeded as err:
            raise self._refused("deadline", "deadline_exceeded", str(err), self.routes.admission.retry_after()) from None
        except ClientGone as err:  # nobody reads this answer; 499 (nginx's "client closed") in logs and metrics
            self.metrics.reject("disconnected")
            raise ApiError(499, "client_closed_request", str(err)) from None
        finally:
            for t in tasks:
                if t.done() and not t.cancelled():
                    t.exception()  # mark retrieved: a second refusal is not "never retrieved"
                t.cancel()  # no-op for the finished ones; the others drop their queued texts
        rows: list[list[float]] = [[] for _ in texts]
        for r, got in zip(routes, results):
            self.metrics.count_texts(http_route, len(got), model=r.name)
            for i, row in zip(groups[r.name], got):
                rows[i] = row
        return rows

    def _refused(self, reason: str, code: str, message: str, retry_after: int) -> ApiError:
        self.metrics.reject(reason)
        return ApiError(503, code, message, headers={"Retry-After": str(retry_after)}, retry_after=retry_after)


def _no_declared(name: str | None, repo_id: str) -> dict[str, str]:
    return {}


def default_declared(name: str | None, repo_id: str) -> dict[str, str]:
    """The label -> polarity map models.lock declares for the model, through the same manager."""
    from smart_model_manager import get_model_manager

    return get_model_manager().declared_polarity(name, repo_id)


# --------------------------------------------------------------------------------------------
# The app


_ERRORS: dict[int | str, dict[str, Any]] = {
    s: {"model": ErrorResponse} for s in (400, 413, 415, 422, 503)}


def create_app(model: str | None = None, *, config: ServiceConfig | None = None,
               loader: Loader | None = None, declared: Declared | None = None) -> FastAPI:
    """Build the app. ``model`` overrides ``config.model``; ``config`` defaults to ``SMM_SERVICE_*``
    from ``os.environ``; ``loader(name) -> Model`` defaults to ``get_model_manager().load_model``, and
    ``declared(name, repo_id) -> {label: polarity}`` to the lock's maps (with a custom loader: none)."""
    if config is None:
        config = ServiceConfig.from_env(environ())  # the ASGI factory is an edge: it may read the env
    if model is not None:
        config = config.with_overrides(model=model)
    metrics = ServiceMetrics()
    if declared is None and loader is None:
        declared = default_declared
    state = ServiceState(config, loader or default_loader, metrics, declared)
    app = FastAPI(
        title="smart-model-manager sentiment service",
        version="0.1.0",
        description="Crypto-news sentiment with per-symbol aggregates. Models: "
                    f"`{config.model_label}` via smart-model-manager. Limits: {config.max_texts} texts per "
                    f"request, {config.max_chars} characters per text, {config.max_body_bytes} body bytes.",
        lifespan=_lifespan(state),
        docs_url=None,   # served from local files by install_docs (no CDN)
        redoc_url=None,  # ReDoc would load from a CDN too
    )
    app.state.smm = state
    app.add_middleware(BodyLimitMiddleware, max_bytes=config.max_body_bytes)
    app.add_middleware(ShedWhenFull, admission=state.admission, metrics=metrics,
                       paths=frozenset({"/v1/sentiment", "/v1/analyze", "/predict"}))
    app.add_middleware(RequestContextMiddleware, metrics=metrics)  # outermost: sees every response
    _install_error_handlers(app)
    install_docs(app, app.title)

    _install_ops_routes(app, state)
    _install_sentiment_routes(app, state)

    from .tei import install_tei_routes  # TEI-compatible /predict and /info (docs/service.md)

    install_tei_routes(app, state)
    return app


def _lifespan(state: ServiceState) -> Any:
    """Start loading the models when the server starts; drain the batchers when it stops."""
    routes = state.routes

    @asynccontextmanager
    async def lifespan(app: FastAPI):  # type: ignore[no-untyped-def]
        return_freed_memory()  # before the model loads: big buffers are unmapped when freed
        state.start_loading()
        try:
            yield
        finally:
            await routes.close()
            log.info("service stopped", extra={r.name: {"batches": r.batcher.batches, "texts": r.batcher.texts}
                                               for r in routes.routes.values()})

    return lifespan


def _install_ops_routes(app: FastAPI, state: ServiceState) -> None:
    """Liveness, readiness and metrics."""
    routes, metrics = state.routes, state.metrics

    @app.get("/healthz", tags=["ops"], summary="Liveness: 200 while the process works (also while loading)")
    async def healthz() -> JSONResponse:
        if state.load_error is not None:  # a failed load never heals: let the orchestrator restart us
            return error_response(503, "model_load_failed", state.load_error)
        return JSONResponse({"status": "ok", "model_loaded": state.ready})

    @app.get("/readyz", tags=["ops"], summary="Readiness: 200 once every required model is loaded, also when "
             "saturated",
             responses={503: {"model": ErrorResponse}})
    async def readyz() -> JSONResponse:
        try:
            state.require_ready()
        except ApiError as e:
            return error_response(e.status, e.code, e.message, **e.extra)
        # Stays 200 when saturated: a single-pod Service must keep its endpoint, and admission control
        # already refuses the excess in milliseconds (docs/service.md, "Under overload").
        return JSONResponse({"status": "ready", "model": routes.default.ref() if routes.default.model else None,
                             "saturated": routes.admission.saturated,
                             "models": {r.name: r.ref() if r.model is not None else {"status": r.status,
                                                                                     "error": r.load_error}
                                        for r in routes.routes.values()}})

    @app.get("/metrics", tags=["ops"], summary="Prometheus metrics")
    async def metrics_endpoint() -> Response:
        body, content_type = metrics.render()
        return Response(body, media_type=content_type)


def _install_sentiment_routes(app: FastAPI, state: ServiceState) -> None:
    """The model list, /v1/sentiment (on the direct path) and /v1/analyze."""
    routes = state.routes

    @app.get("/v1/models", tags=["sentiment"], response_model=ModelsResponse, responses=_ERRORS)
    async def models() -> dict[str, Any]:
        state.require_ready()
        return {"models": [r.describe() for r in routes.routes.values()]}

    @direct(SentimentRequest)
    async def sentiment(body: SentimentRequest, request: Request) -> dict[str, Any]:
        state.require_ready()
        state.check_texts(body.texts, "texts")
        route, _, _ = state.pick(body.model)
        request.scope["smm_n_texts"] = len(body.texts)
        rows = await state.classify(route, body.texts, "/v1/sentiment", request)
        return {"model": route.ref(), "results": [route.result(r) for r in rows]}

    # /v1/sentiment skips FastAPI's per-request dependency solving when the request is well formed
    # (routing.py); its errors and OpenAPI schema are FastAPI's, as declared here. /v1/analyze stays on
    # FastAPI's path: its reply has datetimes that the response model serializes.
    app.router.add_api_route("/v1/sentiment", sentiment, methods=["POST"], tags=["sentiment"],
                             response_model=SentimentResponse, responses=_ERRORS, summary="Classify texts",
                             route_class_override=DirectRoute)

    @app.post("/v1/analyze", tags=["sentiment"], response_model=AnalyzeResponse, responses=_ERRORS,
              summary="Classify news items (each routed to a model) and aggregate per symbol")
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
        picks = [state.pick(it.model, it.market, it.text, where=f"items[{i}].") for i, it in enumerate(items)]
        request.scope["smm_n_texts"] = len(items)
        rows = await state.classify_routed([p[0] for p in picks], [it.text for it in items], "/v1/analyze", request)
        return analyze_reply(items, symbols, picks, rows)


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

