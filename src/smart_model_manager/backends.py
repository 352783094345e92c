"""The backend table (layer 0, stdlib only): every value ``SMM_BACKEND`` accepts, the files of a model
folder each backend reads, and the order ``auto`` tries them in.

One table, read by everyone who needs a backend fact: ``settings``, ``api`` and ``loaders`` validate names
with :func:`check_backend` (one message), ``loaders`` take install lines (:func:`needs`) and the ``auto``
order from it and dispatch on its ``family``, and ``spec.select_files`` keeps every file
a backend lists in the lock (so a new backend's files are never silently left out of locks and pulls).
To add a backend: docs/design.md, "How to add a backend".
"""

from __future__ import annotations

from dataclasses import dataclass

from ._layout import ONNX_DATA_FILE, ONNX_FP32_FILE, ONNX_INT8_FILE, ONNX_QUALITY_FILE
from .errors import ConfigurationError

ONNX_INSTALL = "pip install 'smart-model-manager[onnx]'"
TORCH_INSTALL = "pip install 'smart-model-manager[torch]'"


@dataclass(frozen=True)
class BackendSpec:
    name: str                        # the SMM_BACKEND / load_model(backend=) value
    family: str                      # the runtime that runs it ("onnx", "torch"): one loader per family
    files: tuple[str, ...] = ()      # paths or globs in a model folder it reads beyond config/tokenizer/weights;
                                     # a lock keeps them even where the default excludes would drop them
    requires: tuple[str, ...] = ()   # importable modules it needs (checked without importing them)
    install: str = ""                # the pip line that brings ``requires``
    auto_rank: int | None = None     # position in ``auto``'s preference order (lower first); None: never auto
    gpu_rank: int | None = None      # the same on a CUDA device (docs/gpu.md); None: never auto on a GPU


BACKENDS: tuple[BackendSpec, ...] = (
    BackendSpec("onnx", "onnx", (ONNX_FP32_FILE, ONNX_DATA_FILE, ONNX_INT8_FILE, ONNX_QUALITY_FILE),
                ("onnxruntime", "tokenizers"), ONNX_INSTALL, auto_rank=0, gpu_rank=1),
    BackendSpec("torch", "torch", (), ("torch", "transformers"), TORCH_INSTALL, auto_rank=1, gpu_rank=0),
    BackendSpec("onnx-int8", "onnx", (ONNX_INT8_FILE, ONNX_QUALITY_FILE), ("onnxruntime", "tokenizers"),
                ONNX_INSTALL),
    BackendSpec("onnx-fp32", "onnx", (ONNX_FP32_FILE, ONNX_DATA_FILE), ("onnxruntime", "tokenizers"), ONNX_INSTALL),
)
AUTO = "auto"


def choices() -> tuple[str, ...]:
    """Every accepted value, in the order error messages list them (read from the table on each call, so a
    backend registered later is accepted everywhere at once)."""
    return (AUTO, *(b.name for b in BACKENDS))


def check_backend(value: str | None, where: str = "backend") -> str:
    """``value`` normalised (stripped, lower case; empty or None is ``auto``), or the one error message.
    ``where`` names what the user set: ``SMM_BACKEND``, ``backend`` (an argument)."""
    if value is None or not str(value).strip():
        return AUTO
    name = str(value).strip().lower()
    if name not in choices():
        raise ConfigurationError(f"{where}={value!r} is not valid; valid values: {', '.join(choices())}")
    return name


def register_backend(spec: BackendSpec) -> None:
    """Add a backend to the table (its family needs a loader: ``loaders.families.register_family``)."""
    global BACKENDS
    if spec.name in choices():
        raise ValueError(f"backend {spec.name!r} is already in the table")
    BACKENDS = (*BACKENDS, spec)


def needs(name: str) -> str:
    """What a backend needs and the command that installs it: the one install hint per backend."""
    spec = backend_spec(name)
    return f"the {name} backend needs {' and '.join(spec.requires)}; install them with: {spec.install}"


def export_command(model_ref: object) -> str:
    """The command that creates a model's ONNX files (named in every "file missing" message)."""
    return f"smm export onnx {model_ref}"


def backend_spec(name: str) -> BackendSpec:
    """The spec of a concrete backend (not ``auto``). KeyError for unknown names: validate with CHOICES first."""
    for b in BACKENDS:
        if b.name == name:
            return b
    raise KeyError(name)


def auto_order() -> tuple[BackendSpec, ...]:
    """The backends ``auto`` tries, most preferred first."""
    return tuple(sorted((b for b in BACKENDS if b.auto_rank is not None), key=lambda b: b.auto_rank or 0))


def gpu_auto_order() -> tuple[BackendSpec, ...]:
    """The backends ``auto`` tries on a CUDA device, most preferred first (torch in half precision, then the
    ONNX fp32 file on CUDAExecutionProvider; the int8 file is a CPU artifact)."""
    return tuple(sorted((b for b in BACKENDS if b.gpu_rank is not None), key=lambda b: b.gpu_rank or 0))


def lock_files() -> tuple[str, ...]:
    """Every path/glob some backend reads: what a default lock keeps (``spec.select_files``)."""
    return tuple(dict.fromkeys(f for b in BACKENDS for f in b.files))


__all__ = ["AUTO", "BACKENDS", "ONNX_INSTALL", "TORCH_INSTALL", "BackendSpec", "auto_order", "backend_spec",
           "check_backend", "choices", "export_command", "gpu_auto_order", "lock_files", "needs", "register_backend"]
