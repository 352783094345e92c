"""Micro-batching: coalesce texts from concurrent requests into bounded model calls.

Every text becomes one queue entry with its own future, so a request with 50 texts and five
requests with 10 texts are batched the same way and a batch never exceeds ``max_batch`` texts.
One collector task forms batches: it takes what is queued right now, then waits at most
``max_wait_ms`` (from the first text) for more, up to ``max_batch``. The model runs in ONE worker
thread, off the event loop; while it runs, new texts queue up and form the next batch, so under load
batches fill without waiting. Up to :data:`IN_FLIGHT` (2) batches are handed to that thread at once:
the next batch waits in the thread's own queue and starts the moment the current one ends, instead
of after the event loop has woken up, delivered the results and formed it. Results go back
through the futures, so every caller gets its own rows in its own order. A caller that went away
(cancelled future) is skipped, never computed. When a model call fails, the batch is retried text by
text, so only the caller of the failing text sees it.

Overload: ``submit`` first asks the :class:`~.admission.Admission` given to the batcher (if any) to
count the request's estimated tokens in; beyond its bound it raises
:class:`~.admission.Overloaded` and nothing is queued. A request waits at most ``timeout`` seconds (its
deadline for the model: once one of its texts is being computed, it waits for the answer) and at most
until ``abandon`` (a future the service completes when the client disconnects): then its texts are
cancelled, so the collector and the model thread skip them, and ``submit`` raises
:class:`DeadlineExceeded` or :class:`ClientGone`. Work for a client that is gone is never started.

``close()`` stops intake and drains: everything already queued is still computed (graceful SIGTERM:
uvicorn lets in-flight requests finish, then the app's lifespan closes the batcher).
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import logging
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

from .admission import Admission, estimate

log = logging.getLogger(__name__)

RunFn = Callable[[list[str]], Sequence[Sequence[float]]]


class BatcherClosed(RuntimeError):
    """``submit`` after ``close()``: the service is shutting down."""


class DeadlineExceeded(Exception):
    """The request's deadline passed before its texts were computed; they never will be."""


class ClientGone(Exception):
    """The client disconnected while its texts waited; they were dropped from the queue."""


@dataclass
class _Entry:
    text: str
    future: asyncio.Future[list[float]]
    tokens: int = 0
    queued_at: float = field(default_factory=time.monotonic)
    started: bool = False  # set by the model thread when the text's model call begins


_STOP = object()
#: batches handed to the model thread at once: one running, one waiting to start the moment it ends
IN_FLIGHT = 2


class MicroBatcher:
    """``await batcher.submit(texts) -> rows``; see the module docstring.

    ``on_batch(size, seconds)`` is called on the event loop after every model call (metrics);
    ``on_wait(seconds)`` once per computed text with the time it waited before its model call started.
    ``admission`` bounds what may be queued (see the module docstring); None: no bound.
    ``executor``: a model thread shared with other batchers (several models taking turns on the CPU);
    the owner shuts it down. None: this batcher starts and stops its own.
    """

    def __init__(self, run: RunFn, *, max_batch: int, max_wait_ms: float,
                 on_batch: Callable[[int, float], None] | None = None,
                 on_wait: Callable[[float], None] | None = None, admission: Admission | None = None,
                 executor: concurrent.futures.ThreadPoolExecutor | None = None):
        if max_batch < 1:
            raise ValueError(f"max_batch={max_batch} must be >= 1")
        if max_wait_ms < 0:
            raise ValueError(f"max_wait_ms={max_wait_ms} must be >= 0")
        self._run = run
        self.max_batch = max_batch
        self.max_wait = max_wait_ms / 1000.0
        self._on_batch = on_batch
        self._on_wait = on_wait
        self.admission = admission
        self._queue: asyncio.Queue[_Entry | object] | None = None
        self._task: asyncio.Task[None] | None = None
        self._executor: concurrent.futures.ThreadPoolExecutor | None = executor
        self._own_executor = executor is None
        self._closing = False
        self._in_flight: set[asyncio.Task[None]] = set()
        self._slots: asyncio.Semaphore | None = None
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
        self._slots = asyncio.Semaphore(IN_FLIGHT)
        if self._own_executor:
            self._executor = concurrent.futures.ThreadPoolExecutor(max_workers=1, thread_name_prefix="smm-model")
        self._task = asyncio.get_running_loop().create_task(self._collect(), name="smm-batcher")

    async def submit(self, texts: Sequence[str], *, timeout: float | None = None,
                     abandon: Callable[[], asyncio.Future[Any]] | None = None) -> list[list[float]]:
        """Queue ``texts``; return one row per text, in order. Raises what the model raised,
        :class:`~.admission.Overloaded` (refused, nothing queued), :class:`DeadlineExceeded` after
        ``timeout`` seconds, :class:`ClientGone` once the future ``abandon()`` returns is done (it is
        made only for an admitted request, and cancelled when ``submit`` returns)."""
        if self._closing or self._queue is None:
            raise BatcherClosed("the service is shutting down" if self._closing else "batcher not started")
        if timeout is not None and timeout <= 0:
            raise DeadlineExceeded("the request's deadline passed before it was queued")
        tokens = estimate(texts)
        total = sum(tokens)
        if self.admission is not None:
            self.admission.admit(total, len(texts), timeout)
        loop = asyncio.get_running_loop()
        entries = [_Entry(t, loop.create_future(), n) for t, n in zip(texts, tokens)]
        for e in entries:
            self._queue.put_nowait(e)
        gone = abandon() if abandon is not None else None
        try:
            gathered = asyncio.gather(*(e.future for e in entries))
            if timeout is None and gone is None:
                return list(await gathered)
            waits: set[asyncio.Future[Any]] = {gathered}
            if gone is not None:
                waits.add(gone)
            done, _ = await asyncio.wait(waits, timeout=timeout, return_when=asyncio.FIRST_COMPLETED)
            if not done and any(e.started for e in entries):
                # the deadline bounds the wait for the model, not the model call: a request whose
                # texts are being computed gets its answer (only the client leaving stops it)
                done, _ = await asyncio.wait(waits, return_when=asyncio.FIRST_COMPLETED)
            if gathered in done:
                return list(gathered.result())
            gathered.cancel()
            if gone is not None and gone in done:
                raise ClientGone("the client disconnected; its texts were dropped from the queue")
            raise DeadlineExceeded(f"the deadline ({timeout:.3g} s) passed while the request waited for "
                                   "the model; it was dropped before being computed")
        except BaseException:
            for e in entries:  # the caller is gone or one text failed: do not compute the rest
                if e.future.done() and not e.future.cancelled():
                    e.future.exception()  # mark retrieved: asyncio would log it as lost otherwise
                else:
                    e.future.cancel()
            raise
        finally:
            if gone is not None:
                gone.cancel()
            if self.admission is not None:
                self.admission.release(total, len(texts))

    async def close(self) -> None:
        """Stop intake, compute everything already queued, stop the worker thread."""
        if self._closing:
            return
        self._closing = True
        if self._queue is not None and self._task is not None:
            self._queue.put_nowait(_STOP)
            await self._task
        if self._executor is not None and self._own_executor:
            self._executor.shutdown(wait=True)

    async def _collect(self) -> None:
        assert self._queue is not None and self._slots is not None
        loop = asyncio.get_running_loop()
        stop = False
        while not stop:
            await self._slots.acquire()  # at most IN_FLIGHT batches handed to the model thread
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
                task = loop.create_task(self._run_and_release(loop, batch))
                self._in_flight.add(task)
                task.add_done_callback(self._in_flight.discard)
            else:
                self._slots.release()
            if stop:
                await self._drain(loop)
        if first is _STOP:
            self._slots.release()
        if self._in_flight:
            await asyncio.gather(*self._in_flight)

    async def _run_and_release(self, loop: asyncio.AbstractEventLoop, batch: list[_Entry]) -> None:
        assert self._slots is not None
        try:
            await self._run_batch(loop, batch)
        finally:
            self._slots.release()

    @staticmethod
    def _add(batch: list[_Entry], item: object) -> None:
        assert isinstance(item, _Entry)
        if not item.future.done():  # cancelled: the client disconnected
            batch.append(item)

    async def _drain(self, loop: asyncio.AbstractEventLoop) -> None:
        assert self._queue is not None
        if self._in_flight:  # what was handed over first finishes first
            await asyncio.gather(*self._in_flight)
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

    def _timed(self, batch: list[_Entry]) -> tuple[list[_Entry], Sequence[Sequence[float]], float, float]:
        """In the model thread: skip the callers that left (or whose deadline passed) while this batch
        waited its turn (a read of the future's state; at worst one just-cancelled text is computed and
        dropped), run the rest, and time the model call alone (not its wait in the queue)."""
        live = [e for e in batch if not e.future.cancelled()]
        for e in live:
            e.started = True
        started = time.monotonic()
        t0 = time.perf_counter()
        rows = self._run([e.text for e in live]) if live else []
        return live, rows, time.perf_counter() - t0, started

    async def _run_batch(self, loop: asyncio.AbstractEventLoop, batch: list[_Entry]) -> None:
        try:
            live, rows, seconds, started = await loop.run_in_executor(self._executor, self._timed, batch)
            if len(rows) != len(live):
                raise RuntimeError(f"model returned {len(rows)} rows for {len(live)} texts")
        except Exception as err:  # noqa: BLE001 - routed to the callers, never raised here
            if len(batch) > 1:
                # One bad text must not fail everyone who shared its batch: retry one by one so
                # only the culprit's caller gets the error.
                log.warning("model call failed for a batch of %d texts (%s); retrying one by one",
                            len(batch), err)
                for e in batch:
                    await self._run_batch(loop, [e])
                return
            log.error("model call failed: %s", err)
            if not batch[0].future.done():
                batch[0].future.set_exception(err)
            return
        if not live:
            return
        self.batches += 1
        self.texts += len(live)
        for e, row in zip(live, rows):
            if not e.future.done():
                e.future.set_result(list(row))
        if self.admission is not None:
            self.admission.observe(sum(e.tokens for e in live), seconds)
        if self._on_wait is not None:
            for e in live:
                self._on_wait(started - e.queued_at)
        if self._on_batch is not None:
            self._on_batch(len(live), seconds)
