"""Progress lines for long steps, so a command never sits silent for long.

Library code that runs for a while (``demo.build_demo_model``, ``export.export_onnx``) takes an
optional ``progress: Callable[[str], None]`` and calls it with short status lines ("training:
epoch 2/6, step 40/144, ETA 65 s"); it prints nothing itself. The CLI hands it a :class:`Progress`,
which

- prints a line at once when it starts a new step (the text before the first ``:`` changed, or
  ``say()``), and repeated lines of the same step (per-step counters) at most every ``every``
  seconds, and
- while used as a context manager, runs a heartbeat thread that repeats the current status with
  the time spent in it whenever nothing was printed for ``every`` seconds, so a single long call
  (an ONNX export, a quantization) still shows life.

Layer 2: stdlib only, no environment reads, no output of its own beyond ``emit``.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from types import TracebackType

ProgressFn = Callable[[str], None]


def format_seconds(seconds: float) -> str:
    """``42 s`` / ``3 min 05 s``: short and stable for ETA lines."""
    seconds = max(0, int(round(seconds)))
    if seconds < 60:
        return f"{seconds} s"
    return f"{seconds // 60} min {seconds % 60:02d} s"


def _step(message: str) -> str:
    return message.split(":", 1)[0]


class Progress:
    """Throttled status lines plus a heartbeat; thread-safe. See the module docstring."""

    def __init__(self, emit: ProgressFn, *, every: float = 5.0,
                 clock: Callable[[], float] = time.monotonic) -> None:
        if every <= 0:
            raise ValueError(f"every must be > 0 seconds, got {every!r}")
        self._emit, self._every, self._clock = emit, every, clock
        self._lock = threading.Lock()
        self._current = self._said = ""
        self._since = self._last = clock()
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    def say(self, message: str) -> None:
        """Print now; ``message`` becomes the status the heartbeat repeats."""
        with self._lock:
            now = self._clock()
            self._current, self._since, self._last, self._said = message, now, now, message
            self._emit(message)

    def update(self, message: str) -> None:
        """Record the status; print it at once if it starts a new step (the text before the
        first ``:`` changed), else only if nothing was printed for ``every`` seconds."""
        with self._lock:
            now = self._clock()
            new_step = _step(message) != _step(self._current)
            if new_step:
                self._since = now
            self._current = message
            if new_step or now - self._last >= self._every:
                self._last, self._said = now, message
                self._emit(message)

    def beat(self) -> bool:
        """One heartbeat check (the thread calls this every ~1 s); True if it printed."""
        with self._lock:
            now = self._clock()
            if not self._current or now - self._last < self._every:
                return False
            self._last = now
            if self._current == self._said:   # nothing new: show that time is passing
                self._emit(f"{self._current} ... ({format_seconds(now - self._since)} in this step)")
            else:                             # a newer status was held back: that is news enough
                self._said = self._current
                self._emit(self._current)
            return True

    def __call__(self, message: str) -> None:
        self.update(message)

    def __enter__(self) -> Progress:
        self._stop.clear()
        self._thread = threading.Thread(target=self._run, name="smm-progress", daemon=True)
        self._thread.start()
        return self

    def __exit__(self, exc_type: type[BaseException] | None, exc: BaseException | None,
                 tb: TracebackType | None) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout=2)
            self._thread = None

    def _run(self) -> None:
        tick = min(1.0, self._every / 2)
        while not self._stop.wait(tick):
            self.beat()


__all__ = ["Progress", "ProgressFn", "format_seconds"]
