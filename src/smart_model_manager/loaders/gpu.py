"""Backend selection on a CUDA device (called by :func:`smart_model_manager.loaders.load_runner`).

Order for backend ``auto`` (docs/gpu.md):

1. torch on the GPU in bf16/fp16 (``loaders/torch_cuda.py``), when torch saw the GPU and
   transformers is installed;
2. ``onnx/model.onnx`` (fp32) on ONNX Runtime's CUDAExecutionProvider (``onnxruntime-gpu``);
3. device ``auto`` only: nothing above can run, so the CPU rules apply, and we log it.
   An explicit ``SMM_DEVICE=cuda`` raises instead.

The int8 file is a CPU artifact (dynamically quantized MatMulInteger runs on the CPU provider) and
is refused on a GPU.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import replace
from pathlib import Path
from typing import Any

from ..device import DeviceChoice
from ..errors import BackendError

log = logging.getLogger(__name__)


def load_gpu_runner(folder: Path, model_type: str, *, backend: str, choice: DeviceChoice, allow_pickle: bool,
                    threads: int, labels: Any, verify: Any, model_ref: str,
                    token_budget: int | None, onnx_available: Callable[[], bool],
                    torch_available: Callable[[], bool]) -> Any:
    """A runner on ``choice.device``, or None when device ``auto`` cannot use the GPU for this model."""
    from .._layout import ONNX_FP32_FILE as FP32_FILE
    from ..backends import ONNX_INSTALL, TORCH_INSTALL, export_command

    if backend == "onnx-int8":
        raise BackendError(
            f"backend 'onnx-int8' on {choice.device}: the int8 file is made for the CPU (its quantized ops run "
            "on the CPU provider); on a GPU use backend 'torch' or 'onnx-fp32', or SMM_DEVICE=cpu for int8")
    if backend == "torch" or (backend == "auto" and choice.via == "torch" and torch_available()):
        if not torch_available():
            raise BackendError(f"backend 'torch' on {choice.device} needs torch and transformers; install "
                               f"them with: {TORCH_INSTALL} (a CUDA build of torch)")
        if choice.via != "torch":
            raise BackendError(f"backend 'torch' on {choice.device}: {choice.reason}; install a CUDA build of "
                               "torch, or use backend 'onnx-fp32' with onnxruntime-gpu")
        from .torch_cuda import load_cuda_runner
        return load_cuda_runner(folder, model_type, choice=choice, allow_pickle=allow_pickle, threads=threads,
                                labels=labels, token_budget=token_budget)
    # ONNX Runtime on the GPU: the fp32 file
    fp32 = folder / FP32_FILE
    problem = ""
    if choice.requested_dtype in ("fp16", "bf16"):
        problem = (f"SMM_DTYPE={choice.requested_dtype} needs the torch backend (the exported ONNX file is "
                   f"fp32); install torch + transformers ({TORCH_INSTALL}) or use SMM_DTYPE=auto")
    elif not fp32.is_file():
        problem = (f"the ONNX backend on a GPU needs {fp32}, which does not exist; create it with: "
                   f"{export_command(model_ref)}" + ("" if torch_available() else f", or install {TORCH_INSTALL}"))
    elif not onnx_available():
        problem = f"the ONNX backend needs onnxruntime-gpu and tokenizers; install them with: {ONNX_INSTALL}"
    if problem:
        if backend == "auto" and not choice.explicit:
            log.warning("device auto chose %s, but %s; running on the CPU", choice.device, problem)
            return None
        raise BackendError(f"{choice.device}: {problem}")
    from .onnx import load_onnx_runner
    return load_onnx_runner(folder, model_type, onnx_file=fp32, threads=threads, labels=labels, verify=verify,
                            device=replace(choice, dtype="fp32"))


__all__ = ["load_gpu_runner"]
