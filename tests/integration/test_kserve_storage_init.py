"""The KServe storage initializer of deploy/kserve, run for real: the rendered ClusterStorageContainer's own
command, with the two arguments KServe gives it (the storageUri and the folder to fill), against a real
mirror on 127.0.0.1. It must leave a volume that validates against the lock and loads in production, and
must refuse, publishing nothing, when the endpoint serves other bytes than the lock pins."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest
from _artifacts_fixtures import hub_like_root, make_sentiment_folder, smm_env

from smart_model_manager.formats import lockfile
from smart_model_manager.formats.spec import loads as load_spec
from smart_model_manager.mirror import MirrorServer
from smart_model_manager.ops.lock import resolve_lock

pytestmark = pytest.mark.integration

REPO = Path(__file__).resolve().parents[2]
SPEC = "models:\n  fin:\n    repo_id: org/fin\n    model_type: sentiment\n"


def _storage_command() -> list[str]:
    sys.path.insert(0, str(REPO / "tests"))
    from _k8s_policy import render

    (csc,) = [o for o in render(REPO / "deploy" / "kserve") if o["kind"] == "ClusterStorageContainer"]
    return csc["spec"]["container"]["command"]


def _run(command: list[str], uri: str, dest: Path, lock_text: str, endpoint: str) -> subprocess.CompletedProcess[str]:
    env = smm_env(endpoint, SMM_LOCK_TEXT=lock_text, SMM_RETRIES="0")
    # `smm` on PATH, as in the image: this interpreter's scripts folder
    env["PATH"] = f"{Path(sys.executable).parent}{os.pathsep}{env.get('PATH', '')}"
    return subprocess.run([*command, uri, str(dest)], env=env, capture_output=True, text=True, timeout=300)


@pytest.fixture
def upstream(tmp_path: Path):  # type: ignore[no-untyped-def]
    root = tmp_path / "upstream"
    src = make_sentiment_folder(tmp_path / "src", weights=200_000)
    hub_like_root(src, root, "org/fin")
    with MirrorServer(root) as mirror:
        lock = resolve_lock(load_spec(SPEC, "models.yaml"), mirror.url, timeout=10, retries=0)
        path = tmp_path / "models.lock"
        lockfile.write_lock(path, lock)
        mirror.stats.reset()  # what pinning read is not what the storage initializer downloads
        yield mirror, root, path.read_text()


def test_the_storage_initializer_provisions_a_verified_volume_that_loads_in_production(upstream, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    mirror, _root, lock_text = upstream
    dest = tmp_path / "mnt-models"
    dest.mkdir()  # KServe mounts an empty folder there
    proc = _run(_storage_command(), "smm://fin", dest, lock_text, mirror.url)
    assert proc.returncode == 0, proc.stderr
    assert (dest / "model-metadata.yaml").is_file() and (dest / ".smm" / "models.lock").read_text() == lock_text + "\n"
    check = subprocess.run([sys.executable, "-m", "smart_model_manager.cli.main", "validate", "--dir", str(dest),
                            "--full", "--lock", str(dest / ".smm" / "models.lock")],
                           env=smm_env(mirror.url), capture_output=True, text=True, timeout=300)
    assert check.returncode == 0 and check.stdout.startswith("OK"), check.stdout + check.stderr
    # the predictor's environment (inferenceservice-sentiment.yaml): production, offline, from the volume
    # (resolved and fully verified as load_model does; the test weights are not a loadable network)
    code = ("from smart_model_manager import get_model_manager; r = get_model_manager().resolve('fin'); "
            "print(r.source, r.repo_id, r.commit)")
    env = smm_env("http://127.0.0.1:9", SMM_ENV="production", SMM_VOLUME_DIR=str(dest), HF_HUB_OFFLINE="1",
                  SMM_LOCK=str(dest / ".smm" / "models.lock"), SMM_VERIFY="full")
    load = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True, timeout=300)
    commit = lockfile.loads(lock_text).models["fin"].commit
    assert load.returncode == 0 and load.stdout.split() == ["volume", "org/fin", commit], load.stdout + load.stderr


def test_other_bytes_at_the_endpoint_fail_the_pod_and_publish_nothing(upstream, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    mirror, root, lock_text = upstream
    for blob in (root / "models--org--fin" / "blobs").iterdir():  # the mirror now serves tampered weights
        if blob.stat().st_size > 100_000:
            data = bytearray(blob.read_bytes())
            data[1000] ^= 0xFF
            blob.chmod(0o644)
            blob.write_bytes(bytes(data))
    dest = tmp_path / "mnt-models"
    dest.mkdir()
    proc = _run(_storage_command(), "smm://fin", dest, lock_text, mirror.url)
    assert proc.returncode != 0
    assert "sha256" in proc.stderr and "nothing unverified was published" in proc.stderr, proc.stderr
    assert not (dest / "model-metadata.yaml").exists()


def test_an_alias_the_lock_does_not_have_is_refused_before_any_download(upstream, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    mirror, _root, lock_text = upstream
    dest = tmp_path / "mnt-models"
    dest.mkdir()
    proc = _run(_storage_command(), "smm://not-in-the-lock", dest, lock_text, mirror.url)
    assert proc.returncode != 0 and "not-in-the-lock" in proc.stderr, proc.stderr
    assert mirror.stats.files() == {}
    assert not (dest / "model-metadata.yaml").exists()
