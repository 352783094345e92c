"""A pulled volume is a standard HF cache: vanilla transformers loads from it offline (in a subprocess, with
only HF_HUB_CACHE and HF_HUB_OFFLINE set), and our own API loads the same model through the lock's alias
(dev: downloaded on demand and verified; production: from the volume)."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from smart_model_manager import ModelManager, Settings
from smart_model_manager.formats import lockfile
from smart_model_manager.formats.spec import loads as load_spec
from smart_model_manager.mirror import MirrorServer
from smart_model_manager.ops.lock import resolve_lock
from smart_model_manager.ops.pull import pull

try:
    from ._artifacts_fixtures import hub_like_root, smm_env
    from ._mirror_fixtures import build_tiny_bert
except ImportError:
    from _artifacts_fixtures import hub_like_root, smm_env
    from _mirror_fixtures import build_tiny_bert

pytestmark = [pytest.mark.integration, pytest.mark.ml_models, pytest.mark.slow]

REPO = "org/tinybert"
SPEC = "models:\n  tiny:\n    repo_id: org/tinybert\n    model_type: sentiment\n"

PROBE = """
import json, sys, torch
from transformers import AutoModelForSequenceClassification, AutoTokenizer
tok = AutoTokenizer.from_pretrained(sys.argv[1])
model = AutoModelForSequenceClassification.from_pretrained(sys.argv[1]).eval()
with torch.no_grad():
    logits = model(**tok(["BTC rallies", "stocks slump"], return_tensors="pt", padding=True)).logits
print(json.dumps({"labels": [model.config.id2label[i] for i in range(3)], "logits": logits.tolist()}))
"""


@pytest.fixture(scope="module")
def tiny(tmp_path_factory: pytest.TempPathFactory):  # type: ignore[no-untyped-def]
    base = tmp_path_factory.mktemp("interop")
    src = build_tiny_bert(base / "src")
    root = base / "upstream"
    commit = hub_like_root(src, root, REPO)
    with MirrorServer(root) as mirror:
        lock = resolve_lock(load_spec(SPEC, "models.yaml"), mirror.url, timeout=10, retries=0)
        lockfile.write_lock(base / "models.lock", lock)
        yield mirror, src, commit, lockfile.load(base / "models.lock")


def probe(model: str, env: dict[str, str]) -> dict:  # type: ignore[type-arg]
    out = subprocess.run([sys.executable, "-c", PROBE, model], env=env, capture_output=True, text=True, timeout=300)
    assert out.returncode == 0, out.stderr[-3000:]
    return json.loads(out.stdout.strip().splitlines()[-1])


def test_vanilla_transformers_loads_the_volume_offline(tiny, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    mirror, src, commit, lock = tiny
    vol = tmp_path / "vol"
    pull(lock, target=vol, endpoint=mirror.url, timeout=10, retries=0)
    env = {k: v for k, v in smm_env("http://127.0.0.1:9").items() if not k.startswith("HF_ENDPOINT")}
    env.update(HF_HUB_CACHE=str(vol), HF_HUB_OFFLINE="1", HF_HOME=str(tmp_path / "home"))
    from_volume = probe(REPO, env)
    reference = probe(str(src), env)
    assert from_volume["labels"] == ["negative", "neutral", "positive"]
    assert from_volume == reference  # same bytes, same outputs


def test_load_model_by_alias_dev_downloads_then_production_reads_the_volume(tiny, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    mirror, src, commit, lock = tiny
    cache = tmp_path / "cache"
    dev = ModelManager("dev", settings=Settings.from_env({
        "HF_ENDPOINT": mirror.url, "MODEL_CACHE_DIR": str(cache), "SMM_BACKEND": "torch"}), lock=lock)
    model = dev.load_model("tiny", "sentiment")
    assert model.info.source == "hub" and model.info.commit == commit and model.info.repo_id == REPO
    scores = model("BTC rallies")
    assert sorted(s["label"] for s in scores) == ["negative", "neutral", "positive"]
    assert abs(sum(s["score"] for s in scores) - 1) < 1e-5

    vol = tmp_path / "vol"
    pull(lock, target=vol, endpoint=mirror.url, timeout=10, retries=0)
    prod = ModelManager("production", settings=Settings.from_env({
        "SMM_VOLUME_DIR": str(vol), "SMM_VERIFY": "full", "SMM_BACKEND": "torch"}), lock=lock)
    again = prod.load_model("tiny", "sentiment")
    assert again.info.source == "volume" and again.info.commit == commit
    assert again("BTC rallies") == scores  # same verified bytes -> same answer
