"""Micro-batching: coalesce texts from concurrent requests into bounded model calls.

Every text becomes one queue entry with its own future, so a request with 50 texts and five
requests with 10 texts are batched the same way and a batch never exceeds ``max_batch`` texts.
One collector task forms batches: it takes what is queued right now, then waits at most
``max_wait_ms`` (from the first text) for more, up to ``max_batch``. The model runs in ONE worker
thread, off the event loop; while it runs, new texts queue up and form the next batch, so under load
batches fill without waiting. Results go back through the futures, so every caller gets its own
rows in its own order. A caller that went away (cancelled future) is skipped, never computed. When a
model call fails, the batch is retried text by text, so only the caller of the failing text sees it.

``close()`` stops intake and drains: everything already queued is still computed (graceful SIGTERM:
uvicorn lets in-flight requests finish, then the app's lifespan closes the batcher).
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import logging
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass

log = logging.getLogger(__name__)

RunFn = Callable[[list[str]], Sequence[Sequence[float]]]


class BatcherClosed(RuntimeError):
    """``submit`` after ``close()``: the service is shutting down."""


@dataclass
class _Entry:
    text: str
    future: asyncio.Future[list[float]]


_STOP = object()


class MicroBatcher:
    """``await batcher.submit(texts) -> rows``; see the module docstring.

    ``on_batch(size, seconds)`` is called on the event loop after every model call (metrics).
    """

    def __init__(self, run: RunFn, *, max_batch: int, max_wait_ms: float,
                 on_batch: Callable[[int, float], None] | None = None):
        if max_batch < 1:
            raise ValueError(f"max_batch={max_batch} must be >= 1")
        if max_wait_ms < 0:
            raise ValueError(f"max_wait_ms={max_wait_ms} must be >= 0")
        self._run = run
        self.max_batch = max_batch
        self.max_wait = max_wait_ms / 1000.0
        self._on_batch = on_batch
        self._queue: asyncio.Queue[_Entry | object] | None = None
        self._task: asyncio.Task[None] | None = None
        self._executor: concurrent.futures.ThreadPoolExecutor | None = None
        self._closing = False
        self.batches = 0
        self.texts = 0

    def resize(self, *, max_batch: int, max_wait_ms: float) -> None:
        """New limits for the batches formed from now on (the service sizes them once the model is
        loaded and its device is known)."""
        if max_batch < 1:
            raise ValueError(f"max_batch={max_batch} must be >= 1")
        if max_wait_ms < 0:
            raise ValueError(f"max_wait_ms={max_wait_ms} must be >= 0")
        self.max_batch = max_batch
        self.max_wait = max_wait_ms / 1000.0

    @property
    def running(self) -> bool:
        return self._task is not None and not self._task.done()

    def start(self) -> None:
        """Start the collector on the running event loop."""
        if self._task is not None:
            raise RuntimeError("MicroBatcher.start() called twice")
        self._queue = asyncio.Queue()
        self._executor = concurrent.futures.ThreadPoolExecutor(max_workers=1, thread_name_prefix="smm-model")
        self._task = asyncio.get_running_loop().create_task(self._collect(), name="smm-batcher")

    async def submit(self, texts: Sequence[str]) -> list[list[float]]:
        """Queue ``texts``; return one row per text, in order. Raises what the model raised."""
        if self._closing or self._queue is None:
            raise BatcherClosed("the service is shutting down" if self._closing else "batcher not started")
        loop = asyncio.get_running_loop()
        entries = [_Entry(t, loop.create_future()) for t in texts]
        for e in entries:
            self._queue.put_nowait(e)
        try:
            return list(await asyncio.gather(*(e.future for e in entries)))
        except BaseException:
            for e in entries:  # the caller is gone or one text failed: do not compute the rest
                if e.future.done() and not e.future.cancelled():
                    e.future.exception()  # mark retrieved: asyncio would log it as lost otherwise
                else:
                    e.future.cancel()
            raise

    async def close(self) -> None:
        """Stop intake, compute everything already queued, stop the worker thread."""
        if self._closing:
            return
        self._closing = True
        if self._queue is not None and self._task is not None:
            self._queue.put_nowait(_STOP)
            await self._task
        if self._executor is not None:
            self._executor.shutdown(wait=True)

    async def _collect(self) -> None:
        assert self._queue is not None
        loop = asyncio.get_running_loop()
        stop = False
        while not stop:
            first = await self._queue.get()
            if first is _STOP:
                break
            batch: list[_Entry] = []
            self._add(batch, first)
            deadline = loop.time() + self.max_wait
            while len(batch) < self.max_batch:
                try:
                    item = self._queue.get_nowait()
                except asyncio.QueueEmpty:
                    remaining = deadline - loop.time()
                    if remaining <= 0 or not batch:
                        break
                    try:
                        item = await asyncio.wait_for(self._queue.get(), remaining)
                    except TimeoutError:
                        break
                if item is _STOP:
                    stop = True  # finish this batch and whatever is already queued
                    break
                self._add(batch, item)
            if batch:
                await self._run_batch(loop, batch)
            if stop:
                await self._drain(loop)

    @staticmethod
    def _add(batch: list[_Entry], item: object) -> None:
        assert isinstance(item, _Entry)
        if not item.future.done():  # cancelled: the client disconnected
            batch.append(item)

    async def _drain(self, loop: asyncio.AbstractEventLoop) -> None:
        assert self._queue is not None
        batch: list[_Entry] = []
        while not self._queue.empty():
            item = self._queue.get_nowait()
            if item is _STOP:
                continue
            self._add(batch, item)
            if len(batch) == self.max_batch:
                await self._run_batch(loop, batch)
                batch = []
        if batch:
            await self._run_batch(loop, batch)

    async def _run_batch(self, loop: asyncio.AbstractEventLoop, batch: list[_Entry]) -> None:
        texts = [e.text for e in batch]
        t0 = time.perf_counter()
        try:
            rows = await loop.run_in_executor(self._executor, self._run, texts)
            if len(rows) != len(texts):
                raise RuntimeError(f"model returned {len(rows)} rows for {len(texts)} texts")
        except Exception as err:  # noqa: BLE001 - routed to the callers, never raised here
            if len(batch) > 1:
                # One bad text must not fail everyone who shared its batch: retry one by one so
                # only the culprit's caller gets the error.
                log.warning("model call failed for a batch of %d texts (%s); retrying one by one",
                            len(texts), err)
                for e in batch:
                    await self._run_batch(loop, [e])
                return
            log.error("model call failed: %s", err)
            if not batch[0].future.done():
                batch[0].future.set_exception(err)
            return
        seconds = time.perf_counter() - t0
        self.batches += 1
        self.texts += len(texts)
        for e, row in zip(batch, rows):
            if not e.future.done():
                e.future.set_result(list(row))
        if self._on_batch is not None:
            self._on_batch(len(texts), seconds)
