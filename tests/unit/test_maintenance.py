"""smm ls / smm prune on real HF-cache layouts: the plan is exact, prune frees what it says, and keeps pins."""

from __future__ import annotations

import json
import os
import time
from pathlib import Path

import pytest
from _model_folders import make_model_folder
from _volumes import lock_for, make_volume, regular_bytes

from smart_model_manager.cli.main import main
from smart_model_manager.formats import manifest
from smart_model_manager.ops import maintenance
from smart_model_manager.ops.validate import validate
from smart_model_manager.store import cache as store, layout as store_layout

pytestmark = pytest.mark.unit

A, B = "acme/a", "acme/b"
HOUR = 3600


def tree(root: Path) -> dict[str, tuple[int, int]]:
    return {str(p): (p.lstat().st_mtime_ns, p.lstat().st_size) for p in root.rglob("*")}


def age(path: Path, seconds: float) -> None:
    t = time.time() - seconds
    os.utime(path, (t, t), follow_symlinks=False)


@pytest.fixture
def cache(tmp_path: Path) -> dict[str, object]:
    """A: main -> new (shares vocab with old), old detached; B: pinned by the lock only (no ref)."""
    root = Path(os.environ["MODEL_CACHE_DIR"])
    shared = b"[PAD]\n[UNK]\nshared\n"
    old = store.import_folder(make_model_folder(tmp_path / "a-old", {"model.safetensors": os.urandom(5000),
                                                                      "vocab.txt": shared}), root, A)
    new = store.import_folder(make_model_folder(tmp_path / "a-new", {"model.safetensors": os.urandom(7000),
                                                                      "vocab.txt": shared}), root, A)
    man = make_volume(root, {B: make_model_folder(tmp_path / "b", {"model.safetensors": os.urandom(3000)})},
                      write_manifest=False)
    (store_layout.repo_dir(root, B) / "refs" / "main").unlink()  # only the lock keeps B
    lock = lock_for(man, tmp_path / "models.lock")
    blobs = store_layout.repo_dir(root, A) / "blobs"
    orphan = blobs / ("e" * 64)
    orphan.write_bytes(os.urandom(1111))
    stale = blobs / f"{'d' * 64}.incomplete"
    stale.write_bytes(os.urandom(222))
    root_tmp = root / ".tmp-model-metadata.yaml.0123"
    root_tmp.write_text("half a manifest")
    for p in root.rglob("*"):  # everything so far was written two hours ago
        age(p, 2 * HOUR)
    fresh = blobs / f"{'c' * 64}.incomplete"  # a download in progress elsewhere: must survive
    fresh.write_bytes(os.urandom(333))
    just_renamed = blobs / ("f" * 64)  # huggingface_hub renamed it into blobs/ and is about to link it
    just_renamed.write_bytes(os.urandom(444))
    return {"root": root, "old": old, "new": new, "lock": lock, "orphan": orphan, "stale": stale, "fresh": fresh,
            "root_tmp": root_tmp, "man": man, "just_renamed": just_renamed}


def test_plan_lists_exactly_the_unreferenced_items_with_their_bytes(cache: dict) -> None:
    root, old = cache["root"], cache["old"]
    plan = maintenance.plan_prune(root, lock=cache["lock"])
    got = sorted((i.kind, Path(i.path).name, i.bytes) for i in plan.items)
    model_blob = old.files["model.safetensors"]
    cfg_old, cfg_new = old.files["config.json"], cache["new"].files["config.json"]
    assert cfg_old == cfg_new  # the same config bytes: one blob, still linked by the kept revision
    assert got == sorted([
        ("revision", old.commit, 0),                       # snapshot of links: its bytes are its blobs
        ("blob", model_blob[1], model_blob[0]),           # only the old revision linked it
        ("blob", "e" * 64, 1111),                          # linked by nobody
        ("temp", f"{'d' * 64}.incomplete", 222),           # stale
        ("temp", cache["root_tmp"].name, len("half a manifest")),
    ])
    assert plan.kept_revisions == 2  # A@new (ref main) and B (locked)
    assert plan.total_bytes == 5000 + 1111 + 222 + 15


def test_prune_frees_exactly_the_planned_bytes_and_keeps_what_is_pinned(cache: dict) -> None:
    root = cache["root"]
    plan = maintenance.plan_prune(root, lock=cache["lock"])
    before = regular_bytes(root)
    result = maintenance.execute_prune(plan, lock=cache["lock"])
    after = regular_bytes(root)
    assert before - after == plan.total_bytes == result.freed_bytes
    assert result.skipped == ()
    assert cache["fresh"].exists() and not cache["stale"].exists() and not cache["orphan"].exists()
    assert cache["just_renamed"].exists()  # younger than --min-age: possibly a download being linked
    assert [Path(i.path).name for i in maintenance.plan_prune(root, lock=cache["lock"], min_age=0).items] == [
        "f" * 64, f"{'c' * 64}.incomplete"]
    assert validate(root, lock=cache["lock"], mode="full").ok       # the locked B is intact
    assert store.find_snapshot(root, A, "main") == cache["new"].snapshot
    assert validate(root, mode="full", require_manifest=False).ok  # structure of what is left is sound


def test_without_the_lock_the_lock_only_revision_is_planned_too(cache: dict) -> None:
    plan = maintenance.plan_prune(cache["root"], lock=None)
    assert any(i.kind == "revision" and i.repo_id == B for i in plan.items)


def test_items_that_became_referenced_after_the_plan_are_skipped(cache: dict) -> None:
    root, old = cache["root"], cache["old"]
    plan = maintenance.plan_prune(root, lock=cache["lock"])
    store.atomic_write_text(store_layout.repo_dir(root, A) / "refs" / "v0", old.commit)  # a concurrent `pull --revision`
    result = maintenance.execute_prune(plan, lock=cache["lock"])
    skipped = {Path(i.path).name for i, _why in result.skipped}
    assert skipped == {old.commit, old.files["model.safetensors"][1]}
    assert old.snapshot.is_dir() and validate(root, require_manifest=False, mode="full").ok


def test_the_manifest_pins_its_commits_on_a_volume(tmp_path: Path) -> None:
    v = tmp_path / "v"
    man = make_volume(v, {A: make_model_folder(tmp_path / "a")})
    (store_layout.repo_dir(v, A) / "refs" / "main").unlink()
    assert maintenance.plan_prune(v).items == ()
    (v / manifest.MANIFEST_NAME).write_text("format: 1\nmodels: [\n")
    assert main(["prune", "--dir", str(v), "--dry-run"]) == 1  # unreadable manifest: refuse to guess
    assert man.models[A].latest().commit


def test_cli_dry_run_prints_the_plan_and_deletes_nothing(cache: dict, capsys: pytest.CaptureFixture[str]) -> None:
    root = cache["root"]
    before = tree(root)
    assert main(["prune", "--dry-run"]) == 0  # ./models.lock (cwd) pins B
    out = capsys.readouterr().out
    plan = maintenance.plan_prune(root, lock=cache["lock"])
    assert f"{plan.total_bytes} bytes" in out and "dry run: nothing deleted" in out
    assert cache["old"].commit in out
    assert tree(root) == before
    assert main(["prune", "--json"]) == 0
    doc = json.loads(capsys.readouterr().out)
    assert doc["result"]["freed_bytes"] == doc["plan"]["total_bytes"] == plan.total_bytes


def test_ls_shows_revisions_refs_sizes_and_lock_status(cache: dict, tmp_path: Path,
                                                       capsys: pytest.CaptureFixture[str]) -> None:
    root, old, new = cache["root"], cache["old"], cache["new"]
    listing = maintenance.list_models(root, lock=cache["lock"])
    repos = {r.repo_id: r for r in listing.repos}
    assert set(repos) == {A, B}
    assert repos[A].lock_status == "unlocked" and repos[B].lock_status == "locked"
    revs = {r.commit: r for r in repos[A].revisions}
    assert revs[new.commit].refs == ("main",) and revs[old.commit].refs == ()
    assert revs[new.commit].size == sum(s for s, _ in new.files.values())
    assert revs[old.commit].files == 3
    assert repos[A].size_on_disk == regular_bytes(store_layout.repo_dir(root, A))
    assert main(["ls", "--json"]) == 0
    doc = json.loads(capsys.readouterr().out)
    assert [x["location"] for x in doc] == [str(root)]
    assert {r["repo_id"]: r["lock_status"] for r in doc[0]["repos"]} == {A: "unlocked", B: "locked"}
    assert main(["ls"]) == 0
    out = capsys.readouterr().out
    assert "locked as b" in out and new.commit[:12] in out and "(no ref)" in out


def test_ls_reports_locked_models_that_are_absent_and_the_volume(tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                                                                 capsys: pytest.CaptureFixture[str]) -> None:
    v = tmp_path / "vol"
    man = make_volume(v, {A: make_model_folder(tmp_path / "a")})
    lock = lock_for(manifest.Manifest.of([*man.entries(), manifest.ModelEntry(
        repo_id="acme/gone", commit="9" * 40, model_type="sentiment", files=dict(man.models[A].latest().files))]))
    listing = maintenance.list_models(v, lock=lock)
    assert listing.absent == (("gone", "acme/gone", "9" * 40),)
    assert listing.repos[0].revisions[0].in_manifest and listing.repos[0].revisions[0].locked
    monkeypatch.setenv("SMM_VOLUME_DIR", str(v))
    assert main(["ls", "--no-lock"]) == 0
    out = capsys.readouterr().out
    assert f"{v} (volume): 1 model(s)" in out and "manifest" in out


@pytest.mark.parametrize("command", ["ls", "prune"])
def test_ls_and_prune_on_a_missing_dir_exit_2(command: str, tmp_path: Path, capsys) -> None:
    assert main([command, "--dir", str(tmp_path / "no-such-volume")]) == 2
    assert "does not exist" in capsys.readouterr().err
