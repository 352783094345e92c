"""Named failure modes a test can inject into a running mirror (real sockets, real clients).

    server.inject(Fault("drops_mid_file", "org/name/model.safetensors", after_bytes=1 << 20))
    server.inject(Fault("server_error", "org/name/*", status=503, times=2))
    server.inject(Fault("stalls", "*", seconds=3))

A fault applies to GETs of ``/resolve`` whose ``"{repo_id}/{path}"`` matches the ``fnmatch`` pattern, for
the next ``times`` matching requests (HEADs are never affected, so the client's metadata call succeeds and
the failure hits the download itself, where retries and resumes live).
"""

from __future__ import annotations

import threading
from dataclasses import dataclass
from fnmatch import fnmatchcase

MODES = ("drops_mid_file", "server_error", "stalls")


@dataclass
class Fault:
    mode: str                 # one of MODES
    pattern: str = "*"        # fnmatch on "repo_id/path"
    times: int = 1            # how many matching GETs it hits
    after_bytes: int = 0      # drops_mid_file: body bytes sent before the connection is cut
    status: int = 503         # server_error: the status sent (with Retry-After: 0)
    seconds: float = 1.0      # stalls: pause after the headers, before the body

    def __post_init__(self) -> None:
        if self.mode not in MODES:
            raise ValueError(f"unknown fault mode {self.mode!r}; valid: {', '.join(MODES)}")
        if self.times < 1:
            raise ValueError(f"Fault.times must be >= 1, got {self.times}")


class FaultPlan:
    """Thread-safe queue of faults; :meth:`take` consumes one hit of the first matching fault."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._faults: list[Fault] = []
        self.triggered: list[tuple[str, str]] = []  # (mode, key) in the order they fired

    def add(self, fault: Fault) -> None:
        with self._lock:
            self._faults.append(Fault(**vars(fault)))  # a copy: the caller's object is not consumed

    def clear(self) -> None:
        with self._lock:
            self._faults.clear()

    def take(self, key: str) -> Fault | None:
        with self._lock:
            for fault in self._faults:
                if fnmatchcase(key, fault.pattern):
                    fault.times -= 1
                    if fault.times == 0:
                        self._faults.remove(fault)
                    self.triggered.append((fault.mode, key))
                    return fault
        return None
