"""The README's numbers table is generated from bench/results/*.json and cannot drift."""

from __future__ import annotations

import importlib.util
import json
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

pytestmark = pytest.mark.unit

REPO = Path(__file__).resolve().parents[2]
SCRIPT = REPO / "bench" / "readme_numbers.py"


def test_readme_numbers_table_matches_the_results_files() -> None:
    r = subprocess.run([sys.executable, str(SCRIPT), "--check"], capture_output=True, text=True, timeout=60)
    assert r.returncode == 0, r.stderr + "\n-> run: .venv/bin/python bench/readme_numbers.py"


def test_a_changed_result_is_detected_and_regenerated(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    spec = importlib.util.spec_from_file_location("readme_numbers", SCRIPT)
    assert spec is not None and spec.loader is not None
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    results = tmp_path / "results"
    shutil.copytree(REPO / "bench" / "results", results)
    readme = tmp_path / "README.md"
    shutil.copy(REPO / "README.md", readme)
    monkeypatch.setattr(mod, "RESULTS", results)
    monkeypatch.setattr(mod, "README", readme)
    monkeypatch.setattr(sys, "argv", ["readme_numbers.py", "--check"])
    assert mod.main() == 0
    mock = json.loads((results / "mock.json").read_text())
    mock["medians"]["mock"]["seconds"] = 0.123456
    mock["ratios"]["mock"] = 0.0314
    (results / "mock.json").write_text(json.dumps(mock))
    assert mod.main() == 1  # the README no longer matches
    monkeypatch.setattr(sys, "argv", ["readme_numbers.py"])
    assert mod.main() == 0
    text = readme.read_text()
    assert "| first mock prediction in a fresh process | 123 ms |" in text and "0.031x" in text
    monkeypatch.setattr(sys, "argv", ["readme_numbers.py", "--check"])
    assert mod.main() == 0


def test_benchmarks_refuse_to_write_on_a_busy_machine_unless_forced(monkeypatch: pytest.MonkeyPatch) -> None:
    sys.path.insert(0, str(REPO / "bench"))
    try:
        import _bench_util as util
    finally:
        sys.path.remove(str(REPO / "bench"))
    monkeypatch.setattr(util, "cores", lambda: 2)
    monkeypatch.setattr(util.os, "getloadavg", lambda: (5.0, 4.0, 3.0))
    data = {"machine_before": {"loadavg": [1.0, 1.0, 1.0]}}
    with pytest.raises(SystemExit) as exc:
        util.busy_refusal(data, force=False)
    assert exc.value.code == 3 and data["load_check"]["busy"] is True
    util.busy_refusal(data, force=True)
    assert data["load_check"] == {"cores": 2, "loadavg_1min_before_after": [1.0, 5.0], "busy": True, "forced": True}
    monkeypatch.setattr(util.os, "getloadavg", lambda: (1.5, 1.0, 1.0))
    util.busy_refusal(data, force=False)  # quiet: no exit
    assert data["load_check"]["busy"] is False and data["load_check"]["forced"] is False


def test_committed_results_name_no_path_of_the_machine_that_ran_them() -> None:
    # bench writers pass results through _bench_util.portable(); no absolute path may remain anywhere in
    # a committed results file, whichever machine wrote it
    import re

    absolute = re.compile(r"""(?<![\w.:/<>~-])/[A-Za-z][\w.-]*/""")
    for path in sorted((REPO / "bench" / "results").glob("*.json")):
        found = absolute.findall(path.read_text())
        assert not found, f"{path.name} records absolute paths {found[:3]}"


def test_portable_makes_paths_repo_home_or_tmp_relative() -> None:
    import tempfile

    sys.path.insert(0, str(REPO / "bench"))
    try:
        from _bench_util import portable
    finally:
        sys.path.remove(str(REPO / "bench"))
    tmp = tempfile.gettempdir()
    assert portable({"a": str(REPO / "bench" / "x"), "b": [str(Path.home() / "y")], "c": f"{tmp}/smm-1/v",
                     "d": str(REPO), "e": "plain", "f": 3, "g": f"given folder {REPO}/bench/m",
                     "h": f"--model-dir {tmp}/d --x"}) == {
        "a": "bench/x", "b": ["~/y"], "c": "<tmp>/smm-1/v", "d": ".", "e": "plain", "f": 3,
        "g": "given folder bench/m", "h": "--model-dir <tmp>/d --x"}


def test_the_demo_backend_claim_comes_from_the_exports_quality_json(tmp_path: Path,
                                                                    monkeypatch: pytest.MonkeyPatch) -> None:
    spec = importlib.util.spec_from_file_location("readme_numbers", SCRIPT)
    assert spec is not None and spec.loader is not None
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    monkeypatch.setattr(mod, "RESULTS", tmp_path)
    cpu = {"model": "AMD EPYC", "isa": "avx2", "flags": ["avx2"]}
    gate = {"value": 0.9907, "bound": 0.9865, "samples": 3000, "threshold": 0.99, "recipe": "sensitive-fp32"}
    refused = {"sentiment_demo": {"cpu": cpu, "recipes": {}, "fp32": {"accuracy": 0.9, "mb": 90.9},
                                  "default_export": {"published": False, "int8": gate}},
               "machine_before": {"loadavg": [1.0], "cpus": 2}}
    (tmp_path / "int8_quality.json").write_text(json.dumps(refused))
    (row,) = mod.int8_demo()
    assert row[0].startswith("demo model as built (AMD EPYC, avx2): int8 refused") and "serves ONNX fp32" in row[0]
    assert "lower 95% bound 98.65%" in row[1] and "3,000 texts" in row[1]
    passed = json.loads(json.dumps(refused))
    passed["sentiment_demo"]["default_export"] = {"published": True, "int8": {**gate, "value": 0.9973,
                                                                             "bound": 0.9947}}
    passed["sentiment_demo"]["recipes"] = {"sensitive-fp32": {"accuracy": 0.96, "mb": 32.0, "speedup_cpu": 1.8}}
    (tmp_path / "int8_quality.json").write_text(json.dumps(passed))
    (row,) = mod.int8_demo()
    assert "serves ONNX int8 (recipe `sensitive-fp32`)" in row[0] and "lower 95% bound 99.47%" in row[1]
