"""Which model the service serves (the library's alias table and default rule, one each) and how it says it
cannot: one human line, fatal at startup in production where nothing could ever load, 503s in dev."""

from __future__ import annotations

import subprocess
import sys
import time
from pathlib import Path

import httpx
import pytest
from _artifacts_fixtures import free_port
from _service_fixtures import REPO, ServerThread, child_env, wait_for_ready

from smart_model_manager.service.app import create_app
from smart_model_manager.service.config import ServiceConfig

pytestmark = pytest.mark.integration


TUNED_LOCK = (
    "version: 1\nmodels:\n  finbert:\n    repo_id: myorg/finbert-tuned\n    revision: main\n"
    "    commit: " + "a" * 40 + "\n    model_type: sentiment\n    labels: [negative, neutral, positive]\n"
    "    files:\n      config.json: {size: 2, sha256: 'sha256:" + "0" * 64 + "'}\n")


def _models(url: str) -> dict:
    wait_for_ready(url, timeout=30)
    (m,) = httpx.get(url + "/v1/models").json()["models"]
    return m


def test_service_follows_the_lock_alias_like_the_library(tmp_path: Path, monkeypatch) -> None:
    """A lock mapping `finbert` to a tuned repo: the service serves the tuned repo (it used to apply
    its own finbert -> ProsusAI/finbert table first and serve the wrong model)."""
    (tmp_path / "models.lock").write_text(TUNED_LOCK)
    monkeypatch.setenv("SMM_LOCK", str(tmp_path / "models.lock"))
    with ServerThread(create_app(config=ServiceConfig(model="finbert"))) as srv:
        m = _models(srv.url)
    assert m["repo_id"] == "myorg/finbert-tuned" and m["alias"] == "finbert"
    assert m["labels"] == ["negative", "neutral", "positive"] and m["commit"] == "a" * 40


def test_service_with_no_model_uses_the_shared_default_rule(monkeypatch) -> None:
    with ServerThread(create_app(config=ServiceConfig())) as srv:
        assert _models(srv.url)["repo_id"] == "ProsusAI/finbert"
    monkeypatch.setenv("SMM_MODEL", "finbert-demo")
    from smart_model_manager import reset_model_manager

    reset_model_manager()
    with ServerThread(create_app(config=ServiceConfig.from_env({}))) as srv:
        assert _models(srv.url)["repo_id"] == "smart-model-manager/finbert-mini-demo"


def test_production_with_no_volume_exits_1_with_one_line(tmp_path: Path) -> None:
    env = child_env(SMM_ENV="production", SMM_VOLUME_DIR=str(tmp_path / "no-volume"), HOME=str(tmp_path))
    proc = subprocess.run([sys.executable, "-m", "smart_model_manager.cli.main", "serve", "sentiment",
                           "--port", str(free_port()), "--log-format", "text"],
                          cwd=REPO, env=env, capture_output=True, text=True, timeout=60)
    assert proc.returncode == 1, proc.stderr
    lines = [line for line in proc.stderr.splitlines() if line.startswith("smm serve:")]
    assert len(lines) == 1, proc.stderr
    assert "cannot serve the default model (SMM_MODEL, else finbert) in production" in lines[0]
    assert "Uvicorn running" not in proc.stderr  # refused before the server started


def test_dev_failed_load_is_one_human_line_on_stderr(tmp_path: Path) -> None:
    port = free_port()
    env = child_env(SMM_ENV="dev", MODEL_CACHE_DIR=str(tmp_path / "cache"), HOME=str(tmp_path),
                    HF_ENDPOINT="http://127.0.0.1:9", SMM_RETRIES="0", SMM_TIMEOUT="5")
    proc = subprocess.Popen([sys.executable, "-m", "smart_model_manager.cli.main", "serve", "sentiment",
                             "--port", str(port), "--model", "org/not-here", "--log-format", "json"],
                            cwd=REPO, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
    try:
        deadline = time.monotonic() + 60
        line = ""
        assert proc.stderr is not None
        while time.monotonic() < deadline:
            line = proc.stderr.readline()
            if line.startswith("smm serve:") or not line:
                break
        assert line.startswith("smm serve: model org/not-here could not be loaded; every route answers 503")
        assert "\n" not in line.rstrip("\n")
        r = httpx.get(f"http://127.0.0.1:{port}/readyz", timeout=5)
        assert r.status_code == 503 and r.json()["error"]["code"] == "model_load_failed"
    finally:
        proc.terminate()
        proc.wait(30)
