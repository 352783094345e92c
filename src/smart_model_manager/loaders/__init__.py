"""Turn a verified local model folder into a runner (layer 5). Heavy imports happen inside functions.

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

import importlib.util
import logging
from collections.abc import Callable, Sequence
from pathlib import Path

from .._layout import (
    ONNX_DIR as ONNX_DIR,
    ONNX_FP32_FILE as FP32_FILE,
    ONNX_INT8_FILE as INT8_FILE,
    ONNX_QUALITY_FILE as QUALITY_FILE,
)
from ..backends import AUTO, CHOICES, ONNX_INSTALL, TORCH_INSTALL, auto_order, backend_spec, export_command
from ..errors import BackendError, ConfigurationError
from ..model import Runner

TYPE_CHECKING = False
if TYPE_CHECKING:  # device.py is imported when a runner is loaded: a mock start does not need it
    from .device import DeviceChoice

log = logging.getLogger(__name__)

BACKENDS = CHOICES  # the backend table (backends.py) is the one list

#: ``verify(path)`` raises (e.g. IntegrityError) if the file is not the pinned one.
VerifyHook = Callable[[Path], None]


def available(backend: str) -> bool:
    """What ``backend`` needs is installed (checked without importing it; backends.BACKENDS[*].requires)."""
    return all(importlib.util.find_spec(m) is not None for m in backend_spec(backend).requires)


def onnx_available() -> bool:
    """onnxruntime and tokenizers are installed (checked without importing them)."""
    return available("onnx")


def torch_available() -> bool:
    return available("torch")


def int8_gate_passed(folder: Path) -> bool:
    """True when ``onnx/quality.json`` says the int8 file passed its quality gate."""
    from ._common import read_json

    qpath = folder / QUALITY_FILE
    if not (folder / INT8_FILE).is_file() or not qpath.is_file():
        return False
    gate = read_json(qpath).get("int8")
    return isinstance(gate, dict) and gate.get("accepted") is True


def choose_onnx_file(folder: Path, backend: str, model_ref: str | Path) -> Path | None:
    """The .onnx file ``backend`` asks for, or None (auto only); raises for explicit ONNX backends."""
    fp32, int8 = folder / FP32_FILE, folder / INT8_FILE
    cmd = export_command(model_ref)
    if backend in ("auto", "onnx"):
        if int8_gate_passed(folder):
            return int8
        if int8.is_file():
            log.info("%s exists but its quality gate did not pass (%s); using fp32", int8,
                     folder / QUALITY_FILE)
        if fp32.is_file():
            return fp32
        if backend == "auto":
            return None
        raise BackendError(
            f"backend 'onnx' needs {fp32} (or {int8}), which does not exist; create it with: "
            f"{cmd}  (or use backend 'torch' / SMM_BACKEND=torch)")
    if backend == "onnx-int8":
        if not int8.is_file():
            raise BackendError(f"backend 'onnx-int8' needs {int8}, which does not exist; create it "
                               f"with: {cmd} --int8")
        if not int8_gate_passed(folder):
            raise BackendError(f"backend 'onnx-int8': {int8} did not pass its int8 quality gate "
                               f"(see {folder / QUALITY_FILE}); use backend 'onnx-fp32' or 'onnx'")
        return int8
    if backend == "onnx-fp32":
        if not fp32.is_file():
            raise BackendError(f"backend 'onnx-fp32' needs {fp32}, which does not exist; create it "
                               f"with: {cmd}")
        return fp32
    return None


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
    from .cpu import default_threads

    folder = Path(folder)
    if backend not in BACKENDS:
        raise ConfigurationError(
            f"unknown backend {backend!r}; valid values: {', '.join(BACKENDS)} (SMM_BACKEND)")
    from ._common import check_model_type
    check_model_type(model_type)
    n_threads = default_threads(threads)
    ref = model_ref or str(folder)

    from .device import CPU

    choice = device or CPU
    if choice.is_cuda:
        from .gpu import load_gpu_runner
        runner = load_gpu_runner(folder, model_type, backend=backend, choice=choice, allow_pickle=allow_pickle,
                                 threads=n_threads, labels=labels, verify=verify, model_ref=ref,
                                 token_budget=token_budget, onnx_available=onnx_available,
                                 torch_available=torch_available)
        if runner is not None:
            return runner
        # None: device "auto" and nothing can use the GPU here; the CPU rules below apply (logged)

    # explicit backend: its family only; auto: the backend table's preference order (backends.auto_order)
    for spec in (auto_order() if backend == AUTO else (backend_spec(backend),)):
        if spec.family == "onnx":
            onnx_file = choose_onnx_file(folder, backend, ref)
            if onnx_file is None:
                continue
            if not onnx_available():
                if backend == AUTO:
                    log.info("%s exists but onnxruntime/tokenizers are not installed; using torch "
                             "(%s)", onnx_file, ONNX_INSTALL)
                    continue
                raise BackendError(f"backend {backend!r} needs onnxruntime and tokenizers; "
                                   f"install them with: {ONNX_INSTALL}")
            if backend == AUTO and not (folder / "tokenizer.json").is_file():
                log.info("%s has no tokenizer.json, which the ONNX backend needs; using torch",
                         folder)
                continue
            from .onnx import load_onnx_runner
            if onnx_file.name != Path(INT8_FILE).name:
                return load_onnx_runner(folder, model_type, onnx_file=onnx_file, threads=n_threads,
                                        labels=labels, verify=verify, token_budget=token_budget)
            from .int8_check import PriorCheck, checked_int8
            prior = PriorCheck(folder, int8_verdicts)  # read while the session builds
            runner = load_onnx_runner(folder, model_type, onnx_file=onnx_file, threads=n_threads, labels=labels,
                                      verify=verify, token_budget=token_budget, while_loading=prior.prepare)
            return checked_int8(runner, folder, model_type, backend=backend, model_ref=ref, prior=prior,
                                load_fp32=lambda: load_onnx_runner(
                                    folder, model_type, onnx_file=folder / FP32_FILE, threads=n_threads,
                                    labels=labels, verify=verify, token_budget=token_budget))
        if spec.family == "torch":
            if not torch_available():
                raise BackendError(f"the torch backend needs torch and transformers; install them with: "
                                   f"{TORCH_INSTALL}" + ("" if backend == "torch" else
                                                         f", or export ONNX with: {export_command(ref)}"))
            from .torch import load_torch_runner
            return load_torch_runner(folder, model_type, allow_pickle=allow_pickle, threads=n_threads,
                                     labels=labels, token_budget=token_budget)
    raise BackendError(f"no backend could load {ref} (tried {backend!r}); see backends.BACKENDS")

__all__ = ["BACKENDS", "FP32_FILE", "INT8_FILE", "ONNX_DIR", "QUALITY_FILE", "VerifyHook", "available",
           "choose_onnx_file", "export_command", "int8_gate_passed", "load_runner", "onnx_available",
           "torch_available"]
