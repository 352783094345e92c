"""The transformers/torch runner (backend ``"torch"``).

torch and transformers are imported inside functions only: importing this module is free.

What we do that ``transformers.pipeline`` does not:
- texts are tokenized once, sorted by token length and batched, so each batch is padded only to
  its own longest text (dynamic padding) instead of every text to the longest of the whole call;
- ``torch.inference_mode()`` (no autograd bookkeeping at all);
- safetensors only unless the caller opts in to pickle weights (``allow_pickle``), and never
  ``trust_remote_code``: a model folder is data, not code.
"""

from __future__ import annotations

import logging
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from ..backends import needs
from ..errors import BackendError
from ..model import RunnerDefaults
from ..registry import get_model_type
from ._common import (
    ATTENTION_WIDTH,
    CPU_TOKEN_BUDGET,
    DEFAULT_BATCH_SIZE,
    check_model_type,
    check_untruncated,
    effective_max_length,
    pad_rows,
    read_folder_meta,
    token_budget_batches,
)

log = logging.getLogger(__name__)



@contextmanager
def quiet_load_bars() -> Iterator[None]:
    """No "Loading weights" bar from transformers: smm says in one line what it loaded, and a bar in a CLI's
    stderr or a service log is noise. The previous setting comes back afterwards."""
    from transformers.utils import logging as hf_logging

    bars = hf_logging.is_progress_bar_enabled()
    hf_logging.disable_progress_bar()
    try:
        yield
    finally:
        if bars:
            hf_logging.enable_progress_bar()


def weights_format(folder: Path) -> str:
    """"safetensors", "pickle" or "none" for the weights found in ``folder``."""
    if any(folder.glob("*.safetensors")) or (folder / "model.safetensors.index.json").is_file():
        return "safetensors"
    if any(folder.glob("*.bin")) or (folder / "pytorch_model.bin.index.json").is_file():
        return "pickle"
    return "none"


def check_weights(folder: Path, allow_pickle: bool) -> bool:
    """Return use_safetensors; refuse pickle-only folders unless the caller opted in."""
    fmt = weights_format(folder)
    if fmt == "safetensors":
        return True
    if fmt == "pickle":
        if not allow_pickle:
            raise BackendError(
                f"{folder} has only pickle weights (*.bin), which can run arbitrary code when "
                "loaded; we load safetensors only. If you trust this model, opt in with "
                "SMM_ALLOW_PICKLE=1 (or allow_pickle=True in loaders.load_runner(...), the "
                "low-level loader), or convert it to model.safetensors")
        log.warning("loading pickle weights from %s because allow_pickle is set", folder)
        return False
    raise BackendError(f"{folder} has no model weights (model.safetensors or pytorch_model.bin)")


class TorchRunner(RunnerDefaults):
    """``runner(texts) -> list[list[float]]`` backed by a transformers model on CPU."""

    max_length: int
    token_budget: int

    def __init__(self, tokenizer: Any, model: Any, *, model_type: str, labels: tuple[str, ...],
                 max_length: int, batch_size: int = DEFAULT_BATCH_SIZE, token_budget: int | None = None):
        self.tokenizer = tokenizer
        self.model = model
        self.model_type = model_type
        self.labels = labels
        self.max_length = max_length
        self.batch_size = batch_size
        self.token_budget = token_budget or CPU_TOKEN_BUDGET  # padded tokens per forward pass
        self.backend = "torch"
        self.device = "cpu"
        self.dtype = "fp32"
        self.supports_options = True  # runner(texts, RunOptions): max_length, truncation, batch_size, logits
        self.input_names = [n for n in tokenizer.model_input_names
                            if n in ("input_ids", "attention_mask", "token_type_ids")]
        self.pad_id = tokenizer.pad_token_id if tokenizer.pad_token_id is not None else 0
        hidden = getattr(model.config, "hidden_size", None)
        self.dimension: int | None = hidden if get_model_type(model_type).pools else None

    def __call__(self, texts: list[str], options: Any = None) -> list[list[float]]:
        import torch

        if not texts:
            return []
        max_len = effective_max_length(self.max_length, options)
        if max_len is None:
            enc = self.tokenizer(list(texts), truncation=False, padding=False)
        else:
            enc = self.tokenizer(list(texts), truncation=True, max_length=max_len, padding=False)
        lengths = [len(ids) for ids in enc["input_ids"]]
        if max_len is None:
            check_untruncated(lengths, self.max_length)
        batch_size = (options.batch_size if options is not None else None) or self.batch_size
        want_logits = bool(options is not None and options.logits)
        out: list[list[float] | None] = [None] * len(texts)
        with torch.inference_mode():
            for idx in token_budget_batches(lengths, self.token_budget, batch_size,
                                               self.token_budget * ATTENTION_WIDTH):
                width = max(lengths[i] for i in idx)
                batch = {}
                for name in self.input_names:
                    if name not in enc:
                        continue
                    pad = self.pad_id if name == "input_ids" else 0
                    batch[name] = torch.tensor(pad_rows([enc[name][i] for i in idx], width, pad),
                                               dtype=torch.long)
                rows = self._forward(batch, logits=want_logits)
                for i, row in zip(idx, rows):
                    out[i] = row
        return out  # type: ignore[return-value]

    def _forward(self, batch: dict[str, Any], *, logits: bool = False) -> list[list[float]]:
        import torch

        result = self.model(**batch)
        if get_model_type(self.model_type).classifies:
            if logits:
                return result.logits.float().tolist()  # type: ignore[no-any-return,unused-ignore]
            probs = torch.softmax(result.logits.float(), dim=-1)
            return probs.tolist()
        hidden = result.last_hidden_state.float()
        mask = batch["attention_mask"].unsqueeze(-1).to(hidden.dtype)
        summed = (hidden * mask).sum(dim=1)
        counts = mask.sum(dim=1).clamp(min=1e-9)
        pooled = summed / counts
        return torch.nn.functional.normalize(pooled, p=2, dim=1).tolist()

    def logits(self, texts: list[str]) -> list[list[float]]:
        """Raw logits (sentiment) in input order, unbatched; used to compare backends."""
        import torch

        enc = self.tokenizer(list(texts), truncation=True, max_length=self.max_length,
                             padding=True, return_tensors="pt")
        with torch.inference_mode():
            batch = {k: v for k, v in enc.items() if k in self.input_names}
            return self.model(**batch).logits.float().tolist()


def load_torch_runner(folder: str | Path, model_type: str, *, allow_pickle: bool = False,
                      threads: int | None = None, labels: Sequence[str] | None = None,
                      batch_size: int = DEFAULT_BATCH_SIZE, token_budget: int | None = None) -> TorchRunner:
    """Load ``folder`` (a verified local snapshot) into a :class:`TorchRunner`."""
    folder = Path(folder)
    check_model_type(model_type)
    try:
        import torch
        from transformers import AutoModel, AutoModelForSequenceClassification, AutoTokenizer
    except ImportError as err:
        raise BackendError(f"{needs('torch')} ({err})") from err

    meta = read_folder_meta(folder, model_type, labels)
    use_safetensors = check_weights(folder, allow_pickle)
    if threads is not None:
        # process-wide in torch; the caller sized it with cpu.default_threads()
        torch.set_num_threads(threads)

    tokenizer = AutoTokenizer.from_pretrained(folder, trust_remote_code=False)
    cls = AutoModelForSequenceClassification if get_model_type(model_type).classifies else AutoModel
    with quiet_load_bars():
        model = cls.from_pretrained(folder, use_safetensors=use_safetensors, trust_remote_code=False)
    model.eval()
    runner = TorchRunner(tokenizer, model, model_type=model_type, labels=meta.labels,
                         max_length=meta.max_length, batch_size=batch_size, token_budget=token_budget)
    log.debug("torch runner for %s: %s, max_length=%d", folder, model_type, runner.max_length)
    return runner


__all__ = ["TorchRunner", "check_weights", "load_torch_runner", "weights_format"]
