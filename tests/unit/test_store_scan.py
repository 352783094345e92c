"""store.scan and store.layout: one rule each for repo folders, temp names, links, cycles and outside targets,
and every policy (validate, ls/prune, the environment probe, the mirror, the cache source) run through it."""

from __future__ import annotations

import os
import time
from pathlib import Path

import pytest
from tests._model_folders import make_model_folder
from tests._volumes import make_volume

from smart_model_manager.mirror.index import MirrorIndex, NotFound
from smart_model_manager.onnx import quantize
from smart_model_manager.ops import maintenance, validate as validate_mod
from smart_model_manager.sources.base import Request
from smart_model_manager.sources.cache import CacheSource
from smart_model_manager.sources.environment import cache_has_models
from smart_model_manager.store import cache as store, layout, scan

pytestmark = pytest.mark.unit

A = "org/good"
OTHER = "f" * 40


def _cache(root: Path, tmp_path: Path, repo_id: str = A) -> store.ImportResult:
    return store.import_folder(make_model_folder(tmp_path / "src" / repo_id.replace("/", "_")), root, repo_id)


def _fake_repo_folder(root: Path, name: str) -> Path:
    """A folder that looks like a repo (a snapshot with a file, a ref) under any name."""
    folder = root / name
    snap = folder / layout.SNAPSHOTS / OTHER
    snap.mkdir(parents=True)
    (snap / "config.json").write_text("{}")
    (folder / layout.REFS).mkdir()
    (folder / layout.REFS / "main").write_text(OTHER)
    return folder


# -- the repo-folder rule ---------------------------------------------------------------------------

@pytest.mark.parametrize("name", ["models--a--b--c", "models--a----b", "models--", "models--org--x.git",
                                  "models--org/x", "models--.hidden", "datasets--org--x"])
def test_folders_that_encode_no_repo_id_are_refused(name: str) -> None:
    assert layout.repo_id_from_folder(name) is None


def test_every_caller_refuses_the_same_folders(tmp_path: Path) -> None:
    """``models--a--b--c`` used to read as ``a/b/c`` in validate and prune; now no caller sees a repo there."""
    root = tmp_path / "cache"
    root.mkdir()
    for bad in ("models--a--b--c", "models--a----b"):
        _fake_repo_folder(root, bad)
    assert scan.scan(root).repos == ()
    assert not cache_has_models(root)
    assert maintenance.list_models(root).repos == ()
    assert maintenance.plan_prune(root, min_age=0).items == ()
    report = validate_mod.validate(root)
    assert report.models_checked == 0 and [f.kind for f in report.findings] == ["missing"]
    assert MirrorIndex(root).repos() == []
    with pytest.raises(NotFound):
        MirrorIndex(root).repo("a/b/c")

    _cache(root, tmp_path)  # one real repo beside them: every caller sees exactly it
    assert [r.repo_id for r in scan.scan(root).repos] == [A]
    assert cache_has_models(root)
    assert [r.repo_id for r in maintenance.list_models(root).repos] == [A]
    assert validate_mod.validate(root).models_checked == 1
    assert [r.repo_id for r in MirrorIndex(root).repos()] == [A]


# -- temp names ---------------------------------------------------------------------------------------

def test_one_temp_rule_for_our_names_huggingface_hubs_and_the_exporters(tmp_path: Path) -> None:
    names = [layout.tmp_name("x"), layout.incomplete_name("x"), "0" * 64 + layout.INCOMPLETE_SUFFIX,
             quantize._tmp_name(tmp_path, "model.int8.onnx").name, ".model.int8.onnx.tmp-0123456789ab"]
    for name in names:
        assert layout.is_temp_name(name), name
    for name in ("model.onnx", ".gitattributes", "tmp-x", "model.tmp-0123456789ab"):
        assert not layout.is_temp_name(name), name


def test_temps_are_never_revisions_refs_or_loadable_files(tmp_path: Path) -> None:
    root = tmp_path / "cache"
    res = _cache(root, tmp_path)
    rdir = layout.repo_dir(root, A)
    (rdir / layout.SNAPSHOTS / layout.tmp_name(OTHER)).mkdir()
    (rdir / layout.REFS / layout.tmp_name("main")).write_text(OTHER)
    onnx = res.snapshot / "onnx"
    onnx.mkdir()
    (onnx / ".model.int8.onnx.tmp-0123456789ab").write_bytes(b"x")
    quantize._tmp_name(onnx, "model.int8.onnx").write_bytes(b"x")
    repo = scan.scan(root).repos[0]
    assert [r.commit for r in repo.revisions] == [res.commit]
    assert [r.name for r in repo.refs] == ["main"]
    assert not any(rel.startswith("onnx/") for rel in scan.snapshot_files(res.snapshot))
    assert sum(f.temp for f in repo.revisions[0].files()) == 2


def test_prune_removes_old_export_temps_inside_a_snapshot(tmp_path: Path) -> None:
    """An export killed mid-quantize leaves its temp in the snapshot's onnx/ folder; prune sees it."""
    root = tmp_path / "cache"
    res = _cache(root, tmp_path)
    onnx = res.snapshot / "onnx"
    onnx.mkdir()
    temps = [onnx / ".model.int8.onnx.tmp-0123456789ab", quantize._tmp_name(onnx, "model.int8.onnx")]
    for t in temps:
        t.write_bytes(b"half an int8 model")
    plan = maintenance.plan_prune(root, min_age=0)
    assert sorted(i.path for i in plan.items if i.kind == "temp") == sorted(str(t) for t in temps)
    maintenance.execute_prune(plan, min_age=0)
    assert not any(t.exists() for t in temps) and (res.snapshot / "config.json").is_file()


# -- links ---------------------------------------------------------------------------------------------

def test_a_symlinked_snapshot_validate_reports_is_one_prune_removes(tmp_path: Path) -> None:
    """validate says "`smm prune` removes it" about an unrecorded snapshot; for a symlinked one that is
    now true: prune removes the link (never what it points to), and validate is clean afterwards."""
    root = tmp_path / "vol"
    make_volume(root, {A: make_model_folder(tmp_path / "m")})
    elsewhere = make_model_folder(tmp_path / "elsewhere-in-the-root")
    link = layout.repo_dir(root, A) / layout.SNAPSHOTS / OTHER
    os.symlink(elsewhere, link)
    assert [r.commit for r in scan.scan(root).repos[0].revisions if r.is_link] == [OTHER]

    report = validate_mod.validate(root)
    extra = [f for f in report.findings if f.kind == "extra"]
    assert report.ok and len(extra) == 1 and extra[0].file == str(link) and "`smm prune` removes it" in extra[0].message

    plan = maintenance.plan_prune(root, min_age=0)
    assert [(i.kind, i.path, i.bytes) for i in plan.items if i.kind == "revision"] == [("revision", str(link), 0)]
    result = maintenance.execute_prune(plan, min_age=0)
    assert not os.path.lexists(link) and (elsewhere / "config.json").is_file()
    assert [i.path for i in result.deleted] == [str(link)]
    assert validate_mod.validate(root).findings == ()


def test_a_kept_symlinked_snapshot_keeps_the_blobs_it_links_to(tmp_path: Path) -> None:
    root = tmp_path / "cache"
    res = _cache(root, tmp_path)
    rdir = layout.repo_dir(root, A)
    os.symlink(res.snapshot, rdir / layout.SNAPSHOTS / OTHER)
    (rdir / layout.REFS / "main").write_text(OTHER)  # only the link is referenced now
    old = time.time() - 10 * maintenance.DEFAULT_MIN_AGE
    for b in (rdir / layout.BLOBS).iterdir():
        os.utime(b, (old, old))
    plan = maintenance.plan_prune(root)
    assert [i.kind for i in plan.items] == ["revision"] and plan.items[0].path == str(res.snapshot)


# -- cycles --------------------------------------------------------------------------------------------

def test_a_folder_link_cycle_ends_the_same_way_for_validate_and_the_load_path(tmp_path: Path) -> None:
    root = tmp_path / "cache"
    res = _cache(root, tmp_path)
    os.symlink(".", res.snapshot / "loop")
    walked = list(scan.walk_snapshot(res.snapshot))
    assert [(f.rel, f.kind) for f in walked if f.kind == "cycle"] == [("loop", "cycle")]
    files = scan.snapshot_files(res.snapshot)
    assert sorted(files) == sorted(res.files)  # each file once; the cycle is not a file to load
    resolved = CacheSource(root).resolve(Request(name=A, repo_id=A, revision=None, model_type="sentiment"))
    assert resolved.path == res.snapshot
    report = validate_mod.validate(root)
    assert report.ok and report.files_checked == len(res.files)  # structure check: the cycle is no file


def test_the_mirror_lists_no_folder_link(tmp_path: Path) -> None:
    root = tmp_path / "cache"
    res = _cache(root, tmp_path)
    os.symlink(".", res.snapshot / "loop")
    repo = MirrorIndex(root).repo(A)
    assert sorted(f.path for f in repo.files(res.commit)) == sorted(res.files)


# -- outside the root ---------------------------------------------------------------------------------

def test_outside_targets_are_one_rule(tmp_path: Path) -> None:
    root = tmp_path / "cache"
    res = _cache(root, tmp_path)
    outside = make_model_folder(tmp_path / "outside")
    os.symlink(outside / "vocab.txt", res.snapshot / "extra.txt")
    assert scan.resolves_outside(root, res.snapshot / "extra.txt") == str((outside / "vocab.txt").resolve())
    assert scan.resolves_outside(root, res.snapshot / "config.json") is None
    report = validate_mod.validate(root)
    assert [f.kind for f in report.findings] == ["outside"]
    with pytest.raises(Exception, match="resolves outside"):
        CacheSource(root).resolve(Request(name=A, repo_id=A, revision=None, model_type="sentiment"))
    assert "extra.txt" not in {f.path for f in MirrorIndex(root).repo(A).files(res.commit)}


# -- the one writer ------------------------------------------------------------------------------------

def test_import_stages_outside_snapshots_and_leaves_nothing_behind(tmp_path: Path) -> None:
    root = tmp_path / "cache"
    res = _cache(root, tmp_path)
    assert [p.name for p in (layout.repo_dir(root, A) / layout.SNAPSHOTS).iterdir()] == [res.commit]
    assert not (root / layout.STAGING_DIR).exists()
    again = _cache(root, tmp_path)
    assert again.commit == res.commit and sorted(scan.snapshot_files(again.snapshot)) == sorted(res.files)


def test_validate_never_promises_what_prune_does_not_do_in_a_linked_repo_folder(tmp_path: Path) -> None:
    """Prune leaves symlinked repo folders alone (deleting inside one deletes outside the root), so an
    unrecorded snapshot there is reported with a hand fix, and prune plans nothing for it."""
    root = tmp_path / "vol"
    make_volume(root, {A: make_model_folder(tmp_path / "m")})
    real = tmp_path / "elsewhere"
    layout.repo_dir(root, A).rename(real)
    os.symlink(real, layout.repo_dir(root, A))
    make_model_folder(real / layout.SNAPSHOTS / OTHER)
    extra = [f for f in validate_mod.validate(root).findings if f.kind == "extra"]
    assert len(extra) == 1 and "remove it by hand" in extra[0].message and "smm prune" not in extra[0].message
    assert maintenance.plan_prune(root, min_age=0).items == ()
