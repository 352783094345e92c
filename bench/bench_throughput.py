#!/usr/bin/env python3
"""Throughput on 2,048 headlines, warm, one process: our three backends vs ``pipeline(batch_size=32)``.

Same folder for all (bench/.models/finbert-shaped, BERT-base shaped like FinBERT), same threads
(torch and ONNX Runtime both sized to the available CPUs). The 2,048 texts are cut into --chunks
slices; for each slice every variant runs (order rotated slice by slice), so candidates and baseline
alternate several times while each sees all 2,048 texts once. Reported: texts/s over the whole set
(wall and per CPU-second: on a shared machine CPU time is the steadier figure) and the median of
the per-slice ratios to the baseline.

* ``ours-torch``  ``load_runner(backend="torch")``: length-sorted batches of 32, dynamic padding,
  inference_mode
* ``onnx-fp32``   ``load_runner(backend="onnx-fp32")``
* ``onnx-int8``   ``load_runner(backend="onnx-int8")``
* ``pipeline``    BASELINE: ``pipeline("text-classification", model=folder, top_k=None,
  batch_size=32)`` called on the list

Also recorded: label agreement of each variant with the pipeline (a speed-up that changes answers
would not count).

    .venv/bin/python bench/bench_throughput.py            # --n 2048 --chunks 4; ~8 min on 2 idle cores
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _bench_util import headlines, load_guard, machine, median, rotated, versions, write_result  # noqa: E402
from make_finbert_shaped import ensure  # noqa: E402

TARGETS = {"onnx-int8": 2.5, "onnx-fp32": 1.3, "ours-torch": 1.1}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--chunks", type=int, default=4)
    ap.add_argument("--n", type=int, default=2048)
    ap.add_argument("--force", action="store_true", help="write the result even if the machine is busy")
    args = ap.parse_args()
    folder = ensure()
    texts = headlines(args.n)

    from transformers import pipeline

    from smart_model_manager.loaders import load_runner
    from smart_model_manager.loaders.cpu import default_threads

    threads = default_threads(None)
    runners = {
        "ours-torch": load_runner(folder, "sentiment", backend="torch", threads=threads),
        "onnx-fp32": load_runner(folder, "sentiment", backend="onnx-fp32", threads=threads),
        "onnx-int8": load_runner(folder, "sentiment", backend="onnx-int8", threads=threads),
    }
    labels = runners["ours-torch"].labels
    pipe = pipeline("text-classification", model=str(folder), top_k=None, batch_size=32, device="cpu")

    def run_pipeline(batch: list[str]) -> list[str]:
        return [rows[0]["label"] for rows in pipe(batch)]

    def wrap(runner):  # noqa: ANN001, ANN202
        return lambda batch: [labels[max(range(len(p)), key=p.__getitem__)] for p in runner(batch)]

    fns = {name: wrap(r) for name, r in runners.items()}
    fns["pipeline"] = run_pipeline
    for fn in fns.values():  # warm-up: first-call allocations, lazy inits
        fn(texts[:64])

    before = load_guard(args.force)
    size = -(-args.n // args.chunks)
    slices = [texts[i:i + size] for i in range(0, args.n, size)]
    wall: dict[str, list[float]] = {name: [] for name in fns}
    cpu: dict[str, list[float]] = {name: [] for name in fns}
    answers: dict[str, list[str]] = {name: [] for name in fns}
    for rnd, chunk in enumerate(slices):
        for name in rotated(list(fns), rnd):
            t, c = time.perf_counter(), time.process_time()
            answers[name] += fns[name](chunk)
            wall[name].append(time.perf_counter() - t)
            cpu[name].append(time.process_time() - c)
            print(f"slice {rnd + 1}/{len(slices)} {name:<10} {len(chunk) / wall[name][-1]:7.1f} texts/s "
                  f"({len(chunk) / cpu[name][-1]:6.1f} per CPU-s)", file=sys.stderr)
    summary = {name: {"seconds": sum(wall[name]), "texts_per_s": args.n / sum(wall[name]),
                      "cpu_seconds": sum(cpu[name]), "texts_per_cpu_s": args.n / sum(cpu[name]),
                      "agreement_with_pipeline": sum(a == b for a, b in zip(answers[name], answers["pipeline"]))
                      / args.n,
                      "label_counts": {lab: answers[name].count(lab) for lab in sorted(set(answers[name]))}}
               for name in fns}
    base = summary["pipeline"]["texts_per_s"]
    ratios = {name: s["texts_per_s"] / base for name, s in summary.items() if name != "pipeline"}
    cpu_ratios = {name: s["texts_per_cpu_s"] / summary["pipeline"]["texts_per_cpu_s"]
                  for name, s in summary.items() if name != "pipeline"}
    slice_ratios = {name: median([wall["pipeline"][i] / wall[name][i] for i in range(len(slices))])
                    for name in ratios}
    verdicts = {f"{name} >= {limit}x": ratios[name] >= limit for name, limit in TARGETS.items()}
    data = {
        "benchmark": "throughput", "model": "finbert-shaped (BERT-base, 12x768, random weights)",
        "texts": args.n, "chunks": len(slices), "threads": threads, "baseline": "pipeline(batch_size=32)",
        "medians": summary, "ratios": ratios, "cpu_ratios": cpu_ratios, "median_slice_ratios": slice_ratios,
        "targets": verdicts, "wall": wall, "cpu": cpu,
        "machine_before": before, "machine_after": machine(), "versions": versions()}
    for name, s in summary.items():
        extra = (f"  {ratios[name]:.2f}x wall, {cpu_ratios[name]:.2f}x CPU, median slice {slice_ratios[name]:.2f}x"
                 if name in ratios else "  (baseline)")
        print(f"{name:<10} {s['texts_per_s']:7.1f} texts/s {s['texts_per_cpu_s']:6.1f}/CPU-s  "
              f"agreement {s['agreement_with_pipeline']:.4f}{extra}")
    for k, ok in verdicts.items():
        print(f"target {k}: {'met' if ok else 'MISSED'}")
    path = write_result("throughput", data, force=args.force)
    print(f"-> {path}")


if __name__ == "__main__":
    main()
