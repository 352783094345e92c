"""A Hub model that has no ONNX files (FinBERT's case) served by the torch-free image, end to end.

The recipe of docs/kubernetes.md ("A Hub model without ONNX files"), command by command through the real
CLI, real mirrors on 127.0.0.1 and a real volume:

1. ``smm pull org/tiny --cache-dir BUILD`` from the "Hub" (a mirror of safetensors only);
2. ``smm export onnx org/tiny --cache-dir BUILD`` adds the verified ONNX files to that commit's snapshot;
3. ``smm mirror serve --root BUILD`` and ``smm lock --endpoint`` that mirror: the lock pins the Hub's
   commit plus the exported files, every one by sha256;
4. ``smm pull --target VOLUME`` (the provisioning Job) and ``smm validate --full``;
5. a production process **that cannot import torch or transformers** loads it with the ONNX backend,
   the Hub's commit, and the same probabilities as torch on the original weights.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from smart_model_manager import ModelManager
from smart_model_manager.cli.main import main
from smart_model_manager.formats import lockfile
from smart_model_manager.mirror import MirrorServer

try:
    from ._artifacts_fixtures import hub_like_root, make_sentiment_folder
except ImportError:
    from _artifacts_fixtures import hub_like_root, make_sentiment_folder

pytestmark = [pytest.mark.integration, pytest.mark.ml_models]

TEXTS = ["BTC hits a record high", "Exchange halts withdrawals after hack", "Quarterly results in line"]
LOAD_WITHOUT_TORCH = """
import json, sys
sys.modules["torch"] = None          # any import of torch or transformers now fails
sys.modules["transformers"] = None
from smart_model_manager import get_model_manager
m = get_model_manager().load_model("tiny")
print(json.dumps({"backend": m.info.backend, "source": m.info.source, "commit": m.info.commit,
                  "environment": m.info.environment, "raw": m.raw(json.loads(sys.argv[1]))}))
"""


def _smm(*args: str) -> int:
    try:
        return main(list(args))
    except SystemExit as stop:  # click's standalone mode
        return int(stop.code or 0)


@pytest.fixture
def work(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.chdir(tmp_path)
    for k in list(os.environ):
        if k.startswith(("HF_", "SMM_")) or k == "MODEL_CACHE_DIR":
            monkeypatch.delenv(k)
    monkeypatch.setenv("SMM_ENV", "dev")  # the build machine: not the test environment's mocks
    monkeypatch.setenv("SMM_TIMEOUT", "10")
    monkeypatch.setenv("SMM_RETRIES", "1")
    return tmp_path


def test_hub_model_without_onnx_is_exported_locked_provisioned_and_served_without_torch(
        tiny_bert_dir: Path, work: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    hub_commit = hub_like_root(tiny_bert_dir, work / "hub", "org/tiny")
    assert not any("onnx" in p.name for p in (work / "hub").rglob("*"))  # the "Hub" has no ONNX files
    build, vol = work / "build-cache", work / "volume"

    with MirrorServer(work / "hub") as hub:
        monkeypatch.setenv("HF_ENDPOINT", hub.url)
        assert _smm("pull", "org/tiny", "--cache-dir", str(build)) == 0             # 1. from the Hub
        hub_lock = lockfile.load(work / "models.lock")
        assert not [f for f in hub_lock.models["tiny"].files if f.startswith("onnx/")]
        assert _smm("export", "onnx", "org/tiny", "--cache-dir", str(build)) == 0   # 2. export
        with MirrorServer(build) as build_mirror:                                     # 3. lock against it
            monkeypatch.setenv("HF_ENDPOINT", build_mirror.url)
            assert _smm("lock", "--endpoint", build_mirror.url) == 0
            lock = lockfile.load(work / "models.lock").models["tiny"]
            assert lock.commit == hub_commit  # the Hub's commit, plus the exported files
            assert {"onnx/model.onnx", "onnx/quality.json"} <= set(lock.files)
            assert all(f.sha256.startswith("sha256:") and f.size for f in lock.files.values())
            assert _smm("lock", "--check", "--endpoint", build_mirror.url) == 0
            # 4. the provisioning Job: pull into the volume, then the full re-hash
            assert _smm("pull", "--target", str(vol)) == 0
        # checked against the Hub, the lock is stale: the Hub does not have the exported files
        assert _smm("lock", "--check", "--endpoint", hub.url) == 1
    monkeypatch.delenv("HF_ENDPOINT")
    assert _smm("validate", "--dir", str(vol), "--lock", str(work / "models.lock"), "--full") == 0

    # 5. production, no torch: the verified ONNX file from the read-only-style volume
    env = {k: v for k, v in os.environ.items() if not k.startswith(("HF_", "SMM_", "PYTEST_"))}
    env.update(SMM_VOLUME_DIR=str(vol), SMM_ENV="production", SMM_LOCK=str(work / "models.lock"))
    out = subprocess.run([sys.executable, "-c", LOAD_WITHOUT_TORCH, json.dumps(TEXTS)], env=env,
                         capture_output=True, text=True, timeout=300, cwd=work)
    assert out.returncode == 0, out.stderr[-2000:]
    got = json.loads(out.stdout.strip().splitlines()[-1])
    assert got["environment"] == "production" and got["source"] == "volume"
    assert got["backend"] in ("onnx", "onnx-int8") and got["commit"] == hub_commit, got
    print(f"production backend: {got['backend']}")
    # the same answers as torch on the original weights (fp32 ONNX: 1e-4; the gated int8 copy: 0.02, and
    # the same label wherever torch's top two are further apart than that)
    monkeypatch.setenv("SMM_VOLUME_DIR", str(vol))
    monkeypatch.setenv("SMM_LOCK", str(work / "models.lock"))
    ref = ModelManager(environment="production", backend="torch").load_model("tiny").raw(TEXTS)
    for a, b in zip(got["raw"], ref):
        if got["backend"] == "onnx":
            assert a == pytest.approx(b, abs=1e-4)
        else:
            assert a == pytest.approx(b, abs=0.02)
            top, second = sorted(b, reverse=True)[:2]
            if top - second > 0.02:
                assert a.index(max(a)) == b.index(max(b))


def test_export_onto_a_provisioned_volume_is_refused_before_anything_is_written(work: Path,
                                                                                capsys: pytest.CaptureFixture[str]):
    vol = work / "volume"
    assert _smm("import", str(make_sentiment_folder(work / "src")), "--as", "org/fin", "--target", str(vol)) == 0
    before = sorted(p.relative_to(vol).as_posix() for p in vol.rglob("*"))
    capsys.readouterr()
    assert _smm("export", "onnx", "org/fin", "--cache-dir", str(vol)) == 1
    err = capsys.readouterr().err
    assert "is a provisioned volume" in err and "model-metadata.yaml" in err and "nothing was written" in err
    assert "Traceback" not in err
    assert sorted(p.relative_to(vol).as_posix() for p in vol.rglob("*")) == before
    assert _smm("validate", "--dir", str(vol)) == 0
