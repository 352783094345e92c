#!/usr/bin/env python3
"""Download throughput of `smm mirror serve`: uvicorn + Starlette (today) vs the stdlib http.server mirror
it replaced (the named baseline, bench/_old_mirror.py), on the same 400 MB file in the same run.

Each server runs in its own process, serving one HF cache root on 127.0.0.1. The client is this process:
raw sockets, one ``GET /{repo}/resolve/main/{file}`` per transfer, the body read with ``recv_into`` into
a reused buffer (so the client costs as little as possible and the server is what is measured). Variants,
alternated round by round with the order rotated, so load drift on a shared machine hits all alike:

* ``old``          the http.server mirror: a thread per connection, ``os.sendfile`` (baseline)
* ``new``          the uvicorn mirror: event loop, ``os.sendfile`` through ``http.response.zerocopysend``
* ``new-read``     the uvicorn mirror with sendfile off: 8 MiB reads written through the transport
                   (what losing sendfile would cost)

Per round and variant: one stream alone, then ``--streams`` streams at once. Reported: median MB/s per
variant, the ratio to ``old``, and the server's CPU seconds per GB sent (from /proc, via psutil).

    .venv/bin/python bench/bench_mirror.py                 # prints; ~1-2 min on 2 cores
    .venv/bin/python bench/bench_mirror.py --write         # also writes bench/results/mirror.json
                                                           # (refused on a busy machine unless --force)
    .venv/bin/python bench/bench_mirror.py --size-mb 100 --rounds 3
"""

from __future__ import annotations

import argparse
import json
import os
import socket
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _bench_util import PY, REPO, load_guard, machine, rotated, write_result  # noqa: E402

SERVE = r"""
import sys, json, time
sys.path.insert(0, {bench!r})
variant, root = {variant!r}, {root!r}
if variant == "old":
    from _old_mirror import MirrorServer
    srv = MirrorServer(root, warm=False).start()
else:
    from smart_model_manager.mirror import MirrorServer
    srv = MirrorServer(root, warm=False, sendfile=(variant == "new")).start()
print(srv.url, flush=True)
sys.stdin.read()  # serve until the benchmark closes our stdin
srv.stop()
"""
VARIANTS = ("old", "new", "new-read")


def make_root(base: Path, size: int) -> Path:
    from smart_model_manager.store.cache import import_folder

    src = base / "src"
    src.mkdir()
    with open(src / "model.safetensors", "wb") as fh:
        left = size
        while left:
            n = min(left, 16 << 20)
            fh.write(os.urandom(n))
            left -= n
    (src / "config.json").write_text("{}")
    import_folder(src, base / "root", "org/big")
    return base / "root"


def fetch(url: str, path: bytes, buf: bytearray) -> int:
    """GET path, read the whole body; returns the body length (checked against Content-Length)."""
    host, port = url.rsplit("//", 1)[1].rsplit(":", 1)
    with socket.create_connection((host, int(port)), timeout=60) as sock:
        sock.sendall(b"GET " + path + b" HTTP/1.1\r\nHost: bench\r\nConnection: close\r\n\r\n")
        head = b""
        while b"\r\n\r\n" not in head:
            chunk = sock.recv(65536)
            if not chunk:
                raise RuntimeError(f"no response head from {url}")
            head += chunk
        head, _, got = head.partition(b"\r\n\r\n")
        assert head.startswith(b"HTTP/1.1 200"), head[:200]
        length = next(int(v) for k, _, v in (ln.partition(b":") for ln in head.split(b"\r\n")[1:])
                      if k.strip().lower() == b"content-length")
        n, view = len(got), memoryview(buf)
        while n < length:
            r = sock.recv_into(view, len(buf))
            if r == 0:
                raise RuntimeError(f"{url} closed after {n} of {length} bytes")
            n += r
        return n


def transfer(url: str, streams: int, size: int) -> float:
    """Seconds for ``streams`` simultaneous full downloads of the file."""
    path = b"/org/big/resolve/main/model.safetensors"
    errors: list[BaseException] = []

    def one() -> None:
        try:
            assert fetch(url, path, bytearray(4 << 20)) == size
        except BaseException as err:  # noqa: BLE001 - reported below
            errors.append(err)

    threads = [threading.Thread(target=one) for _ in range(streams)]
    t0 = time.perf_counter()
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    took = time.perf_counter() - t0
    if errors:
        raise errors[0]
    return took


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--size-mb", type=int, default=400)
    ap.add_argument("--rounds", type=int, default=5)
    ap.add_argument("--streams", type=int, default=4)
    ap.add_argument("--write", action="store_true", help="write bench/results/mirror.json")
    ap.add_argument("--force", action="store_true", help="write even if the machine was busy (recorded)")
    args = ap.parse_args()
    import psutil

    before = load_guard(args.force)
    size = args.size_mb * 1_000_000
    with tempfile.TemporaryDirectory(prefix="smm-bench-mirror-") as tmp:
        root = make_root(Path(tmp), size)
        procs, urls = {}, {}
        for v in VARIANTS:
            code = SERVE.format(bench=str(REPO / "bench"), variant=v, root=str(root))
            p = subprocess.Popen([PY, "-c", code], stdin=subprocess.PIPE, stdout=subprocess.PIPE, cwd=str(REPO))
            assert p.stdout is not None
            urls[v] = p.stdout.readline().decode().strip()
            procs[v] = p
        samples: dict[str, dict[str, list[float]]] = {v: {"one": [], "many": [], "cpu_per_gb": []} for v in VARIANTS}
        try:
            for v in VARIANTS:  # warm-up: page cache, imports, first connections
                transfer(urls[v], 1, size)
            for r in range(args.rounds):
                order = rotated(list(VARIANTS), r)
                for v in order:
                    ps = psutil.Process(procs[v].pid)
                    cpu0 = sum(ps.cpu_times()[:2])
                    samples[v]["one"].append(size / transfer(urls[v], 1, size) / 1e6)
                    samples[v]["many"].append(args.streams * size / transfer(urls[v], args.streams, size) / 1e6)
                    cpu = sum(ps.cpu_times()[:2]) - cpu0
                    samples[v]["cpu_per_gb"].append(cpu / ((1 + args.streams) * size / 1e9))
                print(f"round {r + 1}/{args.rounds}: " + ", ".join(
                    f"{v} {samples[v]['one'][-1]:.0f}/{samples[v]['many'][-1]:.0f} MB/s" for v in VARIANTS),
                    flush=True)
        finally:
            for p in procs.values():
                if p.stdin is not None:
                    p.stdin.close()
                p.wait(timeout=30)
    med = {v: {k: round(statistics.median(xs), 3 if k == "cpu_per_gb" else 1) for k, xs in s.items()}
           for v, s in samples.items()}
    result = {
        "benchmark": "bench/bench_mirror.py", "baseline": "old", "size_mb": args.size_mb, "rounds": args.rounds,
        "streams": args.streams, "machine_before": before, "machine": machine(), "median": med,
        "ratio_vs_old": {v: {k: round(med[v][k] / med["old"][k], 3) for k in ("one", "many")} for v in VARIANTS},
        "samples": samples,
        "note": "MB/s = 10^6 bytes/s; 'one' = a single download, 'many' = total of --streams at once; "
                "cpu_per_gb = server process CPU seconds per GB sent. Shared 2-core machine: see loadavg.",
    }
    print(json.dumps({k: result[k] for k in ("median", "ratio_vs_old", "machine")}, indent=2))
    if args.write:
        print(f"wrote {write_result('mirror', result, force=args.force)}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
