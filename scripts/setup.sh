#!/usr/bin/env bash
# Create .venv and install smart-model-manager with every extra, with the CPU-only build of torch.
# Idempotent: a second run only checks that everything is installed.
#
# Why two steps: PyPI's torch for Linux x86_64 is the CUDA build, which pulls ~19 nvidia/cuda/triton
# packages (about 2.2 GB on top of torch's 0.5 GB; see README "Installing"). So torch is installed
# first from PyTorch's CPU wheel index (SMM_TORCH_INDEX, default below), probed once with a short
# timeout; if that index cannot be reached, torch comes from your configured index (PyPI) with a
# visible note. The second step installs the project against your configured index; the torch
# already installed satisfies the pin in constraints.txt, so it is not downloaded again.
set -euo pipefail
cd "$(dirname "$0")/.."
PY=${PYTHON:-python3}
TORCH_INDEX=${SMM_TORCH_INDEX:-https://download.pytorch.org/whl/cpu}
# pip's install-phase bar (and venv creation) print nothing on a pipe (CI logs) for up to minutes;
# there, a line every 8 s says the step is still working.
with_heartbeat() {
  if [ -t 1 ]; then "$@"; return; fi
  local start=$SECONDS rc=0
  ( while sleep 8; do echo "   ... still working ($((SECONDS - start)) s)"; done ) &
  local hb=$!
  "$@" || rc=$?
  kill "$hb" 2>/dev/null; wait "$hb" 2>/dev/null || true
  return "$rc"
}
if [ ! -x .venv/bin/python ]; then
  echo "== setup: creating .venv with $("$PY" --version 2>&1)"
  with_heartbeat "$PY" -m venv .venv
fi
pip() { .venv/bin/python -m pip "$@"; }
stamp=.venv/.smm-installed
want=$(cat pyproject.toml constraints.txt scripts/setup.sh | sha256sum | cut -c1-16)
if [ -f "$stamp" ] && [ "$(cat "$stamp")" = "$want" ]; then
  exit 0
fi

echo "== setup: upgrading pip"
with_heartbeat pip install --upgrade pip

torch_pin=$(grep -E '^torch==' constraints.txt | head -1)
torch_want=${torch_pin#torch==}
torch_have=$(.venv/bin/python -c 'import importlib.metadata as m; print(m.version("torch"))' 2>/dev/null || true)
if [ "${torch_have%%+*}" = "$torch_want" ]; then
  echo "== setup: torch $torch_have already installed"
elif .venv/bin/python - "$TORCH_INDEX" <<'EOF'
import sys, urllib.request
try:  # one probe, 5 s: a blocked network must not cost minutes of pip retries
    urllib.request.urlopen(sys.argv[1].rstrip("/") + "/torch/", timeout=5).close()
except Exception as err:
    print(f"   (CPU wheel index {sys.argv[1]} not reachable: {err})", file=sys.stderr)
    sys.exit(1)
EOF
then
  echo "== setup: installing $torch_pin, CPU-only build, from $TORCH_INDEX (about 190 MB)"
  # --extra-index-url keeps your index for torch's own dependencies; the CPU wheel's version
  # (2.x.y+cpu) sorts above PyPI's 2.x.y, so pip takes it.
  with_heartbeat pip install --extra-index-url "$TORCH_INDEX" "$torch_pin"
else
  # Which file would the configured index give? A find-links folder or a mirror may hold the CPU build;
  # warn of the CUDA download only when that is what is coming (a dry run resolves without downloading).
  torch_url=$(pip install --dry-run --quiet --no-deps --ignore-installed --report - "$torch_pin" 2>/dev/null \
    | .venv/bin/python -c 'import json, sys; print(json.load(sys.stdin)["install"][0]["download_info"]["url"])' \
    2>/dev/null || true)
  case "$torch_url" in
    *+cpu*|*%2Bcpu*)
      echo "== setup: installing $torch_pin, CPU-only build, from your configured index (${torch_url##*/})" ;;
    *)
      echo "NOTE: installing $torch_pin from your configured package index instead of the CPU wheel index." >&2
      echo "      On Linux x86_64, PyPI's torch is the CUDA build: about 2.7 GB with its nvidia packages." >&2
      echo "      To avoid it, make $TORCH_INDEX reachable (or set SMM_TORCH_INDEX to a mirror of it) and rerun." >&2 ;;
  esac
  with_heartbeat pip install "$torch_pin"
fi

echo "== setup: installing smart-model-manager[all,dev] (editable) and its dependencies"
with_heartbeat pip install -c constraints.txt -e ".[all,dev]"
echo "$want" > "$stamp"
echo "== setup: done ($(.venv/bin/python -c 'import torch; print("torch", torch.__version__)'))"
