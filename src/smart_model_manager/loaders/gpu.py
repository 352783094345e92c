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

from ..errors import BackendError
from .device import DeviceChoice

log = logging.getLogger(__name__)


def load_gpu_runner(folder: Path, model_type: str, *, backend: str, choice: DeviceChoice, allow_pickle: bool,
                    threads: int, labels: Any, verify: Any, model_ref: str,
                    token_budget: int | None, onnx_available: Callable[[], bool],
                    torch_available: Callable[[], bool]) -> Any:
    """A runner on ``choice.device``, or None when device ``auto`` cannot use the GPU for this model."""
    from .._layout import ONNX_FP32_FILE
    from ..backends import AUTO, backend_spec, gpu_auto_order

    if backend == "onnx-int8":
        raise BackendError(
            f"backend 'onnx-int8' on {choice.device}: the int8 file is made for the CPU (its quantized ops run "
            "on the CPU provider); on a GPU use backend 'torch' or 'onnx-fp32', or SMM_DEVICE=cpu for int8")
    problems = []
    for spec in (gpu_auto_order() if backend == AUTO else (backend_spec(backend),)):
        if spec.family == "torch":
            problem = _torch_problem(choice, torch_available)
            if problem is None:
                from .torch_cuda import load_cuda_runner
                return load_cuda_runner(folder, model_type, choice=choice, allow_pickle=allow_pickle,
                                        threads=threads, labels=labels, token_budget=token_budget)
        else:
            problem = _onnx_problem(folder, choice, model_ref, onnx_available, torch_available)
            if problem is None:
                from .onnx import load_onnx_runner
                return load_onnx_runner(folder, model_type, onnx_file=folder / ONNX_FP32_FILE, threads=threads,
                                        labels=labels, verify=verify, device=replace(choice, dtype="fp32"))
        problems.append(f"{spec.family}: {problem}")
    if backend == AUTO and not choice.explicit:
        log.warning("device auto chose %s, but nothing can run this model there (%s); running on the CPU",
                    choice.device, "; ".join(problems))
        return None
    raise BackendError(f"{choice.device}: " + "; ".join(problems))


def _torch_problem(choice: DeviceChoice, torch_available: Callable[[], bool]) -> str | None:
    from ..backends import TORCH_INSTALL

    if not torch_available():
        return f"the torch backend needs torch and transformers; install them with: {TORCH_INSTALL} (a CUDA build)"
    if choice.via != "torch":
        return f"{choice.reason}; install a CUDA build of torch, or use backend 'onnx-fp32' with onnxruntime-gpu"
    return None


def _onnx_problem(folder: Path, choice: DeviceChoice, model_ref: str, onnx_available: Callable[[], bool],
                  torch_available: Callable[[], bool]) -> str | None:
    from .._layout import ONNX_FP32_FILE
    from ..backends import TORCH_INSTALL, export_command
    from .device import GPU_INSTALL

    fp32 = folder / ONNX_FP32_FILE
    if choice.requested_dtype in ("fp16", "bf16"):
        return (f"SMM_DTYPE={choice.requested_dtype} needs the torch backend (the exported ONNX file is fp32); "
                f"install torch + transformers ({TORCH_INSTALL}) or use SMM_DTYPE=auto")
    if not fp32.is_file():
        return (f"the ONNX backend on a GPU needs {fp32}, which does not exist; create it with: "
                f"{export_command(model_ref)}" + ("" if torch_available() else f", or install {TORCH_INSTALL}"))
    if not onnx_available():
        return f"the ONNX backend needs onnxruntime-gpu and tokenizers; install them with: {GPU_INSTALL}"
    return None


__all__ = ["load_gpu_runner"]
