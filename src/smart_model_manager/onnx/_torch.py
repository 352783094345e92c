"""The torch half of an ONNX export: the model the graph is traced from, and the fp32 check against it.
torch and transformers are imported inside the functions (layer 6)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from ..errors import BackendError
from ..progress import ProgressFn
from ..registry import get_model_type

FP32_TOLERANCE = 1e-3


def load_torch_model(folder: Path, model_type: str, say: ProgressFn) -> tuple[Any, Any, list[str]]:
    """The torch model (eager attention: a plain matmul/softmax graph that ORT fuses, with the mask always
    applied), its tokenizer, and the graph's input names in the order of ``Wrapped.forward``'s parameters."""
    from transformers import AutoModel, AutoModelForSequenceClassification, AutoTokenizer
    from transformers.utils import logging as hf_logging

    from ..loaders.torch import check_weights

    use_safetensors = check_weights(folder, allow_pickle=False)
    cls = AutoModelForSequenceClassification if get_model_type(model_type).classifies else AutoModel
    bars = hf_logging.is_progress_bar_enabled()
    hf_logging.disable_progress_bar()  # "Loading weights" bars are noise inside an export step
    say(f"loading {folder.name} with torch for the ONNX export")
    try:
        model = cls.from_pretrained(folder, use_safetensors=use_safetensors, trust_remote_code=False,
                                    attn_implementation="eager").eval()
    finally:
        if bars:
            hf_logging.enable_progress_bar()
    tokenizer = AutoTokenizer.from_pretrained(folder, trust_remote_code=False)
    input_names: list[str] = [n for n in ("input_ids", "attention_mask", "token_type_ids")
                   if n in tokenizer.model_input_names]
    if input_names[:2] != ["input_ids", "attention_mask"]:
        raise BackendError(f"{folder}: the tokenizer's inputs {tokenizer.model_input_names} lack "
                           "input_ids/attention_mask; this model cannot be exported by smm")
    return model, tokenizer, input_names


def fp32_difference(model: Any, tokenizer: Any, input_names: list[str], output: str, fp32_runner: Any,
                     check: list[str], fp32_path: Path) -> float:
    """Max |difference| of the raw outputs, ONNX fp32 vs torch, on one padded batch (mixed lengths, so the
    mask is exercised); over ``FP32_TOLERANCE`` (or another shape) nothing is published."""
    import torch

    enc = tokenizer(check, padding=True, truncation=True, return_tensors="pt")
    with torch.inference_mode():
        ref = getattr(model(**{n: enc[n] for n in input_names}), output).float()
    got, _ = fp32_runner.run_batch(fp32_runner.encode(check))
    got_t = torch.from_numpy(got).float()
    if got_t.shape != ref.shape:
        raise BackendError(f"exported ONNX output shape {tuple(got_t.shape)} differs from "
                           f"torch {tuple(ref.shape)}; not publishing {fp32_path}")
    if output == "last_hidden_state":  # padded positions are garbage in both; compare real ones
        diff = float((got_t - ref).abs()[enc["attention_mask"].bool()].max())
    else:
        diff = float((got_t - ref).abs().max())
    if not diff <= FP32_TOLERANCE:
        raise BackendError(f"exported ONNX differs from torch by {diff:.3g} (> {FP32_TOLERANCE}) "
                           f"on sample texts; not publishing {fp32_path}")
    return diff


__all__ = ["FP32_TOLERANCE", "fp32_difference", "load_torch_model"]
