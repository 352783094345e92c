"""smart-model-manager: the right, verified copy of a Hugging Face model in every environment.

    from smart_model_manager import get_model_manager
    model = get_model_manager().load_model("ProsusAI/finbert", "sentiment")

Importing this package never imports torch, transformers, onnxruntime or huggingface_hub.

The manager's names (``get_model_manager``, ``Model``, ``Settings``, ``detect`` ...) are imported when
first used (PEP 562 ``__getattr__``), so a process that only needs a submodule, such as a service
loading a runner through :mod:`smart_model_manager.loaders`, does not pay for the manager, its sources
and its settings on its way to the first prediction.
"""

from typing import TYPE_CHECKING, Any

from ._version import __version__
from .errors import (
    BackendError,
    ConfigurationError,
    FormatError,
    IntegrityError,
    LockfileError,
    ManifestError,
    MirrorError,
    MissingFileError,
    ModelNotFoundError,
    SmmError,
    SourceError,
    UnknownModelTypeError,
)
from .registry import ModelType, get_model_type, model_types, register_model_type

if TYPE_CHECKING:
    from .api import ModelManager, get_model_manager, load_model, reset_model_manager
    from .model import LoadInfo, Model
    from .settings import Settings
    from .sources.environment import Detection, detect


_LAZY = {  # public name -> the module that defines it, imported on first use
    "ModelManager": ".api", "get_model_manager": ".api", "load_model": ".api", "reset_model_manager": ".api",
    "Detection": ".sources.environment", "detect": ".sources.environment",
    "LoadInfo": ".model", "Model": ".model", "Settings": ".settings",
}


def __getattr__(name: str) -> Any:
    """The manager's public names, imported on first use."""
    if name not in _LAZY:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    import importlib

    value = getattr(importlib.import_module(_LAZY[name], __name__), name)
    globals()[name] = value  # later lookups are plain attribute reads
    return value


def __dir__() -> list[str]:
    return sorted(set(globals()) | set(__all__))


__all__ = [
    "BackendError", "ConfigurationError", "Detection", "FormatError", "IntegrityError", "LoadInfo",
    "LockfileError", "ManifestError", "MirrorError", "MissingFileError", "Model", "ModelManager",
    "ModelNotFoundError", "ModelType", "Settings", "SmmError", "SourceError", "UnknownModelTypeError",
    "__version__", "detect", "get_model_manager", "get_model_type", "load_model", "model_types",
    "register_model_type", "reset_model_manager",
]
