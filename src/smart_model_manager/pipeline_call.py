"""The ``transformers.pipeline("text-classification")`` calling convention, for :class:`Model`.

``model(text)`` with no keyword keeps this project's contract (every label, best first). A call with
any of the keywords below answers the way the text-classification pipeline of transformers 5 does
(``TextClassificationPipeline.__call__`` / ``postprocess``), so code written against a pipeline runs
unchanged. stdlib only (layer 2).

================== ==================================================================================
keyword            behaviour here
================== ==================================================================================
truncation         True / "longest_first" / "only_first": cut at ``max_length`` (default: the model's
                   limit). False / "do_not_truncate": never cut; a text longer than the model accepts
                   raises ValueError (the pipeline would crash inside the model)
max_length         truncation length in tokens (capped at the model's own limit); alone it implies
                   ``truncation=True``, as in transformers
padding            accepted (True/False/"longest"/"max_length"/"do_not_pad"); results do not depend on it,
                   every batch is padded to its longest text with an attention mask
top_k              None: every label, best first; k: the k best; not given: the legacy top-1 shape
batch_size         texts per forward pass for this call
function_to_apply  "softmax" (default), "sigmoid", "none" (raw logits); sentiment only
return_all_scores  legacy spelling: True = every label in label-id order, False = top-1 (transformers 4)
================== ==================================================================================
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

ACCEPTED = ("truncation", "max_length", "padding", "top_k", "batch_size", "function_to_apply",
            "return_all_scores")
SENTIMENT_ONLY = ("top_k", "function_to_apply", "return_all_scores")
FUNCTIONS = ("softmax", "sigmoid", "none")
_PADDING = (True, False, "longest", "max_length", "do_not_pad")
_TRUNCATE = {True: True, False: False, "longest_first": True, "only_first": True, "do_not_truncate": False}


@dataclass(frozen=True)
class RunOptions:
    """What a runner is asked to do differently from its defaults for one call."""

    max_length: int | None = None   # None: the model's own limit
    truncation: bool = True         # False: refuse (ValueError) texts longer than the model accepts
    batch_size: int | None = None   # None: the runner's batch size
    logits: bool = False            # sentiment: raw logits instead of probabilities

    @property
    def is_default(self) -> bool:
        return self == DEFAULT_OPTIONS


DEFAULT_OPTIONS = RunOptions()

# output shapes
LEGACY_TOP1, LEGACY_ALL, TOP_K = "legacy-top1", "legacy-all", "top-k"


@dataclass(frozen=True)
class PipelineCall:
    options: RunOptions
    shape: str = LEGACY_TOP1
    top_k: int | None = None
    function: str = "softmax"


def _positive_int(name: str, value: Any, *, allow_none: bool = True) -> int | None:
    if value is None and allow_none:
        return None
    if isinstance(value, bool) or not isinstance(value, int) or value < 1:
        raise ValueError(f"{name} must be a positive integer{' or None' if allow_none else ''}, got {value!r}")
    return value


def _function(value: Any) -> str:
    raw = getattr(value, "value", value)  # transformers' ClassificationFunction enum has .value
    if isinstance(raw, str) and raw.lower() in FUNCTIONS:
        return raw.lower()
    raise ValueError(f"function_to_apply must be one of {', '.join(FUNCTIONS)}, got {value!r}")


def parse(kwargs: Mapping[str, Any], model_type: str, *, classifies: bool) -> PipelineCall:
    """Validate pipeline keywords for a model of ``model_type`` (``classifies``: it has labels);
    unknown ones raise TypeError naming the accepted ones."""
    unknown = sorted(set(kwargs) - set(ACCEPTED))
    if unknown:
        raise TypeError(f"Model.__call__() got unexpected keyword argument(s) {', '.join(map(repr, unknown))}; "
                        f"accepted: {', '.join(ACCEPTED)}")
    if not classifies:
        bad = [k for k in SENTIMENT_ONLY if k in kwargs]
        if bad:
            raise ValueError(f"{', '.join(bad)} only apply to models with labels (sentiment); this is a "
                             f"{model_type} model")
    trunc_raw = kwargs.get("truncation")
    if trunc_raw is None:
        truncation = True  # the pipeline leaves a too-long text to crash the model; we cut at the model's limit
    elif isinstance(trunc_raw, (bool, str)) and trunc_raw in _TRUNCATE:
        truncation = _TRUNCATE[trunc_raw]
    else:
        raise ValueError(f"truncation must be True, False, 'longest_first', 'only_first' or 'do_not_truncate', "
                         f"got {trunc_raw!r}")
    max_length = _positive_int("max_length", kwargs.get("max_length"))
    if "padding" in kwargs and not any(kwargs["padding"] is p or (isinstance(p, str) and kwargs["padding"] == p)
                                       for p in _PADDING):
        raise ValueError(f"padding must be one of {', '.join(map(repr, _PADDING))}, got {kwargs['padding']!r}")
    batch_size = _positive_int("batch_size", kwargs.get("batch_size"))
    function = _function(kwargs["function_to_apply"]) if kwargs.get("function_to_apply") is not None else "softmax"
    top_k: int | None
    shape, top_k = LEGACY_TOP1, 1
    if "top_k" in kwargs:
        shape, top_k = TOP_K, _positive_int("top_k", kwargs["top_k"])
    elif "return_all_scores" in kwargs:
        ras = kwargs["return_all_scores"]
        if not isinstance(ras, bool):
            raise ValueError(f"return_all_scores must be True or False, got {ras!r}")
        shape, top_k = (LEGACY_ALL, None) if ras else (LEGACY_TOP1, 1)
    options = RunOptions(max_length=max_length, truncation=truncation, batch_size=batch_size,
                         logits=function != "softmax")
    return PipelineCall(options=options, shape=shape, top_k=top_k, function=function)


def _sigmoid(x: float) -> float:
    if x >= 0:
        return 1.0 / (1.0 + math.exp(-x))
    e = math.exp(x)
    return e / (1.0 + e)


def top_index(values: Sequence[float]) -> int:
    """The index of the top score; a tie goes to the first (lowest label id), as numpy's argmax and the
    stable best-first sort of ``Model`` do. The one tie rule for "the top label"."""
    if not values:
        raise ValueError("no scores: a top label needs at least one")
    return max(range(len(values)), key=lambda i: (values[i], -i))


def scores(row: Sequence[float], function: str) -> list[float]:
    """Runner output (probabilities, or logits when ``function`` is not softmax) -> pipeline scores."""
    if function == "sigmoid":
        return [_sigmoid(float(x)) for x in row]
    return [float(x) for x in row]


def format_row(labels: Sequence[str], row: Sequence[float], call: PipelineCall) -> Any:
    """One text's pipeline output, as ``TextClassificationPipeline.postprocess`` shapes it."""
    values = scores(row, call.function)
    pairs = [{"label": lab, "score": s} for lab, s in zip(labels, values)]
    if call.shape == LEGACY_TOP1:
        best = top_index(values)
        return {"label": labels[best], "score": values[best]}
    if call.shape == LEGACY_ALL:
        return pairs  # label-id order, unsorted (transformers 4 return_all_scores=True)
    ranked = sorted(pairs, key=lambda d: -d["score"])  # type: ignore[operator]  # stable: ties keep label-id order
    return ranked if call.top_k is None else ranked[:call.top_k]


def format_output(labels: Sequence[str], rows: Sequence[Sequence[float]], call: PipelineCall, single: bool) -> Any:
    """The whole call's output: a single string is wrapped in a list only in the legacy shapes."""
    out = [format_row(labels, r, call) for r in rows]
    if single:
        return [out[0]] if call.shape in (LEGACY_TOP1, LEGACY_ALL) else out[0]
    return out


__all__ = ["ACCEPTED", "DEFAULT_OPTIONS", "FUNCTIONS", "PipelineCall", "RunOptions", "format_output", "parse", "top_index"]
