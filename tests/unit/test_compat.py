"""smart_model_manager.compat: the original module's names and shapes, on this package's engine."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from smart_model_manager import compat
from smart_model_manager.compat import (
    COMMON_MODELS,
    ModelLoadFailed,
    ModelLoadingError,
    ModelSource,
    SmartModelManager,
    get_model_manager,
)
from smart_model_manager.errors import (
    BackendError,
    ConfigurationError,
    IntegrityError,
    ManifestError,
    ModelNotFoundError,
    SmmError,
)

pytestmark = pytest.mark.unit
pytest_plugins = ["pytester"]


def test_all_is_a_literal_and_names_every_public_name() -> None:
    public = {n for n in vars(compat) if not n.startswith("_") and n.isidentifier()} - {
        "annotations", "enum", "gc", "importlib", "inspect", "logging", "threading", "time", "Iterable", "Mapping",
        "Any", "ModelManager", "ConfigurationError", "SmmError", "Model", "Settings", "log"}
    assert set(compat.__all__) == public


@pytest.mark.parametrize("member,value", [
    ("PERSISTENT_VOLUME", "persistent_volume"), ("LOCAL_CACHE", "local_cache"), ("MOCK_MODELS", "mock_models"),
    ("DOWNLOAD_ON_DEMAND", "download_on_demand"), ("HUGGINGFACE_HUB", "huggingface_hub")])
def test_model_source_values_compare_with_enum_and_string(member: str, value: str) -> None:
    src = ModelSource[member]
    assert src.value == value and src == value and value == src and src is ModelSource(value)
    assert str(src) == value and f"{src}" == value and f"{src:>20}" == value.rjust(20)
    assert {value: 1}[src] == 1  # hashes as its value


@pytest.mark.parametrize("env,source", [("test", "mock_models"), ("dev", "local_cache"),
                                        ("ci", "download_on_demand"), ("production", "persistent_volume"),
                                        ("hub", "huggingface_hub")])
def test_each_environment_maps_to_the_original_source(env: str, source: str) -> None:
    by_name = SmartModelManager(env)
    assert by_name.environment == source and by_name.environment is ModelSource(source)
    assert SmartModelManager(ModelSource(source)).environment is by_name.environment
    assert SmartModelManager(source).environment is by_name.environment
    assert by_name.config["environment"] == env and by_name.config["description"]


def test_bad_environment_is_a_configuration_error_listing_valid_values() -> None:
    with pytest.raises(ConfigurationError, match="valid values: test, dev, ci, production, hub, persistent_volume"):
        SmartModelManager("staging")


def test_model_loading_error_catches_every_load_failure() -> None:
    for err in (ModelNotFoundError, IntegrityError, BackendError, ManifestError, ConfigurationError,
                ModelLoadFailed):
        assert issubclass(err, ModelLoadingError)
    assert ModelLoadingError is SmmError


def test_inside_a_test_it_is_mock_models_and_loads_are_cached_under_the_original_key() -> None:
    manager = get_model_manager()
    assert manager is get_model_manager() and manager.environment == ModelSource.MOCK_MODELS
    first = manager.load_model("ProsusAI/finbert", "sentiment")
    assert manager.load_model("ProsusAI/finbert", "sentiment") is first
    assert list(manager.models) == ["sentiment_ProsusAI_finbert"] and manager.models["sentiment_ProsusAI_finbert"] is first
    assert first.labels == ("positive", "negative", "neutral") and first.info.source == "mock"
    h = manager.loading_history
    assert len(h) == 1 and h[0]["model"] == "ProsusAI/finbert" and h[0]["type"] == "sentiment"
    assert h[0]["success"] is True and h[0]["environment"] == "mock_models" and h[0]["source"] == "mock"
    assert h[0]["load_time"] >= 0 and h[0]["timestamp"] > 0
    assert manager.config["cache_dir"] is None and manager.config["device"] is None


def test_get_model_info_clear_cache_and_warmup() -> None:
    manager = SmartModelManager()
    loaded = manager.warmup_models([{"name": "ProsusAI/finbert", "type": "sentiment"},
                                    {"name": "sentence-transformers/all-MiniLM-L6-v2", "type": "embeddings"}])
    assert set(loaded) == {"ProsusAI/finbert", "sentence-transformers/all-MiniLM-L6-v2"}
    info = manager.get_model_info()
    assert info["environment"] == "mock_models"
    assert info["loaded_models"] == ["sentiment_ProsusAI_finbert", "embeddings_sentence-transformers_all-MiniLM-L6-v2"]
    assert [e["success"] for e in info["loading_history"]] == [True, True]
    assert isinstance(info["transformers_available"], bool) and isinstance(info["torch_available"], bool)
    assert info["config"] == manager.config
    json.dumps(info)  # the original logged it as JSON
    old = manager.models["sentiment_ProsusAI_finbert"]
    assert manager.clear_cache() == 2 and manager.models == {}
    again = manager.load_model("ProsusAI/finbert")
    assert again is not old and again("BTC surges")[0]["label"] == "positive"
    # default: the COMMON_MODELS
    assert set(SmartModelManager().warmup_models()) == set(COMMON_MODELS.values())


def test_common_models_and_their_mock_schemas() -> None:
    assert COMMON_MODELS == {"finbert": "ProsusAI/finbert", "cryptobert": "kk08/CryptoBERT",
                             "twitter_roberta": "cardiffnlp/twitter-roberta-base-sentiment-latest"}
    manager = SmartModelManager()
    finbert = manager.load_model(COMMON_MODELS["finbert"])
    crypto = manager.load_model(COMMON_MODELS["cryptobert"])
    roberta = manager.load_model(COMMON_MODELS["twitter_roberta"])
    assert roberta.labels == ("negative", "neutral", "positive")
    assert crypto.labels == ("LABEL_0", "LABEL_1")  # kk08/CryptoBERT: a binary head, 0 = negative, 1 = positive
    for model, pos, neg in ((finbert, "positive", "negative"), (roberta, "positive", "negative"),
                            (crypto, "LABEL_1", "LABEL_0")):
        assert model("Bitcoin surges to a record high on ETF inflows")[0]["label"] == pos
        assert model("Exchange hacked, token crashes as withdrawals halt")[0]["label"] == neg


def test_warmup_tries_everything_then_names_each_failure(tmp_path: Path) -> None:
    manager = SmartModelManager("production")  # the isolated volume folder does not exist
    with pytest.raises(ModelLoadingError, match=r"warmup failed for 2 of 2 model\(s\)") as info:
        manager.warmup_models([{"name": "ProsusAI/finbert"}, "kk08/CryptoBERT"])
    assert "ProsusAI/finbert (sentiment)" in str(info.value) and "kk08/CryptoBERT (sentiment)" in str(info.value)
    assert [e["success"] for e in manager.loading_history] == [False, False]
    with pytest.raises(ConfigurationError, match="each item must be a model name"):
        manager.warmup_models([{"model": "x"}])


def test_non_package_errors_are_wrapped_so_except_model_loading_error_sees_them() -> None:
    manager = SmartModelManager()
    with pytest.raises(ModelLoadingError, match="model name must be a non-empty string") as info:
        manager.load_model("   ")
    assert isinstance(info.value, ModelLoadFailed) and isinstance(info.value.__cause__, ValueError)
    assert manager.loading_history[-1]["success"] is False and "ValueError" in manager.loading_history[-1]["error"]


def test_device_maps_the_originals_values_onto_load_model(monkeypatch: pytest.MonkeyPatch) -> None:
    assert SmartModelManager(device=-1).config["device"] == -1
    assert SmartModelManager(device=-1).load_model("ProsusAI/finbert", device="cpu").info.source == "mock"
    seen: list[object] = []
    manager = SmartModelManager(device=0)
    real = manager.manager.load_model
    monkeypatch.setattr(manager.manager, "load_model", lambda *a, **kw: seen.append(kw.get("device")) or real(*a, **kw))
    manager.load_model("ProsusAI/finbert")
    manager.load_model("kk08/CryptoBERT", device=-1)
    manager.load_model("cardiffnlp/twitter-roberta-base-sentiment-latest", device="cuda:1")
    assert seen == ["cuda:0", "cpu", "cuda:1"]


def test_pipeline_keyword_calls_answer_like_the_originals_return_all_scores_pipelines() -> None:
    model = SmartModelManager().load_model("ProsusAI/finbert")
    out = model("Bitcoin crashes after exchange hack", truncation=True, max_length=512)
    assert len(out) == 1 and [d["label"] for d in out[0]] == ["positive", "negative", "neutral"]  # label-id order
    assert max(out[0], key=lambda d: d["score"])["label"] == "negative"
    assert model("Bitcoin crashes after exchange hack", top_k=1) == [model("Bitcoin crashes after exchange hack")[0]]


def test_mock_models_marker_forces_the_test_environment(pytester: pytest.Pytester,
                                                        monkeypatch: pytest.MonkeyPatch) -> None:
    pytester.makepyfile("""
        import os, pytest
        from smart_model_manager.compat import get_model_manager, ModelSource

        @pytest.mark.mock_models
        def test_marked():
            assert os.environ["SMM_ENV"] == "test"
            assert get_model_manager().environment == ModelSource.MOCK_MODELS

        def test_unmarked():
            assert get_model_manager().environment == ModelSource.PERSISTENT_VOLUME
    """)
    monkeypatch.setenv("SMM_ENV", "production")
    result = pytester.runpytest("--strict-markers", "-p", "no:cacheprovider")
    result.assert_outcomes(passed=2)
