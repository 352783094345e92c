"""The service's pure-ASGI middleware and its JSON error envelope.

Pure ASGI rather than ``BaseHTTPMiddleware``, which buffers streaming bodies and runs the endpoint in
another task (contextvars such as the request id would not flow back).
"""

from __future__ import annotations

import logging
import time
from collections.abc import Mapping
from typing import Any

from fastapi.responses import JSONResponse
from starlette.exceptions import HTTPException as StarletteHTTPException
from starlette.routing import Match, Mount
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from .logs import request_id_from, request_id_var
from .metrics import ServiceMetrics

log = logging.getLogger(__name__)


def route_label(scope: Scope, root_path: str = "") -> str:
    """The route template for metrics and logs: bounded cardinality, never the raw path.

    FastAPI records its API routes in ``scope["route"]``, but plain Starlette routes (``/openapi.json``) and
    mounts (``/docs/static``) are handled on a copy of the scope; those are matched again here, so only a
    request no route serves is ``<unmatched>``. A mount is labelled ``<prefix>/{path}``. ``root_path`` is the
    one the request came in with (a mount rewrites it on its way through).
    """
    route = scope.get("route")
    if route is None:
        router = getattr(scope.get("app"), "router", None)
        incoming = {**scope, "root_path": root_path}
        for candidate in getattr(router, "routes", ()):
            if candidate.matches(incoming)[0] is Match.FULL:
                route = candidate
                break
    path = getattr(route, "path", None)
    if not path:
        return "<unmatched>"
    return f"{path}/{{path}}" if isinstance(route, Mount) else str(path)


class BodyTooLarge(StarletteHTTPException):
    """Raised from ``receive`` when a body without Content-Length grows past the limit.

    An HTTPException subclass so FastAPI's body reader re-raises it instead of turning it into
    a generic 400 "error parsing the body".
    """

    def __init__(self, limit: int):
        super().__init__(413, f"request body exceeds {limit} bytes")
        self.limit = limit


def _error_body(code: str, message: str, **extra: Any) -> dict[str, Any]:
    detail = {"code": code, "message": message, **{k: v for k, v in extra.items() if v is not None}}
    return {"error": detail, "request_id": request_id_var.get()}


def error_response(status: int, code: str, message: str, *, headers: Mapping[str, str] | None = None,
                   **extra: Any) -> JSONResponse:
    return JSONResponse(_error_body(code, message, **extra), status_code=status, headers=headers)


class BodyLimitMiddleware:
    """Refuse bodies over ``max_bytes`` without reading them: by Content-Length up front, or by
    counting chunks of a streamed body."""

    def __init__(self, app: ASGIApp, max_bytes: int):
        self.app, self.max_bytes = app, max_bytes

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        length = dict(scope["headers"]).get(b"content-length")
        if length is not None:
            try:
                n = int(length)
            except ValueError:
                await error_response(400, "bad_content_length", "Content-Length is not an integer")(
                    scope, receive, send)
                return
            if n > self.max_bytes:
                msg = f"request body is {n} bytes; the limit is {self.max_bytes} (max_body_bytes)"
                await error_response(413, "limit_exceeded", msg, limit="max_body_bytes")(scope, receive, send)
                return
        seen = 0

        async def counting_receive() -> Message:
            nonlocal seen
            message = await receive()
            if message["type"] == "http.request":
                seen += len(message.get("body", b""))
                if seen > self.max_bytes:
                    raise BodyTooLarge(self.max_bytes)
            return message

        await self.app(scope, counting_receive, send)


class ShedWhenFull:
    """Refuse ``POST`` to ``paths`` at once when ``admission.full()`` says the queue is at its bound:
    503 + Retry-After in the usual envelope, before the body is read or parsed. Under a flood most
    refusals take this path, so refusing costs the event loop far less than serving would."""

    def __init__(self, app: ASGIApp, admission: Any, metrics: ServiceMetrics, paths: frozenset[str]):
        self.app, self.admission, self.metrics, self.paths = app, admission, metrics, paths

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http" and scope["method"] == "POST" and scope["path"] in self.paths:
            refusal = self.admission.full()
            if refusal is not None:
                self.metrics.reject("queue_full")
                retry = refusal.retry_after
                await error_response(503, "overloaded", str(refusal), headers={"Retry-After": str(retry)},
                                     retry_after=retry)(scope, receive, send)
                return
        await self.app(scope, receive, send)


class RequestContextMiddleware:
    """Request id (``X-Request-ID`` in, echoed out), per-route metrics and one access-log line."""

    def __init__(self, app: ASGIApp, metrics: ServiceMetrics):
        self.app, self.metrics = app, metrics

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        headers = dict(scope["headers"])
        rid = request_id_from(headers.get(b"x-request-id", b"").decode("latin-1"))
        token = request_id_var.set(rid)
        status = 500
        started = False
        root_path = scope.get("root_path", "")  # before a mount rewrites it: route_label matches with it
        t0 = time.perf_counter()

        async def send_with_id(message: Message) -> None:
            nonlocal status, started
            if message["type"] == "http.response.start":
                started = True
                status = message["status"]
                message.setdefault("headers", [])
                message["headers"] = [*message["headers"], (b"x-request-id", rid.encode())]
            await send(message)

        try:
            await self.app(scope, receive, send_with_id)
        except Exception:  # a bug, not bad input: answer 500 with the request id, log the traceback
            log.exception("unhandled error")
            if not started:
                await error_response(500, "internal_error", "internal error; the request id is in the "
                                     "logs")(scope, receive, send_with_id)
        finally:
            seconds = time.perf_counter() - t0
            route = route_label(scope, root_path)
            self.metrics.observe_request(route, scope["method"], status, seconds)
            if route not in ("/metrics", "/healthz", "/readyz"):
                log.info("request", extra={"request_id": rid, "route": route, "method": scope["method"], "status": status,
                                           "duration_ms": round(seconds * 1000, 2),
                                           "n_texts": scope.get("smm_n_texts")})
            request_id_var.reset(token)
