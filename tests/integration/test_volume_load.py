"""Production: the same load_model() call reads a provisioned volume, verified, and never mocks."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
from _volumes import make_volume

from smart_model_manager import IntegrityError, ManifestError, MissingFileError, ModelManager, ModelNotFoundError
from smart_model_manager.formats import manifest
from smart_model_manager.sources.known_models import DEMO_REPO_ID
from smart_model_manager.store import cache as store, layout as store_layout

pytestmark = [pytest.mark.integration, pytest.mark.ml_models]

PROBE = r"""
import json, sys
from smart_model_manager import get_model_manager, ModelNotFoundError
mm = get_model_manager()
m = mm.load_model(sys.argv[1], "sentiment")
texts = ["Bitcoin crashes 20% after exchange hack", "ETF inflows push BTC to a record high",
         "The central bank will publish its minutes on Wednesday"]
out = {"env": mm.environment, "reason": mm.detection.reason, "info": m.info.as_dict(), "labels": list(m.labels),
       "raw": m.raw(texts), "pretty": m(texts[0])}
try:
    mm.load_model("ProsusAI/finbert", "sentiment")
except ModelNotFoundError as e:
    out["finbert_error"] = str(e)
from transformers import pipeline  # the reference: plain transformers on the same folder
pipe = pipeline("text-classification", model=m.info.path, top_k=None)
out["reference"] = [{d["label"]: d["score"] for d in row} for row in pipe(texts)]
print(json.dumps(out))
"""


def clean_env(**extra: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items()
           if not k.startswith(("PYTEST_", "SMM_")) and k not in ("TESTING", "CI", "GITHUB_ACTIONS")}
    env.update(extra)
    return env


def test_non_test_process_loads_the_real_demo_model_from_the_volume(demo_volume: Path, tmp_path: Path):
    env = clean_env(SMM_VOLUME_DIR=str(demo_volume), HOME=str(tmp_path), SMM_BACKEND="torch",
                    SMM_VERIFY="full", MODEL_CACHE_DIR=str(tmp_path / "cache"))
    r = subprocess.run([sys.executable, "-c", PROBE, DEMO_REPO_ID], capture_output=True, text=True, env=env,
                       timeout=300)
    assert r.returncode == 0, r.stderr[-3000:]
    out = json.loads(r.stdout.strip().splitlines()[-1])
    assert out["env"] == "production" and "volume manifest" in out["reason"]
    info = out["info"]
    assert (info["source"], info["backend"], info["environment"]) == ("volume", "torch", "production")
    assert info["path"].startswith(str(demo_volume)) and len(info["commit"]) == 40
    assert out["labels"] == ["positive", "negative", "neutral"]
    # the manager's scores are the real model's: equal to plain transformers.pipeline on the same folder
    for probs, ref in zip(out["raw"], out["reference"]):
        assert sum(probs) == pytest.approx(1.0, abs=1e-5)
        for label, p in zip(out["labels"], probs):
            assert p == pytest.approx(ref[label], abs=1e-5)
    assert out["pretty"][0]["label"] == "negative"  # the trained demo model gets the obvious one right
    # a model that is not on the volume is an error naming what was tried, never a mock
    assert "not on the volume" in out["finbert_error"] and "smm pull --target" in out["finbert_error"]
    assert not (tmp_path / "cache").exists()  # production wrote no cache


@pytest.fixture
def tiny_volume(tiny_bert_dir: Path, tmp_path: Path) -> Path:
    root = tmp_path / "vol"
    make_volume(root, {"org/tiny": tiny_bert_dir})
    return root


def _blob_of(volume: Path, repo_id: str, rel: str) -> Path:
    snap = store.find_snapshot(volume, repo_id) or next((store_layout.repo_dir(volume, repo_id) / "snapshots").iterdir())
    return (snap / rel).resolve()


def test_flipped_byte_with_full_verification_refuses_naming_file_expected_actual(tiny_volume: Path, monkeypatch):
    blob = _blob_of(tiny_volume, "org/tiny", "model.safetensors")
    data = bytearray(blob.read_bytes())
    data[len(data) // 2] ^= 0x01
    blob.write_bytes(bytes(data))
    monkeypatch.setenv("SMM_VOLUME_DIR", str(tiny_volume))
    monkeypatch.setenv("SMM_VERIFY", "full")
    with pytest.raises(IntegrityError) as exc:
        ModelManager(environment="production").load_model("org/tiny")
    msg = str(exc.value)
    assert "model.safetensors" in msg and "expected sha256:" in msg and "actual sha256:" in msg
    assert exc.value.expected != exc.value.actual


def test_quick_verification_catches_a_truncated_file(tiny_volume: Path, monkeypatch):
    blob = _blob_of(tiny_volume, "org/tiny", "model.safetensors")
    with open(blob, "r+b") as fh:
        fh.truncate(100)
    monkeypatch.setenv("SMM_VOLUME_DIR", str(tiny_volume))
    with pytest.raises(IntegrityError, match="size mismatch"):
        ModelManager(environment="production").load_model("org/tiny")


def test_manifest_naming_a_missing_file_names_model_and_file(tiny_volume: Path, monkeypatch):
    import dataclasses

    man_path = tiny_volume / manifest.MANIFEST_NAME
    man = manifest.load(man_path)
    entry = man.models["org/tiny"].latest()
    files = {**entry.files, "extra_weights.bin": manifest.FileEntry(1, "sha256:" + "0" * 64)}
    man = manifest.Manifest.of([dataclasses.replace(entry, files=files)])
    man_path.write_text(man.dumps())
    monkeypatch.setenv("SMM_VOLUME_DIR", str(tiny_volume))
    with pytest.raises(MissingFileError, match=r"org/tiny: file 'extra_weights.bin'"):
        ModelManager(environment="production").load_model("org/tiny")


def test_malformed_manifest_in_production_names_file_and_line(tiny_volume: Path, monkeypatch):
    man_path = tiny_volume / manifest.MANIFEST_NAME
    lines = man_path.read_text().splitlines()
    idx = next(i for i, line in enumerate(lines) if "model_type:" in line)
    lines[idx] = "        model_type: [not, a, type]"
    man_path.write_text("\n".join(lines) + "\n")
    monkeypatch.setenv("SMM_VOLUME_DIR", str(tiny_volume))
    with pytest.raises(ManifestError) as exc:
        ModelManager(environment="production").load_model("org/tiny")
    assert exc.value.line == idx + 1 and str(man_path) in str(exc.value)


def test_production_never_mocks_a_model_missing_from_the_volume(tiny_volume: Path, monkeypatch):
    monkeypatch.setenv("SMM_VOLUME_DIR", str(tiny_volume))
    with pytest.raises(ModelNotFoundError) as exc:
        ModelManager(environment="production").load_model("ProsusAI/finbert")
    assert exc.value.attempts == [("volume", exc.value.attempts[0][1])]
    assert "org/tiny" in str(exc.value)  # says what the volume does have


def test_resolve_gives_the_verified_folder_for_own_loaders(tiny_volume: Path, monkeypatch):
    monkeypatch.setenv("SMM_VOLUME_DIR", str(tiny_volume))
    r = ModelManager(environment="production").resolve("org/tiny")
    assert r.source == "volume" and (r.path / "config.json").is_file() and r.verified == "quick"
    from transformers import AutoConfig

    assert AutoConfig.from_pretrained(r.path).num_labels == 3


def test_dev_cache_source_finds_what_huggingface_hub_layout_holds(tiny_bert_dir: Path, smm_cache: Path):
    res = store.import_folder(tiny_bert_dir, smm_cache, "org/tiny")
    m = ModelManager(environment="dev", backend="torch").load_model("org/tiny")
    assert m.info.source == "cache" and m.info.commit == res.commit
    assert len(m(["BTC up", "ETH down"])) == 2


def test_pickle_weights_are_refused_unless_opted_in(tiny_bert_dir: Path, smm_cache: Path, tmp_path: Path):
    import torch
    from safetensors.torch import load_file

    folder = tmp_path / "pickle-model"
    shutil.copytree(tiny_bert_dir, folder)
    torch.save(load_file(folder / "model.safetensors"), folder / "pytorch_model.bin")
    (folder / "model.safetensors").unlink()
    store.import_folder(folder, smm_cache, "org/pickled")
    from smart_model_manager import BackendError

    with pytest.raises(BackendError, match="pickle"):
        ModelManager(environment="dev", backend="torch").load_model("org/pickled")
