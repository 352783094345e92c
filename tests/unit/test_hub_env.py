"""The Hub's own environment variables, read by settings.py and agreeing with huggingface_hub itself.

Each variable gets a Settings test, and where huggingface_hub reads the same variable, a check that a fresh
huggingface_hub process with the same environment lands on the same answer (so nothing downloads twice).
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from smart_model_manager import ConfigurationError, Settings
from smart_model_manager.cli.main import main

pytestmark = pytest.mark.unit

_HF_VARS = ("MODEL_CACHE_DIR", "HF_HUB_CACHE", "HUGGINGFACE_HUB_CACHE", "HF_HOME", "HF_HUB_OFFLINE",
            "TRANSFORMERS_OFFLINE", "HF_HUB_DOWNLOAD_TIMEOUT", "HF_HUB_DISABLE_PROGRESS_BARS", "XDG_CACHE_HOME")


def _hub_constants(env: dict[str, str]) -> dict[str, object]:
    """What huggingface_hub decides for this environment, in a fresh process (it reads variables at import)."""
    import os

    clean = {k: v for k, v in os.environ.items() if k not in _HF_VARS}
    clean.update(env)
    code = ("import json; from huggingface_hub import constants as c; print(json.dumps({'cache': c.HF_HUB_CACHE,"
            " 'offline': c.HF_HUB_OFFLINE, 'timeout': c.HF_HUB_DOWNLOAD_TIMEOUT,"
            " 'bars': c.HF_HUB_DISABLE_PROGRESS_BARS}))")
    out = subprocess.run([sys.executable, "-c", code], env=clean, capture_output=True, text=True, timeout=120,
                         check=True).stdout
    return json.loads(out)  # type: ignore[no-any-return]


# -- HUGGINGFACE_HUB_CACHE -----------------------------------------------------------------------------------
@pytest.mark.parametrize("env,origin", [
    ({"HUGGINGFACE_HUB_CACHE": "/old", "HF_HOME": "/home-hf"}, "HUGGINGFACE_HUB_CACHE"),
    ({"HF_HUB_CACHE": "/new", "HUGGINGFACE_HUB_CACHE": "/old"}, "HF_HUB_CACHE"),
    ({"HF_HOME": "/home-hf"}, "HF_HOME"),
])
def test_cache_dir_is_the_one_huggingface_hub_uses(env: dict[str, str], origin: str) -> None:
    settings = Settings.from_env({"HOME": "/h", **env})
    assert settings.cache_dir_origin == origin
    assert str(settings.cache_dir) == _hub_constants({"HOME": "/h", **env})["cache"]


def test_model_cache_dir_still_wins_over_huggingface_hub_cache() -> None:
    s = Settings.from_env({"MODEL_CACHE_DIR": "/mine", "HUGGINGFACE_HUB_CACHE": "/old"})
    assert (s.cache_dir, s.cache_dir_origin) == (Path("/mine"), "MODEL_CACHE_DIR")


def test_smm_env_names_huggingface_hub_cache(monkeypatch: pytest.MonkeyPatch, tmp_path: Path, capsys) -> None:  # type: ignore[no-untyped-def]
    monkeypatch.delenv("MODEL_CACHE_DIR")
    monkeypatch.setenv("HUGGINGFACE_HUB_CACHE", str(tmp_path / "legacy"))
    assert main(["env", "--json"]) == 0
    rep = json.loads(capsys.readouterr().out)
    assert (rep["cache_dir"], rep["cache_dir_from"]) == (str(tmp_path / "legacy"), "HUGGINGFACE_HUB_CACHE")


# -- TRANSFORMERS_OFFLINE ------------------------------------------------------------------------------------
def test_transformers_offline_makes_smm_offline_like_huggingface_hub() -> None:
    s = Settings.from_env({"TRANSFORMERS_OFFLINE": "1"})
    assert (s.offline, s.offline_origin) == (True, "TRANSFORMERS_OFFLINE")
    assert _hub_constants({"TRANSFORMERS_OFFLINE": "1"})["offline"] is True
    assert Settings.from_env({"TRANSFORMERS_OFFLINE": "0"}).offline is False
    with pytest.raises(ConfigurationError, match="TRANSFORMERS_OFFLINE"):
        Settings.from_env({"TRANSFORMERS_OFFLINE": "maybe"})


def test_smm_env_says_offline_and_why(monkeypatch: pytest.MonkeyPatch, capsys) -> None:  # type: ignore[no-untyped-def]
    monkeypatch.setenv("TRANSFORMERS_OFFLINE", "1")
    assert main(["env", "--json"]) == 0
    rep = json.loads(capsys.readouterr().out)
    assert (rep["offline"], rep["offline_from"]) == (True, "TRANSFORMERS_OFFLINE")


def test_transformers_offline_refuses_downloads_naming_the_variable() -> None:
    from smart_model_manager.errors import Unavailable
    from smart_model_manager.remote.hub import HubClient

    client = HubClient.from_settings(Settings.from_env({"TRANSFORMERS_OFFLINE": "1"}))
    with pytest.raises(Unavailable, match="TRANSFORMERS_OFFLINE") as exc:
        client.revision("org/model", "main")
    assert "TRANSFORMERS_OFFLINE" in (exc.value.hint or "")


# -- HF_HUB_DOWNLOAD_TIMEOUT ---------------------------------------------------------------------------------
def test_download_timeout_applies_and_smm_timeout_wins() -> None:
    from smart_model_manager.remote.hub import HubClient

    s = Settings.from_env({"HF_HUB_DOWNLOAD_TIMEOUT": "7.5"})
    assert (s.timeout, s.timeout_origin) == (7.5, "HF_HUB_DOWNLOAD_TIMEOUT")
    assert HubClient.from_settings(s).timeout == 7.5
    both = Settings.from_env({"HF_HUB_DOWNLOAD_TIMEOUT": "7.5", "SMM_TIMEOUT": "12"})
    assert (both.timeout, both.timeout_origin) == (12.0, "SMM_TIMEOUT")
    assert (Settings.from_env({}).timeout, Settings.from_env({}).timeout_origin) == (30.0, "default")
    with pytest.raises(ConfigurationError, match="HF_HUB_DOWNLOAD_TIMEOUT"):
        Settings.from_env({"HF_HUB_DOWNLOAD_TIMEOUT": "soon"})


# -- HF_HUB_DISABLE_PROGRESS_BARS ----------------------------------------------------------------------------
def test_disable_progress_bars_turns_terminal_bars_into_plain_lines(monkeypatch: pytest.MonkeyPatch) -> None:
    from smart_model_manager.cli import artifacts

    assert Settings.from_env({"HF_HUB_DISABLE_PROGRESS_BARS": "1"}).progress_bars is False
    assert Settings.from_env({}).progress_bars is True
    monkeypatch.setattr(artifacts.sys.stderr, "isatty", lambda: True)

    def kind(wanted: bool | None, bars: bool) -> type:
        hook = artifacts._progress(wanted, bars=bars)
        hook.close()  # a live bar redirects stderr until closed
        return type(hook)

    assert kind(None, bars=True) is artifacts._RichProgress
    assert kind(None, bars=False) is artifacts._LineProgress
    assert kind(True, bars=False) is artifacts._RichProgress  # --progress insists
    assert kind(False, bars=True) is artifacts._NoProgress


def test_disable_progress_bars_agrees_with_huggingface_hub() -> None:
    assert _hub_constants({"HF_HUB_DISABLE_PROGRESS_BARS": "1"})["bars"] is True
    assert Settings.from_env({"HF_HUB_DISABLE_PROGRESS_BARS": "1"}).progress_bars is False
    with pytest.raises(ConfigurationError, match="HF_HUB_DISABLE_PROGRESS_BARS"):
        Settings.from_env({"HF_HUB_DISABLE_PROGRESS_BARS": "perhaps"})
