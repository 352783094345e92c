"""Symlinks that leave the volume or cache root: validation reports them as ``outside``,
loading refuses them with IntegrityError, whatever SMM_VERIFY says. The mirror's rule, applied to the
volume and the cache: every path must resolve inside the root.

Three forms were found to pass ``validate --full`` and ``load_model``: model-metadata.yaml linked to a
copy outside the volume; a snapshot entry linked to an outside file (same size, other bytes: loaded
with SMM_VERIFY=quick); ``snapshots/<commit>`` itself linked to an outside folder.
"""

from __future__ import annotations

import os
import shutil
from pathlib import Path

import pytest
from _model_folders import make_model_folder
from _volumes import lock_for, make_volume

from smart_model_manager import IntegrityError, ModelManager
from smart_model_manager.formats import manifest
from smart_model_manager.ops.validate import KINDS, validate
from smart_model_manager.settings import Settings
from smart_model_manager.store import layout as store_layout

pytestmark = pytest.mark.integration
REPO = "org/model"


@pytest.fixture
def volume(tmp_path: Path) -> tuple[Path, manifest.Manifest, Path]:
    src = make_model_folder(tmp_path / "src")
    root = tmp_path / "vol"
    man = make_volume(root, {REPO: src})
    outside = tmp_path / "elsewhere"  # e.g. a writable /tmp in the pod
    outside.mkdir()
    return root, man, outside


def _snap(root: Path, man: manifest.Manifest) -> Path:
    return store_layout.repo_dir(root, REPO) / "snapshots" / next(iter(man.models[REPO].commits))


def _relink(link: Path, target: Path) -> None:
    link.unlink()
    os.symlink(target, link)


def _manifest_outside(root: Path, man: manifest.Manifest, outside: Path) -> Path:
    path = root / manifest.MANIFEST_NAME
    shutil.copyfile(path, outside / manifest.MANIFEST_NAME)
    _relink(path, outside / manifest.MANIFEST_NAME)
    return path


def _file_outside(root: Path, man: manifest.Manifest, outside: Path) -> Path:
    link = _snap(root, man) / "model.safetensors"
    (outside / "weights").write_bytes(b"\1" * 1024)  # same size, other bytes: quick mode cannot tell
    _relink(link, outside / "weights")
    return link


def _snapshot_outside(root: Path, man: manifest.Manifest, outside: Path) -> Path:
    snap = _snap(root, man)
    shutil.copytree(snap, outside / "snap", symlinks=False)  # identical bytes, but not on the volume
    shutil.rmtree(snap)
    os.symlink(outside / "snap", snap)
    return snap


FORMS = {"manifest": _manifest_outside, "file": _file_outside, "snapshot": _snapshot_outside}


def _manager(root: Path, verify: str) -> ModelManager:
    settings = Settings.from_env({"SMM_VOLUME_DIR": str(root), "SMM_VERIFY": verify})
    return ModelManager("production", settings=settings)


def test_outside_is_a_finding_kind() -> None:
    assert "outside" in KINDS


@pytest.mark.parametrize("mode", ["quick", "full"])
@pytest.mark.parametrize("form", sorted(FORMS))
def test_validate_reports_paths_that_resolve_outside_the_volume(volume, form: str, mode: str) -> None:
    root, man, outside = volume
    assert validate(root, mode=mode).ok
    bad = FORMS[form](root, man, outside)
    report = validate(root, mode=mode, require_manifest=True)
    assert not report.ok
    found = report.by_kind("outside")
    assert found and found[0].file == str(bad), report.findings
    assert "resolves outside" in found[0].message and str(outside) in (found[0].actual or "")


@pytest.mark.parametrize("verify", ["quick", "full"])
@pytest.mark.parametrize("form", sorted(FORMS))
def test_loading_refuses_paths_that_resolve_outside_the_volume(volume, form: str, verify: str) -> None:
    root, man, outside = volume
    assert _manager(root, verify).resolve(REPO).path == _snap(root, man)
    FORMS[form](root, man, outside)
    with pytest.raises(IntegrityError, match="resolves outside"):
        _manager(root, verify).resolve(REPO)


def test_links_inside_the_volume_stay_fine(volume) -> None:
    root, man, _outside = volume
    link = _snap(root, man) / "model.safetensors"
    assert link.is_symlink()  # snapshot -> ../../blobs/<sha256>: the standard layout
    assert validate(root, mode="full").ok


def test_cache_snapshot_file_outside_the_cache_is_refused(tmp_path: Path) -> None:
    src = make_model_folder(tmp_path / "src")
    cache = tmp_path / "cache"
    man = make_volume(cache, {REPO: src}, write_manifest=False)
    lock = lock_for(man, tmp_path / "models.lock")
    outside = tmp_path / "elsewhere"
    outside.mkdir()
    bad = _file_outside(cache, man, outside)
    report = validate(cache, lock=lock, require_manifest=False)
    assert [f.file for f in report.by_kind("outside")] == [str(bad)]
    settings = Settings.from_env({"MODEL_CACHE_DIR": str(cache), "SMM_LOCK": str(tmp_path / "models.lock"),
                                  "HF_HUB_OFFLINE": "1"})
    with pytest.raises(IntegrityError, match="resolves outside"):
        ModelManager("dev", settings=settings).resolve("model")


@pytest.mark.parametrize("mode", ["quick", "full"])
@pytest.mark.parametrize("form", ["file", "snapshot"])
def test_a_cache_checked_without_a_lock_reports_outside_links_too(tmp_path: Path, form: str, mode: str) -> None:
    # no manifest, no lock: the structure check applies the same rule as the checks with a lock
    src = make_model_folder(tmp_path / "src")
    cache = tmp_path / "cache"
    man = make_volume(cache, {REPO: src}, write_manifest=False)
    outside = tmp_path / "elsewhere"
    outside.mkdir()
    assert validate(cache, mode=mode, require_manifest=False).ok
    bad = FORMS[form](cache, man, outside)
    report = validate(cache, mode=mode, require_manifest=False)
    assert [f.file for f in report.by_kind("outside")] == [str(bad)], report.findings
    assert not report.ok
