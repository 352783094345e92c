#!/usr/bin/env python3
"""Test-environment cold start: a fresh process to its first MOCK prediction vs ``import transformers``.

* ``mock``                 ``TESTING=true python -c "from smart_model_manager import get_model_manager;
  get_model_manager().load_model('ProsusAI/finbert','sentiment')('x')"``
* ``import-transformers``  BASELINE: ``python -c "import transformers"`` (what any test that touches
  a real model pays before doing anything)
* ``python``               context: ``python -c pass``, the floor
* ``stdlib-floor``         context: ``import logging, dataclasses, pathlib, typing, re`` -- the standard
  library modules the library's core modules import at the top; no mock start can cost less while
  they do
* ``dataclasses-pathlib``  context: ``import dataclasses, pathlib`` only -- the two that cannot be
  deferred while the core's values are dataclasses and its paths ``pathlib.Path`` (logging and typing
  could be); the harness's own ``json`` is in every variant, ``python`` included

Time = spawn -> done (first prediction / import finished). Alternating, order rotated, medians.

Inside pytest (where mocks are used) the same question is asked of whole pytest sessions, one test each:
``pytest-empty`` (an empty test; the smm plugin disabled), ``pytest-mock`` (the smm plugin on, as
installed; the test makes the first mock prediction) and ``pytest-transformers`` (plugin disabled; the test
imports transformers). The marginal ratio is (mock - empty) / (transformers - empty): what a mock costs a
test run on top of pytest itself, against what importing transformers costs it.

    .venv/bin/python bench/bench_mock.py [--force]   # --rounds 10; ~2 min
"""

from __future__ import annotations

import argparse
import os
import shutil
import sys
import tempfile
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _bench_util import load_guard, machine, median, rotated, run_child, versions, write_result  # noqa: E402

DONE = """
import json, sys, time
t = time.time()
print(json.dumps({{"t_done": t, "result": {result}, "heavy": sorted(m for m in ("torch", "transformers",
    "onnxruntime", "numpy", "huggingface_hub") if m in sys.modules)}}))
"""
CODES = {
    "mock": """
from smart_model_manager import get_model_manager
m = get_model_manager().load_model("ProsusAI/finbert", "sentiment")
out = m("x")
""" + DONE.format(result='{"backend": m.info.backend, "source": m.info.source, "top": out[0]["label"]}'),
    "import-transformers": "import transformers\n" + DONE.format(result="transformers.__version__"),
    "python": DONE.format(result="None"),
    "stdlib-floor": "import logging, dataclasses, pathlib, typing, re\n" + DONE.format(result="None"),
    "dataclasses-pathlib": "import dataclasses, pathlib\n" + DONE.format(result="None"),
}
PYTEST_FILE = """
def test_empty():
    assert True


def test_mock():
    from smart_model_manager import get_model_manager
    m = get_model_manager().load_model("ProsusAI/finbert", "sentiment")
    assert m.info.backend == "mock" and m("x")[0]["label"] in ("positive", "negative", "neutral")


def test_transformers():
    import transformers
    assert transformers.__version__
"""
PYTEST_RUN = """
import pytest
rc = pytest.main(["-q", "-p", "no:cacheprovider", *{plugin}, {path!r} + "::test_{test}"])
assert rc == 0, rc
"""
PYTEST_CASES = {"pytest-empty": ("empty", False), "pytest-mock": ("mock", True),
                "pytest-transformers": ("transformers", False)}
TARGET = 0.05


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--rounds", type=int, default=10)
    ap.add_argument("--force", action="store_true", help="write the result even if the machine is busy")
    args = ap.parse_args()
    # a clean environment: only TESTING decides; nothing from the caller's SMM_*/HF_* leaks in
    env = {k: v for k, v in os.environ.items() if not k.startswith(("SMM_", "HF_"))}
    env["TESTING"] = "true"
    tmp = Path(tempfile.mkdtemp(prefix="smm-bench-mock-"))
    (tmp / "test_first.py").write_text(PYTEST_FILE)
    codes = dict(CODES)
    for name, (test, plugin) in PYTEST_CASES.items():
        codes[name] = PYTEST_RUN.format(plugin=[] if plugin else ["-p", "no:smart_model_manager"],
                                        path=str(tmp / "test_first.py"), test=test) + DONE.format(result="rc")
    for code in codes.values():
        run_child(code, env=env)  # warm-up (page cache, .pyc)
    before = load_guard(args.force)
    runs: dict[str, list[dict]] = {name: [] for name in codes}
    for rnd in range(args.rounds):
        for name in rotated(list(codes), rnd):
            runs[name].append(run_child(codes[name], env=env))
    shutil.rmtree(tmp, ignore_errors=True)
    summary = {name: {"seconds": median([r["seconds"] for r in rs]),
                      "peak_rss_mb": median([r["peak_rss_mb"] for r in rs]),
                      "cpu_seconds": median([r["cpu_seconds"] for r in rs]),
                      "result": rs[0]["result"], "imports": rs[0]["heavy"]} for name, rs in runs.items()}
    base = summary["import-transformers"]
    ratios = {name: s["seconds"] / base["seconds"] for name, s in summary.items()}
    ratio = summary["mock"]["seconds"] / summary["import-transformers"]["seconds"]
    # CPU time is the steadier figure on a shared machine (wall time includes waiting for a core)
    cpu_ratio = summary["mock"]["cpu_seconds"] / summary["import-transformers"]["cpu_seconds"]
    sec = {name: s["seconds"] for name, s in summary.items()}
    in_pytest = (sec["pytest-mock"] - sec["pytest-empty"]) / (sec["pytest-transformers"] - sec["pytest-empty"])
    for name, s in summary.items():
        print(f"{name:<20} {s['seconds'] * 1000:7.0f} ms wall {s['cpu_seconds'] * 1000:6.0f} ms CPU "
              f"{s['peak_rss_mb']:5.0f} MB  {ratios[name]:.3f}x  imports={s['imports']}"
              f"{'   <- baseline' if name == 'import-transformers' else ''}")
    print(f"mock / import transformers = {ratio:.3f}x (target <= {TARGET}x: {'met' if ratio <= TARGET else 'MISSED'}); "
          f"CPU time {cpu_ratio:.3f}x")
    print(f"floor: import dataclasses, pathlib = {ratios['dataclasses-pathlib']:.3f}x; "
          f"inside pytest, marginal: (mock - empty) / (transformers - empty) = {in_pytest:.3f}x")
    path = write_result("mock", {
        "benchmark": "mock", "rounds": args.rounds, "baseline": "import-transformers", "medians": summary,
        "ratios": {"mock": ratio, "mock_cpu": cpu_ratio, "python": ratios["python"],
                   "stdlib_floor": ratios["stdlib-floor"],
                   "dataclasses_pathlib_floor": ratios["dataclasses-pathlib"], "in_pytest_marginal": in_pytest}, "targets": {f"mock <= {TARGET}x": ratio <= TARGET},
        "runs": runs, "machine_before": before, "machine_after": machine(), "versions": versions()},
        force=args.force)
    print(f"-> {path}")


if __name__ == "__main__":
    main()
