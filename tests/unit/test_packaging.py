"""What pyproject.toml says about the package is true of the files."""

from __future__ import annotations

from pathlib import Path

import pytest

tomllib = pytest.importorskip("tomllib")  # Python 3.11+
pytestmark = pytest.mark.unit

REPO = Path(__file__).resolve().parents[2]
PKG = REPO / "src" / "smart_model_manager"


def _pyproject() -> dict:  # type: ignore[type-arg]
    return tomllib.loads((REPO / "pyproject.toml").read_text(encoding="utf-8"))


def test_every_package_data_pattern_matches_real_files() -> None:
    patterns = _pyproject()["tool"]["setuptools"]["package-data"]["smart_model_manager"]
    for pattern in patterns:
        assert list(PKG.glob(pattern)), f"package-data {pattern!r} matches nothing under src/smart_model_manager"


def test_the_version_has_one_home() -> None:
    import smart_model_manager
    from smart_model_manager._version import __version__

    assert "version" in _pyproject()["project"]["dynamic"]
    assert smart_model_manager.__version__ == __version__
