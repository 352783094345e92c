"""The torch runner on a CUDA GPU (backend ``"torch"``, device ``cuda:N``). Heavy imports inside functions.

What it does differently from the CPU runner (:mod:`.torch`, unchanged for CPU users):

- the weights are loaded straight in the chosen precision (bf16 / fp16 / fp32) and moved to the GPU;
- the texts of one call are tokenized in batched calls of the fast tokenizer (a long call in chunks
  of :data:`OVERLAP_CHUNK`, tokenized by a background thread while this one feeds the GPU the
  previous chunk), sorted by length and grouped so that each batch's *padded* size (rows x its
  longest row) stays within a token
  budget (:data:`DEFAULT_TOKEN_BUDGET`, ``SMM_TOKEN_BUDGET``): hundreds of short headlines per batch,
  a few long documents, and GPU memory per batch bounded whatever a caller sends;
- each batch is padded on the host into pinned (page-locked) memory and copied with
  ``non_blocking=True``; results stay on the GPU until the end of the call: our code waits for the
  GPU once per call, not once per batch (transformers' own attention-mask check still waits once
  per forward pass; the tokenizer thread keeps working through it);
- softmax / mean pooling in fp32, so probabilities are comparable with the CPU fp32 path; the rows
  come back in input order and label-id order, exactly the shape the CPU runner returns.

The runner also works on ``device="cpu"`` (no pinning there): the unit tests run this exact code path
on the CPU machines of CI, in fp32 and bf16.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

from ..errors import BackendError
from ..registry import get_model_type
from ._common import (
    check_model_type,
    check_untruncated,
    effective_max_length,
    pad_rows,
    read_folder_meta,
    token_budget_batches,
)
from .device import DeviceChoice
from .torch import INSTALL_HINT, TorchRunner, check_weights, quiet_load_bars

log = logging.getLogger(__name__)

#: Padded tokens per batch on a GPU. 256 headlines of ~32 tokens = 8,192; the default leaves room for
#: larger batches on big GPUs. bench/bench_gpu.py --budgets measures candidates; SMM_TOKEN_BUDGET overrides.
DEFAULT_TOKEN_BUDGET = 16_384
#: Rows per batch whatever the budget (very short texts would otherwise make huge batches).
MAX_ROWS = 512
TORCH_DTYPES = {"fp32": "float32", "fp16": "float16", "bf16": "bfloat16"}
#: Texts per tokenization step of a long call: chunk k+1 is tokenized while the GPU runs chunk k. Calls up
#: to this size (every service batch) are tokenized in one go, on the calling thread.
OVERLAP_CHUNK = 1024


class _Done:
    """A finished "future" for the one-chunk case (no thread needed)."""

    def __init__(self, value: Any):
        self.value = value

    def result(self) -> Any:
        return self.value


class CudaTorchRunner(TorchRunner):
    """``runner(texts) -> list[list[float]]``: a transformers model on a (CUDA) device, in ``dtype``."""

    def __init__(self, tokenizer: Any, model: Any, *, model_type: str, labels: tuple[str, ...],
                 max_length: int, device: str, dtype: str, token_budget: int = DEFAULT_TOKEN_BUDGET,
                 max_rows: int = MAX_ROWS):
        super().__init__(tokenizer, model, model_type=model_type, labels=labels, max_length=max_length,
                         batch_size=max_rows)
        import torch

        if token_budget < 1:
            raise BackendError(f"token budget must be >= 1, got {token_budget} (SMM_TOKEN_BUDGET)")
        self.device = device
        self.dtype = dtype
        self.token_budget = token_budget
        self.max_rows = max_rows
        self._device = torch.device(device)
        self._pin = self._device.type == "cuda"
        self.chunk = OVERLAP_CHUNK

    def batches(self, lengths: Sequence[int], max_rows: int | None = None) -> list[list[int]]:
        return token_budget_batches(lengths, self.token_budget, max_rows or self.max_rows)

    def _to_device(self, rows: list[list[int]]) -> Any:
        import torch

        t = torch.tensor(rows, dtype=torch.long)
        if self._pin:
            try:
                t = t.pin_memory()
            except RuntimeError as err:  # page-locked memory refused (container limits): plain copies
                self._pin = False
                log.warning("pinned host memory unavailable (%s): copying batches to %s without it", err,
                            self.device)
        return t.to(self._device, non_blocking=self._pin)

    def _encode(self, texts: list[str], max_len: int | None) -> tuple[Any, list[int]]:
        if max_len is None:
            enc = self.tokenizer(list(texts), truncation=False, padding=False)
        else:
            enc = self.tokenizer(list(texts), truncation=True, max_length=max_len, padding=False)
        return enc, [len(ids) for ids in enc["input_ids"]]

    def __call__(self, texts: list[str], options: Any = None) -> list[list[float]]:
        import torch

        if not texts:
            return []
        max_len = effective_max_length(self.max_length, options)
        want_logits = bool(options is not None and options.logits)
        max_rows = options.batch_size if options is not None else None
        # Long calls go in chunks, tokenized by a background thread (the Rust tokenizer releases the GIL)
        # while this thread feeds the GPU the previous chunk. truncation=False checks all texts first.
        step = len(texts) if max_len is None else self.chunk
        chunks = [texts[s:s + step] for s in range(0, len(texts), step)]
        pool = ThreadPoolExecutor(1, thread_name_prefix="smm-tokenize") if len(chunks) > 1 else None
        try:
            encoded: list[Any] = ([pool.submit(self._encode, c, max_len) for c in chunks] if pool is not None
                       else [_Done(self._encode(chunks[0], max_len))])
            order: list[int] = []
            parts = []
            with torch.inference_mode():
                for k, future in enumerate(encoded):
                    enc, lengths = future.result()
                    if max_len is None:
                        check_untruncated(lengths, self.max_length)
                    for idx in self.batches(lengths, max_rows):
                        width = max(lengths[i] for i in idx)
                        batch = {}
                        for name in self.input_names:
                            if name in enc:
                                pad = self.pad_id if name == "input_ids" else 0
                                batch[name] = self._to_device(pad_rows([enc[name][i] for i in idx], width, pad))
                        parts.append(self._forward_device(batch, logits=want_logits))
                        order.extend(k * step + i for i in idx)
                stacked = torch.cat(parts).cpu()  # the one synchronisation of the call
        finally:
            if pool is not None:
                pool.shutdown(wait=True, cancel_futures=True)
        out = torch.empty_like(stacked)
        out[torch.tensor(order, dtype=torch.long)] = stacked
        return out.tolist()

    def _forward_device(self, batch: dict[str, Any], *, logits: bool = False) -> Any:
        """fp32 probabilities (or logits) / normalised vectors for one batch, left on the device."""
        import torch

        result = self.model(**batch)
        if get_model_type(self.model_type).classifies:
            if logits:
                return result.logits.float()
            return torch.softmax(result.logits.float(), dim=-1)
        hidden = result.last_hidden_state.float()
        mask = batch["attention_mask"].unsqueeze(-1).to(hidden.dtype)
        pooled = (hidden * mask).sum(dim=1) / mask.sum(dim=1).clamp(min=1e-9)
        return torch.nn.functional.normalize(pooled, p=2, dim=1)

    def logits(self, texts: list[str]) -> list[list[float]]:
        import torch

        enc = self.tokenizer(list(texts), truncation=True, max_length=self.max_length, padding=True,
                             return_tensors="pt")
        with torch.inference_mode():
            batch = {k: v.to(self._device) for k, v in enc.items() if k in self.input_names}
            return self.model(**batch).logits.float().cpu().tolist()


def load_cuda_runner(folder: str | Path, model_type: str, *, choice: DeviceChoice, allow_pickle: bool = False,
                     threads: int | None = None, labels: Sequence[str] | None = None,
                     token_budget: int | None = None) -> CudaTorchRunner:
    """Load ``folder`` onto ``choice.device`` in ``choice.dtype``."""
    folder = Path(folder)
    check_model_type(model_type)
    try:
        import torch
        from transformers import AutoModel, AutoModelForSequenceClassification, AutoTokenizer
    except ImportError as err:
        raise BackendError(f"the torch backend needs torch and transformers ({err}); install them with: "
                           f"{INSTALL_HINT}") from err
    meta = read_folder_meta(folder, model_type, labels)
    use_safetensors = check_weights(folder, allow_pickle)
    if threads is not None:
        torch.set_num_threads(threads)  # the host side only feeds the GPU; see docs/gpu.md
    tokenizer = AutoTokenizer.from_pretrained(folder, trust_remote_code=False)
    cls = AutoModelForSequenceClassification if get_model_type(model_type).classifies else AutoModel
    torch_dtype = getattr(torch, TORCH_DTYPES[choice.dtype])
    with quiet_load_bars():
        model = cls.from_pretrained(folder, use_safetensors=use_safetensors, trust_remote_code=False,
                                    dtype=torch_dtype)
    try:
        model.to(choice.device)
    except (RuntimeError, AssertionError) as err:  # no driver, out of memory, bad index
        raise BackendError(f"cannot move {folder} to {choice.device} ({choice.reason}): {err}") from err
    model.eval()
    runner = CudaTorchRunner(tokenizer, model, model_type=model_type, labels=meta.labels,
                             max_length=meta.max_length, device=choice.device, dtype=choice.dtype,
                             token_budget=token_budget or DEFAULT_TOKEN_BUDGET)
    log.info("torch runner for %s on %s in %s (%s), token budget %d", folder, choice.device, choice.dtype,
             choice.reason, runner.token_budget)
    return runner


__all__ = ["DEFAULT_TOKEN_BUDGET", "MAX_ROWS", "CudaTorchRunner", "load_cuda_runner"]
