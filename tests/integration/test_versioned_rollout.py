"""Versioned model rollouts on one volume, against a real mirror on 127.0.0.1 (issue 8 §3, issue 9 B2):
a new lock ADDS its commit, every lock keeps validating and loading its own commit, the init container's
`smm validate --wait` releases once another process finished provisioning, and prune keeps what recent
locks reference."""

from __future__ import annotations

import subprocess
import time
from pathlib import Path

import pytest

from smart_model_manager import ModelManager
from smart_model_manager.cli.main import main
from smart_model_manager.formats import lockfile, manifest
from smart_model_manager.formats.spec import loads as load_spec
from smart_model_manager.mirror import MirrorServer
from smart_model_manager.ops.lock import resolve_lock
from smart_model_manager.ops.pull import pull
from smart_model_manager.ops.validate import validate
from smart_model_manager.sources.verify import pinned_file_verifier

try:
    from ._artifacts_fixtures import hub_like_root, make_sentiment_folder, smm_cmd, smm_env, write
except ImportError:
    from _artifacts_fixtures import hub_like_root, make_sentiment_folder, smm_cmd, smm_env, write

pytestmark = pytest.mark.integration

REPO = "org/fin"
SPEC = f"models:\n  fin:\n    repo_id: {REPO}\n    model_type: sentiment\n"


def version(tmp_path: Path, upstream: Path, seed: bytes) -> str:
    """Upstream publishes a new version of org/fin (with an ONNX export) on main; returns its commit."""
    src = make_sentiment_folder(tmp_path / f"src-{seed.decode()}", weights=60_000, seed=seed)
    write(src / "onnx" / "model.onnx", f"onnx graph {seed.decode()}" * 100)
    return hub_like_root(src, upstream, REPO)


def relock(mirror: MirrorServer, path: Path, spec: str = SPEC) -> lockfile.Lock:
    lockfile.write_lock(path, resolve_lock(load_spec(spec, "models.yaml"), mirror.url, timeout=10, retries=0))
    return lockfile.load(path)


def resolve(vol: Path, lock: Path, monkeypatch: pytest.MonkeyPatch, verify: str = "full"):  # type: ignore[no-untyped-def]
    monkeypatch.setenv("SMM_VOLUME_DIR", str(vol))
    monkeypatch.setenv("SMM_LOCK", str(lock))
    monkeypatch.setenv("SMM_VERIFY", verify)
    return ModelManager(environment="production").resolve("fin")


@pytest.fixture
def upstream(tmp_path: Path):  # type: ignore[no-untyped-def]
    root = tmp_path / "upstream"
    v1 = version(tmp_path, root, b"one")
    with MirrorServer(root) as mirror:
        yield mirror, root, v1


def test_a_new_lock_adds_its_commit_and_both_locks_validate_and_load(upstream, tmp_path: Path,
                                                                     monkeypatch: pytest.MonkeyPatch) -> None:  # type: ignore[no-untyped-def]
    mirror, root, v1 = upstream
    vol = tmp_path / "vol"
    lock_a = relock(mirror, tmp_path / "a.lock")
    pull(lock_a, target=vol, endpoint=mirror.url, timeout=10, retries=0)
    v2 = version(tmp_path, root, b"two")
    lock_b = relock(mirror, tmp_path / "b.lock")
    assert (lock_a.models["fin"].commit, lock_b.models["fin"].commit) == (v1, v2)
    pull(lock_b, target=vol, endpoint=mirror.url, timeout=10, retries=0)

    man = manifest.load(vol / manifest.MANIFEST_NAME)
    assert set(man.models[REPO].commits) == {v1, v2}
    assert [r.digest for r in man.locks] == [lock_a.digest, lock_b.digest]
    for lock, commit in ((lock_a, v1), (lock_b, v2)):
        assert man.entry(REPO, commit).lock_digest == lock.digest
        assert validate(vol, lock=lock, mode="full").findings == ()
        assert main(["validate", "--full", "--dir", str(vol), "--lock", str(lock.path)]) == 0
        resolved = resolve(vol, Path(str(lock.path)), monkeypatch)
        assert (resolved.commit, resolved.verified) == (commit, "full")
    assert validate(vol, mode="full").files_checked == len(lock_a.models["fin"].files) * 2


def test_b2_relock_with_fewer_files_then_pull_leaves_a_volume_that_validates(upstream, tmp_path: Path,
                                                                             monkeypatch: pytest.MonkeyPatch,
                                                                             capsys: pytest.CaptureFixture[str]) -> None:  # type: ignore[no-untyped-def]
    mirror, _root, v1 = upstream
    vol = tmp_path / "vol"
    write(tmp_path / "models.yaml", SPEC)
    assert main(["lock", "--endpoint", mirror.url]) == 0
    full = tmp_path / "full.lock"
    full.write_bytes((tmp_path / "models.lock").read_bytes())
    assert "onnx/model.onnx" in lockfile.load(full).models["fin"].files
    assert main(["pull", "--target", str(vol), "--endpoint", mirror.url, "--no-progress"]) == 0
    # the reproduction of issue 9 B2: `include:` added, relock, pull the same commit again
    write(tmp_path / "models.yaml", SPEC + "    include: ['*.json', '*.txt']\n")
    assert main(["lock", "--endpoint", mirror.url]) == 0
    fewer = lockfile.load(tmp_path / "models.lock")
    assert fewer.models["fin"].commit == v1 and sorted(fewer.models["fin"].files) == [
        "config.json", "tokenizer_config.json", "vocab.txt"]
    assert main(["pull", "--target", str(vol), "--endpoint", mirror.url, "--no-progress"]) == 0
    capsys.readouterr()
    monkeypatch.setenv("SMM_VOLUME_DIR", str(vol))
    assert main(["validate", "--quick"]) == 0  # ./models.lock, the smaller one
    assert "OK" in capsys.readouterr().out
    assert main(["validate", "--full", "--lock", str(full)]) == 0  # the older lock's pods are fine too
    assert main(["validate", "--full", "--no-lock", "--strict"]) == 0  # nothing unrecorded in the snapshot
    # the files only the full lock pins stayed, recorded; a pod of either lock resolves the same commit and
    # the ONNX file it may open is verified against the record (B2 raised "onnx/model.onnx is not pinned")
    for lock in (full, tmp_path / "models.lock"):
        resolved = resolve(vol, lock, monkeypatch)
        assert resolved.commit == v1 and "onnx/model.onnx" in resolved.files
        pinned_file_verifier(resolved)(resolved.path / "onnx" / "model.onnx")


def test_a_lock_pinning_other_bytes_for_a_provisioned_commit_is_refused_before_downloading(
        upstream, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:  # type: ignore[no-untyped-def]
    mirror, _root, v1 = upstream
    vol = tmp_path / "vol"
    lock = relock(mirror, tmp_path / "models.lock")
    pull(lock, target=vol, endpoint=mirror.url, timeout=10, retries=0)
    text = (tmp_path / "models.lock").read_text()
    sha = lock.models["fin"].files["vocab.txt"].sha256
    (tmp_path / "other.lock").write_text(text.replace(sha, "sha256:" + "0" * 64))
    before = (vol / manifest.MANIFEST_NAME).read_bytes()
    mirror.stats.reset()
    assert main(["pull", "--lock", str(tmp_path / "other.lock"), "--target", str(vol), "--endpoint", mirror.url,
                 "--no-progress"]) == 1
    err = capsys.readouterr().err
    assert "vocab.txt is already on" in err and "sha256:" + "0" * 64 in err and sha in err
    assert mirror.stats.files() == {} and (vol / manifest.MANIFEST_NAME).read_bytes() == before
    assert validate(vol, lock=lock, mode="full").ok


def test_wait_releases_when_a_pull_in_another_process_completes(upstream, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    mirror, root, _v1 = upstream
    vol = tmp_path / "vol"
    lock_a = relock(mirror, tmp_path / "a.lock")
    pull(lock_a, target=vol, endpoint=mirror.url, timeout=10, retries=0)
    version(tmp_path, root, b"two")
    lock_b = relock(mirror, tmp_path / "b.lock")
    env = smm_env(mirror.url)
    waiter = subprocess.Popen(smm_cmd("validate", "--wait", "--timeout", "120", "--interval", "0.2", "--dir", str(vol),
                                      "--lock", str(lock_b.path)), env=env, stdout=subprocess.PIPE,
                              stderr=subprocess.PIPE, text=True)
    try:
        time.sleep(1.5)
        assert waiter.poll() is None  # the volume holds lock A's commit only: the init container blocks
        puller = subprocess.run(smm_cmd("pull", "--lock", str(lock_b.path), "--target", str(vol), "--no-progress"),
                                env=env, capture_output=True, text=True, timeout=120)
        assert puller.returncode == 0, puller.stderr
        out, err = waiter.communicate(timeout=60)
    finally:
        if waiter.poll() is None:
            waiter.kill()
            waiter.communicate()
    assert waiter.returncode == 0, (out, err)
    assert "OK" in out and "waiting for" in err and lock_b.models["fin"].commit in err


def test_wait_times_out_with_exit_1_and_the_findings(tmp_path: Path) -> None:
    vol = tmp_path / "vol"
    vol.mkdir()
    write(tmp_path / "models.lock", f"version: 1\nmodels:\n  fin:\n    repo_id: {REPO}\n    revision: main\n"
          f"    commit: {'a' * 40}\n    model_type: sentiment\n    files:\n"
          f"      config.json: {{size: 1, sha256: 'sha256:{'0' * 64}'}}\n")
    t0 = time.monotonic()
    proc = subprocess.run(smm_cmd("validate", "--wait", "--timeout", "2", "--interval", "0.5", "--dir", str(vol),
                                  "--lock", str(tmp_path / "models.lock"), "--json"), env=smm_env("http://127.0.0.1:9"),
                          capture_output=True, text=True, timeout=60)
    assert proc.returncode == 1 and time.monotonic() - t0 >= 2
    import json

    report = json.loads(proc.stdout)
    assert report["ok"] is False and report["counts"]["missing"] == 1  # the manifest is not there yet
    assert "timed out after 2s" in proc.stderr


def test_prune_keep_locks_removes_only_commits_no_recent_lock_references(upstream, tmp_path: Path,
                                                                        monkeypatch: pytest.MonkeyPatch,
                                                                        capsys: pytest.CaptureFixture[str]) -> None:  # type: ignore[no-untyped-def]
    mirror, root, v1 = upstream
    vol = tmp_path / "vol"
    locks = [relock(mirror, tmp_path / "a.lock")]
    pull(locks[0], target=vol, endpoint=mirror.url, timeout=10, retries=0)
    for seed in (b"two", b"three"):
        version(tmp_path, root, seed)
        locks.append(relock(mirror, tmp_path / f"{seed.decode()}.lock"))
        pull(locks[-1], target=vol, endpoint=mirror.url, timeout=10, retries=0)
    v2, v3 = (lk.models["fin"].commit for lk in locks[1:])
    snaps = vol / "models--org--fin" / "snapshots"
    assert sorted(p.name for p in snaps.iterdir()) == sorted([v1, v2, v3])
    capsys.readouterr()

    # the plan: v1 (only the oldest lock pins it) and its blobs; nothing deleted on a dry run
    assert main(["prune", "--dir", str(vol), "--keep-locks", "2", "--min-age", "0", "--dry-run", "--no-lock"]) == 0
    out = capsys.readouterr().out
    assert "revision" in out and v1 in out and v2 not in out and v3 not in out and "dry run" in out
    assert sorted(p.name for p in snaps.iterdir()) == sorted([v1, v2, v3])

    assert main(["prune", "--dir", str(vol), "--keep-locks", "2", "--min-age", "0", "--no-lock"]) == 0
    assert sorted(p.name for p in snaps.iterdir()) == sorted([v2, v3])
    man = manifest.load(vol / manifest.MANIFEST_NAME)
    assert set(man.models[REPO].commits) == {v2, v3}
    assert [r.digest for r in man.locks] == [locks[1].digest, locks[2].digest]
    for lock in locks[1:]:
        assert validate(vol, lock=lock, mode="full").findings == ()
    assert [f.kind for f in validate(vol, lock=locks[0]).errors] == ["stale"]
    assert validate(vol, mode="full", require_manifest=True).ok  # nothing recorded points at a deleted file

    # rollback: the Job provisions lock A again (v1 comes back and becomes the newest lock); --lock keeps
    # what a still-running ReplicaSet uses even when it is not among the N most recent
    pull(locks[0], target=vol, endpoint=mirror.url, timeout=10, retries=0)
    plan = maintenance_plan(vol, keep_locks=1, lock=locks[1])
    assert plan == {v3}
    assert main(["prune", "--dir", str(vol), "--keep-locks", "1", "--lock", str(locks[1].path), "--min-age", "0"]) == 0
    assert sorted(p.name for p in snaps.iterdir()) == sorted([v1, v2])
    for lock in locks[:2]:
        assert validate(vol, lock=lock, mode="full").findings == ()
        assert resolve(vol, Path(str(lock.path)), monkeypatch).commit == lock.models["fin"].commit
    # --keep-locks counts what a volume's manifest records: a plain cache has none
    assert main(["prune", "--dir", str(tmp_path / "upstream"), "--keep-locks", "1", "--dry-run"]) == 2


def maintenance_plan(vol: Path, **kw) -> set[str]:  # type: ignore[no-untyped-def]
    from smart_model_manager.ops import maintenance

    plan = maintenance.plan_prune(vol, min_age=0, **kw)
    return {Path(i.path).name for i in plan.items if i.kind == "revision"}


def test_a_volume_left_broken_by_b2_before_the_fix_is_repaired_by_the_next_pull(upstream, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    mirror, _root, v1 = upstream
    vol = tmp_path / "vol"
    full = relock(mirror, tmp_path / "full.lock")
    pull(full, target=vol, endpoint=mirror.url, timeout=10, retries=0)
    fewer = relock(mirror, tmp_path / "fewer.lock", SPEC + "    include: ['*.json', '*.txt']\n")
    # what the format-1 provisioner wrote for B2: only the smaller lock's files, the others still on disk
    files = "".join(f"      {rel}: {{size: {f.size}, sha256: '{f.sha256}'}}\n"
                    for rel, f in sorted(fewer.models["fin"].files.items()))
    write(vol / manifest.MANIFEST_NAME, f"format: 1\nverified_at: '2026-11-01T00:00:00Z'\nlock_digest: {fewer.digest}\n"
          f"models:\n  {REPO}:\n    commit: {v1}\n    model_type: sentiment\n    files:\n{files}")
    assert [f.kind for f in validate(vol, lock=fewer).errors] == ["extra"] * 2  # model.safetensors, onnx
    pull(fewer, target=vol, endpoint=mirror.url, timeout=10, retries=0)
    # the unrecorded files were verified against their sha256 blob names and recorded
    assert manifest.load(vol / manifest.MANIFEST_NAME).entry(REPO, v1).files == full.models["fin"].files
    for lock in (full, fewer):
        assert validate(vol, lock=lock, mode="full").findings == ()
