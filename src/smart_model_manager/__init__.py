"""smart-model-manager: the right, verified copy of a Hugging Face model in every environment.

    from smart_model_manager import get_model_manager
    model = get_model_manager().load_model("ProsusAI/finbert", "sentiment")

Importing this package never imports torch, transformers, onnxruntime or huggingface_hub.
"""

from ._version import __version__
from .api import ModelManager, get_model_manager, load_model, reset_model_manager
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
from .model import LoadInfo, Model
from .registry import ModelType, get_model_type, model_types, register_model_type
from .settings import Settings
from .sources.environment import Detection, detect

__all__ = [
    "BackendError", "ConfigurationError", "Detection", "FormatError", "IntegrityError", "LoadInfo",
    "LockfileError", "ManifestError", "MirrorError", "MissingFileError", "Model", "ModelManager",
    "ModelNotFoundError", "ModelType", "Settings", "SmmError", "SourceError", "UnknownModelTypeError",
    "__version__", "detect", "get_model_manager", "get_model_type", "load_model", "model_types",
    "register_model_type", "reset_model_manager",
]
