"""The `Model` object: the same kind of object in every environment.

A *runner* does the maths: ``runner(texts) -> list[list[float]]`` (label probabilities in label-id
order for sentiment, L2-normalised vectors for embeddings). ``Model`` adds input validation, the
output shape users know from ``pipeline(..., top_k=None)`` and the load information.

``model(text, truncation=True, max_length=512, top_k=None, ...)`` accepts the
``transformers.pipeline`` text-classification keywords (see :mod:`smart_model_manager.pipeline_call`).
Runners that honour per-call options set ``supports_options = True`` and take ``runner(texts, options)``.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import asdict, dataclass
from typing import Any, Protocol

from . import pipeline_call, telemetry
from .errors import BackendError
from .pipeline_call import RunOptions
from .registry import get_model_type


class Runner(Protocol):
    """Everything the code reads from a runner (``api``, ``Model``, the service); every runner has all of it.
    Read-only here, so a runner may hold a narrower type (``max_length: int``)."""

    @property
    def backend(self) -> str: ...            # the backend that runs it: "onnx", "onnx-int8", "torch", "mock"
    @property
    def device(self) -> str: ...             # where it computes: "cpu" or "cuda:N"
    @property
    def dtype(self) -> str: ...              # its precision: "fp32", "fp16", "bf16", "int8"
    @property
    def supports_options(self) -> bool: ...  # honours ``runner(texts, RunOptions)``
    @property
    def max_length(self) -> int | None: ...  # the longest input in tokens before truncation; None: does not say
    @property
    def token_budget(self) -> int | None: ...  # padded tokens per model call; None: unbounded
    @property
    def int8_check(self) -> dict[str, Any] | None: ...  # the int8 re-check on this CPU (int8_check.py), or None

    def __call__(self, texts: list[str], options: RunOptions | None = None) -> list[list[float]]: ...


class RunnerDefaults:
    """The Runner attributes' usual values, for a runner (or a test's fake) to inherit and override."""

    backend = "?"
    device = "cpu"
    dtype = "fp32"
    supports_options = False
    max_length: int | None = None
    token_budget: int | None = None
    int8_check: dict[str, Any] | None = None


def run(runner: Runner, texts: list[str], options: RunOptions | None = None) -> list[list[float]]:
    """Call ``runner`` with per-call options; a runner that cannot honour them is refused, never ignored."""
    if options is None or options.is_default:
        return runner(texts)
    if not runner.supports_options:
        raise BackendError(f"the {runner.backend!r} runner does not support per-call options "
                           f"(max_length, truncation, batch_size, function_to_apply); call the model without them")
    return runner(texts, options)


@dataclass(frozen=True)
class LoadInfo:
    """Where a model came from and what loading it cost."""

    repo_id: str
    model_type: str
    environment: str
    source: str
    path: str | None
    commit: str | None
    revision: str | None
    backend: str
    load_seconds: float
    dimension: int | None = None
    alias: str | None = None
    device: str = "cpu"         # where the runner computes: "cpu" or "cuda:N"
    dtype: str = "fp32"         # its precision: "fp32", "fp16", "bf16", "int8"
    # the int8 file re-checked on this CPU (int8_gate.Recheck.as_dict()): status passed / fallback /
    # not-gated, the reason, this CPU's and the gate's CPU features; None when no int8 file was chosen
    int8_check: dict[str, Any] | None = None

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)


def check_texts(texts: object) -> tuple[list[str], bool]:
    """Validate input; return (list of texts, was_single). Raises ValueError naming the element."""
    if isinstance(texts, str):
        items, single = [texts], True
    elif isinstance(texts, Sequence) and not isinstance(texts, (bytes, bytearray)):
        items, single = list(texts), False
        if not items:
            raise ValueError("expected a non-empty list of texts, got an empty list")
    else:
        raise ValueError(f"expected a string or a list of strings, got {type(texts).__name__}")
    for i, t in enumerate(items):
        where = "text" if single else f"texts[{i}]"
        if not isinstance(t, str):
            raise ValueError(f"{where} is {type(t).__name__} ({t!r:.40}), expected str")
        if not t.strip():
            raise ValueError(f"{where} is empty; give at least one non-space character")
    return items, single


class Model:
    """A loaded model. ``model(text)`` / ``model([texts])``; ``model.labels``; ``model.info``."""

    def __init__(self, runner: Runner, *, model_type: str,
                 labels: Sequence[str] | None, info: LoadInfo,
                 call_defaults: dict[str, Any] | None = None):
        self._runner = runner
        self.model_type = model_type
        self.labels: tuple[str, ...] = tuple(labels or ())
        self.info = info
        self._classifies = get_model_type(model_type).classifies
        self._call_defaults = dict(call_defaults or {})
        if self._call_defaults:
            # refuse bad defaults now, not on the first call
            pipeline_call.parse(self._call_defaults, model_type, classifies=self._classifies)

    def with_call_defaults(self, **defaults: Any) -> Model:
        """The same model (same runner) whose pipeline-keyword calls start from ``defaults``.

        The defaults apply only when the caller passes at least one pipeline keyword; a plain
        ``model(text)`` keeps the Model contract. Used by :mod:`smart_model_manager.compat` to answer
        as the original's pipelines (built with ``return_all_scores=True``) did.
        """
        return Model(self._runner, model_type=self.model_type, labels=self.labels, info=self.info,
                     call_defaults={**self._call_defaults, **defaults})

    @property
    def backend(self) -> str:
        return self.info.backend

    @property
    def max_length(self) -> int | None:
        """The longest input, in tokens, the runner accepts before truncating (None if it does not say)."""
        return self._runner.max_length

    @property
    def token_budget(self) -> int | None:
        """Padded tokens per model call (rows x longest row), if the runner bounds it."""
        return self._runner.token_budget

    def raw(self, texts: list[str]) -> list[list[float]]:
        """Run the runner on already-validated texts (probabilities or vectors, label-id order)."""
        with telemetry.span("smm.infer", repo_id=self.info.repo_id, backend=self.info.backend, texts=len(texts)):
            return self._runner(texts)

    def __call__(self, texts: str | Sequence[str], **pipeline_kwargs: Any) -> Any:
        items, single = check_texts(texts)
        with telemetry.span("smm.infer", repo_id=self.info.repo_id, backend=self.info.backend, texts=len(items)):
            return self._call(items, single, pipeline_kwargs)

    def _call(self, items: list[str], single: bool, pipeline_kwargs: dict[str, Any]) -> Any:
        if pipeline_kwargs:
            merged = dict(self._call_defaults)
            if "top_k" in pipeline_kwargs or "return_all_scores" in pipeline_kwargs:
                merged.pop("top_k", None)
                merged.pop("return_all_scores", None)
            merged.update(pipeline_kwargs)
            call = pipeline_call.parse(merged, self.model_type, classifies=self._classifies)
            rows = run(self._runner, items, call.options)
            if self._classifies:
                return pipeline_call.format_output(self.labels, rows, call, single)
            vectors = [list(r) for r in rows]
            return vectors[0] if single else vectors
        rows = self._runner(items)
        if self._classifies:
            out: list[Any] = [self.format_scores(r) for r in rows]
        else:
            out = [list(r) for r in rows]
        return out[0] if single else out

    def format_scores(self, probs: Sequence[float]) -> list[dict[str, Any]]:
        pairs = [{"label": lab, "score": float(p)} for lab, p in zip(self.labels, probs)]
        # stable: ties keep label-id order
        return sorted(pairs, key=lambda d: -d["score"])

    def __repr__(self) -> str:
        i = self.info
        return (f"Model({i.repo_id!r}, type={self.model_type!r}, source={i.source!r}, "
                f"backend={i.backend!r}, commit={(i.commit or '')[:10]!r})")
