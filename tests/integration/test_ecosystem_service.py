"""The service and loaders as operators and new users meet them: metric labels, quiet loads."""

from __future__ import annotations

from pathlib import Path

import httpx
import pytest
from _mirror_fixtures import build_tiny_bert
from _service_fixtures import serve
from prometheus_client.parser import text_string_to_metric_families

pytestmark = pytest.mark.integration


def test_metrics_label_docs_openapi_and_static_files_by_their_route() -> None:
    with serve() as (url, _):
        for path in ("/openapi.json", "/docs", "/docs/static/swagger-ui.css", "/docs/static/swagger-ui-bundle.js",
                     "/no/such/route"):
            httpx.get(url + path)
        text = httpx.get(url + "/metrics").text
    fams = {f.name: f for f in text_string_to_metric_families(text)}
    seen = {(s.labels["route"], s.labels["status"]): s.value
            for s in fams["smm_service_requests"].samples if s.name.endswith("_total")}
    assert seen[("/openapi.json", "200")] == 1
    assert seen[("/docs", "200")] == 1
    assert seen[("/docs/static/{path}", "200")] == 2   # one template for every static file: bounded labels
    assert seen[("<unmatched>", "404")] == 1           # only what no route serves
    assert ("<unmatched>", "200") not in seen


def test_torch_load_prints_no_loading_weights_bar(tmp_path: Path) -> None:
    """In a fresh process with progress bars allowed (the suite disables them): plain transformers draws its
    "Loading weights" bar, smm's torch loader does not, and leaves the caller's setting as it was."""
    import os
    import subprocess
    import sys

    folder = build_tiny_bert(tmp_path / "tiny")
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
