"""Real `smm pull` processes against a real mirror: 8 at once into one volume, and SIGKILL mid-file then rerun.

While they run, a poller checks that nothing partial is ever visible under ``snapshots/`` and that the
manifest never lists what is not complete.
"""

from __future__ import annotations

import hashlib
import os
import signal
import subprocess
import threading
import time
from pathlib import Path

import pytest

from smart_model_manager.formats import lockfile, manifest
from smart_model_manager.formats.spec import loads as load_spec
from smart_model_manager.mirror import Fault, MirrorServer
from smart_model_manager.ops.lock import resolve_lock
from smart_model_manager.sources.base import Request
from smart_model_manager.sources.volume import VolumeSource

try:
    from ._artifacts_fixtures import hub_like_root, make_sentiment_folder, smm_cmd, smm_env, snapshot_problems, wait_for
except ImportError:
    from _artifacts_fixtures import hub_like_root, make_sentiment_folder, smm_cmd, smm_env, snapshot_problems, wait_for

pytestmark = [pytest.mark.integration, pytest.mark.slow]

SPEC = ("models:\n  fin:\n    repo_id: org/fin\n    model_type: sentiment\n"
        "  fin2:\n    repo_id: org/fin2\n    model_type: sentiment\n")
BIG = 6_000_000


@pytest.fixture
def upstream(tmp_path: Path):  # type: ignore[no-untyped-def]
    root = tmp_path / "upstream"
    hub_like_root(make_sentiment_folder(tmp_path / "src", weights=BIG), root, "org/fin")
    hub_like_root(make_sentiment_folder(tmp_path / "src2", weights=300_000, seed=b"2"), root, "org/fin2")
    with MirrorServer(root) as mirror:
        lock = resolve_lock(load_spec(SPEC, "models.yaml"), mirror.url, timeout=10, retries=0)
        path = tmp_path / "models.lock"
        lockfile.write_lock(path, lock)
        mirror.stats.reset()
        yield mirror, lockfile.load(path)


class Poller:
    """Watches a volume in a thread: every snapshot folder complete, the manifest only listing complete models."""

    def __init__(self, vol: Path, lock: lockfile.Lock):
        self.vol = vol
        self.expected = {e.repo_id: {r: f.size for r, f in e.files.items()} for e in lock.models.values()}
        self.problems: list[str] = []
        self.polls = 0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def _run(self) -> None:
        while not self._stop.is_set():
            for repo, files in self.expected.items():
                self.problems += snapshot_problems(self.vol, repo, files)
            man = self.vol / "model-metadata.yaml"
            if man.exists():
                for entry in manifest.load(man).entries():  # every recorded commit must be complete
                    rid = entry.repo_id
                    snap = self.vol / f"models--{rid.replace('/', '--')}" / "snapshots" / entry.commit
                    for rel, f in entry.files.items():
                        try:
                            size = (snap / rel).stat().st_size
                        except OSError:
                            size = -1
                        if size != f.size:
                            self.problems.append(f"manifest lists {rid}/{rel} but it is not complete")
            self.polls += 1
            time.sleep(0.005)

    def __enter__(self) -> Poller:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join(timeout=5)


def hash_everything(vol: Path, lock: lockfile.Lock) -> None:
    for e in lock.models.values():
        snap = vol / f"models--{e.repo_id.replace('/', '--')}" / "snapshots" / e.commit
        for rel, f in e.files.items():
            assert "sha256:" + hashlib.sha256((snap / rel).read_bytes()).hexdigest() == f.sha256, rel
        VolumeSource(vol).resolve(Request(e.alias, e.repo_id, None, "sentiment", pinned=e, verify="full"))
    assert not (vol / ".staging").exists()  # the last writer out removes the empty folder
    assert list(vol.rglob("*.incomplete")) == []


@pytest.mark.parametrize("flag", ["--target", "--cache-dir"])
def test_eight_concurrent_pulls_into_one_folder(upstream, tmp_path: Path, flag: str) -> None:  # type: ignore[no-untyped-def]
    mirror, lock = upstream
    vol = tmp_path / "vol"
    env = smm_env(mirror.url)
    with Poller(vol, lock) as poller:
        procs = [subprocess.Popen(smm_cmd("pull", "--lock", str(lock.path), flag, str(vol), "--no-progress",
                                          "--jobs", "2"),
                                  env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
                 for _ in range(8)]
        outs = [p.communicate(timeout=180) for p in procs]
    for p, (out, err) in zip(procs, outs):
        assert p.returncode == 0, err
        assert f"2 model(s) verified in {'volume' if flag == '--target' else 'cache'}" in out
    assert poller.problems == [] and poller.polls > 10
    # each file's bytes left the mirror once in total (the per-repo lock + re-check), far below once per process
    stats = mirror.stats.files()
    for e in lock.models.values():
        for rel, f in e.files.items():
            s = stats[f"{e.repo_id}/{rel}"]
            assert s.full_gets + s.range_gets == 1, (rel, s)
            assert s.bytes_served == f.size
    if flag == "--target":
        assert sorted(manifest.load(vol / "model-metadata.yaml").models) == ["org/fin", "org/fin2"]
        hash_everything(vol, lock)
    else:  # a cache gets no manifest; check the bytes directly
        assert not (vol / "model-metadata.yaml").exists()
        for e in lock.models.values():
            snap = vol / f"models--{e.repo_id.replace('/', '--')}" / "snapshots" / e.commit
            for rel, f in e.files.items():
                assert "sha256:" + hashlib.sha256((snap / rel).read_bytes()).hexdigest() == f.sha256


def throttle(mirror: MirrorServer, slow: dict[str, tuple[int, float]]) -> None:
    """Serve the files named in ``slow`` ("org/name/path" -> (piece bytes, pause)) slowly: time to kill mid-file."""
    for key, (piece, pause) in slow.items():
        mirror.inject(Fault("throttles", key, times=1000, after_bytes=piece, seconds=pause))


def staging_bytes(vol: Path) -> int:
    """Largest in-flight download. The puller removes a staging folder as soon as it publishes it, so
    folders and files may vanish while we look: that is the protocol working, not an error."""
    sizes = [0]
    try:
        folders = list((vol / ".staging").iterdir())
    except FileNotFoundError:
        return 0
    for folder in folders:  # staging folders, and their <uuid>.lock files beside them
        try:
            for p in folder.iterdir():
                if p.name.endswith(".incomplete"):
                    sizes.append(p.stat().st_size)
        except (FileNotFoundError, NotADirectoryError):
            continue
    return max(sizes)


def kill_when(proc: subprocess.Popen, predicate) -> None:  # type: ignore[no-untyped-def, type-arg]
    assert wait_for(predicate, timeout=60), "the kill point was never reached"
    os.kill(proc.pid, signal.SIGKILL)
    proc.communicate(timeout=30)
    assert proc.returncode == -signal.SIGKILL


def run_pull(lock_path: str, vol: Path, env: dict[str, str]) -> subprocess.CompletedProcess:  # type: ignore[type-arg]
    return subprocess.run(smm_cmd("pull", "--lock", lock_path, "--target", str(vol), "--no-progress", "--jobs", "1"),
                          env=env, capture_output=True, text=True, timeout=180)


@pytest.mark.parametrize("kill_point", ["first-model-mid-file", "second-model-mid-file"])
def test_sigkill_then_rerun_completes(upstream, tmp_path: Path, monkeypatch, kill_point: str) -> None:  # type: ignore[no-untyped-def]
    mirror, lock = upstream
    throttle(mirror, {"org/fin/model.safetensors": (64 << 10, 0.015),
                           "org/fin2/model.safetensors": (8 << 10, 0.02)})
    vol = tmp_path / "vol"
    env = smm_env(mirror.url)
    fin_snap = vol / "models--org--fin" / "snapshots" / lock.models["fin"].commit
    cmd = smm_cmd("pull", "--lock", str(lock.path), "--target", str(vol), "--no-progress", "--jobs", "1")
    with Poller(vol, lock) as poller:
        proc = subprocess.Popen(cmd, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
        if kill_point == "first-model-mid-file":
            kill_when(proc, lambda: staging_bytes(vol) > BIG // 5)
            assert not (vol / "models--org--fin" / "snapshots").exists()
        else:  # fin is published (complete snapshot), fin2 is half-way, the manifest is not written yet
            kill_when(proc, lambda: fin_snap.is_dir() and staging_bytes(vol) > 50_000)
            assert not (vol / "models--org--fin2" / "snapshots").exists()
        # what a SIGKILL leaves: a staging folder nobody reads, and no manifest
        assert [p for p in (vol / ".staging").iterdir() if p.is_dir()] != []
        assert not (vol / "model-metadata.yaml").exists()
        rerun = run_pull(str(lock.path), vol, env)
    assert rerun.returncode == 0, rerun.stderr
    assert poller.problems == [] and poller.polls > 10
    hash_everything(vol, lock)


def test_sigkill_while_upgrading_a_volume_keeps_the_old_version_valid(upstream, tmp_path: Path,
                                                                      monkeypatch) -> None:  # type: ignore[no-untyped-def]
    mirror, lock = upstream
    vol = tmp_path / "vol"
    env = smm_env(mirror.url)
    assert run_pull(str(lock.path), vol, env).returncode == 0
    # upstream publishes a new version of org/fin; the lock moves to it
    new_src = make_sentiment_folder(tmp_path / "src-v2", weights=BIG, seed=b"v2")
    new_commit = hub_like_root(new_src, mirror.index.root, "org/fin")
    lock2 = resolve_lock(load_spec(SPEC, "models.yaml"), mirror.url, timeout=10, retries=0)
    assert lock2.models["fin"].commit == new_commit != lock.models["fin"].commit
    lockfile.write_lock(tmp_path / "models-v2.lock", lock2)
    throttle(mirror, {"org/fin/model.safetensors": (64 << 10, 0.015)})
    proc = subprocess.Popen(smm_cmd("pull", "--lock", str(tmp_path / "models-v2.lock"), "--target", str(vol),
                                    "--no-progress"), env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    kill_when(proc, lambda: staging_bytes(vol) > BIG // 5)
    # readers still get the old, complete, verified version
    man = manifest.load(vol / "model-metadata.yaml")
    assert man.models["org/fin"].latest().commit == lock.models["fin"].commit
    old = VolumeSource(vol).resolve(Request("fin", "org/fin", None, "sentiment", verify="full"))
    assert old.commit == lock.models["fin"].commit
    rerun = run_pull(str(tmp_path / "models-v2.lock"), vol, env)
    assert rerun.returncode == 0, rerun.stderr
    assert set(manifest.load(vol / "model-metadata.yaml").models["org/fin"].commits) == {
        new_commit, lock.models["fin"].commit}  # the upgrade added the new commit next to the old one
    hash_everything(vol, lockfile.load(tmp_path / "models-v2.lock"))
    hash_everything(vol, lock)  # and the old lock's pods still load theirs
