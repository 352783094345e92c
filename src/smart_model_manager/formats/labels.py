"""The one parser of a model's label names and width from its ``config.json`` (layer 1, stdlib only).

Two modes, one rule:

* **strict** (loaders, ``smm lock``): ``id2label`` must be a non-empty mapping whose keys are the integers
  ``0..n-1``; anything else raises :class:`~.errors.FormatError` naming the file.
* **lenient** (sources describing what they found, ``smm import``, mocks): the same parse, but a missing or
  malformed ``id2label`` gives ``()`` -- a label-less folder is not an error until something needs labels.
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import Any

from .._layout import CONFIG_FILE
from ..errors import FormatError

#: What a sentiment label may mean; the signed score is P(positive) - P(negative) (see ``polarity``).
POLARITIES = ("positive", "negative", "neutral")


def parse_id2label(config: Mapping[str, Any], *, strict: bool, where: str | Path | None = None) -> tuple[str, ...]:
    """Label names in id order from a parsed ``config.json``. See the module docstring for the two modes."""
    raw = config.get("id2label")
    if not isinstance(raw, dict) or not raw:
        if strict:
            raise FormatError("a sentiment model needs 'id2label' (label names in id order)", path=where)
        return ()
    try:
        by_id = {int(k): str(v) for k, v in raw.items()}
    except (TypeError, ValueError) as err:
        if strict:
            raise FormatError(f"'id2label' keys must be integers, got {sorted(map(str, raw))!r}", path=where) from err
        return ()
    if sorted(by_id) != list(range(len(by_id))):
        if strict:
            raise FormatError(f"'id2label' ids must be 0..{len(by_id) - 1}, got {sorted(by_id)}", path=where)
        return tuple(by_id[i] for i in sorted(by_id))  # gaps: id order is still the only sensible order
    return tuple(by_id[i] for i in range(len(by_id)))


def hidden_size(config: Mapping[str, Any]) -> int | None:
    """The output width of a label-less model (``hidden_size``, ``dim`` or ``d_model``), if it is a positive int."""
    dim = config.get("hidden_size") or config.get("dim") or config.get("d_model")
    return dim if isinstance(dim, int) and not isinstance(dim, bool) and dim > 0 else None


def read_config(folder: Path) -> dict[str, Any]:
    """``folder/config.json`` as a dict; ``{}`` when it is absent or not a JSON object (lenient)."""
    import json  # here: a mock start (which reads no config.json) does not pay for json's import

    try:
        cfg = json.loads((Path(folder) / CONFIG_FILE).read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return {}
    return cfg if isinstance(cfg, dict) else {}


def read_schema(folder: Path) -> tuple[tuple[str, ...], int | None]:
    """(labels in id order, hidden size) from a model folder's config.json, leniently; empty when absent."""
    cfg = read_config(folder)
    return parse_id2label(cfg, strict=False), hidden_size(cfg)


__all__ = ["POLARITIES", "hidden_size", "parse_id2label", "read_config", "read_schema"]
