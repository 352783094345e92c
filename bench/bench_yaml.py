#!/usr/bin/env python3
"""How long do the worst data files under 1 MB take to parse (the target: "no parse of a file under
1 MB takes over 1 s", so a hostile file cannot stall a loader or a validator)?

Each input is under 1 MB and built to be as expensive as possible for our reader (``_yaml.load``, used
by model-metadata.yaml, models.lock and models.yaml): as many values as fit, values that need PyYAML's
slow resolver, deep nesting, an alias bomb, a realistic 8,000-file manifest. The baseline in the same
run is plain ``yaml.load(text, Loader=CSafeLoader)`` (what the reader did before, minus line numbers);
for the alias bomb the baseline is skipped (it expands 10**7 values, minutes) and says so.

Medians of --rounds rounds, alternating ours and the baseline. Prints the table; with --write it also
records it in bench/results/yaml.json (a documented command must not change committed files unasked).

    .venv/bin/python bench/bench_yaml.py               # ~1 min on 2 cores; prints only
    .venv/bin/python bench/bench_yaml.py --write       # and records bench/results/yaml.json
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time
from pathlib import Path

import yaml

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO / "bench"))
from _bench_util import load_guard, machine, write_result  # noqa: E402

from smart_model_manager.errors import FormatError  # noqa: E402
from smart_model_manager.formats import _yaml  # noqa: E402

LIMIT = 1_000_000
SHA = "sha256:" + "ab" * 32


def _fill(head: str, item: str, tail: str = "") -> str:
    n = (LIMIT - len(head) - len(tail) - 1) // len(item)
    return head + item * n + tail


def inputs() -> dict[str, str]:
    bomb = ["a0: &a0 [x, x, x, x, x, x, x, x, x, x]"]
    bomb += [f"a{i}: &a{i} [" + ", ".join([f"*a{i - 1}"] * 10) + "]" for i in range(1, 8)]
    files = "".join(f"      dir{i}/file{i}.bin: {{size: {i}, sha256: '{SHA}'}}\n" for i in range(8000))
    return {
        "manifest-8000-files": (f"format: 1\ngenerated_by: x\nverified_at: 'x'\nmodels:\n  org/m:\n"
                                f"    commit: {'c' * 40}\n    model_type: sentiment\n    files:\n" + files),
        "flow-ints": _fill("a: [", "1,", "1]\n"),
        "block-list-words": _fill("a:\n", "- no\n"),
        "mapping-keys": "a:\n" + "".join(f" k{i}: v\n" for i in range(LIMIT // 12)),
        "dates": _fill("a: [", "2026-11-26,", "1]\n"),
        "digit-led-text": _fill("a: [", "1.5e3,", "1]\n"),
        "deep-nesting": "a: " + "[" * 200_000 + "]" * 200_000 + "\n",
        "one-long-string": "a: " + "x" * (LIMIT - 10) + "\n",
        "alias-bomb-7-levels": "\n".join(bomb) + "\nmodels: *a7\n",
    }


def ours(text: str) -> str:
    try:
        _yaml.load(text, "bench.yaml", FormatError)
        return "parsed"
    except FormatError as err:
        return "refused: " + err.reason[:70]


def baseline(text: str) -> str:
    try:
        yaml.load(text, Loader=yaml.CSafeLoader)
        return "parsed"
    except (yaml.YAMLError, ValueError, RecursionError) as err:
        return f"error: {type(err).__name__}"


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--write", action="store_true", help="record the result in bench/results/yaml.json")
    ap.add_argument("--force", action="store_true", help="with --write: write even if the machine is busy")
    args = ap.parse_args()
    before = load_guard(args.force)
    rows = []
    for name, text in inputs().items():
        assert len(text.encode()) < LIMIT * 1.25, name
        t_ours, t_base, out_ours, out_base = [], [], "", "skipped (would expand the aliases: minutes)"
        for _ in range(args.rounds):
            t0 = time.perf_counter()
            out_ours = ours(text)
            t_ours.append(time.perf_counter() - t0)
            if "bomb" not in name:
                t0 = time.perf_counter()
                out_base = baseline(text)
                t_base.append(time.perf_counter() - t0)
        row = {"input": name, "bytes": len(text.encode()), "ours_s": round(statistics.median(t_ours), 4),
               "ours": out_ours, "baseline_s": round(statistics.median(t_base), 4) if t_base else None,
               "baseline": out_base}
        row["ratio"] = round(row["ours_s"] / row["baseline_s"], 2) if t_base and row["baseline_s"] else None
        rows.append(row)
        print(f"{name:22s} {row['bytes']:>9,d} B  ours {row['ours_s']:.3f} s ({out_ours[:50]})  "
              f"baseline {row['baseline_s'] if t_base else '-'} s ({out_base[:40]})  ratio {row['ratio']}")
    worst = max(r["ours_s"] for r in rows)
    print(f"worst case (ours): {worst:.3f} s")
    out = {"machine": machine(), "machine_before": before, "rounds": args.rounds, "rows": rows, "worst_ours_s": worst}
    if args.write:
        print(f"-> {write_result('yaml', out, force=args.force)}")
    else:
        print("(not recorded; --write records it in bench/results/yaml.json)")


if __name__ == "__main__":
    main()
