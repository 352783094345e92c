"""The `Model` object: the same kind of object in every environment.

A *runner* does the maths: ``runner(texts) -> list[list[float]]`` (label probabilities in label-id
order for sentiment, L2-normalised vectors for embeddings). ``Model`` adds input validation, the
output shape users know from ``pipeline(..., top_k=None)`` and the load information.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass
from typing import Any, Protocol

from .registry import get_model_type


class Runner(Protocol):
    backend: str

    def __call__(self, texts: list[str]) -> list[list[float]]: ...


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

    def __init__(self, runner: Callable[[list[str]], list[list[float]]], *, model_type: str,
                 labels: Sequence[str] | None, info: LoadInfo):
        self._runner = runner
        self.model_type = model_type
        self.labels: tuple[str, ...] = tuple(labels or ())
        self.info = info
        self._classifies = get_model_type(model_type).classifies

    @property
    def backend(self) -> str:
        return self.info.backend

    def raw(self, texts: list[str]) -> list[list[float]]:
        """Run the runner on already-validated texts (probabilities or vectors, label-id order)."""
        return self._runner(texts)

    def __call__(self, texts: str | Sequence[str]) -> Any:
        items, single = check_texts(texts)
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
