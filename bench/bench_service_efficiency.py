#!/usr/bin/env python3
"""Service efficiency: what the sentiment service delivers on 1-text requests vs its own runner offline.

For each model, in ONE run:

* BASELINE ``offline``: the runner the service uses (``load_runner`` on the same volume folder, same
  backend as the service reports, same thread count), called in-process on the benchmark texts in
  batches of the service's ``max_batch``; texts/s. Measured before, between and after the service
  phases (median of the three), so load drift on a shared machine hits both.
* ``service``: ``smm serve``'s app under uvicorn (production environment, read-only volume), one
  headline per request, closed-loop saturation sweep (the load generator is a separate process on
  the same machine, as a real client on the same host would be); req/s at the best level.
* efficiency = service req/s / offline texts/s (goal >= 0.8), and open-loop latency (Poisson
  arrivals, measured from the scheduled send time) p50/p95/p99 at 50 % and 90 % of saturation.

Models: ``demo`` (the shipped demo model, bench/.models/demo, ONNX int8 when its gate passed) and
``finbert`` (bench/make_finbert_shaped.py: BERT-base shaped like FinBERT).

    .venv/bin/python bench/bench_service_efficiency.py [--models demo,finbert] [--force]
"""

from __future__ import annotations

import argparse
import statistics
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _bench_util import MODELS, load_guard, machine, versions, write_result  # noqa: E402
from bench_service_load import (  # noqa: E402
    BENCH_REPO_ID,
    free_port,
    load_texts,
    make_volume,
    measure_saturation,
    metrics_batches,
    run_loadgen,
    start_server,
    stop_server,
)

GOAL = 0.8


def model_folder(name: str) -> Path:
    if name == "finbert":
        from make_finbert_shaped import ensure

        return ensure()
    folder = MODELS / "demo"
    if not (folder / "onnx" / "quality.json").is_file():
        raise SystemExit(f"{folder} has no ONNX export; run bench/bench_int8_quality.py first (it builds and exports it)")
    return folder


def offline(folder: Path, backend: str, texts: list[str], batch: int, rounds: int = 3) -> float:
    """texts/s of the service's runner called in-process on ``texts`` in chunks of ``batch``."""
    from smart_model_manager.loaders import load_runner

    runner = load_runner(folder, "sentiment", backend=backend)
    runner(texts[:batch])  # warm-up
    rates = []
    for _ in range(rounds):
        t0 = time.perf_counter()
        for i in range(0, len(texts), batch):
            runner(texts[i:i + batch])
        rates.append(len(texts) / (time.perf_counter() - t0))
    return statistics.median(rates)


def one_model(name: str, levels: list[int], duration: float, lat_duration: float, max_batch: int,
              max_wait_ms: float) -> dict[str, Any]:
    folder = model_folder(name)
    texts = load_texts()
    work = (texts * (1 + 512 // len(texts)))[:512]
    with tempfile.TemporaryDirectory(prefix="smm-eff-") as tmp:
        volume = Path(tmp) / "volume"
        make_volume(folder, volume)
        snap = next((volume / f"models--{BENCH_REPO_ID.replace('/', '--')}" / "snapshots").iterdir())
        port = free_port()
        proc, startup, info = start_server("ours", folder, volume, "auto", port, max_batch, max_wait_ms,
                                           Path(tmp) / "ours.log", None)
        backend = {"onnx": "onnx-fp32", "onnx-int8": "onnx-int8"}.get(info.get("backend"), info.get("backend"))
        try:
            before = offline(snap, backend, work, max_batch)
            print(f"{name}: offline {backend} {before:.1f} texts/s (baseline)", file=sys.stderr)
            sweep = measure_saturation("ours", port, texts, levels, duration, lambda m: print(m, file=sys.stderr))
            best = max(sweep, key=lambda r: r["throughput_rps"])
            middle = offline(snap, backend, work, max_batch)
            latency = {}
            for share in (0.5, 0.9):
                lat = run_loadgen({"mode": "open", "port": port, "texts": texts,
                                   "rate": round(share * best["throughput_rps"], 2), "duration": lat_duration})
                latency[f"{int(share * 100)}%"] = {k: lat[k] for k in ("rate_rps", "p50_ms", "p95_ms", "p99_ms",
                                                                        "errors_5xx", "throughput_rps")}
            batching = metrics_batches(port)
        finally:
            stop_server(proc)
        after = offline(snap, backend, work, max_batch)
    off = statistics.median([before, middle, after])
    eff = best["throughput_rps"] / off
    print(f"{name}: service {best['throughput_rps']:.1f} req/s (c={best['concurrency']}) / offline {off:.1f} "
          f"texts/s = efficiency {eff:.2f} (goal >= {GOAL}); latency {latency}", file=sys.stderr)
    return {"folder": str(folder), "backend": backend, "service_rps": best["throughput_rps"],
            "service_concurrency": best["concurrency"], "sweep": sweep, "offline_texts_per_s": off,
            "offline_before_middle_after": [before, middle, after], "efficiency": eff, "latency": latency,
            "batching": batching, "startup_seconds": round(startup, 2)}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--models", default="demo,finbert")
    ap.add_argument("--levels", default="8,32,64")
    ap.add_argument("--duration", type=float, default=8.0)
    ap.add_argument("--latency-duration", type=float, default=10.0)
    ap.add_argument("--max-batch", type=int, default=32)
    ap.add_argument("--max-wait-ms", type=float, default=5.0)
    ap.add_argument("--force", action="store_true", help="write the result even if the machine is busy")
    args = ap.parse_args()
    before = load_guard(args.force)
    levels = [int(x) for x in args.levels.split(",")]
    models = {}
    for name in args.models.split(","):
        r = one_model(name, levels, args.duration, args.latency_duration, args.max_batch, args.max_wait_ms)
        models[f"{name} ({r['backend']})"] = r
    for name, r in models.items():
        print(f"{name:<24} baseline offline {r['offline_texts_per_s']:7.1f} texts/s   service "
              f"{r['service_rps']:7.1f} req/s   efficiency {r['efficiency']:.2f} "
              f"({'met' if r['efficiency'] >= GOAL else 'MISSED'} goal {GOAL})")
    path = write_result("service_efficiency", {
        "benchmark": "service_efficiency", "goal": GOAL, "models": models, "max_batch": args.max_batch,
        "max_wait_ms": args.max_wait_ms, "machine_before": before, "machine_after": machine(),
        "versions": versions()}, force=args.force)
    print(f"-> {path}")


if __name__ == "__main__":
    main()
