"""Model types. New types register here; unknown names fail with the list of known ones.

A type carries what the sources, loaders and runners need to know about it, so they do not compare names
(``== "sentiment"``): whether it outputs per-label scores (``has_labels``), its mock defaults, and the
``head`` a runner puts on the encoder (``CLASSIFICATION``: softmax over labels; ``POOLING``: mean-pooled,
L2-normalised vector). A type registered without a head can be locked and pulled, but no loader runs it.
The ONNX export and its int8 gate, ``smm migrate`` and the service still branch on the names of the two
types they support ("sentiment", "embeddings").
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from .errors import UnknownModelTypeError

CLASSIFICATION = "classification"
POOLING = "pooling"
HEADS = (CLASSIFICATION, POOLING)


@dataclass(frozen=True)
class ModelType:
    name: str
    task: str                      # the transformers pipeline task it corresponds to
    has_labels: bool               # outputs one score per label
    default_labels: tuple[str, ...] = ()
    default_dimension: int | None = None
    description: str = ""
    head: str = ""                 # CLASSIFICATION | POOLING | "" (no runner)

    @property
    def classifies(self) -> bool:
        """Outputs one probability per label (softmax over logits), in label-id order."""
        return self.head == CLASSIFICATION

    @property
    def pools(self) -> bool:
        """Outputs one mean-pooled, L2-normalised vector (the encoder's hidden size)."""
        return self.head == POOLING


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


# Architectures whose output is one score per label (a classification head).
_CLASSIFIER_SUFFIX = "ForSequenceClassification"


def config_mismatch(model_type: str, config: Mapping[str, Any]) -> str | None:
    """Why a checkpoint's ``config.json`` says it is not a ``model_type`` model, or None.

    Only what the config states is judged (``architectures``); a config without it is accepted.
    A text-classification type (sentiment) needs a sequence-classification head; a
    feature-extraction type (embeddings) refuses one, because an exported classifier yields one
    number per label, not a vector (a silent wrong answer otherwise). Other tasks are not judged.
    """
    mt = get_model_type(model_type)
    archs = [str(a) for a in (config.get("architectures") or []) if isinstance(a, str)]
    if not archs:
        return None
    classifier = any(a.endswith(_CLASSIFIER_SUFFIX) for a in archs)
    if mt.task == "text-classification" and not classifier:
        return (f"its config.json declares architectures {archs}, which has no sequence-classification "
                f"head, so it cannot give {model_type} labels; load it as 'embeddings' or pick a "
                "*ForSequenceClassification checkpoint")
    if mt.task == "feature-extraction" and classifier:
        labels = config.get("id2label")
        named = f" with labels {list(labels.values())}" if isinstance(labels, dict) else ""
        return (f"its config.json declares a classifier ({', '.join(archs)}{named}), which outputs "
                f"one score per label, not an embedding vector; load it as 'sentiment'")
    return None


def infer_model_type(config: Mapping[str, Any]) -> str | None:
    """sentiment for a sequence classifier, embeddings for a bare encoder (``*Model``), else None."""
    archs = [str(a) for a in (config.get("architectures") or []) if isinstance(a, str)]
    if any(a.endswith(_CLASSIFIER_SUFFIX) for a in archs):
        return "sentiment"
    if archs and all(a.endswith("Model") for a in archs):
        return "embeddings"
    return None


def model_types() -> list[str]:
    return sorted(_REGISTRY)


def runnable_types() -> list[str]:
    """The types some loader can run (they have a ``head``), in registration order."""
    return [n for n, mt in _REGISTRY.items() if mt.head in HEADS]


register_model_type(ModelType(
    "sentiment", "text-classification", True, ("positive", "negative", "neutral"), None,
    "text classification; every label with its score, best first", CLASSIFICATION))
register_model_type(ModelType(
    "embeddings", "feature-extraction", False, (), 384,
    "sentence embeddings; mean-pooled, L2-normalised vectors", POOLING))
