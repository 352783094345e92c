"""MicroBatcher: pure asyncio, a hand-written runner, no server."""

from __future__ import annotations

import asyncio
import threading

import pytest

from smart_model_manager.model import RunnerDefaults
from smart_model_manager.service.batching import BatcherClosed, MicroBatcher

pytestmark = pytest.mark.unit


class RecordingRunner(RunnerDefaults):
    """Deterministic: row for text t is [len(t), ord(t[0])]. Records each batch and its thread."""

    backend = "fake"

    def __init__(self, gate: threading.Event | None = None, fail_on: str | None = None):
        self.batches: list[list[str]] = []
        self.threads: set[str] = set()
        self.gate = gate
        self.fail_on = fail_on

    def __call__(self, texts: list[str]) -> list[list[float]]:
        self.threads.add(threading.current_thread().name)
        if self.gate is not None:
            assert self.gate.wait(5), "test gate never opened"
        self.batches.append(list(texts))
        if self.fail_on is not None and self.fail_on in texts:
            raise RuntimeError(f"boom on {self.fail_on}")
        return [[float(len(t)), float(ord(t[0]))] for t in texts]


def expected(texts: list[str]) -> list[list[float]]:
    return [[float(len(t)), float(ord(t[0]))] for t in texts]


def run(coro):
    return asyncio.run(coro)


def test_concurrent_requests_get_their_own_rows_in_order():
    runner = RecordingRunner()

    async def main():
        b = MicroBatcher(runner, max_batch=8, max_wait_ms=20)
        b.start()
        requests = [[f"{chr(97 + i % 26)}{'x' * j}" for j in range(1 + i % 5)] for i in range(40)]
        results = await asyncio.gather(*(b.submit(r) for r in requests))
        await b.close()
        return requests, results

    requests, results = run(main())
    for req, res in zip(requests, results):
        assert res == expected(req)
    assert all(1 <= len(batch) <= 8 for batch in runner.batches)
    assert sum(len(batch) for batch in runner.batches) == sum(len(r) for r in requests)
    # 40 requests with 120 texts were coalesced: far fewer model calls than requests
    assert len(runner.batches) < 40


def test_waits_up_to_max_wait_for_company():
    runner = RecordingRunner()

    async def main():
        b = MicroBatcher(runner, max_batch=16, max_wait_ms=200)
        b.start()
        first = asyncio.ensure_future(b.submit(["alpha"]))
        await asyncio.sleep(0.05)  # well inside max_wait: must join the same batch
        second = asyncio.ensure_future(b.submit(["beta", "gamma"]))
        await asyncio.gather(first, second)
        await b.close()

    run(main())
    assert runner.batches == [["alpha", "beta", "gamma"]]


def test_zero_wait_runs_immediately_and_large_requests_are_split():
    runner = RecordingRunner()

    async def main():
        b = MicroBatcher(runner, max_batch=4, max_wait_ms=0)
        b.start()
        texts = [f"t{i}" for i in range(10)]
        out = await b.submit(texts)
        await b.close()
        return texts, out

    texts, out = run(main())
    assert out == expected(texts)
    assert [len(x) for x in runner.batches] == [4, 4, 2]


def test_model_runs_off_the_event_loop():
    gate = threading.Event()
    runner = RecordingRunner(gate=gate)

    async def main():
        b = MicroBatcher(runner, max_batch=4, max_wait_ms=0)
        b.start()
        pending = asyncio.ensure_future(b.submit(["slow"]))
        # the runner is blocked in its thread; the loop must still run other coroutines
        ticks = 0
        for _ in range(5):
            await asyncio.sleep(0.01)
            ticks += 1
        assert not pending.done()
        gate.set()
        out = await pending
        await b.close()
        return ticks, out

    ticks, out = run(main())
    assert ticks == 5 and out == expected(["slow"])
    assert runner.threads and all(name.startswith("smm-model") for name in runner.threads)


def test_model_error_reaches_only_the_failing_texts_caller():
    runner = RecordingRunner(fail_on="bad")

    async def main():
        b = MicroBatcher(runner, max_batch=8, max_wait_ms=50)
        b.start()
        bad = asyncio.ensure_future(b.submit(["bad"]))
        good = asyncio.ensure_future(b.submit(["good", "fine"]))  # same batch as "bad"
        with pytest.raises(RuntimeError, match="boom on bad"):
            await bad
        ok = await good
        await b.close()
        return ok

    assert run(main()) == expected(["good", "fine"])
    # the shared batch failed, then each text was retried alone
    assert runner.batches[0] == ["bad", "good", "fine"]
    assert sorted(map(tuple, runner.batches[1:])) == [("bad",), ("fine",), ("good",)]


def test_cancelled_request_is_not_computed():
    gate = threading.Event()
    runner = RecordingRunner(gate=gate)

    async def main():
        b = MicroBatcher(runner, max_batch=1, max_wait_ms=0)
        b.start()
        busy = asyncio.ensure_future(b.submit(["first"]))
        await asyncio.sleep(0.02)  # "first" is in the model; the next ones queue
        gone = asyncio.ensure_future(b.submit(["abandoned"]))
        kept = asyncio.ensure_future(b.submit(["kept"]))
        await asyncio.sleep(0.01)
        gone.cancel()
        gate.set()
        await busy
        out = await kept
        await b.close()
        return out

    assert run(main()) == expected(["kept"])
    assert ["abandoned"] not in runner.batches
    assert runner.batches == [["first"], ["kept"]]


def test_close_drains_queued_work_then_refuses_new_work():
    gate = threading.Event()
    runner = RecordingRunner(gate=gate)

    async def main():
        b = MicroBatcher(runner, max_batch=2, max_wait_ms=0)
        b.start()
        tasks = [asyncio.ensure_future(b.submit([f"q{i}"])) for i in range(5)]
        await asyncio.sleep(0.02)
        closing = asyncio.ensure_future(b.close())
        await asyncio.sleep(0.01)
        with pytest.raises(BatcherClosed):
            await b.submit(["late"])
        gate.set()
        await closing
        results = [t.result() for t in tasks]
        return results, b.running

    results, running = run(main())
    assert results == [expected([f"q{i}"])[0:1] for i in range(5)]
    assert running is False
    assert sorted(t for batch in runner.batches for t in batch) == [f"q{i}" for i in range(5)]


def test_on_batch_reports_sizes():
    runner = RecordingRunner()
    seen: list[tuple[int, float]] = []

    async def main():
        b = MicroBatcher(runner, max_batch=3, max_wait_ms=0, on_batch=lambda n, s: seen.append((n, s)))
        b.start()
        await b.submit(["a", "b", "c", "d"])
        await b.close()

    run(main())
    assert [n for n, _ in seen] == [3, 1]
    assert all(s >= 0 for _, s in seen)


@pytest.mark.parametrize("kwargs", [{"max_batch": 0, "max_wait_ms": 1}, {"max_batch": 1, "max_wait_ms": -1}])
def test_rejects_bad_bounds(kwargs):
    with pytest.raises(ValueError, match="max_"):
        MicroBatcher(RecordingRunner(), **kwargs)


def test_next_batch_starts_in_the_model_thread_without_waiting_for_the_event_loop():
    # no event-loop round trip between batches: the batch after the running one is already handed over, so the model thread starts it
    # the moment the first ends, even while the event loop is busy (blocked here on purpose)
    import time

    gate = threading.Event()
    started: dict[str, float] = {}

    def runner(texts: list[str]) -> list[list[float]]:
        started[texts[0]] = time.perf_counter()
        if texts == ["a"]:
            assert gate.wait(5), "test gate never opened"
        return expected(texts)

    async def main():
        b = MicroBatcher(runner, max_batch=1, max_wait_ms=0)
        b.start()
        first = asyncio.ensure_future(b.submit(["a"]))
        await asyncio.sleep(0.05)  # "a" is in the model, held by the gate
        second = asyncio.ensure_future(b.submit(["b"]))
        third = asyncio.ensure_future(b.submit(["c"]))
        await asyncio.sleep(0.05)  # "b" is handed over too; "c" waits for a free slot
        gate.set()
        time.sleep(0.3)  # the event loop is blocked: only the model thread can start "b" now
        unblocked = time.perf_counter()
        out = [await first, await second, await third]
        await b.close()
        return out, unblocked

    out, unblocked = run(main())
    assert out == [expected(["a"]), expected(["b"]), expected(["c"])]
    assert started["b"] < unblocked  # started while the loop was blocked
    assert started["c"] > unblocked  # at most two batches were handed over (IN_FLIGHT)
