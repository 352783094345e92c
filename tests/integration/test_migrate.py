"""`smm migrate`: an original-design volume, built here, becomes a verified volume that validates and loads
in production; the source is never modified; pickle weights only with consent (and then converted)."""

from __future__ import annotations

import hashlib
import json
import shutil
from pathlib import Path

import pytest

from smart_model_manager import ModelManager
from smart_model_manager.cli.main import main
from smart_model_manager.formats.manifest import load as load_manifest

pytestmark = [pytest.mark.integration, pytest.mark.ml_models]

TEXTS = ["Bitcoin crashes after exchange hack", "Stocks rally to a record high", "Fed holds rates"]


def tree_state(root: Path) -> dict[str, tuple[str, float, int]]:
    """Every entry under root: (sha256 or 'dir', mtime, mode) — any change to the source shows up."""
    out = {}
    for p in sorted(root.rglob("*")):
        st = p.lstat()
        digest = hashlib.sha256(p.read_bytes()).hexdigest() if p.is_file() else "dir"
        out[p.relative_to(root).as_posix()] = (digest, st.st_mtime, st.st_mode)
    return out


@pytest.fixture
def old_volume(tiny_bert_dir: Path, tmp_path: Path) -> Path:
    """The original layout: /app/models/<name>/ per model, an old manifest, pickle and safetensors weights."""
    import torch
    from safetensors.torch import load_file

    root = tmp_path / "app-models"
    root.mkdir()
    shutil.copytree(tiny_bert_dir, root / "finbert")
    (root / "finbert" / "cache_metadata.json").write_text(json.dumps({"model_name": "ProsusAI/finbert",
                                                                      "cache_version": "1.0"}))
    pickled = root / "cryptobert"
    shutil.copytree(tiny_bert_dir, pickled)
    # what transformers 4 wrote with save_pretrained(safe_serialization=False): a pickled state dict
    torch.save(load_file(pickled / "model.safetensors"), pickled / "pytorch_model.bin")
    (pickled / "model.safetensors").unlink()
    assert (pickled / "pytorch_model.bin").is_file() and not (pickled / "model.safetensors").exists()
    (root / "lost+found").mkdir()
    (root / "download.log").write_text("downloaded 2 models\n")
    (root / "model-metadata.yaml").write_text(
        "# written by the original k3s-models.sh\n"
        "models:\n"
        "  finbert:\n    name: ProsusAI/finbert\n    type: sentiment\n    path: /app/models/finbert\n"
        "  cryptobert:\n    name: kk08/CryptoBERT\n    type: sentiment-analysis\n    path: /app/models/cryptobert\n"
        "created_at: '2025-01-01T00:00:00Z'\n")
    return root


def test_dry_run_prints_the_plan_and_writes_nothing(old_volume: Path, tmp_path: Path,
                                                      capsys: pytest.CaptureFixture[str]) -> None:
    before = tree_state(old_volume)
    assert main(["migrate", str(old_volume), "--target", str(tmp_path / "new"), "--dry-run", "--allow-pickle"]) == 0
    out = capsys.readouterr().out
    assert "finbert/ -> ProsusAI/finbert (sentiment, from model-metadata.yaml)" in out
    assert "cryptobert/ -> kk08/CryptoBERT (sentiment, from model-metadata.yaml)" in out
    assert "convert pytorch_model.bin -> model.safetensors" in out
    assert "leaves cache_metadata.json" in out and "ignored: lost+found/ (no config.json" in out
    assert "dry run: 2 model(s) would be migrated; nothing was written" in out
    assert not (tmp_path / "new").exists() and tree_state(old_volume) == before


def test_pickle_without_consent_is_refused_before_anything_is_written(old_volume: Path, tmp_path: Path,
                                                                        capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["migrate", str(old_volume), "--target", str(tmp_path / "new")]) == 1
    captured = capsys.readouterr()
    assert "PROBLEM: weights are pickle only (pytorch_model.bin)" in captured.out and "--allow-pickle" in captured.out
    assert "nothing was written" in captured.err and not (tmp_path / "new").exists()


def test_migrate_validates_and_loads_in_production_and_leaves_the_source_alone(
        old_volume: Path, tiny_bert_dir: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
        capsys: pytest.CaptureFixture[str]) -> None:
    before = tree_state(old_volume)
    new = tmp_path / "new-volume"
    assert main(["migrate", str(old_volume), "--target", str(new), "--allow-pickle",
                 "--map", "finbert=ProsusAI/finbert"]) == 0
    out = capsys.readouterr().out
    assert "migrated 2 model(s)" in out and "full re-validation OK" in out
    assert tree_state(old_volume) == before  # never modified, not even an mtime

    man = load_manifest(new / "model-metadata.yaml")
    assert set(man.models) == {"ProsusAI/finbert", "kk08/CryptoBERT"}
    crypto = man.models["kk08/CryptoBERT"].latest()
    assert "model.safetensors" in crypto.files and not any(f.endswith(".bin") for f in crypto.files)
    assert "cache_metadata.json" not in man.models["ProsusAI/finbert"].latest().files
    assert man.models["kk08/CryptoBERT"].aliases == ("cryptobert",)
    assert crypto.labels == ("positive", "negative", "neutral")
    assert main(["validate", "--dir", str(new), "--full"]) == 0

    monkeypatch.setenv("SMM_VOLUME_DIR", str(new))
    monkeypatch.setenv("SMM_BACKEND", "torch")
    manager = ModelManager(environment="production")
    finbert = manager.load_model("ProsusAI/finbert")
    converted = manager.load_model("cryptobert")  # the old folder name is an alias
    assert finbert.info.source == converted.info.source == "volume"
    assert converted.info.repo_id == "kk08/CryptoBERT"
    from smart_model_manager.loaders import load_runner

    reference = load_runner(tiny_bert_dir, "sentiment", backend="torch")(TEXTS)
    for model in (finbert, converted):  # the converted weights are the same numbers
        for got, want in zip(model.raw(TEXTS), reference):
            assert max(abs(a - b) for a, b in zip(got, want)) < 1e-6


def test_map_and_manifest_json_and_usage_errors(old_volume: Path, tmp_path: Path,
                                                capsys: pytest.CaptureFixture[str]) -> None:
    (old_volume / "model-metadata.yaml").unlink()
    shutil.rmtree(old_volume / "cryptobert")
    (old_volume / "manifest.json").write_text(json.dumps({"models": [{"model_name": "ProsusAI/finbert",
                                                                      "local_path": "/app/models/finbert"}]}))
    assert main(["migrate", str(old_volume), "--target", str(tmp_path / "a"), "--dry-run"]) == 0
    assert "ProsusAI/finbert (sentiment, from manifest.json)" in capsys.readouterr().out
    assert main(["migrate", str(old_volume), "--target", str(tmp_path / "a"), "--dry-run",
                 "--map", "finbert=myorg/finbert-tuned"]) == 0
    assert "myorg/finbert-tuned (sentiment, from --map)" in capsys.readouterr().out
    assert main(["migrate", str(old_volume), "--target", str(tmp_path / "a"), "--map", "nothere=org/x"]) == 2
    assert "--map names no folder" in capsys.readouterr().err
    assert main(["migrate", str(old_volume), "--target", str(tmp_path / "a"), "--map", "finbert=not a repo"]) == 2
    assert main(["migrate", str(old_volume), "--target", str(old_volume / "inside")]) == 2
    assert "must be outside" in capsys.readouterr().err


def test_a_new_format_volume_is_not_migrated_again(old_volume: Path, tmp_path: Path,
                                                   capsys: pytest.CaptureFixture[str]) -> None:
    new = tmp_path / "new"
    assert main(["migrate", str(old_volume), "--target", str(new), "--allow-pickle"]) == 0
    capsys.readouterr()
    assert main(["migrate", str(new), "--target", str(tmp_path / "again")]) == 2
    assert "already a format-" in capsys.readouterr().err
