"""The detection matrix: every signal, every precedence case, each with its explanation."""

from __future__ import annotations

from pathlib import Path

import pytest

from smart_model_manager import ConfigurationError
from smart_model_manager.settings import CI_VARIABLES, Settings
from smart_model_manager.sources.environment import detect

pytestmark = pytest.mark.unit


@pytest.fixture
def base(tmp_path: Path) -> dict[str, str]:
    return {"HOME": str(tmp_path / "home"), "SMM_VOLUME_DIR": str(tmp_path / "vol"),
            "MODEL_CACHE_DIR": str(tmp_path / "cache")}


def _volume(env: dict[str, str]) -> None:
    p = Path(env["SMM_VOLUME_DIR"])
    p.mkdir(parents=True, exist_ok=True)
    (p / "model-metadata.yaml").write_text("format: 1\nmodels: {}\n")


def _cache(env: dict[str, str]) -> None:
    (Path(env["MODEL_CACHE_DIR"]) / "models--org--m" / "snapshots" / ("a" * 40)).mkdir(parents=True)


def test_hub_fallback_when_nothing_is_set(base):
    d = detect(Settings.from_env(base))
    assert (d.environment, d.signal) == ("hub", "fallback")
    assert "falling back to the Hub" in d.reason


@pytest.mark.parametrize("var,value", [("PYTEST_CURRENT_TEST", "t.py::test (call)"), ("TESTING", "true"),
                                       ("TESTING", "1")])
def test_test_signals(base, var, value):
    d = detect(Settings.from_env({**base, var: value}))
    assert (d.environment, d.signal) == ("test", var)
    assert var in d.reason


def test_testing_false_is_not_a_test_signal(base):
    assert detect(Settings.from_env({**base, "TESTING": "false"})).environment == "hub"


@pytest.mark.parametrize("var,value", [("CI", "true"), ("GITHUB_ACTIONS", "true"), ("GITLAB_CI", "true"),
                                       ("BUILDKITE", "true"), ("JENKINS_URL", "http://jenkins"),
                                       ("CIRCLECI", "true"), ("TF_BUILD", "True")])
def test_each_ci_signal(base, var, value):
    d = detect(Settings.from_env({**base, var: value}))
    assert (d.environment, d.signal) == ("ci", var)
    assert f"{var}={value}" in d.reason


def test_every_documented_ci_variable_is_covered():
    assert set(CI_VARIABLES) == {"CI", "GITHUB_ACTIONS", "GITLAB_CI", "BUILDKITE", "JENKINS_URL", "CIRCLECI",
                                 "TF_BUILD"}


@pytest.mark.parametrize("var,value", [("CI", "false"), ("CI", "0"), ("GITHUB_ACTIONS", "false"),
                                       ("GITLAB_CI", ""), ("TF_BUILD", "False")])
def test_false_ci_values_are_ignored(base, var, value):
    assert detect(Settings.from_env({**base, var: value})).environment == "hub"


def test_volume_manifest_means_production(base):
    _volume(base)
    d = detect(Settings.from_env(base))
    assert d.environment == "production"
    assert d.signal.endswith("model-metadata.yaml") and "volume manifest" in d.reason


def test_default_volume_dir_is_app_models():
    assert Settings.from_env({"HOME": "/nonexistent"}).manifest_path == Path("/app/models/model-metadata.yaml")


def test_cache_with_models_means_dev(base):
    _cache(base)
    d = detect(Settings.from_env(base))
    assert d.environment == "dev" and "holds models" in d.reason


def test_empty_cache_is_not_dev(base):
    (Path(base["MODEL_CACHE_DIR"]) / "models--org--m" / "snapshots").mkdir(parents=True)
    assert detect(Settings.from_env(base)).environment == "hub"


# precedence, highest first: SMM_ENV > test > volume > CI > cache > hub
def test_smm_env_beats_everything(base):
    _volume(base)
    _cache(base)
    d = detect(Settings.from_env({**base, "SMM_ENV": "dev", "PYTEST_CURRENT_TEST": "x", "CI": "true"}))
    assert (d.environment, d.signal) == ("dev", "SMM_ENV")


def test_test_beats_volume_and_ci(base):
    _volume(base)
    d = detect(Settings.from_env({**base, "TESTING": "true", "CI": "true"}))
    assert d.environment == "test"


def test_volume_beats_ci_and_cache(base):
    _volume(base)
    _cache(base)
    assert detect(Settings.from_env({**base, "GITHUB_ACTIONS": "true"})).environment == "production"


def test_ci_beats_cache(base):
    _cache(base)
    assert detect(Settings.from_env({**base, "CI": "true"})).environment == "ci"


@pytest.mark.parametrize("value", ["prod", "PRODUCTION!", "testing"])
def test_unknown_environment_lists_valid_values(base, value):
    with pytest.raises(ConfigurationError, match="valid values: test, dev, ci, production, hub"):
        Settings.from_env({**base, "SMM_ENV": value})


def test_detection_creates_nothing(base):
    detect(Settings.from_env(base))
    assert not Path(base["MODEL_CACHE_DIR"]).exists() and not Path(base["SMM_VOLUME_DIR"]).exists()
