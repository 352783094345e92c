#!/usr/bin/env python3
"""Overload benchmark: the sentiment service under a burst above its capacity, bounds on vs off.

Same run, same model, same volume, one server at a time (``smm serve sentiment`` on 127.0.0.1):

* **baseline**: the old behaviour, every bound off through the config (``SMM_SERVICE_MAX_QUEUED_TOKENS=-1``,
  ``SMM_SERVICE_REQUEST_TIMEOUT_S=0``, ``SMM_SERVICE_DROP_DISCONNECTED=0``, ``SMM_SERVICE_LIMIT_CONCURRENCY=0``);
* **bounded**: the defaults (admission control in estimated tokens, 2 s deadline, disconnected clients
  dropped, uvicorn ``--limit-concurrency 1024``).

First the closed-loop capacity of each server (32 clients, 1-text requests, 200s per second); the
larger of the two is "capacity". Then, per server (fresh process): open-loop Poisson load at 3x and
at 10x capacity for 20 s each, with a 5 s client timeout (the client closes the
connection, as any HTTP client or proxy does); then recovery: from the end of the burst, a fresh probe
every 50 ms until one is answered 200 within 1 s. While the burst runs, /healthz and /readyz are probed
every 0.5 s. The load generator is a separate process speaking raw HTTP/1.1 over asyncio.

Reported: goodput (200s per second of burst / capacity), every status code (503s split by error code,
plain 503s from uvicorn apart), latency of answered requests and of refusals, whether every refusal
carried Retry-After, client timeouts, recovery, the server's idle and peak RSS (VmRSS, VmHWM).

    .venv/bin/python bench/bench_overload.py --model-dir bench/.models/finbert-shaped       # print only
    .venv/bin/python bench/bench_overload.py --model-dir bench/.models/finbert-shaped --write
    .venv/bin/python bench/bench_overload.py --write          # the demo model from the local cache

``--write`` writes ``bench/results/overload.json`` (one entry per model, kept across runs) and the
block between the ``bench_overload`` markers in docs/benchmarks.md.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _bench_util import RESULTS, busy_refusal, machine, portable, proc_rss_mib  # noqa: E402
from _overload_load import loadgen_main  # noqa: E402
from bench_service_load import (  # noqa: E402
    BENCH_REPO_ID,
    base_env,
    find_or_build_model,
    free_port,
    load_texts,
    make_volume,
    stop_server,
)

REPO = Path(__file__).resolve().parents[1]
DOCS = REPO / "docs" / "benchmarks.md"
OUT = RESULTS / "overload.json"
MARK = "bench_overload"
BASELINE_ENV = {"SMM_SERVICE_MAX_QUEUED_TOKENS": "-1", "SMM_SERVICE_REQUEST_TIMEOUT_S": "0",
                "SMM_SERVICE_DROP_DISCONNECTED": "0", "SMM_SERVICE_LIMIT_CONCURRENCY": "0"}
VARIANTS = {"baseline (bounds off)": BASELINE_ENV, "bounded (defaults)": {}}
FACTORS = (3, 10)


def start(volume: Path, backend: str, env_extra: dict[str, str], log_path: Path) -> tuple[subprocess.Popen[bytes], int]:
    import httpx

    port = free_port()
    env = base_env() | {"SMM_ENV": "production", "SMM_VOLUME_DIR": str(volume), "SMM_SERVICE_MODEL": BENCH_REPO_ID,
                        "SMM_BACKEND": backend} | env_extra
    smm = str(Path(sys.executable).with_name("smm"))
    proc = subprocess.Popen([smm, "serve", "sentiment", "--host", "127.0.0.1", "--port", str(port),
                             "--log-level", "warning"], cwd=REPO, env=env,
                            stdout=log_path.open("wb"), stderr=subprocess.STDOUT)
    deadline = time.monotonic() + 240
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise RuntimeError(f"server exited {proc.returncode}: {log_path.read_text()[-2000:]}")
        try:
            if httpx.get(f"http://127.0.0.1:{port}/readyz", timeout=2).status_code == 200:
                return proc, port
        except httpx.TransportError:
            pass
        time.sleep(0.2)
    proc.kill()
    raise RuntimeError("server not ready after 240 s")


def loadgen(spec: dict[str, Any]) -> dict[str, Any]:
    r = subprocess.run([sys.executable, str(Path(__file__).resolve()), "--_loadgen", json.dumps(spec)],
                       capture_output=True, text=True, timeout=400, env=base_env())
    if r.returncode != 0:
        raise RuntimeError(f"load generator failed:\n{r.stderr[-3000:]}")
    return json.loads(r.stdout.strip().splitlines()[-1])


def measure_capacity(name: str, env_extra: dict[str, str], volume: Path, backend: str, texts: list[str],
                     logdir: Path) -> dict[str, Any]:
    proc, port = start(volume, backend, env_extra, logdir / f"{name.split()[0]}-capacity.log")
    try:
        loadgen({"mode": "closed", "port": port, "texts": texts, "concurrency": 8, "duration": 3.0})  # warm-up
        cap = loadgen({"mode": "closed", "port": port, "texts": texts, "concurrency": 32, "duration": 12.0})
    finally:
        stop_server(proc)
    print(f"  {name}: closed-loop {cap['ok_per_s']:.1f} req/s answered 200 (c=32, statuses {cap['statuses']})",
          file=sys.stderr)
    return cap


def run_bursts(name: str, env_extra: dict[str, str], volume: Path, backend: str, texts: list[str],
               capacity: float, logdir: Path, burst_s: float) -> dict[str, Any]:
    proc, port = start(volume, backend, env_extra, logdir / f"{name.split()[0]}.log")
    try:
        import httpx

        loadgen({"mode": "closed", "port": port, "texts": texts, "concurrency": 8, "duration": 3.0})  # warm-up
        idle = proc_rss_mib(proc.pid)
        info = httpx.get(f"http://127.0.0.1:{port}/v1/models").json()["models"][0]
        out: dict[str, Any] = {"env": env_extra, "admission_after_warmup": info.get("admission"),
                               "backend": info.get("backend"), "dtype": info.get("dtype"),
                               "rss_idle_mb": idle["VmRSS"], "bursts": {}}
        for k in FACTORS:
            res = loadgen({"mode": "open", "port": port, "texts": texts, "rate": k * capacity, "duration": burst_s,
                           "timeout": 5.0, "seed": k, "capacity": capacity})
            res["goodput_x"] = round(res["ok_per_s"] / capacity, 3)
            res["rss_peak_mb_so_far"] = proc_rss_mib(proc.pid)["VmHWM"]
            res["loadavg_after"] = [round(x, 2) for x in os.getloadavg()]
            out["bursts"][f"{k}x"] = res
            print(f"  {name} {k}x ({k * capacity:.0f} req/s): goodput {res['goodput_x']}x, statuses "
                  f"{res['statuses']}, answered p99 {res['answered_ms']['p99']} ms, refused p99 "
                  f"{res['refused_ms']['p99']} ms, recovery {res['recovery_s']} s, health {res['health']}",
                  file=sys.stderr)
        out["rss_peak_mb"] = proc_rss_mib(proc.pid)["VmHWM"]
        out["rss_peak_over_idle"] = round(out["rss_peak_mb"] / idle["VmRSS"], 2)
        return out
    finally:
        stop_server(proc)


def verdict(b: dict[str, Any], deadline_s: float) -> dict[str, bool]:
    """The targets (goodput >= 0.9x, refusals answered within 50 ms at p99), checked on the bounded server's numbers."""
    v: dict[str, bool] = {}
    for k, r in b["bursts"].items():
        v[f"{k}_goodput_ge_0.9"] = r["goodput_x"] >= 0.9
        v[f"{k}_refused_p99_le_50ms"] = (r["refused_ms"]["p99"] or 0) <= 50
        v[f"{k}_refusals_have_retry_after"] = r["refused_without_retry_after"] == 0
        v[f"{k}_answered_p99_le_deadline"] = (r["answered_ms"]["p99"] or 0) <= deadline_s * 1000
        v[f"{k}_no_client_timeouts"] = r["statuses"].get("timeout", 0) == 0
        v[f"{k}_recovery_le_1s"] = r["recovery_s"] is not None and r["recovery_s"] <= 1.0
        v[f"{k}_no_other_5xx"] = r["other_5xx"] == 0
    v["peak_rss_le_1.5x_idle"] = b["rss_peak_over_idle"] <= 1.5
    return v


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--model-dir", help="a transformers model folder (default: the demo model from the cache)")
    ap.add_argument("--label", help="name of this model in the results (default: the folder's name)")
    ap.add_argument("--backend", default="auto", help="SMM_BACKEND for the server (default auto: int8 ONNX if gated in)")
    ap.add_argument("--write", action="store_true", help="write bench/results/overload.json and docs/benchmarks.md")
    ap.add_argument("--force", action="store_true", help="write even if the machine was busy (recorded)")
    ap.add_argument("--burst-seconds", type=float, default=20.0, help="length of each burst (default 20)")
    ap.add_argument("--_loadgen", help=argparse.SUPPRESS)
    args = ap.parse_args(argv)
    if args._loadgen:
        print(json.dumps(loadgen_main(json.loads(args._loadgen))))
        return 0
    folder, described = find_or_build_model(args.model_dir)
    label = args.label or folder.name
    texts = load_texts()
    data: dict[str, Any] = {"model": label, "model_described": described, "machine_before": machine(),
                            "shared_machine_note": "2 cores shared with other work; see load averages"}
    print(f"bench_overload: {described}; load {data['machine_before']['loadavg']}", file=sys.stderr)
    with tempfile.TemporaryDirectory(prefix="smm-bench-overload-") as tmp:
        volume = Path(tmp) / "volume"
        make_volume(folder, volume)
        # capacity first, on both servers: the offered load must exceed what either can serve
        caps = {name: measure_capacity(name, env_extra, volume, args.backend, texts, Path(tmp))
                for name, env_extra in VARIANTS.items()}
        capacity = max(c["ok_per_s"] for c in caps.values())
        runs: dict[str, Any] = {}
        for name, env_extra in VARIANTS.items():
            runs[name] = run_bursts(name, env_extra, volume, args.backend, texts, capacity, Path(tmp),
                                    args.burst_seconds)
            runs[name]["capacity"] = caps[name]
    data["offered_capacity_rps"] = capacity
    data["runs"] = runs
    bounded = runs["bounded (defaults)"]
    deadline = float((bounded.get("admission_after_warmup") or {}).get("deadline_s") or 2.0)
    data["targets_met"] = verdict(bounded, deadline)
    data["machine_after"] = machine()
    print(json.dumps(portable(data), indent=2), file=sys.stderr)
    if args.write:
        busy_refusal(data, force=args.force)
        from _overload_docs import update_docs

        allr = json.loads(OUT.read_text()) if OUT.is_file() else {"models": {}}
        allr["models"][label] = portable(data)
        OUT.write_text(json.dumps(allr, indent=2, sort_keys=True) + "\n")
        update_docs(allr, DOCS, MARK)
        print(f"wrote {OUT.relative_to(REPO)} and {DOCS.relative_to(REPO)}", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
