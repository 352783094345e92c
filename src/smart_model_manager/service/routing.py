"""``DirectRoute``: a FastAPI route whose well-formed requests skip FastAPI's per-request machinery.

Why (service efficiency): profiled at saturation on 1-text requests (py-spy, demo model, 2
cores), the event loop spent about a third of its time in FastAPI's request handler, mostly
``solve_dependencies`` and ``_should_embed_body_fields``, which FastAPI recomputes for every request,
then in validating our reply against the response model. On a 2-core machine every millisecond the
event loop spends is taken from the model's threads.

What it does: for a request with a JSON content type (by FastAPI's own rule) whose body parses and validates as
the endpoint's body model, it calls the endpoint with that model and the ``Request`` and answers the
endpoint's dict as JSON. **Everything else** (bad JSON, wrong content type, an empty body, a body that
fails validation, a decoding error, JSON nested so deep that the parser raises ``RecursionError``, or
any other exception while parsing or validating) is handed to FastAPI's own handler, on the same
``Request`` (Starlette keeps the body it has read), so every error keeps exactly the status and JSON
it had: the fast path never changes a status code, it only saves time on the requests that succeed.
The OpenAPI schema is untouched: it comes from the declared endpoint, body model and response model.

The endpoint must return exactly its response model's shape (ours are built field by field), because
the fast path does not re-validate the reply.
"""

from __future__ import annotations

import email.message
import json
from collections.abc import Callable, Coroutine
from typing import Any

from fastapi.responses import Response
from fastapi.routing import APIRoute
from pydantic import BaseModel
from starlette.requests import Request

BODY_MODEL = "__smm_body_model__"


def direct(model: type[BaseModel]) -> Callable[[Callable[..., Any]], Callable[..., Any]]:
    """Mark ``endpoint(body: model, request: Request) -> dict`` for :class:`DirectRoute`."""
    def mark(endpoint: Callable[..., Any]) -> Callable[..., Any]:
        setattr(endpoint, BODY_MODEL, model)
        return endpoint
    return mark


def _json_type(content_type: str | None, strict: bool) -> bool:
    """FastAPI's own rule, parsed the way FastAPI parses it (``email.message``): application/json or
    application/<anything>+json; no Content-Type counts as JSON only where the route is not strict
    (FastAPI >= 0.120 is strict by default: such a body is not JSON there, and gets a 415 here)."""
    if not content_type:
        return not strict
    message = email.message.Message()
    message["content-type"] = content_type
    if message.get_content_maintype() != "application":
        return False
    subtype = message.get_content_subtype()
    return subtype == "json" or subtype.endswith("+json")


def _strict(route: APIRoute) -> bool:
    value = getattr(route, "strict_content_type", False)  # absent before FastAPI 0.120: not strict
    return bool(getattr(value, "value", value))  # a DefaultPlaceholder holds the default in .value


class DirectRoute(APIRoute):
    def get_route_handler(self) -> Callable[[Request], Coroutine[Any, Any, Response]]:
        fallback = super().get_route_handler()
        endpoint = self.endpoint
        model: type[BaseModel] | None = getattr(endpoint, BODY_MODEL, None)
        strict = _strict(self)
        if model is None:
            raise TypeError(f"{self.path}: DirectRoute needs an endpoint marked with @direct(Model)")

        async def handler(request: Request) -> Response:
            body = await request.body()
            parsed = None
            if body and _json_type(request.headers.get("content-type"), strict):
                try:
                    parsed = model.model_validate(json.loads(body))
                except Exception:  # noqa: BLE001 - whatever failed, FastAPI's handler decides the answer
                    # (ValueError, ValidationError, RecursionError from deep nesting, ...)
                    parsed = None
            if parsed is None:
                return await fallback(request)  # FastAPI's handler: the same errors as before
            content = await endpoint(parsed, request)
            return Response(json.dumps(content, ensure_ascii=False, allow_nan=False, separators=(",", ":")),
                            media_type="application/json")

        return handler


__all__ = ["DirectRoute", "direct"]
