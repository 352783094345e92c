"""Counters of what the mirror served, for tests and for `smm pull`'s "each file at most once" checks."""

from __future__ import annotations

import threading
from collections import deque
from dataclasses import dataclass


@dataclass
class FileStats:
    full_gets: int = 0     # GETs answered 200 with the whole body
    range_gets: int = 0    # GETs answered 206
    bytes_served: int = 0  # body bytes actually written (a dropped connection counts what went out)


class MirrorStats:
    """Thread-safe counters: per ``"{repo_id}/{path}"`` file stats, and bounded samples of the requests seen.

    Memory is bounded whatever clients send (10,000 raw 64 KB paths were kept, 650 MB):
    ``requests`` keeps the last ``keep_requests`` (method, path, status) with the method cut to 16 and the
    path to :data:`MAX_SAMPLE_CHARS` characters (a cut path ends in ``...``); ``status_counts()`` and
    ``total_requests()`` count every request. Per-file stats only exist for files the index serves.
    """

    MAX_SAMPLE_CHARS = 256
    MAX_STATUS_KEYS = 1000  # real statuses are 100-599; anything else is counted under 0

    def __init__(self, keep_requests: int = 1_000) -> None:
        self._lock = threading.Lock()
        self._files: dict[str, FileStats] = {}
        self._status: dict[int, int] = {}
        self._total = 0
        self.requests: deque[tuple[str, str, int]] = deque(maxlen=keep_requests)

    def _file(self, key: str) -> FileStats:
        return self._files.setdefault(key, FileStats())

    def record_get(self, key: str, *, partial: bool) -> None:
        with self._lock:
            stats = self._file(key)
            if partial:
                stats.range_gets += 1
            else:
                stats.full_gets += 1

    def add_bytes(self, key: str, n: int) -> None:
        with self._lock:
            self._file(key).bytes_served += n

    def record_request(self, method: str, path: str, status: int) -> None:
        cap = self.MAX_SAMPLE_CHARS
        sample = path if len(path) <= cap else path[:cap - 3] + "..."
        key = status if 100 <= status <= 599 else 0
        with self._lock:
            self.requests.append((method[:16], sample, status))
            self._status[key] = self._status.get(key, 0) + 1
            self._total += 1

    def status_counts(self) -> dict[int, int]:
        """``{status: count}`` over every request since start (or :meth:`reset`); 0 = not an HTTP status."""
        with self._lock:
            return dict(self._status)

    def total_requests(self) -> int:
        with self._lock:
            return self._total

    def files(self) -> dict[str, FileStats]:
        """A copy: ``{"org/name/path": FileStats}`` for every file that was GET."""
        with self._lock:
            return {k: FileStats(v.full_gets, v.range_gets, v.bytes_served) for k, v in self._files.items()}

    def __getitem__(self, key: str) -> FileStats:
        return self.files().get(key, FileStats())

    def reset(self) -> None:
        with self._lock:
            self._files.clear()
            self.requests.clear()
            self._status.clear()
            self._total = 0
