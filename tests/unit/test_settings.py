from __future__ import annotations

from pathlib import Path

import pytest

from smart_model_manager import ConfigurationError, Settings

pytestmark = pytest.mark.unit


def test_model_cache_dir_wins():
    s = Settings.from_env({"MODEL_CACHE_DIR": "/a", "HF_HUB_CACHE": "/b", "HF_HOME": "/c"})
    assert (s.cache_dir, s.cache_dir_origin) == (Path("/a"), "MODEL_CACHE_DIR")


def test_hf_hub_cache_then_hf_home_then_default():
    assert Settings.from_env({"HF_HUB_CACHE": "/b", "HF_HOME": "/c"}).cache_dir == Path("/b")
    assert Settings.from_env({"HF_HOME": "/c"}).cache_dir == Path("/c/hub")
    assert Settings.from_env({"HOME": "/h"}).cache_dir == Path("/h/.cache/huggingface/hub")
    assert Settings.from_env({"HOME": "/h", "XDG_CACHE_HOME": "/x"}).cache_dir == Path("/x/huggingface/hub")


def test_endpoint_token_offline():
    s = Settings.from_env({"HF_ENDPOINT": "http://127.0.0.1:8080/", "HF_TOKEN": "t", "HF_HUB_OFFLINE": "1"})
    assert s.endpoint == "http://127.0.0.1:8080" and s.token == "t" and s.offline
    assert "token='t'" not in repr(s)  # secrets stay out of logs


@pytest.mark.parametrize("var,value,msg", [
    ("SMM_BACKEND", "gpu", "valid values: auto, onnx, torch"),
    ("SMM_VERIFY", "paranoid", "valid values: quick, full"),
    ("SMM_NUM_THREADS", "zero", "not an integer"),
    ("SMM_NUM_THREADS", "0", "must be >= 1"),
    ("SMM_TIMEOUT", "-1", "must be > 0"),
    ("SMM_ALLOW_PICKLE", "maybe", "not a boolean"),
])
def test_bad_values_name_the_variable(var, value, msg):
    with pytest.raises(ConfigurationError, match=msg) as exc:
        Settings.from_env({var: value})
    assert var in str(exc.value)


def test_defaults():
    s = Settings.from_env({})
    assert (s.backend, s.verify, s.retries, s.allow_pickle, s.env_override) == ("auto", "quick", 3, False, None)


@pytest.mark.parametrize(("value", "expected"), [("0", 0), ("5", 5), ("", 3)])
def test_smm_retries_accepts_zero(value: str, expected: int) -> None:
    from smart_model_manager.settings import Settings

    assert Settings.from_env({"SMM_RETRIES": value}).retries == expected


def test_smm_retries_negative_says_ge_0() -> None:
    from smart_model_manager import ConfigurationError
    from smart_model_manager.settings import Settings

    with pytest.raises(ConfigurationError, match=r"SMM_RETRIES='-1' must be >= 0"):
        Settings.from_env({"SMM_RETRIES": "-1"})
