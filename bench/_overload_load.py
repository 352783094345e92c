"""The load generator of bench_overload.py (its own process): raw HTTP/1.1 over asyncio streams.

Closed loop: C clients, each sending the next 1-text request when its answer arrives.
Open loop: Poisson arrivals (seeded) for ``duration`` seconds, each request with a client timeout (the
client then closes its connection, as real clients and proxies do); latency from the *scheduled* send
time (no coordinated omission). From the end of the send window, recovery probes (a fresh connection
each, one every 50 ms or less often, so that they add at most 10 % of the capacity: a probe that times
out is still computed by a server that never drops work) until one is answered 200 within 1 s. During the window /healthz and /readyz are
probed every 0.5 s.
"""

from __future__ import annotations

import asyncio
import json
import random
import resource
import time
from typing import Any

PROBE_SHARE = 0.1  # recovery probes add at most this share of the capacity: they must not hold the server down
PROBE_EVERY_MIN_S = 0.05
RAMP_S = 3.0  # closed loop: answers in the first seconds only fill the pipeline and are not counted
RECOVERED_WITHIN_S = 1.0
RECOVERY_CAP_S = 150.0
MAX_OPEN = 15_000  # client-side cap on open connections (file descriptors)


class Conn:
    def __init__(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter):
        self.reader, self.writer = reader, writer

    @classmethod
    async def open(cls, port: int) -> Conn:
        r, w = await asyncio.open_connection("127.0.0.1", port)
        return cls(r, w)

    async def request(self, method: str, path: str, body: bytes = b"") -> tuple[int, dict[str, str], bytes]:
        self.writer.write(b"%s %s HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/json\r\n"
                          b"Content-Length: %d\r\n\r\n%s" % (method.encode(), path.encode(), len(body), body))
        await self.writer.drain()
        status_line = await self.reader.readline()
        if not status_line:
            raise ConnectionError("server closed the connection")
        status = int(status_line.split()[1])
        headers: dict[str, str] = {}
        while True:
            line = await self.reader.readline()
            if line in (b"\r\n", b""):
                break
            key, _, value = line.partition(b":")
            headers[key.strip().lower().decode()] = value.strip().decode()
        payload = await self.reader.readexactly(int(headers.get("content-length", "0")))
        return status, headers, payload

    def close(self) -> None:
        self.writer.close()


def pcts(values: list[float]) -> dict[str, float | None]:
    v = sorted(values)

    def p(q: float) -> float | None:
        return round(v[min(len(v) - 1, int(q / 100 * len(v)))] * 1000, 1) if v else None

    return {"p50": p(50), "p95": p(95), "p99": p(99), "max": round(v[-1] * 1000, 1) if v else None, "n": len(v)}


def label(status: int, payload: bytes) -> str:
    if status < 500 or status != 503:
        return str(status)
    try:
        return f"503:{json.loads(payload)['error']['code']}"
    except (ValueError, KeyError, TypeError):
        return "503:plain"  # uvicorn's --limit-concurrency answer, not ours


async def closed(port: int, payloads: list[bytes], concurrency: int, duration: float) -> dict[str, Any]:
    lat: list[float] = []
    statuses: dict[str, int] = {}
    begin = time.perf_counter() + RAMP_S
    end = begin + duration

    async def worker(k: int) -> None:
        conn = await Conn.open(port)
        i = k
        while (start := time.perf_counter()) < end:
            status, _, payload = await conn.request("POST", "/v1/sentiment", payloads[i % len(payloads)])
            i += concurrency
            if begin <= time.perf_counter() <= end:
                lat.append(time.perf_counter() - start)
                key = label(status, payload)
                statuses[key] = statuses.get(key, 0) + 1
        conn.close()

    await asyncio.gather(*(worker(k) for k in range(concurrency)))
    return {"mode": "closed", "concurrency": concurrency, "seconds": duration, "ramp_s": RAMP_S, "statuses": statuses,
            "ok_per_s": round(statuses.get("200", 0) / duration, 2), "answered_ms": pcts(lat)}


class Open:
    """One open-loop burst plus its health probes and recovery probes."""

    def __init__(self, port: int, payloads: list[bytes], timeout: float, capacity: float):
        self.port, self.payloads, self.timeout = port, payloads, timeout
        self.probe_every = max(PROBE_EVERY_MIN_S, 1 / (PROBE_SHARE * capacity))
        self.idle: list[Conn] = []
        self.statuses: dict[str, int] = {}
        self.answered: list[float] = []
        self.refused: list[float] = []
        self.no_retry_after = 0
        self.open_conns = 0
        self.not_sent = 0
        self.stale_retries = 0
        self.health: dict[str, dict[str, int]] = {"/healthz": {}, "/readyz": {}}
        self.health_ms: list[float] = []

    async def send(self, conn: Conn | None, body: bytes) -> tuple[Conn, int, dict[str, str], bytes]:
        """POST on ``conn`` (an idle keep-alive one) or a fresh connection. Any failure or cancellation
        (the client's timeout) closes the connection in use, so the server sees the client leave."""
        if conn is not None:
            try:
                return (conn, *await conn.request("POST", "/v1/sentiment", body))
            except (ConnectionError, asyncio.IncompleteReadError):
                # the server closed this idle keep-alive connection (uvicorn: after 5 s); like any HTTP
                # client, retry once on a fresh connection
                self.stale_retries += 1
                conn.close()
            except BaseException:
                conn.close()
                raise
        fresh = await Conn.open(self.port)
        try:
            return (fresh, *await fresh.request("POST", "/v1/sentiment", body))
        except BaseException:
            fresh.close()
            raise

    async def one(self, i: int, scheduled: float) -> None:
        conn = self.idle.pop() if self.idle else None
        self.open_conns += 1
        try:
            conn, status, headers, payload = await asyncio.wait_for(
                self.send(conn, self.payloads[i % len(self.payloads)]),
                max(0.001, scheduled + self.timeout - time.perf_counter()))
        except TimeoutError:
            key = "timeout"  # the client gives up; send() closed its connection: the server sees a disconnect
        except (OSError, asyncio.IncompleteReadError, ValueError) as err:
            key = f"transport:{type(err).__name__}"
        else:
            key = label(status, payload)
            took = time.perf_counter() - scheduled
            if status == 200:
                self.answered.append(took)
            elif status == 503:
                self.refused.append(took)
                self.no_retry_after += "retry-after" not in headers
            self.idle.append(conn)
        finally:
            self.open_conns -= 1
        self.statuses[key] = self.statuses.get(key, 0) + 1

    async def probe_health(self, stop: asyncio.Event) -> None:
        while not stop.is_set():
            for path in self.health:
                t = time.perf_counter()
                try:
                    conn = await Conn.open(self.port)
                    status, _, _ = await asyncio.wait_for(conn.request("GET", path), 5)
                    conn.close()
                    key = str(status)
                except (OSError, TimeoutError, asyncio.IncompleteReadError) as err:
                    key = type(err).__name__
                self.health_ms.append(time.perf_counter() - t)
                self.health[path][key] = self.health[path].get(key, 0) + 1
            try:
                await asyncio.wait_for(stop.wait(), 0.5)
            except TimeoutError:
                pass

    async def recovery(self, t_end: float) -> tuple[float | None, int]:
        """Seconds from the end of the burst to the send of the first probe answered 200 within 1 s."""
        done = asyncio.Event()
        found: list[float] = []
        probes = 0

        async def probe(sent: float) -> None:
            try:
                conn = await asyncio.wait_for(Conn.open(self.port), RECOVERED_WITHIN_S)
                status, _, _ = await asyncio.wait_for(conn.request("POST", "/v1/sentiment", self.payloads[0]),
                                                      max(0.001, sent + RECOVERED_WITHIN_S - time.perf_counter()))
                conn.close()
                if status == 200:
                    found.append(sent - t_end)
                    done.set()
            except (OSError, TimeoutError, asyncio.IncompleteReadError, ValueError):
                pass

        tasks = []
        while not done.is_set() and time.perf_counter() - t_end < RECOVERY_CAP_S:
            tasks.append(asyncio.ensure_future(probe(time.perf_counter())))
            probes += 1
            try:
                await asyncio.wait_for(done.wait(), self.probe_every)
            except TimeoutError:
                pass
        await asyncio.gather(*tasks)
        return (round(max(0.0, min(found)), 3) if found else None), probes

    async def run(self, rate: float, duration: float, seed: int) -> dict[str, Any]:
        rng = random.Random(seed)
        stop = asyncio.Event()
        health = asyncio.ensure_future(self.probe_health(stop))
        tasks = []
        t0 = t = time.perf_counter()
        while True:
            t += rng.expovariate(rate)
            if t - t0 > duration:
                break
            delay = t - time.perf_counter()
            if delay > 0:
                await asyncio.sleep(delay)
            if self.open_conns >= MAX_OPEN:
                self.not_sent += 1
                continue
            tasks.append(asyncio.ensure_future(self.one(len(tasks), t)))
        t_end = t0 + duration
        achieved = len(tasks) / (time.perf_counter() - t0)
        recovery, probes = await self.recovery(t_end)
        stop.set()
        await asyncio.gather(*tasks, health)
        for c in self.idle:
            c.close()
        ok = self.statuses.get("200", 0)
        return {"mode": "open", "rate_rps": round(rate, 1), "achieved_send_rps": round(achieved, 1),
                "sent": len(tasks), "not_sent_client_cap": self.not_sent, "stale_retries": self.stale_retries, "seconds": duration,
                "client_timeout_s": self.timeout, "statuses": self.statuses, "ok_per_s": round(ok / duration, 2),
                "answered_ms": pcts(self.answered), "refused_ms": pcts(self.refused),
                "refused_without_retry_after": self.no_retry_after,
                "other_5xx": sum(n for s, n in self.statuses.items()
                                 if s.startswith("5") and s not in ("503:overloaded", "503:deadline_exceeded")),
                "recovery_s": recovery, "recovery_probes": probes,
                "recovery_probe_every_s": round(self.probe_every, 3), "health": self.health,
                "health_probe_ms": pcts(self.health_ms)}


def loadgen_main(spec: dict[str, Any]) -> dict[str, Any]:
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))
    payloads = [json.dumps({"texts": [t]}).encode() for t in spec["texts"]]
    if spec["mode"] == "closed":
        return asyncio.run(closed(spec["port"], payloads, spec["concurrency"], spec["duration"]))
    return asyncio.run(Open(spec["port"], payloads, spec["timeout"], spec["capacity"]).run(spec["rate"], spec["duration"],
                                                                         spec.get("seed", 0)))
