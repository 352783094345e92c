"""The fp32 half of an ONNX export: the torch model loaded for export, traced to ``model.onnx`` with dynamic
batch and sequence axes, and checked against torch (a wrong export is worse than none).

Layer 5: torch, transformers and onnx are imported inside functions only.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from ..errors import BackendError
from ..progress import ProgressFn
from .quantize import _unlink, quiet

log = logging.getLogger(__name__)

FP32_TOLERANCE = 1e-3  # max |ONNX - torch| of the raw outputs on the sample texts


def load_for_export(folder: Path, model_type: str, say: ProgressFn) -> tuple[Any, Any, list[str]]:
    """(torch model, tokenizer, the graph's input names in the order of ``Wrapped.forward``'s parameters)."""
    from transformers import AutoModel, AutoModelForSequenceClassification, AutoTokenizer
    from transformers.utils import logging as hf_logging

    from ..loaders.torch import check_weights

    # eager attention: a plain matmul/softmax graph that ORT fuses, with the mask always applied
    use_safetensors = check_weights(folder, allow_pickle=False)
    cls = AutoModelForSequenceClassification if model_type == "sentiment" else AutoModel
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


class _Wrapper:
    """Built lazily (needs torch): returns only the tensor we export (logits / last_hidden_state)."""

    @staticmethod
    def build(model: Any, model_type: str) -> Any:
        import torch

        attr = "logits" if model_type == "sentiment" else "last_hidden_state"

        class Wrapped(torch.nn.Module):
            def __init__(self) -> None:
                super().__init__()
                self.model = model

            def forward(self, input_ids: Any, attention_mask: Any, token_type_ids: Any = None) -> Any:
                kwargs = {"input_ids": input_ids, "attention_mask": attention_mask}
                if token_type_ids is not None:
                    kwargs["token_type_ids"] = token_type_ids
                return getattr(self.model(**kwargs), attr)

        return Wrapped().eval()


def _strip_debug_metadata(path: Path) -> None:
    """Drop the dynamo exporter's per-node debug metadata (Python stack traces with absolute paths and
    line numbers, FX node dumps). It is not used at runtime, and it made the bytes of model.onnx, and so
    the content-derived commit of an exported model, depend on where and from which checkout it was built."""
    import onnx

    model = onnx.load(str(path), load_external_data=False)
    graphs = [model.graph] + [f for f in model.functions]
    for g in graphs:
        for node in g.node:
            del node.metadata_props[:]
            node.doc_string = ""
    onnx.save(model, str(path))


def _trace(wrapped: Any, example: tuple[Any, ...], input_names: list[str], output: str, path: Path) -> str:
    """torch.onnx.export with dynamic batch/sequence axes. Returns which exporter worked.

    The dynamo exporter (torch.export) is the maintained one in torch 2.x; the TorchScript
    tracer is kept as a fallback for models torch.export cannot capture.
    """
    import torch

    axes = {name: {0: "batch", 1: "sequence"} for name in input_names}
    out_axes = {0: "batch"} if output == "logits" else {0: "batch", 1: "sequence"}
    # exporter internals warn about renamed axes / tracing; not the user's concern
    with quiet("torch.onnx", "torch.export", "torch._dynamo", "onnxscript"):
        try:
            batch, seq = torch.export.Dim("batch"), torch.export.Dim("sequence")
            dyn = {name: {0: batch, 1: seq} for name in input_names}
            torch.onnx.export(wrapped, example, str(path), input_names=input_names,
                              output_names=[output], dynamic_shapes=dyn, dynamo=True,
                              external_data=False, verbose=False)
            _strip_debug_metadata(path)
            return "dynamo"
        except Exception as err:  # noqa: BLE001 - any capture failure: try the tracer instead
            log.warning("dynamo ONNX export failed (%s: %s); falling back to the TorchScript "
                        "exporter", type(err).__name__, str(err)[:300])
            _unlink(path)
            torch.onnx.export(wrapped, example, str(path), input_names=input_names,
                              output_names=[output], dynamic_axes={**axes, output: out_axes},
                              opset_version=17, dynamo=False)
            return "torchscript"


def export_graph(model: Any, tokenizer: Any, input_names: list[str], model_type: str, path: Path) -> tuple[str, str]:
    """Write ``model``'s graph to ``path``: (the exporter that worked, the name of the exported output)."""
    output = "logits" if model_type == "sentiment" else "last_hidden_state"
    example = tokenizer(["an example sentence for export", "short"], padding=True, return_tensors="pt")
    wrapped = _Wrapper.build(model, model_type)
    return _trace(wrapped, tuple(example[n] for n in input_names), input_names, output, path), output


def fp32_difference(model: Any, tokenizer: Any, input_names: list[str], output: str, fp32_runner: Any,
                    check: Sequence[str], fp32_path: Path) -> float:
    """Max |ONNX - torch| of the raw outputs of one padded batch (mixed lengths, so the mask is exercised);
    a BackendError naming what is not published when the shapes differ or the difference is too large."""
    import torch

    enc = tokenizer(list(check), padding=True, truncation=True, return_tensors="pt")
    with torch.inference_mode():
        ref = getattr(model(**{n: enc[n] for n in input_names}), output).float()
    got, _ = fp32_runner.run_batch(fp32_runner.encode(check))
    got_t = torch.from_numpy(got).float()
    if got_t.shape != ref.shape:
        raise BackendError(f"exported ONNX output shape {tuple(got_t.shape)} differs from "
                           f"torch {tuple(ref.shape)}; not publishing {fp32_path}")
    if output == "last_hidden_state":  # padded positions are garbage in both; compare real ones
        mask = enc["attention_mask"].bool()
        diff = float((got_t - ref).abs()[mask].max())
    else:
        diff = float((got_t - ref).abs().max())
    if not diff <= FP32_TOLERANCE:
        raise BackendError(f"exported ONNX differs from torch by {diff:.3g} (> {FP32_TOLERANCE}) "
                           f"on sample texts; not publishing {fp32_path}")
    return diff
