"""One rule reads the model type from ``config.json``'s ``architectures`` (registry.infer_model_type);
every caller (``smm lock``, ``smm export onnx``, ``smm migrate``, the mirror's ``pipeline_tag``) goes through it.

Four copies used to disagree: export called a config without architectures "embeddings", migrate called
anything with two ``id2label`` entries (every transformers config has them) "sentiment", and the mirror
called ``*ForMaskedLM`` "feature-extraction". The refusing rule won: a config that does not say is not guessed.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from smart_model_manager.errors import UnknownModelTypeError
from smart_model_manager.mirror.index import FileEntry
from smart_model_manager.mirror.routes import _pipeline_tag
from smart_model_manager.onnx import export
from smart_model_manager.ops import migrate
from smart_model_manager.registry import get_model_type, infer_model_type, infer_task

pytestmark = pytest.mark.unit

DEFAULT_LABELS = {"id2label": {"0": "LABEL_0", "1": "LABEL_1"}}  # what transformers writes into every config
CASES: list[tuple[dict[str, Any], str | None]] = [
    ({"architectures": ["BertForSequenceClassification"]}, "sentiment"),
    ({"architectures": ["BertModel"], **DEFAULT_LABELS}, "embeddings"),
    ({"architectures": ["XLMRobertaModel", "BertModel"]}, "embeddings"),
    ({"architectures": ["BertModel", "BertForSequenceClassification"]}, "sentiment"),
    ({"architectures": ["BertForMaskedLM"]}, None),
    ({"architectures": ["BertModel", "BertForMaskedLM"]}, None),
    ({**DEFAULT_LABELS}, None),
    ({}, None),
    ({"architectures": "BertModel"}, None),  # not a list: states nothing
]


def _export(tmp_path: Path, config: dict[str, Any]) -> str | None:
    (tmp_path / "config.json").write_text(json.dumps(config))
    try:
        return export.infer_model_type(tmp_path)
    except UnknownModelTypeError as err:
        assert "cannot tell the model type" in str(err) and "--type" in str(err)
        return None


def _migrate(config: dict[str, Any]) -> str | None:
    found, why = migrate._model_type({}, config)
    assert (found is None) == (why is not None)
    return found


def _mirror_task(tmp_path: Path, config: dict[str, Any]) -> str | None:
    path = tmp_path / "config.json"
    path.write_text(json.dumps(config))
    return _pipeline_tag([FileEntry("config.json", str(path), path.stat().st_size, "0" * 64, None)])


@pytest.mark.parametrize(("config", "expected"), CASES)
def test_every_caller_reads_the_type_through_the_one_rule(tmp_path: Path, config: dict[str, Any],
                                                          expected: str | None) -> None:
    assert infer_model_type(config) == expected
    assert _export(tmp_path, config) == expected
    assert _migrate(config) == expected
    task = get_model_type(expected).task if expected else None
    assert infer_task(config) == task == _mirror_task(tmp_path, config)


def test_an_explicit_type_in_an_old_manifest_still_wins_over_the_config() -> None:
    assert migrate._model_type({"type": "feature-extraction"}, {"architectures": ["BertForSequenceClassification"]}) \
        == ("embeddings", None)
    found, why = migrate._model_type({"type": "ner"}, {})
    assert found is None and why is not None and "'ner' is not one of" in why
