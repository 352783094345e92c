"""A volume with several commits of one model: validate per lock and without one, the production load
takes exactly the commit its lock pins, and `smm validate --wait` (the init container)."""

from __future__ import annotations

import os
import threading
import time
from pathlib import Path

import pytest
from _model_folders import make_model_folder

from smart_model_manager import ConfigurationError, IntegrityError, ModelManager, ModelNotFoundError
from smart_model_manager.cli.main import main
from smart_model_manager.formats import manifest
from smart_model_manager.formats.lockfile import Lock, LockEntry, write_lock
from smart_model_manager.formats.manifest import FileEntry, ModelEntry
from smart_model_manager.ops.validate import validate, wait_until_valid
from smart_model_manager.store import cache as store, layout as store_layout

pytestmark = pytest.mark.unit

REPO = "acme/fin"
D_A, D_B = "sha256:" + "a" * 64, "sha256:" + "b" * 64


def add_commit(root: Path, src: Path, digest: str | None) -> ModelEntry:
    """What `smm pull` does for one model: publish the snapshot, then record it in the manifest."""
    res = store.import_folder(src, root, REPO)
    e = ModelEntry(repo_id=REPO, commit=res.commit, model_type="sentiment",
                   files={r: FileEntry(s, "sha256:" + h) for r, (s, h) in res.files.items()},
                   labels=("negative", "neutral", "positive"))
    manifest.record(root, [e], generated_by="tests", lock_digest=digest)
    return e


def lock_of(e: ModelEntry, path: Path, files: dict[str, FileEntry] | None = None) -> Path:
    write_lock(path, Lock(models={"fin": LockEntry("fin", REPO, "main", e.commit, "sentiment",
                                                   files if files is not None else dict(e.files), e.labels)}))
    return path


@pytest.fixture
def two(tmp_path: Path) -> tuple[Path, ModelEntry, ModelEntry, Path, Path]:
    vol = tmp_path / "vol"
    a = add_commit(vol, make_model_folder(tmp_path / "a", {"model.safetensors": os.urandom(2000)}), D_A)
    b = add_commit(vol, make_model_folder(tmp_path / "b", {"model.safetensors": os.urandom(3000)}), D_B)
    assert a.commit != b.commit
    return vol, a, b, lock_of(a, tmp_path / "a.lock"), lock_of(b, tmp_path / "b.lock")


def snap(vol: Path, commit: str) -> Path:
    return store_layout.repo_dir(vol, REPO) / "snapshots" / commit


def test_each_lock_validates_its_own_commit_and_no_lock_validates_every_commit(
        two, capsys: pytest.CaptureFixture[str]) -> None:
    vol, a, b, lock_a, lock_b = two
    for lock, e in ((lock_a, a), (lock_b, b)):
        r = validate(vol, lock=lock, mode="full")
        assert r.ok and r.findings == () and r.files_checked == len(e.files)
    everything = validate(vol, mode="full")
    assert everything.ok and everything.files_checked == len(a.files) + len(b.files)
    assert main(["ls", "--dir", str(vol), "--no-lock"]) == 0  # both commits, and the lock history, newest last
    out = capsys.readouterr().out
    assert out.count("manifest") == 2 and a.commit[:12] in out and b.commit[:12] in out
    assert out.index(f"  2. {D_A[7:19]}") < out.index(f"  1. {D_B[7:19]}")
    # a broken old commit fails its own lock and the lock-less check, never the new lock's pods
    os.truncate(os.path.realpath(snap(vol, a.commit) / "model.safetensors"), 10)
    assert [f.kind for f in validate(vol, lock=lock_a).errors] == ["corrupt"]
    assert validate(vol, lock=lock_b).ok
    assert [f.kind for f in validate(vol).errors] == ["corrupt"]


def test_unrecorded_snapshot_is_a_warning_and_an_unprovisioned_lock_is_stale(two, tmp_path: Path) -> None:
    vol, a, b, lock_a, _ = two
    res = store.import_folder(make_model_folder(tmp_path / "c", {"model.safetensors": b"c" * 99}), vol, REPO)
    r = validate(vol, lock=lock_a)
    assert r.ok and [(f.kind, f.severity, Path(f.file).name) for f in r.findings] == [
        ("extra", "warning", res.commit)]
    c = ModelEntry(REPO, res.commit, "sentiment", {r_: FileEntry(s, "sha256:" + h) for r_, (s, h) in res.files.items()})
    stale = validate(vol, lock=lock_of(c, tmp_path / "c.lock"))  # the Job for lock C has not recorded it yet
    assert [(f.kind, f.expected) for f in stale.errors] == [("stale", res.commit)]
    assert stale.errors[0].actual == ", ".join(sorted([a.commit, b.commit]))


def test_a_lock_pinning_fewer_files_of_a_recorded_commit_validates(two, tmp_path: Path) -> None:
    vol, a, *_ = two
    fewer = lock_of(a, tmp_path / "fewer.lock", {"config.json": a.files["config.json"]})
    assert validate(vol, lock=fewer, mode="full").ok
    wrong = lock_of(a, tmp_path / "wrong.lock", {"config.json": FileEntry(1, a.files["config.json"].sha256)})
    r = validate(vol, lock=wrong)
    assert [(f.kind, f.expected, f.actual) for f in r.errors] == [
        ("stale", f"1 bytes {a.files['config.json'].sha256}",
         f"{a.files['config.json'].size} bytes {a.files['config.json'].sha256}")]


def test_production_loads_exactly_the_commit_its_lock_pins(two, monkeypatch: pytest.MonkeyPatch,
                                                           tmp_path: Path) -> None:
    vol, a, b, lock_a, lock_b = two
    monkeypatch.setenv("SMM_VOLUME_DIR", str(vol))
    monkeypatch.setenv("SMM_VERIFY", "full")
    for lock, e in ((lock_a, a), (lock_b, b)):
        monkeypatch.setenv("SMM_LOCK", str(lock))
        r = ModelManager(environment="production").resolve("fin")
        assert (r.source, r.commit, r.path) == ("volume", e.commit, snap(vol, e.commit))
        assert r.files == e.files and r.verified == "full"
    # no lock: nothing to choose by; the newest would switch models on a pod restart
    monkeypatch.delenv("SMM_LOCK")
    with pytest.raises(ConfigurationError, match=r"acme/fin has 2 commits on the volume .* set SMM_LOCK"):
        ModelManager(environment="production").resolve(REPO)
    assert ModelManager(environment="production").resolve(REPO, revision=a.commit).commit == a.commit
    # a lock whose commit is not provisioned yet: not found (the init container waits for it), never another
    c = ModelEntry(REPO, "c" * 40, "sentiment", dict(a.files))
    monkeypatch.setenv("SMM_LOCK", str(lock_of(c, tmp_path / "c.lock")))
    with pytest.raises(ModelNotFoundError, match=r"not cccccccccccc that models.lock pins"):
        ModelManager(environment="production").resolve("fin")
    # a lock pinning other bytes than the volume recorded for that commit: refused, naming both digests
    bad = {**a.files, "config.json": FileEntry(3, "sha256:" + "e" * 64)}
    monkeypatch.setenv("SMM_LOCK", str(lock_of(a, tmp_path / "bad.lock", bad)))
    with pytest.raises(IntegrityError) as exc:
        ModelManager(environment="production").resolve("fin")
    assert exc.value.expected == "sha256:" + "e" * 64 and exc.value.actual == a.files["config.json"].sha256


def test_a_single_commit_loads_without_a_lock_and_a_new_commit_is_seen_without_restart(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    vol = tmp_path / "vol"
    a = add_commit(vol, make_model_folder(tmp_path / "a"), None)
    monkeypatch.setenv("SMM_VOLUME_DIR", str(vol))
    mm = ModelManager(environment="production")
    assert mm.resolve(REPO).commit == a.commit
    b = add_commit(vol, make_model_folder(tmp_path / "b", {"model.safetensors": b"b" * 50}), D_B)
    assert mm.resolve(REPO, revision=b.commit).commit == b.commit  # the manifest is re-read when it changes


def test_wait_until_valid_releases_when_the_commit_is_recorded(two, tmp_path: Path) -> None:
    vol, a, *_ = two
    src = make_model_folder(tmp_path / "c", {"model.safetensors": os.urandom(500)})
    res = store.import_folder(src, tmp_path / "scratch", REPO)  # learn the commit, as `smm lock` would
    c = ModelEntry(REPO, res.commit, "sentiment", {r: FileEntry(s, "sha256:" + h) for r, (s, h) in res.files.items()})
    lock_c = lock_of(c, tmp_path / "c.lock")
    calls: list[float] = []
    timer = threading.Timer(0.6, add_commit, args=(vol, src, D_B))
    timer.start()
    try:
        t0 = time.monotonic()
        report = wait_until_valid(vol, lock=lock_c, timeout=30, interval=0.1,
                                  progress=lambda r, elapsed: calls.append(elapsed), progress_every=0.2)
    finally:
        timer.join()
    assert report.ok and time.monotonic() - t0 >= 0.5
    assert calls and calls[0] == pytest.approx(0, abs=0.1)  # said at once why it waits, then periodically
    assert all(b - a_ >= 0.19 for a_, b in zip(calls, calls[1:]))


def test_wait_times_out_with_the_findings(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    report = wait_until_valid(tmp_path / "empty", timeout=0.3, interval=0.05)
    assert not report.ok and report.errors[0].kind == "missing"
    assert main(["validate", "--wait", "--timeout", "0.3", "--interval", "0.05", "--dir", str(tmp_path / "none"),
                 "--no-lock"]) == 1
    captured = capsys.readouterr()
    assert "FAILED" in captured.out and "missing" in captured.out
    assert "waiting for" in captured.err and "timed out after 0.3s" in captured.err
    # a lock that does not exist is a usage error at once, not "still provisioning"
    assert main(["validate", "--wait", "--dir", str(tmp_path), "--lock", str(tmp_path / "nope.lock")]) == 2
