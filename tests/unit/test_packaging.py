"""What pyproject.toml says about the package is true of the files."""

from __future__ import annotations

from pathlib import Path

import pytest

tomllib = pytest.importorskip("tomllib")  # Python 3.11+
pytestmark = pytest.mark.unit

REPO = Path(__file__).resolve().parents[2]
PKG = REPO / "src" / "smart_model_manager"


def _pyproject() -> dict:
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


# --- what an installed package and a built wheel tell the user (pip show, PyPI, pytest's plugin list) ---

_CLASSIFIERS = ["Programming Language :: Python :: 3.10", "Programming Language :: Python :: 3.11",
                "Programming Language :: Python :: 3.12", "Programming Language :: Python :: 3.13",
                "Typing :: Typed", "Framework :: Pytest"]


def _assert_metadata(meta: object, where: str) -> None:
    from email.message import Message

    assert isinstance(meta, Message)
    classifiers = meta.get_all("Classifier") or []
    for wanted in _CLASSIFIERS:
        assert wanted in classifiers, f"{where}: classifier {wanted!r} missing; has {classifiers}"
    # PEP 639: the SPDX expression replaces the "License ::" classifier (setuptools refuses both at once)
    assert meta.get("License-Expression") == "Apache-2.0", f"{where}: License-Expression is {meta.get('License-Expression')!r}"
    assert "LICENSE" in (meta.get_all("License-File") or []), f"{where}: no License-File"
    urls = dict(u.split(", ", 1) for u in meta.get_all("Project-URL") or [])
    assert {"Homepage", "Documentation", "Changelog", "Issues"} <= set(urls), f"{where}: Project-URL {urls}"
    assert meta.get("Requires-Python") == ">=3.10"


def test_license_and_changelog_are_real_files() -> None:
    text = (REPO / "LICENSE").read_text(encoding="utf-8")
    assert "Apache License" in text and "Version 2.0, January 2004" in text
    assert "TERMS AND CONDITIONS FOR USE, REPRODUCTION, AND DISTRIBUTION" in text and "END OF TERMS AND CONDITIONS" in text
    changelog = (REPO / "CHANGELOG.md").read_text(encoding="utf-8")
    from smart_model_manager._version import __version__

    assert f"## [{__version__}]" in changelog and "## [Unreleased]" in changelog


def test_installed_metadata_carries_license_classifiers_and_urls() -> None:
    """What `pip show -v smart-model-manager` prints comes from this metadata."""
    import importlib.metadata as md

    _assert_metadata(md.metadata("smart-model-manager"), "installed metadata")


def test_pip_show_lists_the_license_and_the_pytest_classifier() -> None:
    import subprocess
    import sys

    out = subprocess.run([sys.executable, "-m", "pip", "show", "-v", "smart-model-manager"],
                         capture_output=True, text=True, timeout=120, check=True).stdout
    assert "Framework :: Pytest" in out and "Typing :: Typed" in out
    if "License-Expression:" in out:  # pip before 25.1 does not print the PEP 639 field
        assert "License-Expression: Apache-2.0" in out, out
    assert "Homepage, https://" in out, out


def test_built_wheel_carries_license_text_and_metadata(tmp_path: Path) -> None:
    import email
    import subprocess
    import sys
    import zipfile

    pytest.importorskip("setuptools")
    out = tmp_path / "dist"
    proc = subprocess.run([sys.executable, "-m", "pip", "wheel", "--no-deps", "--no-build-isolation", "-q",
                           "-w", str(out), str(REPO)], capture_output=True, text=True, timeout=600)
    assert proc.returncode == 0, proc.stderr[-2000:]
    (wheel,) = out.glob("smart_model_manager-*.whl")
    with zipfile.ZipFile(wheel) as zf:
        names = zf.namelist()
        (meta_name,) = [n for n in names if n.endswith(".dist-info/METADATA")]
        meta = email.message_from_bytes(zf.read(meta_name))
        licenses = [n for n in names if n.endswith("licenses/LICENSE")]
        assert licenses, f"no license file in the wheel: {[n for n in names if 'dist-info' in n]}"
        assert b"Apache License" in zf.read(licenses[0])
        assert "smart_model_manager/py.typed" in names
    _assert_metadata(meta, wheel.name)
