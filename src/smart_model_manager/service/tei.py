"""Routes compatible with Hugging Face text-embeddings-inference (TEI) for sequence classifiers.

``POST /predict`` and ``GET /info`` answer in TEI's shapes (its published OpenAPI schema: ``PredictRequest``,
``PredictResponse``/``Prediction``, ``Info``, ``ErrorResponse``), so clients and dashboards written for a TEI
classifier work against this service unchanged. They sit beside ``/v1/sentiment`` and share its model, its
micro-batcher, its limits and its metrics. docs/service.md has the field-by-field mapping.

TEI options, as handled here:

- ``raw_scores``: honoured (the model's logits instead of softmax probabilities).
- ``truncate``: absent or ``true`` cuts at the model's limit on the right (this service truncates by default,
  so ``/info`` says ``auto_truncate: true``); ``false`` is honoured: a text longer than the model accepts is
  refused with 413, naming it, instead of being cut.
- ``truncation_direction``: ``right`` is honoured; ``left`` is refused with 422 (never cut on the wrong side).
- a pair of texts (``["a", "b"]`` or ``[["a", "b"]]``, for cross-encoders): refused with 422, a sentiment
  model classifies one text.
- any other field: refused with 422 naming it, so an option the client relies on is never silently ignored.

Errors use TEI's envelope ``{"error": "...", "error_type": "Validation" | "Backend" | "Overloaded" |
"Unhealthy"}`` (plus ``request_id``), with TEI's statuses: 413 limits, 422 malformed input, 424 the model
failed, 503 not ready. A body too large for ``SMM_SERVICE_MAX_BODY_BYTES`` is refused before it reaches
this module, in the service's own envelope.
"""

from __future__ import annotations

import asyncio
import json
import logging
from typing import Any, Literal

from fastapi import FastAPI, Request
from fastapi.responses import JSONResponse
from pydantic import BaseModel, ConfigDict, Field

from .._version import __version__
from ..errors import BackendError
from .logs import request_id_var

log = logging.getLogger(__name__)

ALLOWED = ("inputs", "raw_scores", "truncate", "truncation_direction")
_DTYPES = {"fp32": "float32", "fp16": "float16", "bf16": "bfloat16", "int8": "int8"}
UNBOUNDED = 2**31 - 1  # i32 max: what /info reports for a limit this service does not have


class TeiError(Exception):
    def __init__(self, status: int, error_type: str, message: str):
        super().__init__(message)
        self.status, self.error_type, self.message = status, error_type, message


# -- the OpenAPI shapes (documentation only: requests are parsed by _parse, which gives TEI's errors) --------
class PredictRequest(BaseModel):
    model_config = ConfigDict(extra="forbid")

    inputs: str | list[str] | list[list[str]] = Field(
        description="One text, or a batch [[text], [text], ...] (TEI's pair forms are refused)",
        examples=["Bitcoin rallies after ETF approval"])
    raw_scores: bool = Field(False, description="logits instead of softmax probabilities")
    truncate: bool | None = Field(None, description="absent/true: cut at the model's limit; false: refuse")
    truncation_direction: Literal["right", "Right", "left", "Left"] = Field(
        "right", description="only right is supported; left is refused")


class Prediction(BaseModel):
    label: str
    score: float


class TeiErrorResponse(BaseModel):
    error: str
    error_type: Literal["Unhealthy", "Backend", "Overloaded", "Validation", "Tokenizer"]
    request_id: str | None = None


def _error(err: TeiError) -> JSONResponse:
    return JSONResponse({"error": err.message, "error_type": err.error_type, "request_id": request_id_var.get()},
                        status_code=err.status)


# -- request parsing -------------------------------------------------------------------------------------
def _sequence(value: Any, where: str) -> str:
    """One TEI sequence: a string or a one-string list; a two-string list is a pair (refused)."""
    if isinstance(value, str):
        return value
    if isinstance(value, list) and value and all(isinstance(v, str) for v in value):
        if len(value) == 1:
            return value[0]
        if len(value) == 2:
            raise TeiError(422, "Validation", f"{where} is a pair of texts; this service classifies single "
                                              "texts (sentiment), not pairs")
    raise TeiError(422, "Validation", f"{where} must be a string or [string]; TEI's batch form is "
                                      "[[string], [string], ...]")


def parse(body: Any) -> tuple[list[str], bool, dict[str, Any]]:
    """(texts, single, options) from a decoded PredictRequest; TeiError names what is wrong."""
    if not isinstance(body, dict):
        raise TeiError(422, "Validation", "the body must be a JSON object with an \"inputs\" field")
    unknown = sorted(set(body) - set(ALLOWED))
    if unknown:
        raise TeiError(422, "Validation", f"unsupported field(s) {', '.join(unknown)}; this service honours "
                                          f"{', '.join(ALLOWED)}")
    if "inputs" not in body:
        raise TeiError(422, "Validation", "missing field \"inputs\"")
    inputs = body["inputs"]
    if isinstance(inputs, str):
        texts, single = [inputs], True
    elif isinstance(inputs, list) and inputs and all(isinstance(v, list) for v in inputs):
        texts, single = [_sequence(v, f"inputs[{i}]") for i, v in enumerate(inputs)], False
    elif isinstance(inputs, list) and inputs:
        texts, single = [_sequence(inputs, "inputs")], True
    else:
        raise TeiError(422, "Validation", "inputs must be a string, [string] or a non-empty batch "
                                          "[[string], ...]")
    raw_scores, truncate = body.get("raw_scores", False), body.get("truncate")
    if not isinstance(raw_scores, bool):
        raise TeiError(422, "Validation", f"raw_scores must be true or false, got {json.dumps(raw_scores)}")
    if truncate is not None and not isinstance(truncate, bool):
        raise TeiError(422, "Validation", f"truncate must be true, false or null, got {json.dumps(truncate)}")
    direction = body.get("truncation_direction", "right")
    if not isinstance(direction, str) or direction.lower() not in ("left", "right"):
        raise TeiError(422, "Validation", f"truncation_direction must be \"right\" (or \"left\", which is "
                                          f"refused), got {json.dumps(direction)}")
    if direction.lower() == "left":
        raise TeiError(422, "Validation", "truncation_direction \"left\" is not supported: this service cuts "
                                          "long texts on the right only")
    return texts, single, {"raw_scores": raw_scores, "truncate": truncate}


# -- the routes ----------------------------------------------------------------------------------------
def _ranked(labels: list[str], row: list[float]) -> list[dict[str, Any]]:
    pairs = [{"label": lab, "score": float(s)} for lab, s in zip(labels, row)]
    return sorted(pairs, key=lambda d: -d["score"])  # best first, as TEI; ties keep label-id order


def _route(state: Any) -> Any:
    """TEI's routes name no model: they serve the service's first (default) route."""
    route = state.routes.default
    if route.model is None:
        raise TeiError(503, "Unhealthy", f"the default model {route.name} ({route.configured}) is not loaded: "
                                         f"{route.load_error or 'still loading'}")
    return route


async def _predict_rows(state: Any, texts: list[str], options: dict[str, Any],
                        request: Request) -> list[list[dict[str, Any]]]:
    route = _route(state)
    labels = list(route.model.labels)
    if not options["raw_scores"] and options["truncate"] is not False:
        # the route's micro-batcher, admission and deadline: the common case
        rows = await state.classify(route, texts, "/predict", request)
        return [_ranked(labels, r) for r in rows]
    # the options path: the model's own pipeline call (logits, or refuse instead of cutting), off the loop
    kwargs: dict[str, Any] = {"top_k": None}
    if options["raw_scores"]:
        kwargs["function_to_apply"] = "none"
    if options["truncate"] is False:
        kwargs["truncation"] = False
    try:
        out = await asyncio.to_thread(route.model, texts, **kwargs)
    except BackendError as err:  # this model's runner cannot take per-call options: refuse, never ignore
        raise TeiError(422, "Validation", f"raw_scores/truncate=false cannot be honoured: {err}") from None
    except ValueError as err:  # a text longer than the model accepts, with truncate=false
        raise TeiError(413, "Validation", f"{err} (sent truncate=false)") from None
    state.metrics.count_texts("/predict", len(texts), model=route.name)
    return [[{"label": d["label"], "score": float(d["score"])} for d in row] for row in out]


def info(state: Any) -> dict[str, Any]:
    """TEI's Info for the loaded model (docs/service.md says where each value comes from)."""
    route, config = _route(state), state.config
    model = route.model
    labels = list(model.labels)
    i = model.info
    max_length = model.max_length or 0
    return {
        "model_id": i.repo_id, "model_sha": i.commit, "model_dtype": _DTYPES.get(i.dtype, i.dtype),
        "model_type": {"classifier": {"id2label": {str(n): lab for n, lab in enumerate(labels)},
                                      "label2id": {lab: n for n, lab in enumerate(labels)}}},
        "max_concurrent_requests": UNBOUNDED, "max_input_length": max_length,
        "max_batch_tokens": model.token_budget or max_length * route.batcher.max_batch,
        "max_client_batch_size": config.max_texts, "max_batch_requests": route.batcher.max_batch,
        "auto_truncate": True, "tokenization_workers": 1, "version": __version__, "sha": None,
        "docker_label": None,
    }


_RESPONSES: dict[int | str, dict[str, Any]] = {s: {"model": TeiErrorResponse} for s in (413, 422, 424, 503)}


def install_tei_routes(app: FastAPI, state: Any) -> None:
    """Add ``POST /predict`` and ``GET /info`` (TEI's shapes) to the sentiment service's ``app``."""
    from .app import ApiError  # the service's limit checks raise it; app imports this module lazily too

    def ready() -> None:
        if state.load_error is not None:
            raise TeiError(503, "Unhealthy", f"the model could not be loaded: {state.load_error}")
        if not state.ready:
            raise TeiError(503, "Unhealthy", "the model is still loading; retry when /readyz is 200")

    @app.post("/predict", tags=["TEI-compatible"], response_model=list[Prediction] | list[list[Prediction]],
              responses=_RESPONSES, summary="Classify like text-embeddings-inference's /predict",
              openapi_extra={"requestBody": {"required": True, "content": {"application/json": {
                  "schema": PredictRequest.model_json_schema()}}}})
    async def predict(request: Request) -> Any:
        try:
            ready()
            try:
                body = json.loads(await request.body())
            except ValueError as err:
                raise TeiError(422, "Validation", f"the body is not valid JSON: {err}") from None
            texts, single, options = parse(body)
            try:
                state.check_texts(texts, "inputs")
            except ApiError as err:  # the service's own limits, in TEI's envelope and statuses
                raise TeiError(err.status, "Validation" if err.status < 500 else "Unhealthy", err.message) from None
            request.scope["smm_n_texts"] = len(texts)
            try:
                rows = await _predict_rows(state, texts, options, request)
            except ApiError as err:
                raise TeiError(err.status, "Unhealthy", err.message) from None
        except TeiError as err:
            return _error(err)
        except Exception as err:  # noqa: BLE001 - the model failed: TEI's 424, logged with the traceback
            log.exception("predict failed")
            return _error(TeiError(424, "Backend", f"inference failed: {type(err).__name__}"))
        return JSONResponse(rows[0] if single else rows)

    @app.get("/info", tags=["TEI-compatible"], responses={503: {"model": TeiErrorResponse}},
             summary="The served model, like text-embeddings-inference's /info")
    async def info_route() -> JSONResponse:
        try:
            ready()
            return JSONResponse(info(state))
        except TeiError as err:
            return _error(err)


__all__ = ["PredictRequest", "Prediction", "TeiErrorResponse", "info", "install_tei_routes", "parse"]
