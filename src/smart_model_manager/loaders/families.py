"""Backend families: the runtime that runs a backend (``backends.BackendSpec.family``), one loader each.

``load_runner`` (CPU) and ``gpu.load_gpu_runner`` (CUDA) look a backend's family up in :data:`FAMILIES`
and call it; nothing branches on a family's name, so a runtime nobody registered is an error naming the
known ones, never a silent trip down another runtime's path. To add a family: :func:`register_family`
(docs/design.md, "How to add a backend family"). Heavy imports stay inside the loaders.
"""

from __future__ import annotations

import importlib.util
import logging
from collections.abc import Callable, Sequence
from dataclasses import dataclass, replace
from pathlib import Path
from typing import TYPE_CHECKING, Any

from .._layout import ONNX_FP32_FILE, ONNX_INT8_FILE, ONNX_QUALITY_FILE
from ..backends import AUTO, backend_spec, export_command, needs
from ..errors import BackendError

if TYPE_CHECKING:  # device.py is imported when a runner is loaded: a mock start does not need it
    from ..model import Runner
    from .device import DeviceChoice

log = logging.getLogger(__name__)


def available(backend: str) -> bool:
    """What ``backend`` needs is installed (checked without importing it; backends.BACKENDS[*].requires)."""
    return all(importlib.util.find_spec(m) is not None for m in backend_spec(backend).requires)


def onnx_available() -> bool:
    """onnxruntime and tokenizers are installed (checked without importing them)."""
    return available("onnx")


def torch_available() -> bool:
    return available("torch")


@dataclass(frozen=True)
class LoadRequest:
    """Everything a family's loader may need; ``backend`` is the name asked for (``auto`` included)."""

    folder: Path
    model_type: str
    backend: str
    choice: DeviceChoice
    threads: int
    model_ref: str
    allow_pickle: bool = False
    labels: Sequence[str] | None = None
    verify: Callable[[Path], None] | None = None
    token_budget: int | None = None
    int8_verdicts: Path | None = None


@dataclass(frozen=True)
class Family:
    """How one runtime loads a model. ``load``: on the CPU; None means "nothing to run here" (``auto`` then
    tries the next backend; an explicit backend raises instead). ``gpu_problem``: why it cannot run on
    ``request.choice``'s GPU, or None; ``load_gpu``: the runner there. A family without them never runs on
    a GPU."""

    name: str
    load: Callable[[LoadRequest], Runner | None]
    gpu_problem: Callable[[LoadRequest], str | None] | None = None
    load_gpu: Callable[[LoadRequest], Runner] | None = None


FAMILIES: dict[str, Family] = {}


def register_family(family: Family, *, replace_existing: bool = False) -> None:
    if family.name in FAMILIES and not replace_existing:
        raise ValueError(f"backend family {family.name!r} is already registered")
    FAMILIES[family.name] = family


def family_of(backend: str) -> Family:
    """The loader of a concrete backend's family; an unknown family is an error naming the known ones."""
    name = backend_spec(backend).family
    try:
        return FAMILIES[name]
    except KeyError:
        raise BackendError(f"backend {backend!r} is of family {name!r}, which has no loader; known families: "
                           f"{', '.join(sorted(FAMILIES))} (register one with loaders.families.register_family)"
                           ) from None


# -- onnx ----------------------------------------------------------------------------------------------

def int8_gate_passed(folder: Path) -> bool:
    """True when ``onnx/quality.json`` says the int8 file passed its quality gate."""
    from ._common import read_json

    qpath = folder / ONNX_QUALITY_FILE
    if not (folder / ONNX_INT8_FILE).is_file() or not qpath.is_file():
        return False
    gate = read_json(qpath).get("int8")
    return isinstance(gate, dict) and gate.get("accepted") is True


def choose_onnx_file(folder: Path, backend: str, model_ref: str | Path) -> Path | None:
    """The .onnx file ``backend`` asks for, or None (auto only); raises for explicit ONNX backends."""
    fp32, int8 = folder / ONNX_FP32_FILE, folder / ONNX_INT8_FILE
    cmd = export_command(model_ref)
    if backend in ("auto", "onnx"):
        if int8_gate_passed(folder):
            return int8
        if int8.is_file():
            log.info("%s exists but its quality gate did not pass (%s); using fp32", int8,
                     folder / ONNX_QUALITY_FILE)
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
                               f"(see {folder / ONNX_QUALITY_FILE}); use backend 'onnx-fp32' or 'onnx'")
        return int8
    if backend == "onnx-fp32":
        if not fp32.is_file():
            raise BackendError(f"backend 'onnx-fp32' needs {fp32}, which does not exist; create it "
                               f"with: {cmd}")
        return fp32
    return None


def _load_onnx(req: LoadRequest) -> Runner | None:
    from .onnx import load_onnx_runner

    folder, auto = req.folder, req.backend == AUTO
    onnx_file = choose_onnx_file(folder, req.backend, req.model_ref)
    if onnx_file is None:
        return None
    if not onnx_available():
        if auto:
            log.info("%s exists but onnxruntime/tokenizers are not installed; using torch (%s)", onnx_file,
                     backend_spec("onnx").install)
            return None
        raise BackendError(needs(req.backend))
    if auto and not (folder / "tokenizer.json").is_file():
        log.info("%s has no tokenizer.json, which the ONNX backend needs; using torch", folder)
        return None

    def load(path: Path, while_loading: Callable[[], None] | None = None) -> Any:
        return load_onnx_runner(folder, req.model_type, onnx_file=path, threads=req.threads, labels=req.labels,
                                verify=req.verify, token_budget=req.token_budget, while_loading=while_loading)

    if onnx_file.name != Path(ONNX_INT8_FILE).name:
        return load(onnx_file)
    from .int8_check import PriorCheck, checked_int8
    prior = PriorCheck(folder, req.int8_verdicts)  # read while the session builds
    runner = load(onnx_file, prior.prepare)
    return checked_int8(runner, folder, req.model_type, backend=req.backend, model_ref=req.model_ref,
                        prior=prior, load_fp32=lambda: load(folder / ONNX_FP32_FILE))


def _onnx_gpu_problem(req: LoadRequest) -> str | None:
    from .device import GPU_INSTALL

    fp32, choice, torch_hint = req.folder / ONNX_FP32_FILE, req.choice, backend_spec("torch").install
    if choice.requested_dtype in ("fp16", "bf16"):
        return (f"SMM_DTYPE={choice.requested_dtype} needs the torch backend (the exported ONNX file is fp32); "
                f"install torch + transformers ({torch_hint}) or use SMM_DTYPE=auto")
    if not fp32.is_file():
        return (f"the ONNX backend on a GPU needs {fp32}, which does not exist; create it with: "
                f"{export_command(req.model_ref)}" + ("" if torch_available() else f", or install {torch_hint}"))
    if not onnx_available():
        return f"the ONNX backend needs onnxruntime-gpu and tokenizers; install them with: {GPU_INSTALL}"
    return None


def _load_onnx_gpu(req: LoadRequest) -> Runner:
    from .onnx import load_onnx_runner

    return load_onnx_runner(req.folder, req.model_type, onnx_file=req.folder / ONNX_FP32_FILE,
                            threads=req.threads, labels=req.labels, verify=req.verify,
                            device=replace(req.choice, dtype="fp32"))


# -- torch ---------------------------------------------------------------------------------------------

def _load_torch(req: LoadRequest) -> Runner:
    if not torch_available():
        raise BackendError(needs("torch") + ("" if req.backend == "torch" else
                                             f", or export ONNX with: {export_command(req.model_ref)}"))
    from .torch import load_torch_runner

    return load_torch_runner(req.folder, req.model_type, allow_pickle=req.allow_pickle, threads=req.threads,
                             labels=req.labels, token_budget=req.token_budget)


def _torch_gpu_problem(req: LoadRequest) -> str | None:
    if not torch_available():
        return f"{needs('torch')} (a CUDA build)"
    if req.choice.via != "torch":
        return f"{req.choice.reason}; install a CUDA build of torch, or use backend 'onnx-fp32' with onnxruntime-gpu"
    return None


def _load_torch_gpu(req: LoadRequest) -> Runner:
    from .torch_cuda import load_cuda_runner

    return load_cuda_runner(req.folder, req.model_type, choice=req.choice, allow_pickle=req.allow_pickle,
                            threads=req.threads, labels=req.labels, token_budget=req.token_budget)


register_family(Family("onnx", _load_onnx, _onnx_gpu_problem, _load_onnx_gpu))
register_family(Family("torch", _load_torch, _torch_gpu_problem, _load_torch_gpu))

__all__ = ["FAMILIES", "Family", "LoadRequest", "available", "choose_onnx_file", "family_of", "int8_gate_passed", "onnx_available", "register_family",
           "torch_available"]
