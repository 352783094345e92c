#!/usr/bin/env bash
# Lowest-versions check: install the LOWEST versions pyproject.toml allows for every direct dependency
# (`uv pip install --resolution lowest-direct`) into a separate virtual environment, then run the unit
# suite, one export test and one service test there. A floor that admits a broken install fails here.
#
# The environment is its own (SMM_LOWEST_VENV, default build/lowest-venv); the project's .venv is never
# touched. torch is the one exception to "lowest": PyPI's Linux torch is the CUDA build (about 2.7 GB with
# its nvidia packages), so torch comes, as in scripts/setup.sh, from the CPU wheel index (SMM_TORCH_INDEX)
# or from the find-links folder pip is configured with, at the version constraints.txt pins.
set -euo pipefail
cd "$(dirname "$0")/.."
PY=${PYTHON:-python3}
VENV=${SMM_LOWEST_VENV:-build/lowest-venv}
TORCH_INDEX=${SMM_TORCH_INDEX:-https://download.pytorch.org/whl/cpu}
start=$SECONDS

if [ ! -x "$VENV/bin/uv" ]; then
  echo "== lowest: creating $VENV and installing uv into it"
  "$PY" -m venv "$VENV"
  "$VENV/bin/python" -m pip install -q uv
fi

# uv does not read pip's configuration: hand it the same find-links folder pip uses, if any.
if [ -z "${UV_FIND_LINKS:-}" ]; then
  links=${PIP_FIND_LINKS:-$("$VENV/bin/python" -m pip config get global.find-links 2>/dev/null || true)}
  [ -n "$links" ] && export UV_FIND_LINKS="$links"
fi
torch_pin=$(grep -E '^torch==' constraints.txt | head -1)
constraints=$(mktemp)
trap 'rm -f "$constraints"' EXIT
echo "${torch_pin}+cpu" > "$constraints"   # the CPU build, never PyPI's CUDA build
index_args=()
if "$VENV/bin/python" - "$TORCH_INDEX" <<'PYEOF'
import sys, urllib.request
try:  # one probe, 5 s, as in scripts/setup.sh
    urllib.request.urlopen(sys.argv[1].rstrip("/") + "/torch/", timeout=5).close()
except Exception:
    sys.exit(1)
PYEOF
then
  index_args=(--extra-index-url "$TORCH_INDEX" --index-strategy unsafe-best-match)
fi

echo "== lowest: uv pip install --resolution lowest-direct -e .[all,dev] (${torch_pin}+cpu)"
VIRTUAL_ENV="$VENV" "$VENV/bin/uv" pip install --quiet --python "$VENV/bin/python" \
  --resolution lowest-direct -c "$constraints" "${index_args[@]}" -e ".[all,dev]"
echo "== lowest: installed (direct dependencies at their floors):"
"$VENV/bin/python" - <<'PYEOF'
import importlib.metadata as m
names = ["huggingface_hub", "httpx2", "transformers", "torch", "tokenizers", "safetensors", "onnx", "onnxruntime",
         "onnxscript", "numpy", "fastapi", "starlette", "pydantic", "uvicorn", "prometheus-client", "click", "rich",
         "opentelemetry-sdk"]
print("   " + ", ".join(f"{n} {m.version(n)}" for n in names))
PYEOF

echo "== lowest: unit suite + one export test + one service test"
"$VENV/bin/python" -m pytest -p no:cacheprovider -q -m "not real_models" tests/unit \
  "tests/integration/test_export_to_volume.py::test_hub_model_without_onnx_is_exported_locked_provisioned_and_served_without_torch" \
  "tests/integration/test_service.py::test_sentiment_returns_every_label_in_input_order" "$@"
echo "== lowest: done in $((SECONDS - start)) s"
