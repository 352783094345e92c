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

    model_config = ConfigDict(extra="forbid", json_schema_extra={
        "examples": [{"texts": ["Bitcoin ETF inflows hit a record", "Exchange halts withdrawals after hack"]}]})


class ModelRef(BaseModel):
    id: str = Field(description="Hub repo id of the loaded model.")
    commit: str | None = Field(description="Commit (revision hash) of the exact files loaded.")
    backend: str = Field(description="mock, torch, onnx or onnx-int8.")


class SentimentResult(BaseModel):
    label: str = Field(description="Top label (ties go to the first label in model order).")
    score: float = Field(description="Probability of the top label.")
    scores: dict[str, float] = Field(description="Probability of every label.")


class SentimentResponse(BaseModel):
    model: ModelRef
    results: list[SentimentResult] = Field(description="One result per input text, in input order.")

    model_config = ConfigDict(json_schema_extra={"examples": [{
        "model": _MODEL_EXAMPLE,
        "results": [{"label": "positive", "score": 0.91, "scores": _SCORES_EXAMPLE},
                    {"label": "negative", "score": 0.88,
                     "scores": {"positive": 0.02, "negative": 0.88, "neutral": 0.10}}]}]})


class AnalyzeItem(_Strict):
    id: str = Field(max_length=200, description="Caller's id, echoed back.")
    text: str = Field(description="Headline or article text (1..max_chars characters).")
    source: str | None = Field(default=None, max_length=200, description="Where the text came from.")
    published_at: datetime | None = Field(default=None, description="ISO 8601 timestamp.")
    symbols: list[str] | None = Field(
        default=None, description="Tickers the item is about. Omitted: detected in the text.")


class AnalyzeRequest(_Strict):
    items: list[AnalyzeItem] = Field(description="1..max_texts items.")

    model_config = ConfigDict(extra="forbid", json_schema_extra={"examples": [{"items": [
        {"id": "n1", "text": "Bitcoin ETF inflows hit a record", "source": "wire",
         "published_at": "2026-11-26T08:00:00Z"},
        {"id": "n2", "text": "Exchange halts ETH withdrawals after hack", "symbols": ["ETH"]},
    ]}]})


class AnalyzeItemResult(SentimentResult):
    id: str
    signed_score: float = Field(description="P(positive) - P(negative).")
    symbols: list[str]
    symbols_detected: bool = Field(description="True when symbols came from the text, not the request.")
    source: str | None = None
    published_at: datetime | None = None


class SymbolAggregate(BaseModel):
    count: int = Field(description="Items mentioning the symbol.")
    mean_signed_score: float = Field(description="mean of P(positive) - P(negative).")
    confidence_weighted_score: float = Field(
        description="sum(c * s) / sum(c) with s the signed score and c = max(p) the top-label probability.")
    label_counts: dict[str, int] = Field(description="Items per top label (every label, zeros included).")


class AnalyzeResponse(BaseModel):
    model: ModelRef
    items: list[AnalyzeItemResult]
    symbols: dict[str, SymbolAggregate]

    model_config = ConfigDict(json_schema_extra={"examples": [{
        "model": _MODEL_EXAMPLE,
        "items": [{"id": "n1", "label": "positive", "score": 0.91, "scores": _SCORES_EXAMPLE,
                   "signed_score": 0.88, "symbols": ["BTC"], "symbols_detected": True,
                   "source": "wire", "published_at": "2026-11-26T08:00:00Z"}],
        "symbols": {"BTC": {"count": 1, "mean_signed_score": 0.88, "confidence_weighted_score": 0.88,
                            "label_counts": {"positive": 1, "negative": 0, "neutral": 0}}}}]})


class AdmissionInfo(BaseModel):
    mode: str = Field(description="auto (bound from measured throughput x deadline), fixed, or off.")
    max_queued_tokens: int | None = Field(description="The bound in estimated tokens now (None: no bound).")
    queued_tokens: int = Field(description="Estimated tokens admitted and not finished.")
    queued_texts: int
    measured_tokens_per_second: float | None = Field(description="Model throughput measured on this service.")
    deadline_s: float | None = Field(description="The default deadline (None: none); X-Request-Timeout lowers it.")


class ModelInfo(BaseModel):
    repo_id: str
    model_type: str
    environment: str
    source: str
    path: str | None
    commit: str | None
    revision: str | None
    backend: str
    load_seconds: float = Field(description="Time the model manager spent resolving and loading.")
    service_load_seconds: float = Field(description="Wall time from startup to ready, as the service saw it.")
    labels: list[str]
    alias: str | None = None
    dimension: int | None = None
    device: str = Field(default="cpu", description="Where the model computes: cpu or cuda:N.")
    dtype: str = Field(default="fp32", description="Its precision: fp32, fp16, bf16 or int8.")
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
