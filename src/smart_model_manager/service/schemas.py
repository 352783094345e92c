"""Request and response bodies of the sentiment service, with the examples shown at ``/docs``.

Pydantic checks types only; limits (``max_texts``, ``max_chars``) and blank texts are checked by
the app so the error can name the limit and the index (see ``service.app.check_texts``).
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from pydantic import BaseModel, ConfigDict, Field
from pydantic.config import JsonDict

_SCORES_EXAMPLE: JsonDict = {"positive": 0.91, "negative": 0.03, "neutral": 0.06}
_MODEL_EXAMPLE: JsonDict = {"id": "ProsusAI/finbert", "commit": "4556d13015211d73dccd3fdd39d39232506f3e43",
                  "backend": "onnx"}


class _Strict(BaseModel):
    # A misspelt field ("text" instead of "texts") is an error, not silently ignored.
    model_config = ConfigDict(extra="forbid")


class SentimentRequest(_Strict):
    texts: list[str] = Field(description="Texts to classify (1..max_texts, each 1..max_chars characters).",
                             examples=[["Bitcoin ETF inflows hit a record", "Exchange halts withdrawals"]])
    model: str | None = Field(default=None, description="Route name of the model to use (see /v1/models). "
                              "Omitted: the service's first (default) model.")

    model_config = ConfigDict(extra="forbid", json_schema_extra={
        "examples": [{"texts": ["Bitcoin ETF inflows hit a record", "Exchange halts withdrawals after hack"]}]})


class ModelRef(BaseModel):
    name: str = Field(default="default", description="The service's name for the model (its route).")
    id: str = Field(description="Hub repo id of the loaded model.")
    commit: str | None = Field(description="Commit (revision hash) of the exact files loaded.")
    backend: str = Field(description="mock, torch, onnx or onnx-int8.")


class SentimentResult(BaseModel):
    label: str = Field(description="Top label (ties go to the first label in model order).")
    score: float = Field(description="Probability of the top label.")
    scores: dict[str, float] = Field(description="Probability of every label.")
    polarity: str = Field(description="What the top label means: positive, negative or neutral.")
    signed_score: float = Field(description="P(positive) - P(negative) over the model's mapped labels.")


class SentimentResponse(BaseModel):
    model: ModelRef
    results: list[SentimentResult] = Field(description="One result per input text, in input order.")

    model_config = ConfigDict(json_schema_extra={"examples": [{
        "model": _MODEL_EXAMPLE,
        "results": [{"label": "positive", "score": 0.91, "scores": _SCORES_EXAMPLE, "polarity": "positive",
                     "signed_score": 0.88},
                    {"label": "negative", "score": 0.88, "polarity": "negative", "signed_score": -0.86,
                     "scores": {"positive": 0.02, "negative": 0.88, "neutral": 0.10}}]}]})


class AnalyzeItem(_Strict):
    id: str = Field(max_length=200, description="Caller's id, echoed back.")
    text: str = Field(description="Headline or article text (1..max_chars characters).")
    source: str | None = Field(default=None, max_length=200, description="Where the text came from.")
    published_at: datetime | None = Field(default=None, description="ISO 8601 timestamp.")
    symbols: list[str] | None = Field(
        default=None, description="Tickers the item is about. Omitted: detected in the text.")
    model: str | None = Field(default=None, description="Route name of the model to use (reason: explicit).")
    market: str | None = Field(default=None, description="The item's market, e.g. crypto or stock; the route "
                               "of that name answers (reason: market). Neither given: the detector decides.")


class AnalyzeRequest(_Strict):
    items: list[AnalyzeItem] = Field(description="1..max_texts items.")

    model_config = ConfigDict(extra="forbid", json_schema_extra={"examples": [{"items": [
        {"id": "n1", "text": "Bitcoin ETF inflows hit a record", "source": "wire",
         "published_at": "2026-11-26T08:00:00Z"},
        {"id": "n2", "text": "Exchange halts ETH withdrawals after hack", "symbols": ["ETH"]},
    ]}]})


class AnalyzeItemResult(SentimentResult):
    id: str
    model: str = Field(description="Route name of the model that answered.")
    route: str = Field(description="Why that model: explicit, market, detected, default or fallback.")
    market: str | None = Field(default=None, description="The market given or detected (None: not asked).")
    symbols: list[str]
    symbols_detected: bool = Field(description="True when symbols came from the text, not the request.")
    source: str | None = None
    published_at: datetime | None = None


class SymbolAggregate(BaseModel):
    count: int = Field(description="Items mentioning the symbol.")
    mean_signed_score: float = Field(description="mean of P(positive) - P(negative).")
    confidence_weighted_score: float = Field(
        description="sum(c * s) / sum(c) with s the signed score and c = max(p) the top-label probability.")
    label_counts: dict[str, int] = Field(description="Items per polarity of the top label: positive, negative, "
                                         "neutral (zeros included), the same whichever model answered.")
    model_counts: dict[str, int] = Field(description="Items per model (route name) that answered.")


class AnalyzeResponse(BaseModel):
    model: ModelRef | None = Field(description="The model that answered every item; null when several did.")
    models: dict[str, ModelRef] = Field(description="Every model that answered, by route name.")
    items: list[AnalyzeItemResult]
    symbols: dict[str, SymbolAggregate]

    model_config = ConfigDict(json_schema_extra={"examples": [{
        "model": _MODEL_EXAMPLE,
        "models": {"default": _MODEL_EXAMPLE},
        "items": [{"id": "n1", "label": "positive", "score": 0.91, "scores": _SCORES_EXAMPLE,
                   "polarity": "positive", "signed_score": 0.88, "model": "default", "route": "default",
                   "market": None, "symbols": ["BTC"], "symbols_detected": True,
                   "source": "wire", "published_at": "2026-11-26T08:00:00Z"}],
        "symbols": {"BTC": {"count": 1, "mean_signed_score": 0.88, "confidence_weighted_score": 0.88,
                            "label_counts": {"positive": 1, "negative": 0, "neutral": 0},
                            "model_counts": {"default": 1}}}}]})


class AdmissionInfo(BaseModel):
    mode: str = Field(description="auto (bound from measured throughput x deadline), fixed, or off.")
    max_queued_tokens: int | None = Field(description="The bound in estimated tokens now (None: no bound).")
    queued_tokens: int = Field(description="Estimated tokens admitted and not finished.")
    queued_texts: int
    measured_tokens_per_second: float | None = Field(description="Model throughput measured on this service.")
    deadline_s: float | None = Field(description="The default deadline (None: none); X-Request-Timeout lowers it.")


class ModelInfo(BaseModel):
    # pydantic before 2.10 reserves every "model_" name and warns on model_type (an error under our filters)
    model_config = ConfigDict(protected_namespaces=())

    name: str = Field(description="The service's name for the model (its route); 'default' for one model.")
    configured: str = Field(description="The model as configured (alias or repo id).")
    optional: bool = Field(description="True: the service is ready without it (its items fall back).")
    status: str = Field(description="ready, or failed (an optional model; see error).")
    error: str | None = Field(default=None, description="Why the model could not be loaded.")
    repo_id: str | None = None
    model_type: str | None = None
    environment: str | None = None
    source: str | None = None
    path: str | None = None
    commit: str | None = None
    revision: str | None = None
    backend: str | None = None
    load_seconds: float | None = Field(default=None, description="Time the model manager spent resolving and loading.")
    service_load_seconds: float | None = Field(default=None,
                                               description="Wall time from startup to ready, as the service saw it.")
    labels: list[str] | None = None
    polarity: dict[str, str] | None = Field(default=None, description="What each label means: positive, "
                                            "negative or neutral (declared, known table, or the label names).")
    alias: str | None = None
    dimension: int | None = None
    device: str | None = Field(default="cpu", description="Where the model computes: cpu or cuda:N.")
    dtype: str | None = Field(default="fp32", description="Its precision: fp32, fp16, bf16 or int8.")
    int8_check: dict[str, Any] | None = Field(
        default=None, description="The int8 file re-checked on this CPU: status passed, fallback (this CPU "
        "disagrees: fp32 is served) or not-gated, the reason, and this CPU's and the gate's CPU features.")
    max_batch: int | None = Field(default=None, description="Texts per model call, sized for the device.")
    max_wait_ms: float | None = Field(default=None, description="How long a queued text waits for company.")
    admission: AdmissionInfo | None = Field(default=None, description="Admission control: the bound on queued "
                                            "work and what is queued now.")


class ModelsResponse(BaseModel):
    models: list[ModelInfo]


class ErrorDetail(BaseModel):
    code: str = Field(description="Stable machine-readable code, e.g. limit_exceeded, invalid_json.")
    message: str
    limit: str | None = Field(default=None, description="Which limit: max_texts, max_chars, max_body_bytes.")
    index: int | None = Field(default=None, description="Index of the offending text or item.")
    valid: list[str] | None = Field(default=None, description="unknown_model / unknown_market: the valid names.")
    models: list[dict[str, Any]] | None = Field(default=None, description="not_ready / model_load_failed: each "
                                                "model not ready (name, model, status, error).")
    retry_after: int | None = Field(default=None, description="503 overloaded / deadline_exceeded: seconds to "
                                    "wait before retrying (also the Retry-After header).")
    details: list[dict[str, Any]] | None = None


class ErrorResponse(BaseModel):
    error: ErrorDetail
    request_id: str | None = None

    model_config = ConfigDict(json_schema_extra={"examples": [{
        "error": {"code": "limit_exceeded", "message": "texts[3] has 5000 characters; the limit is 2000",
                  "limit": "max_chars", "index": 3},
        "request_id": "3f1c2a9e0b7d4c55"}]})
