"""A provisioned volume on a REAL read-only bind mount: production loads from it, writes nothing, and
refuses a corrupted file under SMM_VERIFY=full. Needs root (CAP_SYS_ADMIN) for `mount`; skipped otherwise.

Why it matters: huggingface_hub writes ``.locks``, ``refs`` and ``.no_exist`` next to the files it reads
(huggingface_hub #3394, #2797); on a Kubernetes ``readOnly: true`` volume that is a crash at startup.
"""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest
from _volumes import make_volume

from smart_model_manager.formats import manifest
from smart_model_manager.store import layout as store_layout

pytestmark = [pytest.mark.integration, pytest.mark.ml_models, pytest.mark.slow]

REPO = Path(__file__).resolve().parents[2]
REPO_ID = "acme/tiny-finbert"
LOAD = """
import json, sys
from smart_model_manager import get_model_manager
model = get_model_manager().load_model(sys.argv[1], "sentiment")
out = model(["Bitcoin surges to a record high", "Exchange hacked, funds lost"])
print(json.dumps({"info": model.info.as_dict(), "out": out}))
"""


def _mount(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(["mount", *args], capture_output=True, text=True)


@contextlib.contextmanager
def read_only_bind_mount(src: Path, dest: Path) -> Iterator[Path]:
    if sys.platform != "linux" or shutil.which("mount") is None:
        pytest.skip("read-only bind mounts need Linux and mount(8)")
    if os.geteuid() != 0:
        pytest.skip("a read-only bind mount needs root / CAP_SYS_ADMIN; run this test as root or in a "
                    "privileged container (`docker run --privileged`)")
    dest.mkdir(parents=True)
    done = _mount("--bind", str(src), str(dest))
    if done.returncode != 0:
        pytest.skip(f"mount --bind is not permitted here (no CAP_SYS_ADMIN?): {done.stderr.strip()}")
    try:
        done = _mount("-o", "remount,bind,ro", str(dest))
        if done.returncode != 0:
            pytest.skip(f"remounting read-only is not permitted here: {done.stderr.strip()}")
        yield dest
    finally:
        if subprocess.run(["umount", str(dest)], capture_output=True).returncode != 0:
            subprocess.run(["umount", "-l", str(dest)], capture_output=True)  # busy: detach lazily


def snapshot_tree(root: Path) -> dict[str, tuple[int, int, int]]:
    """path -> (mtime_ns, size, mode) of every entry, links not followed."""
    out = {}
    for dirpath, dirs, files in os.walk(root):
        for name in dirs + files:
            p = os.path.join(dirpath, name)
            st = os.lstat(p)
            out[os.path.relpath(p, root)] = (st.st_mtime_ns, st.st_size, st.st_mode)
    return out


def production_env(tmp_path: Path, mount: Path, **extra: str) -> dict[str, str]:
    """A NON-test process: no PYTEST_CURRENT_TEST, SMM_ENV=production, caches pointed away from the volume."""
    env = {k: v for k, v in os.environ.items()
           if not k.startswith(("SMM_", "HF_", "PYTEST_", "TRANSFORMERS_")) and k not in ("MODEL_CACHE_DIR", "TESTING")}
    env.update(SMM_ENV="production", SMM_VOLUME_DIR=str(mount), MODEL_CACHE_DIR=str(tmp_path / "no-cache"),
               HF_HOME=str(tmp_path / "hf-home"), HF_ENDPOINT="http://127.0.0.1:9", SMM_NUM_THREADS="1",
               PYTHONPATH=str(REPO / "src"), **extra)
    return env


@pytest.fixture
def volume(tmp_path: Path, tiny_bert_dir: Path) -> Path:
    v = tmp_path / "volume"
    make_volume(v, {REPO_ID: tiny_bert_dir})
    return v


def test_production_loads_from_a_read_only_mount_and_writes_nothing(volume: Path, tmp_path: Path) -> None:
    before = snapshot_tree(volume)
    with read_only_bind_mount(volume, tmp_path / "mnt") as mnt:
        probe = mnt / "probe"
        with pytest.raises(OSError):  # the mount really is read-only
            probe.write_text("x")
        done = subprocess.run([sys.executable, "-c", LOAD, REPO_ID], env=production_env(tmp_path, mnt),
                              capture_output=True, text=True, timeout=300)
        assert done.returncode == 0, done.stderr[-3000:]
        result = json.loads(done.stdout.strip().splitlines()[-1])
        info = result["info"]
        assert (info["environment"], info["source"], info["backend"]) == ("production", "volume", "torch")
        commit = manifest.load(volume / manifest.MANIFEST_NAME).models[REPO_ID].latest().commit
        assert info["commit"] == commit and info["path"] == str(mnt / store_layout.repo_folder_name(REPO_ID) / "snapshots"
                                                               / commit)
        assert len(result["out"]) == 2
        for row in result["out"]:
            assert [d["label"] for d in row] != [] and abs(sum(d["score"] for d in row) - 1) < 1e-4
            assert {d["label"] for d in row} == {"positive", "negative", "neutral"}

        full = subprocess.run([sys.executable, str(REPO / "scripts" / "validate-models.py"), "--full", "--dir",
                               str(mnt), "--no-lock"], env=production_env(tmp_path, mnt), capture_output=True,
                              text=True, timeout=120)
        assert full.returncode == 0, full.stdout + full.stderr
        assert full.stdout.startswith("OK:")
    after = snapshot_tree(volume)
    assert after == before  # nothing created, changed or touched (mtimes), lock files and refs included
    assert not [p for p in after if Path(p).name == ".no_exist"]
    assert sorted(p for p in after if "/refs/" in p) == [f"{store_layout.repo_folder_name(REPO_ID)}/refs/main"]


def test_a_flipped_byte_is_refused_under_full_verification(volume: Path, tmp_path: Path) -> None:
    commit = manifest.load(volume / manifest.MANIFEST_NAME).models[REPO_ID].latest().commit
    weights = store_layout.repo_dir(volume, REPO_ID) / "snapshots" / commit / "model.safetensors"
    blob = os.path.realpath(weights)
    with open(blob, "r+b") as fh:  # corrupt the source side; the mount shows the same bytes
        fh.seek(os.path.getsize(blob) // 2)
        b = fh.read(1)
        fh.seek(-1, os.SEEK_CUR)
        fh.write(bytes([b[0] ^ 0x01]))
    with read_only_bind_mount(volume, tmp_path / "mnt") as mnt:
        done = subprocess.run([sys.executable, "-c", LOAD, REPO_ID],
                              env=production_env(tmp_path, mnt, SMM_VERIFY="full"),
                              capture_output=True, text=True, timeout=300)
        assert done.returncode != 0
        assert "IntegrityError" in done.stderr and "sha256 mismatch" in done.stderr
        assert "model.safetensors" in done.stderr.strip().splitlines()[-1]

        full = subprocess.run([sys.executable, str(REPO / "scripts" / "validate-models.py"), "--full", "--dir",
                               str(mnt), "--no-lock"], env=production_env(tmp_path, mnt), capture_output=True,
                              text=True, timeout=120)
        assert full.returncode == 1
        assert "corrupt" in full.stdout and "model.safetensors" in full.stdout
