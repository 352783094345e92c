"""`smm models ...` in-process: mistakes are caught before any slow work starts."""

from __future__ import annotations

from pathlib import Path

import pytest

from smart_model_manager.cli.main import main
from smart_model_manager.demo import build as demo

pytestmark = pytest.mark.unit


def _never(*args: object, **kwargs: object) -> None:
    raise AssertionError("training started although the target cannot be written")


@pytest.mark.parametrize("flag", ["--target", "--cache-dir"])
def test_build_demo_checks_the_destination_before_training(flag: str, tmp_path: Path, capsys,
                                                           monkeypatch) -> None:
    monkeypatch.setattr(demo, "build_demo_model", _never)
    blocker = tmp_path / "a-file"
    blocker.write_text("not a folder")
    dest = blocker / "vol"
    assert main(["models", "build-demo", flag, str(dest)]) == 1
    err = capsys.readouterr().err
    assert f"{dest} is not writable" in err
    assert "building the demo model" not in err
