"""Backend selection on a CUDA device (called by :func:`smart_model_manager.loaders.load_runner`).

Order for backend ``auto`` (docs/gpu.md):

1. torch on the GPU in bf16/fp16 (``loaders/torch_cuda.py``), when torch saw the GPU and
   transformers is installed;
2. ``onnx/model.onnx`` (fp32) on ONNX Runtime's CUDAExecutionProvider (``onnxruntime-gpu``);
3. device ``auto`` only: nothing above can run, so the CPU rules apply, and we log it.
   An explicit ``SMM_DEVICE=cuda`` raises instead.

The int8 file is a CPU artifact (dynamically quantized MatMulInteger runs on the CPU provider) and
is refused on a GPU. Each backend's family (``loaders.families``) says whether and how it runs on a GPU.
"""

from __future__ import annotations

import logging
from typing import Any

from ..backends import AUTO, backend_spec, gpu_auto_order
from ..errors import BackendError
from .families import LoadRequest, family_of

log = logging.getLogger(__name__)


def load_gpu_runner(req: LoadRequest) -> Any:
    """A runner on ``req.choice.device``, or None when device ``auto`` cannot use the GPU for this model."""
    choice, backend = req.choice, req.backend
    if backend == "onnx-int8":
        raise BackendError(
            f"backend 'onnx-int8' on {choice.device}: the int8 file is made for the CPU (its quantized ops run "
            "on the CPU provider); on a GPU use backend 'torch' or 'onnx-fp32', or SMM_DEVICE=cpu for int8")
    problems = []
    for spec in (gpu_auto_order() if backend == AUTO else (backend_spec(backend),)):
        family = family_of(spec.name)
        if family.gpu_problem is None or family.load_gpu is None:
            problem: str | None = f"the {spec.family} runtime has no GPU runner"
        else:
            problem = family.gpu_problem(req)
            if problem is None:
                return family.load_gpu(req)
        problems.append(f"{spec.family}: {problem}")
    if backend == AUTO and not choice.explicit:
        log.warning("device auto chose %s, but nothing can run this model there (%s); running on the CPU",
                    choice.device, "; ".join(problems))
        return None
    raise BackendError(f"{choice.device}: " + "; ".join(problems))


__all__ = ["load_gpu_runner"]
