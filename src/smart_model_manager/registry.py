"""Model types. New types register here; unknown names fail with the list of known ones."""

from __future__ import annotations

from dataclasses import dataclass

from .errors import UnknownModelTypeError


@dataclass(frozen=True)
class ModelType:
    name: str
    task: str                      # the transformers pipeline task it corresponds to
    has_labels: bool               # outputs one score per label
    default_labels: tuple[str, ...] = ()
    default_dimension: int | None = None
    description: str = ""


_REGISTRY: dict[str, ModelType] = {}


def register_model_type(mt: ModelType, *, replace: bool = False) -> None:
    if mt.name in _REGISTRY and not replace:
        raise ValueError(f"model type {mt.name!r} is already registered")
    _REGISTRY[mt.name] = mt


def get_model_type(name: str) -> ModelType:
    try:
        return _REGISTRY[name]
    except KeyError:
        raise UnknownModelTypeError(
            f"unknown model type {name!r}; known types: {', '.join(sorted(_REGISTRY))}") from None


def model_types() -> list[str]:
    return sorted(_REGISTRY)


register_model_type(ModelType(
    "sentiment", "text-classification", True, ("positive", "negative", "neutral"), None,
    "text classification; every label with its score, best first"))
register_model_type(ModelType(
    "embeddings", "feature-extraction", False, (), 384,
    "sentence embeddings; mean-pooled, L2-normalised vectors"))
