#!/usr/bin/env python3
"""validate-models.py: the name from the original design; a thin wrapper over `smm validate`.

    scripts/validate-models.py --quick --dir /app/models     # same flags, same exit codes (0/1/2)
"""

import sys
from pathlib import Path

try:
    from smart_model_manager.cli.main import main
except ModuleNotFoundError:  # run from a checkout without `pip install -e .`
    sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "src"))
    from smart_model_manager.cli.main import main

if __name__ == "__main__":
    sys.exit(main(["validate", *sys.argv[1:]]))
