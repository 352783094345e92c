"""Shared, dependency-free pieces of the torch and ONNX runners.

Both backends must give the *same* numbers for the same folder, so everything that decides what
the model sees (labels, max length, batching order, padding) lives here once. stdlib only.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from ..errors import BackendError, FormatError, UnknownModelTypeError
from ..formats.labels import parse_id2label
from ..registry import ModelType, get_model_type, runnable_types

DEFAULT_BATCH_SIZE = 32
#: Padded tokens (rows x longest row) per model call on the CPU; ``SMM_TOKEN_BUDGET`` overrides it.
#: It bounds a call's activation memory whatever a caller sends (without it, 64 texts x 2,000 characters
#: run as 32 x 512-token batches). 2,048 lets a service batch of 32 headlines of up to 64 tokens run as ONE
#: call; long rows are bounded by the next constant. What other budgets measured: docs/benchmarks.md,
#: "Service memory under the worst allowed request".
CPU_TOKEN_BUDGET = 2048
#: Attention grows with the square of the length, so on the CPU long rows are bounded by rows x longest
#: row **squared** <= token budget x ATTENTION_WIDTH, not by the token budget alone. With the default
#: budget: two full-length 512-token rows per call, which keeps the worst request's peak memory within
#: the service's bound (docs/benchmarks.md); rows under 256 tokens are bounded by the token budget first. One knob:
#: ``SMM_TOKEN_BUDGET`` scales both. A text longer than the budgets still runs, alone.
ATTENTION_WIDTH = 256
# tokenizer_config.json uses a huge sentinel (int(1e30)) for "no limit"; anything above this is that.
_NO_LIMIT = 1_000_000


def read_json(path: Path) -> dict[str, Any]:
    """Read a JSON object; a malformed file raises FormatError naming file and line."""
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError as err:
        raise BackendError(f"{path} is missing; the model folder is incomplete") from err
    try:
        data = json.loads(text)
    except json.JSONDecodeError as err:
        raise FormatError(f"invalid JSON: {err.msg} (column {err.colno})", path=path,
                          line=err.lineno) from err
    if not isinstance(data, dict):
        raise FormatError(f"expected a JSON object, got {type(data).__name__}", path=path, line=1)
    return data


def read_optional_json(path: Path) -> dict[str, Any]:
    return read_json(path) if path.is_file() else {}


def labels_from_config(config: dict[str, Any], config_path: Path,
                       expected: Sequence[str] | None) -> tuple[str, ...]:
    """``id2label`` in id order (strict). If the caller pinned labels (manifest/lock), they must agree."""
    raw = config.get("id2label")
    if (not isinstance(raw, dict) or not raw) and expected:
        return tuple(expected)
    labels = parse_id2label(config, strict=True, where=config_path)
    if expected is not None and tuple(x.lower() for x in expected) != tuple(x.lower() for x in labels):
        raise BackendError(
            f"{config_path}: id2label gives labels {list(labels)} but the manifest/lock pins "
            f"{list(expected)}; the folder is not the model that was pinned")
    return labels


def max_length(config: dict[str, Any], tokenizer_config: dict[str, Any]) -> int:
    """Truncation length: tokenizer ``model_max_length`` if it is real, else the position table size."""
    candidates = []
    tml = tokenizer_config.get("model_max_length")
    if isinstance(tml, (int, float)) and 0 < tml < _NO_LIMIT:
        candidates.append(int(tml))
    mpe = config.get("max_position_embeddings")
    if isinstance(mpe, int) and mpe > 0:
        candidates.append(mpe)
    return min(candidates) if candidates else 512


def token_budget_batches(lengths: Sequence[int], budget: int, max_rows: int,
                         attention_budget: int | None = None) -> list[list[int]]:
    """Length-sorted batches (longest first) whose *padded* size, rows x longest row, stays within
    ``budget`` tokens and ``max_rows`` rows, and, when ``attention_budget`` is given, whose rows x
    longest row squared stays within it. A text longer than the budgets gets a batch of its own.

    Short headlines (~30 tokens) go hundreds to a batch; 512-token documents a few, so device memory
    per batch is bounded by the budget, not by the texts a caller happened to send. Stable order.
    """
    if budget < 1 or max_rows < 1 or (attention_budget is not None and attention_budget < 1):
        raise ValueError(f"budgets and max_rows must be >= 1, got {budget}, {attention_budget}, {max_rows}")
    order = sorted(range(len(lengths)), key=lambda i: -lengths[i])
    batches: list[list[int]] = []
    current: list[int] = []
    width = 0
    for i in order:
        if current:
            rows = len(current) + 1
            full = (rows * width > budget or len(current) >= max_rows
                    or (attention_budget is not None and rows * width * width > attention_budget))
            if full:
                batches.append(current)
                current = []
        if not current:
            width = max(1, lengths[i])
        current.append(i)
    if current:
        batches.append(current)
    return batches


def effective_max_length(model_limit: int, options: Any) -> int | None:
    """Truncation length for one call: the requested ``max_length`` capped at the model's limit, or None
    (no truncation) when the caller turned truncation off."""
    if options is None:
        return model_limit
    if not options.truncation:
        return None
    return min(options.max_length, model_limit) if options.max_length else model_limit


def check_untruncated(lengths: Sequence[int], model_limit: int) -> None:
    """``truncation=False``: a text longer than the model accepts is refused, naming it (never cut silently)."""
    for i, n in enumerate(lengths):
        if n > model_limit:
            raise ValueError(f"texts[{i}] is {n} tokens long but the model accepts at most {model_limit}; "
                             "pass truncation=True (the default) to cut it, or shorten the text")


def pad_rows(rows: Sequence[Sequence[int]], width: int, value: int) -> list[list[int]]:
    """Right-pad each row to ``width`` (rows are never longer: they were truncated)."""
    return [list(r) + [value] * (width - len(r)) for r in rows]


@dataclass(frozen=True)
class FolderMeta:
    """What both backends read from a model folder before loading anything heavy."""

    config: dict[str, Any]
    tokenizer_config: dict[str, Any]
    labels: tuple[str, ...]   # id order; empty for embeddings
    max_length: int


def read_folder_meta(folder: Path, model_type: str, labels: Sequence[str] | None) -> FolderMeta:
    """config.json + tokenizer_config.json, labels checked against a pinned order, max sequence length."""
    check_model_type(model_type)
    config_path = folder / "config.json"
    config = read_json(config_path)
    tokenizer_config = read_optional_json(folder / "tokenizer_config.json")
    classifies = get_model_type(model_type).classifies
    found = tuple(labels_from_config(config, config_path, labels)) if classifies else ()
    return FolderMeta(config, tokenizer_config, found, max_length(config, tokenizer_config))


def check_model_type(model_type: str) -> ModelType:
    """The registered type, if some runner can run it (it has a ``head``); UnknownModelTypeError otherwise."""
    mt = get_model_type(model_type) if model_type in runnable_types() else None
    if mt is None:
        raise UnknownModelTypeError(
            f"model type {model_type!r} has no runner; valid types: {', '.join(runnable_types())}")
    return mt
