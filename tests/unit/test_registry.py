"""The model-type registry: a config that cannot be the requested type is refused, in plain English,
before any weights load."""

from __future__ import annotations

from pathlib import Path

import pytest
from _model_folders import make_model_folder

pytestmark = pytest.mark.unit


def test_a_classifier_is_refused_as_embeddings_before_any_weights_load(tmp_path: Path) -> None:
    from smart_model_manager import ConfigurationError, ModelManager

    d = make_model_folder(tmp_path / "my-model", architectures=["BertForSequenceClassification"])
    with pytest.raises(ConfigurationError, match=r"cannot be loaded as 'embeddings'.*load it as 'sentiment'"):
        ModelManager(environment="dev").load_model(str(d), "embeddings")
    enc = make_model_folder(tmp_path / "encoder", architectures=["BertModel"])
    with pytest.raises(ConfigurationError, match="no sequence-classification head"):
        ModelManager(environment="dev").load_model(str(enc), "sentiment")


def test_config_mismatch_rules() -> None:
    from smart_model_manager.registry import config_mismatch

    assert config_mismatch("sentiment", {"architectures": ["BertForSequenceClassification"]}) is None
    assert config_mismatch("embeddings", {"architectures": ["BertModel"]}) is None
    assert config_mismatch("embeddings", {}) is None  # nothing declared: nothing to judge
    assert "classifier" in (config_mismatch("embeddings", {"architectures": ["RobertaForSequenceClassification"]}) or "")


def test_a_classifier_loaded_as_embeddings_reads_as_english(tmp_path: Path) -> None:
    from smart_model_manager.registry import config_mismatch

    message = config_mismatch("embeddings", {"architectures": ["BertForSequenceClassification"],
                                             "id2label": {"0": "a", "1": "b"}})
    assert message is not None and "not an embedding vector" in message and "a embeddings" not in message
