"""Turn a verified local model folder into a runner (layer 6). Heavy imports happen inside functions.

Backends (``SMM_BACKEND`` / ``load_model(..., backend=...)``):

========== ==============================================================================
auto       ONNX when ``onnx/model.int8.onnx`` (quality gate passed) or ``onnx/model.onnx``
           exists *and* onnxruntime + tokenizers are installed; otherwise torch
torch      transformers + torch
onnx       ONNX Runtime + tokenizers: the int8 file if its gate passed, else fp32. Never torch.
onnx-int8  the int8 file only (its gate must have passed)
onnx-fp32  the fp32 file only
========== ==============================================================================

An explicit ONNX backend with no exported file is an error naming the missing file and the
``smm export onnx ...`` command that creates it: we never switch to torch behind your back.

On a CUDA device (``device=DeviceChoice`` from :func:`smart_model_manager.loaders.device.choose_device`)
``auto`` prefers torch on the GPU in bf16/fp16, then ``onnx/model.onnx`` (fp32) on ONNX Runtime's
CUDAExecutionProvider; the int8 file is a CPU artifact and is refused on a GPU (docs/gpu.md).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import replace
from pathlib import Path

from ..backends import AUTO, auto_order, backend_spec, check_backend
from ..errors import BackendError
from ..model import Runner

TYPE_CHECKING = False
if TYPE_CHECKING:  # device.py is imported when a runner is loaded: a mock start does not need it
    from .device import DeviceChoice

#: ``verify(path)`` raises (e.g. IntegrityError) if the file is not the pinned one.
VerifyHook = Callable[[Path], None]


def load_runner(folder: Path, model_type: str, *, backend: str = "auto", allow_pickle: bool = False,
                threads: int | None = None, labels: Sequence[str] | None = None,
                verify: VerifyHook | None = None, model_ref: str | None = None,
                device: DeviceChoice | None = None, token_budget: int | None = None,
                int8_verdicts: Path | None = None) -> Runner:
    """A runner for the model in ``folder``.

    ``threads``: explicit thread count (``settings.num_threads``); None sizes it from the CPU
    quota (:func:`smart_model_manager.loaders.cpu.default_threads`). ``labels``: the label order pinned by
    a manifest/lock, checked against ``config.json``. ``verify``: called with each ``.onnx`` path
    before ONNX Runtime sees it. ``model_ref``: repo id used in error messages. ``device``: where
    and in which precision (default: the CPU, fp32). ``token_budget``: padded tokens per model call
    (None: :data:`._common.CPU_TOKEN_BUDGET` on the CPU, the GPU runner's default on a GPU).
    ``int8_verdicts``: a file of int8 re-checks ``smm validate --int8-verdicts`` wrote on this node; a verdict
    for this int8 file and this CPU is used instead of re-checking at load (:mod:`.int8_check`).
    """
    from ._common import check_model_type
    from .cpu import default_threads
    from .device import CPU
    from .families import LoadRequest, family_of

    folder, backend = Path(folder), check_backend(backend)
    check_model_type(model_type)
    choice = device or CPU
    req = LoadRequest(folder, model_type, backend, choice, default_threads(threads), model_ref or str(folder),
                      allow_pickle=allow_pickle, labels=labels, verify=verify, token_budget=token_budget,
                      int8_verdicts=int8_verdicts)
    if choice.is_cuda:
        from .gpu import load_gpu_runner
        runner = load_gpu_runner(req)
        if runner is not None:
            return runner
        # None: device "auto" and nothing can use the GPU here; the CPU rules below apply (logged)
        req = replace(req, choice=CPU)

    # explicit backend: its family only; auto: the backend table's preference order (backends.auto_order)
    for spec in (auto_order() if backend == AUTO else (backend_spec(backend),)):
        runner = family_of(spec.name).load(req)
        if runner is not None:
            return runner
    raise BackendError(f"no backend could load {req.model_ref} (tried {backend!r}); see backends.BACKENDS")


__all__ = ["VerifyHook", "load_runner"]
