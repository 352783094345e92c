"""The torch loader as a user's process meets it: it loads quietly (no "Loading weights" bar) and leaves the
caller's transformers settings as they were."""

from __future__ import annotations

from pathlib import Path

import pytest
from _model_folders import SORTED_LABELS, build_tiny_bert

pytestmark = pytest.mark.integration


def test_torch_load_prints_no_loading_weights_bar(tmp_path: Path) -> None:
    """In a fresh process with progress bars allowed (the suite disables them): plain transformers draws its
    "Loading weights" bar, smm's torch loader does not, and leaves the caller's setting as it was."""
    import os
    import subprocess
    import sys

    folder = build_tiny_bert(tmp_path / "tiny", labels=SORTED_LABELS)
    code = f"""
import sys
from transformers import AutoModelForSequenceClassification
from transformers.utils import logging as hf_logging
from smart_model_manager.loaders.torch import load_torch_runner
print("== plain", file=sys.stderr, flush=True)
AutoModelForSequenceClassification.from_pretrained({str(folder)!r})
print("== smm", file=sys.stderr, flush=True)
load_torch_runner({str(folder)!r}, "sentiment")
print("== bars still enabled:", hf_logging.is_progress_bar_enabled(), file=sys.stderr, flush=True)
"""
    env = {k: v for k, v in os.environ.items() if k != "HF_HUB_DISABLE_PROGRESS_BARS"}
    proc = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stderr[-2000:]
    plain, smm = proc.stderr.split("== plain", 1)[1].split("== smm", 1)
    assert "Loading weights" in plain, "control: transformers should draw its bar here"
    assert "Loading weights" not in smm, smm
    assert "== bars still enabled: True" in smm
