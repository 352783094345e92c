#!/usr/bin/env python3
"""Service memory under the worst allowed request, and what bounding it costs.

Two variants of the same service, same volume, same run, alternated round by round:

* ``old``: the behaviour before the fix, the named baseline: ONNX Runtime's CPU memory arena and memory
  patterns on, glibc's default malloc thresholds, and batches bounded by text count only
  (``SMM_TOKEN_BUDGET`` set out of reach, so a model call is 32 texts whatever their length);
* ``ours``: the shipped defaults: no arena, no memory patterns, a fixed 4 MiB malloc mmap threshold and
  ``malloc_trim`` after long batches in the service (``service/memory.py``), batches bounded by
  ``CPU_TOKEN_BUDGET`` padded tokens and, for long rows, by their attention (``ATTENTION_WIDTH``).

Per variant and round, one fresh server process (``SMM_ENV=production`` on a volume with the demo model,
``SMM_BACKEND=onnx``):

1. warm-up: 100 one-headline requests and 10 requests of 64 headlines;
2. throughput on ordinary headlines: 8 concurrent keep-alive clients, one headline per request, closed
   loop for ``--seconds`` (texts/s); then 2 clients sending 64 headlines per request (texts/s);
3. idle RSS after 1 s of quiet;
4. the worst allowed request (64 texts x 2,000 characters, the service's own limits) sent 20 times,
   one after the other, RSS sampled every 10 ms: peak RSS; RSS again after 2 s of quiet ("after").

Acceptance: ours peak <= 1.5x idle; ours throughput >= 0.9x old. Medians over --rounds.
JSON to bench/results/service_memory.json; ``--update-docs`` rewrites the block between the
``bench_service_memory`` markers in docs/benchmarks.md.

    .venv/bin/python bench/bench_service_memory.py                 # ~5 min on 2 quiet cores
    .venv/bin/python bench/bench_service_memory.py --volume DIR    # a volume holding the demo model
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import signal
import socket
import statistics
import subprocess
import sys
import threading
import time
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO / "bench"))
from _bench_util import RESULTS, machine, portable, versions  # noqa: E402

DEMO_REPO_ID = "smart-model-manager/finbert-mini-demo"
DEFAULT_VOLUME = REPO / "build" / "bench-demo-volume"
WORST_TEXTS, WORST_CHARS, WORST_REPEATS = 64, 2000, 20

# The old behaviour, reproduced exactly: arena + memory patterns back on, no token budget.
OLD_PATCH = """
import smart_model_manager.loaders.onnx as _o
_orig = _o.session_options
def _old_options(threads):
    so = _orig(threads)
    so.enable_cpu_mem_arena = True
    so.enable_mem_pattern = True
    return so
_o.session_options = _old_options
import smart_model_manager.service.app as _app
_app.return_freed_memory = lambda *a, **k: False  # glibc's default malloc thresholds, as before
"""
SERVE = """
import sys, uvicorn
uvicorn.run("smart_model_manager.service.app:create_app", factory=True, host="127.0.0.1",
            port=int(sys.argv[1]), log_level="warning", access_log=False)
"""


def ensure_volume(path: Path) -> Path:
    if (path / "model-metadata.yaml").is_file():
        return path
    print(f"building the demo model into {path} (1-5 min) ...", flush=True)
    subprocess.run([sys.executable, "-m", "smart_model_manager.cli.main", "models", "build-demo", "--target",
                    str(path)], check=True, cwd=REPO, timeout=1800)
    return path


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def start(variant: str, volume: Path, port: int, log_path: Path) -> subprocess.Popen[bytes]:
    import httpx

    env = {k: v for k, v in os.environ.items() if not k.startswith(("SMM_", "PYTEST_"))}
    env.update(PYTHONPATH=str(REPO / "src"), HF_HUB_OFFLINE="1", TOKENIZERS_PARALLELISM="false",
               SMM_ENV="production", SMM_VOLUME_DIR=str(volume), SMM_SERVICE_MODEL=DEMO_REPO_ID,
               SMM_BACKEND="onnx")
    code = SERVE
    if variant == "old":
        env["SMM_TOKEN_BUDGET"] = str(10**9)  # never binds: batches of max_batch texts, as before
        code = OLD_PATCH + SERVE
    log_fh = open(log_path, "wb")  # noqa: SIM115 - the process owns it until it exits
    proc = subprocess.Popen([sys.executable, "-c", code, str(port)], cwd=REPO, env=env, stdout=log_fh,
                            stderr=subprocess.STDOUT)
    deadline = time.monotonic() + 240
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise RuntimeError(f"{variant} server exited with {proc.returncode}; see {log_path}")
        try:
            if httpx.get(f"http://127.0.0.1:{port}/readyz", timeout=2).status_code == 200:
                return proc
        except httpx.TransportError:
            pass
        time.sleep(0.2)
    proc.kill()
    raise RuntimeError(f"{variant} server not ready after 240 s; see {log_path}")


def stop(proc: subprocess.Popen[bytes]) -> None:
    proc.send_signal(signal.SIGTERM)
    try:
        proc.wait(30)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait(10)


async def _post(reader: asyncio.StreamReader, writer: asyncio.StreamWriter, body: bytes) -> int:
    writer.write(b"POST /v1/sentiment HTTP/1.1\r\nHost: b\r\nContent-Type: application/json\r\n"
                 b"Content-Length: " + str(len(body)).encode() + b"\r\n\r\n" + body)
    await writer.drain()
    status = int((await reader.readline()).split()[1])
    length = 0
    while True:
        line = await reader.readline()
        if line in (b"\r\n", b""):
            break
        if line.lower().startswith(b"content-length:"):
            length = int(line.split(b":")[1])
    await reader.readexactly(length)
    return status


async def closed_loop(port: int, bodies: list[bytes], texts_per_body: int, clients: int,
                      seconds: float) -> dict[str, Any]:
    done = errors = 0
    stop_at = time.monotonic() + seconds

    async def client(k: int) -> None:
        nonlocal done, errors
        reader, writer = await asyncio.open_connection("127.0.0.1", port)
        i = k
        try:
            while time.monotonic() < stop_at:
                status = await _post(reader, writer, bodies[i % len(bodies)])
                i += clients
                if status == 200:
                    done += 1
                else:
                    errors += 1
        finally:
            writer.close()

    t0 = time.monotonic()
    await asyncio.gather(*(client(k) for k in range(clients)))
    elapsed = time.monotonic() - t0
    return {"requests": done, "errors": errors, "seconds": round(elapsed, 2),
            "texts_per_s": round(done * texts_per_body / elapsed, 1)}


class RssSampler:
    def __init__(self, pid: int, every: float = 0.01):
        import psutil

        self.proc = psutil.Process(pid)
        self.every = every
        self.peak = 0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def rss(self) -> int:
        return int(self.proc.memory_info().rss)

    def _run(self) -> None:
        while not self._stop.is_set():
            self.peak = max(self.peak, self.rss())
            time.sleep(self.every)

    def __enter__(self) -> RssSampler:
        self.peak = self.rss()
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join(5)
        self.peak = max(self.peak, self.rss())


def headlines() -> list[str]:
    lines = (REPO / "data" / "sample_headlines.txt").read_text(encoding="utf-8").splitlines()
    return [ln.strip() for ln in lines if ln.strip() and not ln.startswith("#")]


def worst_body() -> bytes:
    words = "bitcoin exchange regulators approve fund inflows record rally after hack losses".split()
    texts = []
    for i in range(WORST_TEXTS):
        text = ""
        k = i
        while len(text) < WORST_CHARS:
            text += words[k % len(words)] + " "
            k += 7
        texts.append(text[:WORST_CHARS])
    return json.dumps({"texts": texts}).encode()


def one_round(variant: str, volume: Path, seconds: float, log_dir: Path) -> dict[str, Any]:
    import httpx

    port = free_port()
    proc = start(variant, volume, port, log_dir / f"{variant}.log")
    try:
        url = f"http://127.0.0.1:{port}"
        heads = headlines()
        single = [json.dumps({"texts": [h]}).encode() for h in heads]
        batch64 = [json.dumps({"texts": (heads * 64)[i:i + 64]}).encode() for i in range(0, 640, 64)]
        with httpx.Client(timeout=120) as http:
            info = http.get(f"{url}/v1/models").json()["models"][0]
            for i in range(100):
                assert http.post(f"{url}/v1/sentiment", content=single[i % len(single)],
                                 headers={"Content-Type": "application/json"}).status_code == 200
            for body in batch64:
                assert http.post(f"{url}/v1/sentiment", content=body,
                                 headers={"Content-Type": "application/json"}).status_code == 200
        tp_single = asyncio.run(closed_loop(port, single, 1, 8, seconds))
        tp_batch = asyncio.run(closed_loop(port, batch64, 64, 2, seconds))
        time.sleep(1.0)
        sampler = RssSampler(proc.pid)
        idle = sampler.rss()
        worst = worst_body()
        latencies = []
        with sampler, httpx.Client(timeout=300) as http:
            for _ in range(WORST_REPEATS):
                t0 = time.perf_counter()
                r = http.post(f"{url}/v1/sentiment", content=worst, headers={"Content-Type": "application/json"})
                latencies.append(time.perf_counter() - t0)
                assert r.status_code == 200, r.text[:300]
        time.sleep(2.0)
        after = sampler.rss()
        return {"variant": variant, "backend": info.get("backend"), "idle_mb": round(idle / 2**20, 1),
                "peak_mb": round(sampler.peak / 2**20, 1), "after_mb": round(after / 2**20, 1),
                "peak_over_idle": round(sampler.peak / idle, 2), "after_over_idle": round(after / idle, 2),
                "worst_request_s_median": round(statistics.median(latencies), 3),
                "headline_texts_per_s": tp_single["texts_per_s"], "batch64_texts_per_s": tp_batch["texts_per_s"],
                "throughput_detail": {"single": tp_single, "batch64": tp_batch}}
    finally:
        stop(proc)


def summarise(rounds: list[dict[str, Any]]) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for variant in ("old", "ours"):
        rows = [r for r in rounds if r["variant"] == variant]
        out[variant] = {k: round(statistics.median(r[k] for r in rows), 3) for k in
                        ("idle_mb", "peak_mb", "after_mb", "peak_over_idle", "after_over_idle",
                         "worst_request_s_median", "headline_texts_per_s", "batch64_texts_per_s")}
        out[variant]["backend"] = rows[0]["backend"]
    out["throughput_ratio_headlines"] = round(out["ours"]["headline_texts_per_s"]
                                              / out["old"]["headline_texts_per_s"], 3)
    out["throughput_ratio_batch64"] = round(out["ours"]["batch64_texts_per_s"]
                                            / out["old"]["batch64_texts_per_s"], 3)
    out["peak_ratio_ours_vs_old"] = round(out["ours"]["peak_mb"] / out["old"]["peak_mb"], 3)
    return out


def update_docs(result: dict[str, Any]) -> None:
    s, m = result["summary"], result["machine"]
    o, n = s["old"], s["ours"]
    block = "\n".join([
        f"Measured {m['time_utc']} on {m['cpus_affinity']} CPUs (load average {m['loadavg'][0]} at the end), "
        f"{result['rounds']} rounds per variant, backend `{n['backend']}`, the demo model; "
        f"`.venv/bin/python bench/bench_service_memory.py --update-docs`.",
        "",
        f"| | old (baseline: arena on, batches of 32 texts) | ours (no arena, {result['token_budget']:,}-token "
        f"batches, attention-bounded long rows, {result.get('mmap_threshold_bytes', 0) >> 20} MiB mmap threshold "
        "+ trim) | ratio |",
        "|---|---|---|---|",
        f"| idle RSS after warm-up | {o['idle_mb']:.0f} MB | {n['idle_mb']:.0f} MB | |",
        f"| peak RSS, 20 x (64 texts x 2,000 chars) | {o['peak_mb']:.0f} MB ({o['peak_over_idle']:.2f}x idle) "
        f"| {n['peak_mb']:.0f} MB ({n['peak_over_idle']:.2f}x idle) | {s['peak_ratio_ours_vs_old']:.2f}x |",
        f"| RSS 2 s after those requests | {o['after_mb']:.0f} MB ({o['after_over_idle']:.2f}x idle) "
        f"| {n['after_mb']:.0f} MB ({n['after_over_idle']:.2f}x idle) | |",
        f"| one worst request, median latency | {o['worst_request_s_median']:.2f} s "
        f"| {n['worst_request_s_median']:.2f} s | |",
        f"| throughput, 1 headline/request, 8 clients | {o['headline_texts_per_s']:.0f} texts/s "
        f"| {n['headline_texts_per_s']:.0f} texts/s | {s['throughput_ratio_headlines']:.2f}x |",
        f"| throughput, 64 headlines/request, 2 clients | {o['batch64_texts_per_s']:.0f} texts/s "
        f"| {n['batch64_texts_per_s']:.0f} texts/s | {s['throughput_ratio_batch64']:.2f}x |",
    ])
    path = REPO / "docs" / "benchmarks.md"
    text = path.read_text(encoding="utf-8")
    begin, end = "<!-- bench_service_memory:begin -->", "<!-- bench_service_memory:end -->"
    if begin in text:
        head, rest = text.split(begin, 1)
        text = head + begin + "\n" + block + "\n" + end + rest.split(end, 1)[1]
    else:
        text += f"\n{begin}\n{block}\n{end}\n"
    path.write_text(text, encoding="utf-8")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--volume", type=Path, default=DEFAULT_VOLUME)
    ap.add_argument("--rounds", type=int, default=1)
    ap.add_argument("--seconds", type=float, default=8.0, help="each throughput phase")
    ap.add_argument("--update-docs", action="store_true")
    args = ap.parse_args()
    volume = ensure_volume(args.volume)
    log_dir = REPO / "build" / "bench-service-memory-logs"
    log_dir.mkdir(parents=True, exist_ok=True)
    rounds = []
    for i in range(args.rounds):
        for variant in (("old", "ours") if i % 2 == 0 else ("ours", "old")):
            r = one_round(variant, volume, args.seconds, log_dir)
            print(f"round {i + 1} {variant:4s}: idle {r['idle_mb']:.0f} MB, peak {r['peak_mb']:.0f} MB "
                  f"({r['peak_over_idle']:.2f}x), after {r['after_mb']:.0f} MB; headlines {r['headline_texts_per_s']}"
                  f" texts/s, 64/request {r['batch64_texts_per_s']} texts/s; worst request "
                  f"{r['worst_request_s_median']:.2f} s", flush=True)
            rounds.append(r)
    from smart_model_manager.loaders._common import ATTENTION_WIDTH, CPU_TOKEN_BUDGET
    from smart_model_manager.service.memory import DEFAULT_THRESHOLD

    result = {"machine": machine(), "versions": versions(), "rounds": args.rounds, "seconds": args.seconds,
              "token_budget": CPU_TOKEN_BUDGET, "attention_budget": CPU_TOKEN_BUDGET * ATTENTION_WIDTH,
              "mmap_threshold_bytes": DEFAULT_THRESHOLD,
              "volume": str(volume), "runs": rounds, "summary": summarise(rounds)}
    RESULTS.mkdir(parents=True, exist_ok=True)
    (RESULTS / "service_memory.json").write_text(json.dumps(portable(result), indent=2) + "\n")
    print(json.dumps(result["summary"], indent=2))
    if args.update_docs:
        update_docs(result)


if __name__ == "__main__":
    main()
