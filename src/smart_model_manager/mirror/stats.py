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
    """Thread-safe counters: per ``"{repo_id}/{path}"`` file stats, and the last requests seen."""

    def __init__(self, keep_requests: int = 10_000) -> None:
        self._lock = threading.Lock()
        self._files: dict[str, FileStats] = {}
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
        with self._lock:
            self.requests.append((method, path, status))

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
