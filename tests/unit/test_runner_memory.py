"""Memory per model call is bounded by a token budget, not by the number of texts.

Before: one request of 64 texts x 2,000 characters (the service's own limits) ran as two padded batches
of 32 x 512 tokens, and ONNX Runtime's CPU arena kept the peak: 200 MB -> 2 GB, never returned. The
memory itself is measured by bench/bench_service_memory.py; these tests hold the mechanisms.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest

from smart_model_manager.loaders._common import ATTENTION_WIDTH, CPU_TOKEN_BUDGET, token_budget_batches
from smart_model_manager.loaders.onnx import OnnxRunner

pytestmark = pytest.mark.unit


@dataclass
class _Enc:
    ids: list[int]
    type_ids: list[int] = field(default_factory=list)


class _Tokenizer:
    """Whitespace 'tokenizer' truncating at max_len, like tokenizers.Tokenizer with truncation on."""

    def __init__(self, max_len: int):
        self.max_len = max_len

    def encode_batch(self, texts: list[str]) -> list[_Enc]:
        out = []
        for t in texts:
            ids = [101] + [7] * len(t.split()) + [102]
            ids = ids[: self.max_len]
            out.append(_Enc(ids, [0] * len(ids)))
        return out


@dataclass
class _Node:
    name: str
    shape: list[Any] = field(default_factory=lambda: ["batch", 3])


class _Session:
    """Records the shape of every run; answers logits of zeros."""

    def __init__(self) -> None:
        self.shapes: list[tuple[int, int]] = []

    def get_inputs(self) -> list[_Node]:
        return [_Node("input_ids"), _Node("attention_mask"), _Node("token_type_ids")]

    def get_outputs(self) -> list[_Node]:
        return [_Node("logits")]

    def run(self, names: list[str], feed: dict[str, Any]) -> list[Any]:
        import numpy as np

        ids = feed["input_ids"]
        self.shapes.append(ids.shape)
        return [np.zeros((ids.shape[0], 3), dtype=np.float32)]


def _runner(max_len: int = 512, **kw: Any) -> tuple[OnnxRunner, _Session]:
    session = _Session()
    runner = OnnxRunner(session, _Tokenizer(max_len), model_type="sentiment", labels=("a", "b", "c"),
                        max_length=max_len, pad_id=0, backend="onnx", onnx_file=Path("model.onnx"), **kw)
    return runner, session


def test_worst_allowed_request_runs_in_batches_within_the_token_budget() -> None:
    runner, session = _runner()
    texts = [" ".join(["word"] * 600)] * 64  # 64 texts that each fill max_length (2,000 chars: > 512 tokens)
    rows = runner(texts)
    assert len(rows) == 64 and all(len(r) == 3 for r in rows)
    assert session.shapes, "the model was never called"
    for n, width in session.shapes:
        assert n * width <= CPU_TOKEN_BUDGET, session.shapes
        assert n * width * width <= CPU_TOKEN_BUDGET * ATTENTION_WIDTH, session.shapes  # attention: the square
    assert max(n for n, _w in session.shapes) == 2  # two full-length rows per call: the budget's measured size
    assert sum(n for n, _w in session.shapes) == 64


def test_headline_batches_are_not_split_by_the_budget() -> None:
    # the budget must not cost throughput: a service batch of 32 headlines of up to 64 tokens is ONE model call
    runner, session = _runner()
    runner([" ".join(["w"] * 62)] * 32)  # 64 tokens with [CLS] and [SEP]
    assert [n for n, _w in session.shapes] == [32]


def test_attention_bounds_long_rows_and_the_token_budget_bounds_short_ones() -> None:
    big = 2048 * ATTENTION_WIDTH
    assert [len(b) for b in token_budget_batches([512] * 5, budget=2048, max_rows=32, attention_budget=big)] == [
        2, 2, 1]
    assert [len(b) for b in token_budget_batches([256] * 9, budget=2048, max_rows=32, attention_budget=big)] == [
        8, 1]  # both bounds meet at 256 tokens
    assert [len(b) for b in token_budget_batches([100] * 25, budget=2048, max_rows=32, attention_budget=big)] == [
        20, 5]  # the token budget binds first
    assert token_budget_batches([600, 10], budget=2048, max_rows=32, attention_budget=10) == [[0], [1]]
    with pytest.raises(ValueError, match="budgets and max_rows must be >= 1"):
        token_budget_batches([1], budget=1, max_rows=1, attention_budget=0)


def test_short_headlines_still_share_a_batch() -> None:
    runner, session = _runner()
    rows = runner([f"headline {i} about bitcoin" for i in range(64)])
    assert len(rows) == 64
    assert len(session.shapes) == 2 and session.shapes[0][0] == 32  # batch_size rows, not 64 batches of 1


def test_explicit_token_budget_is_used() -> None:
    runner, session = _runner(token_budget=1024)
    runner([" ".join(["w"] * 120)] * 10)
    assert all(n * w <= 1024 for n, w in session.shapes) and len(session.shapes) >= 2


def test_a_text_longer_than_the_budget_runs_alone() -> None:
    assert token_budget_batches([600, 10, 10], budget=512, max_rows=32) == [[0], [1, 2]]


@pytest.mark.ml_models
def test_onnx_cpu_memory_arena_is_off() -> None:
    from smart_model_manager.loaders.onnx import session_options

    so = session_options(1)
    assert so.enable_cpu_mem_arena is False
    assert so.enable_mem_pattern is False


def test_cpu_token_budget_is_a_named_documented_setting() -> None:
    from smart_model_manager.settings import Settings

    assert Settings.from_env({"SMM_TOKEN_BUDGET": "2048"}).token_budget == 2048
    assert Settings.from_env({}).token_budget is None  # None = the device's default
    docs = (Path(__file__).resolve().parents[2] / "docs" / "configuration.md").read_text()
    assert "SMM_TOKEN_BUDGET" in docs and f"{CPU_TOKEN_BUDGET:,}" in docs


def test_the_service_trims_the_heap_after_long_batches_only(monkeypatch) -> None:
    # a 4 MiB mmap threshold keeps headline batches fast, and malloc_trim after a long batch
    # gives back what its medium buffers left in the heap
    from smart_model_manager.service import app as service_app, memory, multi
    from smart_model_manager.service.config import ServiceConfig
    from smart_model_manager.service.metrics import ServiceMetrics

    trims: list[int] = []
    monkeypatch.setattr(multi, "trim", lambda: trims.append(1) or True)
    state = service_app.ServiceState(ServiceConfig(), lambda name: None, ServiceMetrics())

    class Model:
        def raw(self, texts: list[str]) -> list[list[float]]:
            return [[1.0, 0.0, 0.0] for _ in texts]

    route = state.routes.default  # each model's route runs its own batches
    route.model = Model()
    assert route._run(["Bitcoin ETF inflows hit a record"] * 32) == [[1.0, 0.0, 0.0]] * 32
    assert trims == []  # 32 headlines: no trim
    assert len(route._run(["x" * 2000] * 8)) == 8
    assert trims == [1]  # 16,000 characters: trimmed once
    assert memory.DEFAULT_THRESHOLD == 4 << 20 and memory.TRIM_AFTER_CHARS == 16_000


def test_trim_and_thresholds_are_real_calls_on_glibc() -> None:
    import platform

    from smart_model_manager.service import memory

    if platform.libc_ver()[0] != "glibc":
        pytest.skip("glibc only; a no-op elsewhere")
    assert memory.return_freed_memory() is True
    blocks = [bytes(2048) for _ in range(20_000)]  # ~40 MB of heap blocks (under the mmap threshold)
    del blocks  # freed, but kept by the heap
    assert memory.trim() is True  # malloc_trim(0) gave pages back
