"""bench/bench_gpu.py runs: its CPU smoke mode on a tiny model, every path measured and compared.

The GPU numbers themselves come from a GPU machine (docs/benchmarks.md); this only proves the script
works end to end, so the next run on a GPU does not fail on a typo.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

pytestmark = [pytest.mark.integration, pytest.mark.ml_models]

REPO = Path(__file__).resolve().parents[2]
SCRIPT = REPO / "bench" / "bench_gpu.py"


def test_smoke_mode_measures_every_cpu_path(tiny_bert_dir: Path, tmp_path: Path) -> None:
    out = tmp_path / "gpu.json"
    r = subprocess.run([sys.executable, str(SCRIPT), "--device", "cpu", "--n", "48", "--repeats", "1",
                        "--latency-batch", "16", "--model-dir", f"tiny={tiny_bert_dir}", "--out", str(out)],
                       capture_output=True, text=True, timeout=300, cwd=tmp_path)
    assert r.returncode == 0, r.stderr[-3000:]
    data = json.loads(out.read_text())
    tiny = data["models"]["tiny"]
    assert set(tiny["paths"]) == {"cpu-fp32", "smm-default", "pipeline-fp32", "lean-ref"}
    assert set(tiny["skipped"]) == {"smm-onnx-cuda", "pipeline-fp16"}
    for name, p in tiny["paths"].items():
        assert p["headlines_per_s"] > 0 and p["p50_batch_ms"] <= p["p95_batch_ms"], name
        assert p["peak_gpu_mb"] is None, name
        if name != "cpu-fp32":  # every fp32 path computes the same probabilities as the reference
            assert p["label_agreement"] == 1.0 and p["max_prob_diff"] < 1e-4, (name, p)
    assert tiny["paths"]["smm-default"]["device"] == "cpu"
    assert "acceptance" not in tiny  # judged on a GPU only
    assert data["texts"] == 48 and "smm-default / pipeline-fp32" in tiny["ratios"]


def test_asking_for_cuda_without_a_gpu_fails_clearly(tiny_bert_dir: Path, tmp_path: Path) -> None:
    from smart_model_manager.loaders.device import gpu_driver_present

    if gpu_driver_present():
        pytest.skip("this machine has a GPU driver")
    r = subprocess.run([sys.executable, str(SCRIPT), "--device", "cuda", "--n", "8",
                        "--model-dir", f"tiny={tiny_bert_dir}", "--out", str(tmp_path / "x.json")],
                       capture_output=True, text=True, timeout=300, cwd=tmp_path)
    assert r.returncode != 0 and "SMM_DEVICE=cuda but there is no usable GPU" in r.stderr
    assert not (tmp_path / "x.json").exists()
