"""The newcomer's path (issue 11): mistakes are caught early and said plainly, in-process CLI tests."""

from __future__ import annotations

from pathlib import Path

import pytest

from smart_model_manager import demo
from smart_model_manager.cli.main import main

pytestmark = pytest.mark.unit


def _never(*args: object, **kwargs: object) -> None:
    raise AssertionError("training started although the target cannot be written")


@pytest.mark.parametrize("flag", ["--target", "--cache-dir"])
def test_build_demo_checks_the_destination_before_training(flag: str, tmp_path: Path, capsys,
                                                           monkeypatch) -> None:  # type: ignore[no-untyped-def]
    monkeypatch.setattr(demo, "build_demo_model", _never)
    blocker = tmp_path / "a-file"
    blocker.write_text("not a folder")
    dest = blocker / "vol"
    assert main(["models", "build-demo", flag, str(dest)]) == 1
    err = capsys.readouterr().err
    assert f"{dest} is not writable" in err
    assert "building the demo model" not in err


# --- one default model ----------------------------------------------------------------------------

def test_library_default_model_is_finbert_unless_smm_model(monkeypatch) -> None:  # type: ignore[no-untyped-def]
    from smart_model_manager import ModelManager

    m = ModelManager(environment="test").load_model()
    assert (m.info.repo_id, m.info.alias) == ("ProsusAI/finbert", "finbert")
    monkeypatch.setenv("SMM_MODEL", "finbert-demo")
    m = ModelManager(environment="test").load_model()
    assert m.info.repo_id == "smart-model-manager/finbert-mini-demo"
    assert ModelManager(environment="test").resolve().repo_id == "smart-model-manager/finbert-mini-demo"


@pytest.mark.parametrize(("smm_model", "repo"), [(None, "ProsusAI/finbert"),
                                                 ("finbert-demo", "smart-model-manager/finbert-mini-demo")])
def test_analyze_uses_the_same_default(smm_model: str | None, repo: str, capsys, monkeypatch) -> None:  # type: ignore[no-untyped-def]
    if smm_model:
        monkeypatch.setenv("SMM_MODEL", smm_model)
    assert main(["analyze", "--format", "table", "BTC surges"]) == 0
    assert f"model {repo} @" in capsys.readouterr().out


def test_default_model_not_found_offline_suggests_the_demo_model(capsys, monkeypatch) -> None:  # type: ignore[no-untyped-def]
    monkeypatch.setenv("SMM_ENV", "dev")
    monkeypatch.setenv("SMM_OFFLINE", "1")
    assert main(["analyze", "BTC up"]) == 1
    err = capsys.readouterr().err
    assert "'finbert' is the default model" in err and "--model finbert-demo" in err
