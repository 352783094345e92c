"""The folder source: a local model folder resolves wherever a name does (dev), hashed like an import;
production refuses it, tests mock it, and its spelling rules keep bare names as repo ids."""

from __future__ import annotations

from pathlib import Path

import pytest
from _model_folders import make_model_folder

pytestmark = pytest.mark.unit


def _folder(tmp_path: Path, archs: list[str], name: str = "my-model") -> Path:
    """Two labels in the order bearish, bullish (the assertions read them back); weights only, no vocab."""
    return make_model_folder(tmp_path / name, {"model.safetensors": b"weights" * 100}, architectures=archs,
                             labels=("bearish", "bullish"))


def test_a_folder_resolves_in_dev_hashed_with_the_import_commit(tmp_path: Path, monkeypatch) -> None:
    from smart_model_manager import ModelManager
    from smart_model_manager.store import cache as store

    d = _folder(tmp_path, ["BertForSequenceClassification"])
    monkeypatch.chdir(tmp_path)
    r = ModelManager(environment="dev").resolve("./my-model")
    imported = store.import_folder(d, tmp_path / "cache", "org/my-model")
    assert (r.source, r.path, r.repo_id) == ("folder", d.resolve(), str(d.resolve()))
    assert r.commit == imported.commit and r.labels == ("bearish", "bullish")
    assert sorted(r.files) == ["config.json", "model.safetensors"] and r.verified == "full"
    assert r.files["model.safetensors"].sha256 == "sha256:" + imported.files["model.safetensors"][1]


def test_a_folder_is_refused_in_production_and_a_mock_in_tests(tmp_path: Path) -> None:
    from smart_model_manager import ConfigurationError, ModelManager

    d = _folder(tmp_path, ["BertForSequenceClassification"])
    with pytest.raises(ConfigurationError, match="production loads only from the verified volume"):
        ModelManager(environment="production").resolve(str(d))
    m = ModelManager(environment="test").load_model(str(d))
    assert m.info.source == "mock" and m.labels == ("bearish", "bullish")


def test_folder_spelling_rules_and_errors(tmp_path: Path, monkeypatch) -> None:
    from smart_model_manager import ConfigurationError, ModelManager, ModelNotFoundError
    from smart_model_manager.sources.folder import is_folder_ref

    assert [is_folder_ref(n) for n in ("./m", "../m", "/abs/m", "~/m", ".", "a/b/c")] == [True] * 6
    assert [is_folder_ref(n) for n in ("my-model", "org/name", "finbert")] == [False] * 3
    monkeypatch.chdir(tmp_path)
    with pytest.raises(ConfigurationError, match="does not exist"):
        ModelManager(environment="dev").resolve("./nope")
    (tmp_path / "empty").mkdir()
    with pytest.raises(ConfigurationError, match="has no config.json"):
        ModelManager(environment="dev").resolve("./empty")
    _folder(tmp_path, ["BertForSequenceClassification"])
    monkeypatch.setenv("SMM_OFFLINE", "1")
    with pytest.raises(ModelNotFoundError, match=r"write \./my-model to load it"):
        ModelManager(environment="dev").resolve("my-model")  # a bare name stays a repo id
