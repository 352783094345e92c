"""scripts/validate-models.py: the original's flags on top of `smm validate` (same exit codes)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from pathlib import Path

import pytest
from _volumes import make_model_folder, make_volume

pytestmark = pytest.mark.unit

SCRIPT = Path(__file__).resolve().parents[2] / "scripts" / "validate-models.py"


def run(*args: str, env: dict[str, str] | None = None, timeout: float = 60) -> subprocess.CompletedProcess[str]:
    full_env = {k: v for k, v in os.environ.items() if k not in ("SMM_VOLUME_DIR", "MODEL_CACHE_DIR", "SMM_LOCK")}
    full_env.update(env or {})
    return subprocess.run([sys.executable, str(SCRIPT), *args], capture_output=True, text=True, env=full_env,
                          timeout=timeout)


@pytest.fixture
def volume(tmp_path: Path) -> Path:
    root = tmp_path / "volume"
    make_volume(root, {"org/finbert": make_model_folder(tmp_path / "src")})
    return root


def test_model_dir_quiet_and_export_report(volume: Path, tmp_path: Path) -> None:
    ok = run("--model-dir", str(volume))
    assert ok.returncode == 0, ok.stderr
    assert ok.stdout.startswith("OK: ") and "1 model(s)" in ok.stdout
    quiet = run("--model-dir", str(volume), "--quiet", "--export-report", str(tmp_path / "r.json"))
    assert quiet.returncode == 0 and quiet.stdout == ""
    report = json.loads((tmp_path / "r.json").read_text())
    assert report["ok"] is True and report["models_checked"] == 1 and report["directory"] == str(volume)


def test_a_corrupt_volume_exits_1_and_the_report_names_the_file(volume: Path, tmp_path: Path) -> None:
    blob = next(p for p in (volume / "models--org--finbert" / "blobs").iterdir() if p.stat().st_size == 1024)
    blob.chmod(0o644)
    blob.write_bytes(b"\1" * 1024)
    r = run("--model-dir", str(volume), "--full", "--export-report", str(tmp_path / "bad.json"))
    assert r.returncode == 1
    assert r.stdout.startswith("FAILED with 1 error(s)") and "model.safetensors" in r.stdout
    report = json.loads((tmp_path / "bad.json").read_text())
    assert report["ok"] is False and report["findings"][0]["kind"] == "corrupt"
    assert report["findings"][0]["expected"].startswith("sha256:") and report["findings"][0]["actual"]


def test_model_cache_dir_is_honoured_when_no_folder_is_given(volume: Path, tmp_path: Path) -> None:
    r = run(env={"MODEL_CACHE_DIR": str(volume)})
    assert r.returncode == 0 and str(volume) in r.stdout
    other = tmp_path / "other"
    make_volume(other, {"org/other": make_model_folder(tmp_path / "src2")})
    r = run(env={"MODEL_CACHE_DIR": str(volume), "SMM_VOLUME_DIR": str(other)})  # the explicit new variable wins
    assert r.returncode == 0 and str(other) in r.stdout


def test_wait_times_out_with_exit_1(tmp_path: Path) -> None:
    empty = tmp_path / "not-yet"
    empty.mkdir()
    t0 = time.monotonic()
    r = run("--model-dir", str(empty), "--wait", "--timeout", "1")
    assert r.returncode == 1 and time.monotonic() - t0 >= 1
    assert "timed out after 1s" in r.stderr and "FAILED" in r.stdout


def test_wait_returns_once_the_volume_is_provisioned(tmp_path: Path) -> None:
    root = tmp_path / "volume"
    root.mkdir()
    env = {k: v for k, v in os.environ.items() if k != "SMM_VOLUME_DIR"}
    proc = subprocess.Popen([sys.executable, str(SCRIPT), "--model-dir", str(root), "--wait", "--timeout", "60"],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env)
    time.sleep(1.5)
    assert proc.poll() is None  # still waiting: no manifest yet
    make_volume(root, {"org/finbert": make_model_folder(tmp_path / "src")})
    out, err = proc.communicate(timeout=60)
    assert proc.returncode == 0, err
    assert out.startswith("OK: ")


@pytest.mark.parametrize("args", [("--model-dir", "a", "--dir", "b"), ("--bogus",), ("--wait", "--timeout", "-1")])
def test_usage_errors_exit_2(args: tuple[str, ...]) -> None:
    assert run(*args).returncode == 2


def test_help_lists_both_flag_sets() -> None:
    r = run("--help")
    assert r.returncode == 0 and "--full" in r.stdout and "--export-report FILE" in r.stdout
