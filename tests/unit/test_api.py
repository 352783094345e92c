"""The API contract: one Model shape everywhere, clear errors, never a mock outside tests."""

from __future__ import annotations

import pytest

from smart_model_manager import (
    ConfigurationError,
    ModelManager,
    ModelNotFoundError,
    UnknownModelTypeError,
    get_model_manager,
    reset_model_manager,
)
from smart_model_manager.cli.main import main

pytestmark = pytest.mark.unit


def test_process_wide_manager_is_shared_and_resettable():
    a = get_model_manager()
    assert get_model_manager() is a
    reset_model_manager()
    assert get_model_manager() is not a


def test_single_and_list_inputs():
    m = ModelManager(environment="test").load_model("finbert")
    one = m("BTC surges")
    many = m(["BTC surges", "ETH slumps"])
    assert isinstance(one, list) and isinstance(one[0], dict)
    assert len(many) == 2 and many[0] == one
    assert m.info.repo_id == "ProsusAI/finbert" and m.info.alias == "finbert"


def test_models_are_cached_per_name_type_revision_and_history_is_kept():
    mm = ModelManager(environment="test")
    a = mm.load_model("ProsusAI/finbert")
    assert mm.load_model("ProsusAI/finbert") is a
    assert mm.load_model("ProsusAI/finbert", revision="v2") is not a
    info = mm.info()
    assert info["environment"] == "test" and len(info["history"]) == 2 and info["sources"] == ["mock"]


def test_unknown_model_type_lists_known_types():
    with pytest.raises(UnknownModelTypeError, match="known types: embeddings, sentiment"):
        ModelManager(environment="test").load_model("ProsusAI/finbert", "translation")


def test_unknown_environment_argument():
    with pytest.raises(ConfigurationError, match="valid values"):
        ModelManager(environment="prod")


@pytest.mark.parametrize("bad,match", [
    ("", r"text is empty"),
    ("   ", r"text is empty"),
    (["ok", ""], r"texts\[1\] is empty"),
    (["ok", 3], r"texts\[1\] is int"),
    ([], r"empty list"),
    (None, r"expected a string or a list"),
    (b"bytes", r"expected a string or a list"),
])
def test_bad_text_input_names_the_element(bad, match):
    m = ModelManager(environment="test").load_model("ProsusAI/finbert")
    with pytest.raises(ValueError, match=match):
        m(bad)


@pytest.mark.parametrize("env", ["dev", "ci", "hub", "production"])
def test_outside_tests_a_missing_model_is_an_error_never_a_mock(env, monkeypatch):
    monkeypatch.setenv("SMM_OFFLINE", "1")  # the hub source, when present, must not try the network
    mm = ModelManager(environment=env)
    with pytest.raises(ModelNotFoundError) as exc:
        mm.load_model("ProsusAI/finbert")
    msg = str(exc.value)
    assert "Sources tried:" in msg and "To fix:" in msg
    assert exc.value.attempts and all(name != "mock" for name, _ in exc.value.attempts)
    assert mm.info()["history"][-1]["error"].startswith("ModelNotFoundError")


def test_production_error_points_at_the_volume():
    with pytest.raises(ModelNotFoundError, match="smm pull --target"):
        ModelManager(environment="production").load_model("ProsusAI/finbert")


def test_demo_model_missing_says_how_to_build_it(monkeypatch):
    monkeypatch.setenv("SMM_OFFLINE", "1")
    with pytest.raises(ModelNotFoundError, match="smm models build-demo"):
        ModelManager(environment="dev").load_model("finbert-demo")


def test_resolve_returns_source_without_loading():
    r = ModelManager(environment="test").resolve("ProsusAI/finbert")
    assert r.source == "mock" and r.path is None and r.labels == ("positive", "negative", "neutral")


def test_backend_argument_is_validated():
    with pytest.raises(ConfigurationError, match="auto, onnx, torch"):
        ModelManager(environment="test", backend="tensorflow")


def test_library_default_model_is_finbert_unless_smm_model(monkeypatch) -> None:
    from smart_model_manager import ModelManager

    m = ModelManager(environment="test").load_model()
    assert (m.info.repo_id, m.info.alias) == ("ProsusAI/finbert", "finbert")
    monkeypatch.setenv("SMM_MODEL", "finbert-demo")
    m = ModelManager(environment="test").load_model()
    assert m.info.repo_id == "smart-model-manager/finbert-mini-demo"
    assert ModelManager(environment="test").resolve().repo_id == "smart-model-manager/finbert-mini-demo"


def test_a_near_miss_alias_is_refused_before_any_network(capsys, monkeypatch) -> None:
    from smart_model_manager import ConfigurationError, ModelManager

    with pytest.raises(ConfigurationError, match="did you mean 'finbert'"):
        ModelManager(environment="test").load_model("finbrt")
    # outside tests too; HF_ENDPOINT is a closed port here, so a network attempt would say "Sources tried"
    monkeypatch.setenv("SMM_ENV", "dev")
    assert main(["analyze", "--model", "finbrt", "BTC up"]) == 2
    err = capsys.readouterr().err
    assert "did you mean 'finbert'" in err and "Sources tried" not in err
    assert ModelManager(environment="test").load_model("bert-base-uncased").info.repo_id == "bert-base-uncased"
