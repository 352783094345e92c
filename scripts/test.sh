#!/usr/bin/env bash
# The whole test suite: set up .venv if needed, then run every test (unit + integration).
# Extra arguments go to pytest, e.g. `scripts/test.sh -m "unit and not real_models"`.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh
exec .venv/bin/python -m pytest "$@"
