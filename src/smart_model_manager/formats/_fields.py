"""Field rules shared by model-metadata.yaml, models.lock and models.yaml.

Every pattern is applied with ``fullmatch`` (a ``$`` pattern with ``match`` accepts a trailing newline),
and every check fails through the file's own ``Doc.fail`` with file, line and field.
"""

from __future__ import annotations

import datetime as _dt
import re
from typing import Any

from ._yaml import Doc
from .labels import POLARITIES

KeyPath = tuple[Any, ...]
MODEL_TYPE = re.compile(r"[a-z][a-z0-9_-]{0,63}", re.ASCII)
ALIAS = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]*(/[A-Za-z0-9][A-Za-z0-9._-]*)?", re.ASCII)
TEXT = re.compile(r"[^\x00-\x1f\x7f]{1,256}")            # a label, generated_by: one printable line
REVISION = re.compile(r"[^\s\x00-\x1f\x7f]{1,256}")      # a branch, tag or commit: no spaces, no controls
_CONTROL = re.compile(r"[\x00-\x1f\x7f]")


def is_model_type(value: object) -> bool:
    return isinstance(value, str) and MODEL_TYPE.fullmatch(value) is not None


def is_alias(value: object) -> bool:
    return isinstance(value, str) and ALIAS.fullmatch(value) is not None


def is_revision(value: object) -> bool:
    return isinstance(value, str) and REVISION.fullmatch(value) is not None


def has_control(value: str) -> bool:
    return _CONTROL.search(value) is not None


def is_format_int(value: object, want: int) -> bool:
    """``version: 1`` exactly: YAML's ``true`` and ``1.0`` compare equal to 1 in Python, but are not 1."""
    return type(value) is int and value == want


def model_type(doc: Doc, kp: KeyPath, value: Any) -> str:
    if not is_model_type(value):
        doc.fail(kp, f"expected a model type such as 'sentiment' or 'embeddings', got {value!r}")
    return value


def labels(doc: Doc, kp: KeyPath, value: Any) -> tuple[str, ...]:
    if not isinstance(value, list) or not all(isinstance(x, str) and TEXT.fullmatch(x) for x in value):
        doc.fail(kp, "expected a list of label names in id order (one line of printable text each)")
    return tuple(value)


def polarity(doc: Doc, kp: KeyPath, value: Any, labels: tuple[str, ...] = ()) -> dict[str, str]:
    """An optional ``{label: positive|negative|neutral}`` map ({} when absent). With ``labels`` (a lock
    entry knows them), it must name exactly those labels: a label left out is an error here, naming it,
    rather than a model served with part of its output ignored."""
    if value is None:
        return {}
    if not isinstance(value, dict) or not value:
        doc.fail(kp, "expected a mapping of label -> positive, negative or neutral, e.g. "
                     "{LABEL_0: negative, LABEL_1: positive}")
    for label, pol in value.items():
        if not isinstance(label, str) or not TEXT.fullmatch(label):
            doc.fail(kp, f"expected label names (one line of printable text) as keys, got {label!r}")
        if pol not in POLARITIES:
            doc.fail(kp + (label,), f"expected one of {', '.join(POLARITIES)}, got {pol!r}")
    if labels:
        missing = [lab for lab in labels if lab not in value]
        unknown = [lab for lab in value if lab not in labels]
        if missing or unknown:
            doc.fail(kp, f"must map exactly the model's labels {list(labels)}"
                         + (f"; missing {missing}" if missing else "")
                         + (f"; not labels of this model {unknown}" if unknown else ""))
    return {str(k): str(v) for k, v in value.items()}


def aliases(doc: Doc, kp: KeyPath, value: Any) -> tuple[str, ...]:
    if not isinstance(value, list) or not all(is_alias(x) for x in value):
        doc.fail(kp, "expected a list of alias names (letters, digits, '.', '_', '-', optionally 'org/name')")
    return tuple(value)


def extra(doc: Doc, kp: KeyPath, value: Any) -> dict[str, Any]:
    if value is None:
        return {}
    if not isinstance(value, dict):
        doc.fail(kp, f"expected a mapping, got {type(value).__name__}")
    return value


def text(doc: Doc, kp: KeyPath, value: Any, what: str = "one line of text") -> str:
    """An optional one-line string ('' when absent); an unquoted YAML timestamp is taken as its ISO form."""
    if isinstance(value, (_dt.date, _dt.datetime)):
        value = value.isoformat()
    if not isinstance(value, str) or (value and not TEXT.fullmatch(value)):
        doc.fail(kp, f"expected {what}, got {value!r}")
    return value
