#!/usr/bin/env python3
"""Generate the README's numbers table from ``bench/results/*.json``, so it cannot drift.

    .venv/bin/python bench/readme_numbers.py            # rewrite the table between the markers in README.md
    .venv/bin/python bench/readme_numbers.py --check    # exit 1 if README.md differs (a unit test runs this)
    .venv/bin/python bench/readme_numbers.py --print    # print the table only

Every row is one benchmark's result, its baseline from the same run, their ratio, and the machine's
1-minute load average during the run (``forced`` when the benchmark wrote it above the core count with
``--force``). A results file that is missing leaves its row out; nothing is typed in by hand.
"""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parents[1]
RESULTS = REPO / "bench" / "results"
README = REPO / "README.md"
START, END = "<!-- readme_numbers:start -->", "<!-- readme_numbers:end -->"
HEADER = ("| what | result | baseline (same run) | ratio | load avg / cores | source |\n"
          "|---|---|---|---|---|---|")

Row = tuple[str, str, str, str, str, str]


def _load(name: str) -> dict[str, Any] | None:
    path = RESULTS / name
    return json.loads(path.read_text()) if path.is_file() else None


def _load_text(d: dict[str, Any]) -> str:
    """``9.2 / 2 (forced)`` from a result's load check (or its machine notes), ``n/a`` if not recorded."""
    check = d.get("load_check")
    if isinstance(check, dict):
        load = max(check.get("loadavg_1min_before_after") or [0])
        return f"{load:.1f} / {check.get('cores')}" + (" (forced)" if check.get("forced") else "")
    for key in ("machine_before", "machine"):
        m = d.get(key)
        if isinstance(m, dict) and m.get("loadavg"):
            return f"{m['loadavg'][0]:.1f} / {m.get('cpus_affinity', m.get('cpus', '?'))}"
    if isinstance(d.get("load_average"), list):
        return f"{d['load_average'][0]:.1f} / 2"
    return "n/a"


def _x(ratio: float) -> str:
    return f"{ratio:.3f}x" if ratio < 0.1 else f"{ratio:.2f}x"


def cold_start() -> list[Row]:
    d = _load("cold_start.json")
    if not d:
        return []
    m, r, load = d["medians"], d["ratios"]["lean-int8"], _load_text(d)
    src = "`bench/bench_cold_start.py`"
    return [("cold start to first prediction, ONNX int8 (FinBERT-shaped BERT-base)",
             f"{m['lean-int8']['seconds']:.2f} s", f"`transformers.pipeline` {m['pipeline']['seconds']:.2f} s",
             _x(r["seconds"]), load, src),
            ("peak RSS, ONNX int8 (same run)", f"{m['lean-int8']['peak_rss_mb']:.0f} MB",
             f"{m['pipeline']['peak_rss_mb']:.0f} MB", _x(r["peak_rss_mb"]), load, src)]


def throughput() -> list[Row]:
    d = _load("throughput.json")
    if not d:
        return []
    m = d["medians"]
    return [(f"throughput, ONNX int8, {d.get('texts', 2048):,} headlines (same model)",
             f"{m['onnx-int8']['texts_per_s']:.0f} texts/s",
             f"`pipeline(batch_size=32)` {m['pipeline']['texts_per_s']:.1f}/s",
             f"{_x(d['ratios']['onnx-int8'])} ({_x(d['cpu_ratios']['onnx-int8'])} CPU time)",
             _load_text(d), "`bench/bench_throughput.py`")]


def int8_demo() -> list[Row]:
    """What the demo model's default export publishes, read from the quality.json that export wrote (the
    benchmark keeps it under ``default_export``): the claim about the demo's backend is never typed in."""
    d = _load("int8_quality.json")
    if not d:
        return []
    s = d["sentiment_demo"]
    q = s["default_export"]["int8"]
    cpu = s.get("cpu") or {}
    where = ", ".join(x for x in (cpu.get("model") or (d.get("machine_before") or {}).get("cpu"), cpu.get("isa"))
                      if x) or "CPU not recorded"
    bound = q.get("bound")
    measured = (f"{q['value']:.1%} agreement on {q['samples']:,} texts, lower 95% bound "
                f"{bound:.2%}" if bound is not None else f"{q['value']:.1%} agreement on {q['samples']} texts")
    published = q.get("recipe") if s["default_export"]["published"] else None
    src = "`bench/bench_int8_quality.py`"
    if published is None or published not in s["recipes"]:
        return [(f"demo model as built ({where}): int8 refused by the gate (bound < {q['threshold']}), so it "
                 "serves ONNX fp32", measured + f" (best recipe tried: `{q.get('recipe')}`)", "gate: bound >= "
                 f"{q['threshold']}", "n/a", _load_text(d), src)]
    row = s["recipes"][published]
    return [(f"demo model as built ({where}): serves ONNX int8 (recipe `{published}`); agreement, speed, size",
             f"{measured}; accuracy {row['accuracy']:.3f}; {row['mb']} MB",
             f"ONNX fp32: accuracy {s['fp32']['accuracy']:.3f}; {s['fp32']['mb']} MB",
             f"{row['speedup_cpu']:.2f}x speed (CPU time); {row['mb'] / s['fp32']['mb']:.2f}x size",
             _load_text(d), src)]


def mock() -> list[Row]:
    d = _load("mock.json")
    if not d:
        return []
    m = d["medians"]
    return [("first mock prediction in a fresh process", f"{m['mock']['seconds'] * 1000:.0f} ms",
             f"`import transformers` {m['import-transformers']['seconds'] * 1000:.0f} ms",
             f"{_x(d['ratios']['mock'])} (target 0.05x)", _load_text(d), "`bench/bench_mock.py`")] + ([
        ("the same inside pytest: session with the first mock prediction minus an empty session",
         f"{(m['pytest-mock']['seconds'] - m['pytest-empty']['seconds']) * 1000:.0f} ms",
         f"`import transformers` in a test: "
         f"{(m['pytest-transformers']['seconds'] - m['pytest-empty']['seconds']) * 1000:.0f} ms",
         _x(d["ratios"]["in_pytest_marginal"]), _load_text(d), "`bench/bench_mock.py`")]
        if "in_pytest_marginal" in d["ratios"] else [])


def validate() -> list[Row]:
    d = _load("bench_validate.json")
    if not d:
        return []
    ms = d["median_ms"]
    return [("`smm validate --quick`, 3 models", f"{ms['quick']:.0f} ms", f"full re-hash {ms['full']:.0f} ms",
             _x(ms["quick"] / ms["full"]), _load_text(d), "`bench/bench_validate.py`")]


def _latest_service(backend: str) -> dict[str, Any] | None:
    found = [json.loads(p.read_text()) for p in sorted(RESULTS.glob("service_load-*.json"))]
    found = [d for d in found if d.get("backend_requested") == backend and d.get("threads") in (None, "default")]
    return found[-1] if found else None


def service_load() -> list[Row]:
    rows: list[Row] = []
    for backend, label in (("auto", "service saturation, demo model"), ("torch", "same, our torch backend")):
        d = _latest_service(backend)
        if not d:
            continue
        ours, naive = d["servers"]["ours"], d["servers"]["naive"]
        ran = ours.get("model_info", {}).get("backend", backend)
        rows.append((f"{label} ({ran})", f"{ours['saturation_rps']:.0f} req/s",
                     f"naive FastAPI + `pipeline` per request {naive['saturation_rps']:.0f} req/s",
                     f"{_x(d['ratios']['throughput'])}; p95 {_x(d['ratios']['p95_at_half_naive_saturation'])}",
                     _load_text(d), "`bench/bench_service_load.py`" + (" --backend torch" if backend == "torch" else "")))
    return rows


def service_efficiency() -> list[Row]:
    d = _load("service_efficiency.json")
    if not d:
        return []
    rows: list[Row] = []
    for name, m in d["models"].items():
        rows.append((f"service efficiency, {name}: 1-text requests at saturation vs the same runner offline",
                     f"{m['service_rps']:.0f} req/s", f"offline batched {m['offline_texts_per_s']:.0f} texts/s",
                     f"{_x(m['efficiency'])} (goal 0.8)", _load_text(d), "`bench/bench_service_efficiency.py`"))
    return rows


def service_memory() -> list[Row]:
    d = _load("service_memory.json")
    if not d:
        return []
    s = d["summary"]
    o, n = s["old"], s["ours"]
    load = f"{d['machine']['loadavg'][0]:.1f} / {d['machine'].get('cpus_affinity', '?')}"
    return [("service peak RSS, worst allowed request (64 x 2,000 chars) x 20",
             f"{n['peak_mb']:.0f} MB ({n['peak_over_idle']:.2f}x idle; {n['after_over_idle']:.2f}x 2 s later)",
             f"unbounded batches + ONNX Runtime arena {o['peak_mb']:.0f} MB ({o['peak_over_idle']:.2f}x idle)",
             f"{_x(s['peak_ratio_ours_vs_old'])}; throughput {_x(s['throughput_ratio_headlines'])} (1 headline) / "
             f"{_x(s['throughput_ratio_batch64'])} (64 headlines), goal 0.9x", load, "`bench/bench_service_memory.py`")]


def gpu() -> list[Row]:
    d = _load("gpu-h200.json")
    if not d:
        return []
    f, rows = d["final"], []
    for name, label in (("finbert-shaped", "FinBERT-shaped"), ("demo", "demo model")):
        m = f["models"].get(name)
        if not m or "smm-default" not in m.get("paths", {}):
            continue
        p, s = m["paths"], m["paths"]["smm-default"]
        rows.append((f"GPU ({d['gpu']}), {label}, 4,096 headlines: smm default ({s['dtype']})",
                     f"{s['headlines_per_s']:,.0f} headlines/s",
                     f"`pipeline(device=0, fp16)` {p['pipeline-fp16']['headlines_per_s']:,.0f}; lean bf16 runner "
                     f"{p['lean-ref']['headlines_per_s']:,.0f}",
                     f"{_x(m['ratios']['smm-default / pipeline-fp16'])} (goal 1.5x); "
                     f"{_x(m['ratios']['smm-default / lean-ref'])} (goal 0.8x); labels agree "
                     f"{s['label_agreement']:.3f}, max prob diff {s['max_prob_diff']:.4f}",
                     _load_text(f), "`bench/bench_gpu.py`"))
    svc = d.get("service")
    if svc:
        ours, naive = svc["servers"]["ours"], svc["servers"]["naive"]
        rows.append((f"GPU ({d['gpu']}) service saturation, FinBERT-shaped, 1 headline/request",
                     f"{ours['saturation_rps']:.0f} req/s",
                     f"naive FastAPI + `pipeline(device=0)` per request {naive['saturation_rps']:.0f} req/s",
                     f"{_x(svc['ratios']['throughput'])}; p95 {_x(svc['ratios']['p95_at_half_naive_saturation'])}",
                     _load_text(svc), "`bench/bench_service_load.py --naive-device 0`"))
    return rows


def overload() -> list[Row]:
    d = _load("overload.json")
    if not d:
        return []
    rows: list[Row] = []
    for label, m in sorted(d["models"].items()):
        base, ours = m["runs"]["baseline (bounds off)"], m["runs"]["bounded (defaults)"]
        for k in ("3x", "10x"):
            b, o = base["bursts"][k], ours["bursts"][k]
            rec = lambda r: "none in 150 s" if r["recovery_s"] is None else f"{r['recovery_s']:.1f} s"  # noqa: E731
            ratio = f"{o['goodput_x'] / b['goodput_x']:.1f}x goodput" if b["goodput_x"] else "baseline served none"
            rows.append((f"overload {k} capacity for 20 s, {label}, 5 s client timeout",
                         f"goodput {o['goodput_x']:.2f}x capacity, refusals p99 {o['refused_ms']['p99'] or 0:.0f} ms, "
                         f"answered p99 {o['answered_ms']['p99'] or 0:.0f} ms, recovery {rec(o)}",
                         f"bounds off: goodput {b['goodput_x']:.2f}x, {b['statuses'].get('timeout', 0):,} client "
                         f"timeouts, recovery {rec(b)}", ratio, _load_text(m), "`bench/bench_overload.py`"))
    return rows


ROWS: list[Callable[[], list[Row]]] = [cold_start, throughput, int8_demo, mock, validate, service_load,
                                      service_efficiency, service_memory, gpu, overload]


def table() -> str:
    lines = [HEADER]
    for build in ROWS:
        for row in build():
            lines.append("| " + " | ".join(cell.replace("|", "\\|") for cell in row) + " |")
    return "\n".join(lines)


def render(readme: str) -> str:
    if START not in readme or END not in readme:
        raise SystemExit(f"{README.name} lacks the markers {START} ... {END}")
    head, rest = readme.split(START, 1)
    _, tail = rest.split(END, 1)
    return f"{head}{START}\n{table()}\n{END}{tail}"


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    mode = ap.add_mutually_exclusive_group()
    mode.add_argument("--check", action="store_true", help="exit 1 if README.md is not up to date")
    mode.add_argument("--print", action="store_true", help="print the table only")
    args = ap.parse_args()
    if args.print:
        print(table())
        return 0
    current = README.read_text(encoding="utf-8")
    wanted = render(current)
    if args.check:
        if wanted != current:
            print("README.md's numbers table is out of date with bench/results/*.json; run: "
                  ".venv/bin/python bench/readme_numbers.py", file=sys.stderr)
            return 1
        return 0
    if wanted != current:
        README.write_text(wanted, encoding="utf-8")
        print("README.md: numbers table updated")
    return 0


if __name__ == "__main__":
    sys.exit(main())
