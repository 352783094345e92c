#!/usr/bin/env python3
"""Two models in one sentiment service vs each model alone: saturation and RSS under a 50/50 mixed load.

Baselines, in the same run: the service serving model A alone, then model B alone (one process each,
saturation and RSS measured). Then ONE service serving both (routes ``crypto`` = A, ``stock`` = B) under a
closed loop in which every client alternates A and B requests (``/v1/sentiment`` with ``model``), so the
completed load is 50/50, in three ways of sharing the CPU between the two runners:

* ``shared``: the two models' batches take turns on one model thread, each runner using every core
  (the threads of a single-model service): never more busy threads than cores;
* ``per-model`` (the service's default): each model its own thread, so an A batch and a B batch run at
  once, each runner with every core: twice the threads on the cores while both are busy;
* ``per-model, 1 thread``: each its own thread, each runner held to 1 thread (``SMM_NUM_THREADS=1``, what
  the Kubernetes pod sets with ``requests.cpu: 1``): the cores split between the models.

Targets: mixed saturation >= 0.8 x the harmonic mean of the two single-model saturations
(which is exactly what perfect time sharing gives for a 50/50 mix: each pair of requests costs
1/sat_A + 1/sat_B seconds), and RSS of the two-model process <= (RSS_A + RSS_B) x 1.1.

Models: A = the demo model (``smm models build-demo``; MiniLM-L6 with a 3-label head), B = the
FinBERT-shaped BERT-base (``bench/make_finbert_shaped.py``, built if missing), both from one
production-style volume (HF cache layout + manifest), backend onnx. One headline per request.

    .venv/bin/python bench/bench_multi_model.py [--duration 15] [--write]

``--write`` writes ``bench/results/multi_model.json`` and the marked section of docs/benchmarks.md
(refused when the 1-minute load average exceeds the core count, unless ``--force``).
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import re
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))
import _bench_util as bu  # noqa: E402
import bench_service_load as sl  # noqa: E402

REPO = HERE.parent
DOCS = REPO / "docs" / "benchmarks.md"
MARK = "bench_multi_model"
REPOS = {"crypto": "bench/demo-minilm", "stock": "bench/finbert-shaped"}
VARIANTS = {"shared": {"SMM_SERVICE_MODEL_EXECUTOR": "shared"},
            "per-model": {"SMM_SERVICE_MODEL_EXECUTOR": "per-model"},
            "per-model, 1 thread": {"SMM_SERVICE_MODEL_EXECUTOR": "per-model", "SMM_NUM_THREADS": "1"}}


def demo_folder(arg: str | None) -> Path:
    if arg:
        return Path(arg).resolve()
    from smart_model_manager import Settings
    from smart_model_manager.sources.known_models import DEMO_REPO_ID
    from smart_model_manager.store import cache as store

    snap = store.find_snapshot(Settings.from_env().cache_dir, DEMO_REPO_ID)
    if snap is None:
        sys.exit("no demo model in the cache: run `smm models build-demo` (or pass --demo-dir)")
    return snap


def make_volume(folders: dict[str, Path], root: Path) -> dict[str, str]:
    """One production-style volume holding both models; returns route -> commit."""
    from smart_model_manager.formats import manifest
    from smart_model_manager.formats.manifest import FileEntry, Manifest, ModelEntry
    from smart_model_manager.sources.base import read_schema
    from smart_model_manager.store import cache as store

    entries, commits = [], {}
    for route, folder in folders.items():
        res = store.import_folder(folder, root, REPOS[route])
        labels, _ = read_schema(res.snapshot)
        entries.append(ModelEntry(repo_id=REPOS[route], commit=res.commit, model_type="sentiment", labels=labels,
                                  files={rel: FileEntry(size=size, sha256="sha256:" + sha)
                                         for rel, (size, sha) in res.files.items()}))
        commits[route] = res.commit
    man = Manifest.of(entries, generated_by="bench/bench_multi_model.py", verified_at=manifest.now_iso())
    store.atomic_write_text(root / manifest.MANIFEST_NAME, man.dumps())
    return commits


# ------------------------------------------------------------------------------------------------
# load generator (its own process: `bench_multi_model.py --_loadgen JSON`)


async def closed_mixed(port: int, texts: list[str], routes: list[str | None], concurrency: int,
                       duration: float) -> dict[str, Any]:
    """Each client sends one headline at a time, cycling through ``routes`` (None: no model field)."""
    payloads = [[json.dumps({"texts": [t]} | ({"model": r} if r else {})).encode() for t in texts] for r in routes]
    lat: list[float] = []
    statuses: dict[str, int] = {}
    done = dict.fromkeys(map(str, routes), 0)
    deadline = time.perf_counter() + duration

    async def worker(k: int) -> None:
        conn = await sl.Conn.open(port)
        i = k
        try:
            while (start := time.perf_counter()) < deadline:
                which = i % len(routes)
                try:
                    status = str(await conn.post("/v1/sentiment", payloads[which][(i * 7) % len(texts)]))
                except (OSError, asyncio.IncompleteReadError, ValueError) as err:
                    status = f"transport:{type(err).__name__}"
                    conn.close()
                    conn = await sl.Conn.open(port)
                end = time.perf_counter()
                if end <= deadline:
                    lat.append(end - start)
                    statuses[status] = statuses.get(status, 0) + 1
                    done[str(routes[which])] += status == "200"
                i += 1
        finally:
            conn.close()

    await asyncio.gather(*(worker(k) for k in range(concurrency)))
    return sl.summarise(lat, statuses, duration, {"concurrency": concurrency, "completed_per_route": done})


def loadgen(spec: dict[str, Any]) -> dict[str, Any]:
    r = subprocess.run([sys.executable, str(Path(__file__).resolve()), "--_loadgen", json.dumps(spec)],
                       capture_output=True, text=True, timeout=spec["duration"] + 150, env=sl.base_env())
    if r.returncode != 0:
        raise RuntimeError(f"load generator failed:\n{r.stderr[-2000:]}")
    return json.loads(r.stdout.strip().splitlines()[-1])


# ------------------------------------------------------------------------------------------------
# one server: start, load, measure RSS, stop


def run_server(name: str, volume: Path, env_extra: dict[str, str], routes: list[str | None], texts: list[str],
               args: argparse.Namespace, log_dir: Path) -> dict[str, Any]:
    import httpx

    env = sl.base_env() | {"SMM_ENV": "production", "SMM_VOLUME_DIR": str(volume), "SMM_BACKEND": args.backend,
                          "SMM_SERVICE_MAX_BATCH": "32", "SMM_SERVICE_MAX_WAIT_MS": "5"} | env_extra
    port = sl.free_port()
    cmd = [sys.executable, "-m", "uvicorn", "smart_model_manager.service.app:create_app", "--factory",
           "--host", "127.0.0.1", "--port", str(port), "--no-access-log", "--log-level", "warning"]
    log_path = log_dir / f"{name.replace(' ', '_').replace(',', '')}.log"
    with open(log_path, "wb") as log_fh:
        t0 = time.perf_counter()
        proc = subprocess.Popen(cmd, cwd=REPO, env=env, stdout=log_fh, stderr=subprocess.STDOUT)
        try:
            while True:
                if proc.poll() is not None:
                    raise RuntimeError(f"{name}: server exited {proc.returncode}: "
                                       f"{log_path.read_text(errors='replace')[-2000:]}")
                try:
                    if httpx.get(f"http://127.0.0.1:{port}/readyz", timeout=2).status_code == 200:
                        break
                except httpx.TransportError:
                    pass
                if time.perf_counter() - t0 > 300:
                    raise RuntimeError(f"{name}: not ready after 300 s; see {log_path}")
                time.sleep(0.2)
            startup = round(time.perf_counter() - t0, 2)
            models = httpx.get(f"http://127.0.0.1:{port}/v1/models").json()["models"]
            rss_idle = bu.proc_rss_mib(proc.pid)
            loadgen({"port": port, "texts": texts, "routes": routes, "concurrency": 8, "duration": 2.0})  # warm-up
            res = loadgen({"port": port, "texts": texts, "routes": routes, "concurrency": args.concurrency,
                           "duration": args.duration})
            rss = bu.proc_rss_mib(proc.pid)
        finally:
            sl.stop_server(proc)
    print(f"  {name:22s} {res['throughput_rps']:8.1f} req/s  p50 {res['p50_ms']} ms  p95 {res['p95_ms']} ms  "
          f"5xx {res['errors_5xx']}  RSS {rss.get('VmRSS')} MiB (peak {rss.get('VmHWM')})  "
          f"per route {res['completed_per_route']}", file=sys.stderr)
    return {"startup_seconds": startup, "rss_idle_mib": rss_idle, "rss_mib": rss, "load": res,
            "models": [{k: m.get(k) for k in ("name", "repo_id", "backend", "commit")} for m in models],
            "env": env_extra}


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--demo-dir", help="the demo model's folder (default: from the local cache)")
    p.add_argument("--backend", default="onnx", choices=["onnx", "torch", "auto"])
    p.add_argument("--duration", type=float, default=15.0, help="seconds of closed-loop load per server")
    p.add_argument("--concurrency", type=int, default=16)
    p.add_argument("--write", action="store_true", help="write bench/results/multi_model.json and docs/benchmarks.md")
    p.add_argument("--force", action="store_true", help="write even if the machine was busy (recorded)")
    args = p.parse_args(argv)
    import make_finbert_shaped

    folders = {"crypto": demo_folder(args.demo_dir), "stock": make_finbert_shaped.ensure()}
    before = bu.load_guard(args.force)
    t_start = time.perf_counter()
    texts = bu.headlines(200)
    with tempfile.TemporaryDirectory(prefix="smm-bench-multi-") as tmp:
        volume = Path(tmp) / "volume"
        commits = make_volume(folders, volume)
        runs: dict[str, Any] = {}
        for route in ("crypto", "stock"):
            runs[f"{route} alone"] = run_server(f"{route} alone", volume, {"SMM_SERVICE_MODEL": REPOS[route]},
                                                [None], texts, args, Path(tmp))
        both = f"crypto={REPOS['crypto']},stock={REPOS['stock']}"
        for variant, env in VARIANTS.items():
            runs[f"both, {variant}"] = run_server(f"both, {variant}", volume, {"SMM_SERVICE_MODELS": both} | env,
                                                  ["crypto", "stock"], texts, args, Path(tmp))
    a, b = (runs[f"{r} alone"]["load"]["throughput_rps"] for r in ("crypto", "stock"))
    harmonic = 2 / (1 / a + 1 / b)
    rss_sum = sum(runs[f"{r} alone"]["rss_mib"]["VmRSS"] for r in ("crypto", "stock"))
    ratios = {name: {"saturation_vs_harmonic": round(r["load"]["throughput_rps"] / harmonic, 3),
                     "rss_vs_sum": round(r["rss_mib"]["VmRSS"] / rss_sum, 3)}
              for name, r in runs.items() if name.startswith("both")}
    data = {"benchmark": "bench_multi_model", "command": " ".join(["bench/bench_multi_model.py", *(argv or sys.argv[1:])]),
            "timestamp": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()), "machine_before": before,
            "machine_after": bu.machine(), "versions": bu.versions(), "wall_seconds": round(time.perf_counter() - t_start, 1),
            "models": {r: {"repo_id": REPOS[r], "folder": str(f), "commit": commits[r]} for r, f in folders.items()},
            "backend": args.backend, "duration_s": args.duration, "concurrency": args.concurrency, "runs": runs,
            "harmonic_mean_rps": round(harmonic, 2), "sum_single_rss_mib": round(rss_sum, 1), "ratios": ratios,
            "targets": {name: {"saturation_ge_0.8x_harmonic": r["saturation_vs_harmonic"] >= 0.8,
                               "rss_le_1.1x_sum": r["rss_vs_sum"] <= 1.1} for name, r in ratios.items()}}
    print(json.dumps({"harmonic_mean_rps": data["harmonic_mean_rps"], "ratios": ratios,
                      "loadavg_after": data["machine_after"]["loadavg"]}, indent=2))
    if args.write:
        out = bu.write_result("multi_model", data, force=args.force)
        update_docs(data, out)
    return 0


def update_docs(r: dict[str, Any], out: Path) -> None:
    def row(name: str, s: dict[str, Any]) -> str:
        ld, ratio = s["load"], r["ratios"].get(name, {})
        return (f"| {name} | {ld['throughput_rps']:.1f} | {ratio.get('saturation_vs_harmonic', '')} | {ld['p50_ms']} | "
                f"{ld['p95_ms']} | {ld['errors_5xx']} | {s['rss_mib']['VmRSS']} | {ratio.get('rss_vs_sum', '')} |")

    order = sorted(r["runs"], key=lambda n: (not n.endswith("alone"), n))  # baselines first
    rows = "\n".join(row(n, r["runs"][n]) for n in order)
    command = re.sub(r"--demo-dir \S+", "--demo-dir DEMO_SNAPSHOT", r["command"])  # a path of the machine
    lc = r["load_check"]
    start, end = f"<!-- {MARK}:start -->", f"<!-- {MARK}:end -->"
    section = f"""{start}
## Two models in one service (`bench/bench_multi_model.py`)

Command: `.venv/bin/python {command}` ({r['wall_seconds']} s wall, {r['timestamp']}).
Models: crypto = the demo model (MiniLM-L6, 3 labels), stock = the FinBERT-shaped BERT-base, both from one
production-style volume, backend `{r['backend']}` (`DEMO_SNAPSHOT`: the demo model's folder, from
`smm models build-demo`; omitted, the local cache's); one headline per request; closed loop, {r['concurrency']}
clients, {r['duration_s']} s per server; the two-model runs alternate crypto and stock requests per client
(`/v1/sentiment` with `model`), so the completed load is 50/50. Baselines: each model alone, same run.
Machine: {r['machine_before'].get('cpus_affinity')} CPUs **shared with other jobs**; 1-minute load average
{lc['loadavg_1min_before_after'][0]} before, {lc['loadavg_1min_before_after'][1]} after
{'(busy: written with --force; the numbers carry the neighbours’ noise)' if lc['busy'] else ''}.

| server | req/s | vs harmonic mean | p50 ms | p95 ms | 5xx | RSS MiB | RSS vs sum |
|---|---|---|---|---|---|---|---|
{rows}

Harmonic mean of the single-model saturations: {r['harmonic_mean_rps']} req/s (what perfect time sharing
gives for a 50/50 mix); sum of the single-model RSS: {r['sum_single_rss_mib']} MiB. Targets: saturation >= 0.8x
the harmonic mean, RSS <= 1.1x the sum. CPU sharing: `shared` = the models' batches take turns on one
model thread, each runner with every core; `per-model` (the default) = one thread per model, both runners
busy at once with every core each; `per-model, 1 thread` = one thread per model, each runner with 1 thread
(`SMM_NUM_THREADS=1`, as in the Kubernetes pod). The single-model baselines use each runner's default
threads (every core); on this busy machine one thread per runner did best (as for one model: see
"Sentiment service under load" above), so that row measures the thread count as much as the sharing.
Raw numbers: `{out.relative_to(REPO).as_posix()}`.
{end}"""
    text = DOCS.read_text(encoding="utf-8")
    if start in text and end in text:
        head, _, rest = text.partition(start)
        text = head + section + rest.partition(end)[2]
    else:
        text = text.rstrip("\n") + "\n\n" + section + "\n"
    tmp = DOCS.with_name(DOCS.name + f".tmp{os.getpid()}")
    tmp.write_text(text, encoding="utf-8")
    os.replace(tmp, DOCS)


if __name__ == "__main__":
    if len(sys.argv) == 3 and sys.argv[1] == "--_loadgen":
        spec = json.loads(sys.argv[2])
        print(json.dumps(asyncio.run(closed_mixed(spec["port"], spec["texts"], spec["routes"], spec["concurrency"],
                                                  spec["duration"]))))
        sys.exit(0)
    sys.exit(main())
