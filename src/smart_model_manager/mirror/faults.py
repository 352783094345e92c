"""Named failure modes a test can inject into a running mirror (real sockets, real clients).

    server.inject(Fault("drops_mid_file", "org/name/model.safetensors", after_bytes=1 << 20))
    server.inject(Fault("server_error", "org/name/*", status=503, times=2))
    server.inject(Fault("stalls", "*", seconds=3))
    server.inject(Fault("throttles", "org/name/*", times=100, after_bytes=64 << 10, seconds=0.01))  # a slow link

A fault applies to GETs of ``/resolve`` whose ``"{repo_id}/{path}"`` matches the ``fnmatch`` pattern, for
the next ``times`` matching requests (HEADs are never affected, so the client's metadata call succeeds and
the failure hits the download itself, where retries and resumes live).

Faults live in :class:`FaultMiddleware`, around the application: the production path never tests for them.
"""

from __future__ import annotations

import asyncio
import json
import threading
from dataclasses import dataclass
from fnmatch import fnmatchcase
from typing import Any

MODES = ("drops_mid_file", "server_error", "stalls", "throttles")


@dataclass
class Fault:
    mode: str                 # one of MODES
    pattern: str = "*"        # fnmatch on "repo_id/path"
    times: int = 1            # how many matching GETs it hits
    after_bytes: int = 0      # drops_mid_file: body bytes sent before the connection is cut; throttles: piece size
    status: int = 503         # server_error: the status sent
    retry_after: str = "0"    # server_error: the Retry-After header sent with it
    seconds: float = 1.0      # stalls: pause after the headers, before the body; throttles: pause per piece

    def __post_init__(self) -> None:
        if self.mode not in MODES:
            raise ValueError(f"unknown fault mode {self.mode!r}; valid: {', '.join(MODES)}")
        if self.times < 1:
            raise ValueError(f"Fault.times must be >= 1, got {self.times}")
        if self.mode == "throttles" and self.after_bytes < 1:
            raise ValueError("Fault('throttles') needs after_bytes >= 1 (the size of each piece)")


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


FILE_KEY = "smm.mirror.file"  # scope key the application sets to "{repo_id}/{path}" before a file's headers
ZEROCOPY = "http.response.zerocopysend"
CLOSE = "smm.connection.close"


class FaultAnswered(BaseException):
    """The middleware answered in place of the application; unwinds it without its error handling."""


class PartialSend(ConnectionAbortedError):
    """The connection ended after ``sent`` more body bytes: cut on purpose (``drops_mid_file``) or lost."""

    def __init__(self, message: str, sent: int):
        super().__init__(message)
        self.sent = sent


class FaultMiddleware:
    """ASGI middleware: applies the next matching fault of ``plan`` to a file download's send side."""

    def __init__(self, app: Any, plan: FaultPlan):
        self.app = app
        self.plan = plan

    async def __call__(self, scope: dict[str, Any], receive: Any, send: Any) -> None:
        if scope["type"] != "http" or scope["method"] != "GET":
            await self.app(scope, receive, send)
            return
        state: dict[str, Any] = {"fault": None, "sent": 0}

        async def faulty_send(message: dict[str, Any]) -> None:
            if message["type"] == "http.response.start":
                key = scope.get(FILE_KEY)
                fault = self.plan.take(key) if key else None
                state["fault"] = fault
                if fault is not None and fault.mode == "server_error":
                    await _error(send, fault, key or "")
                    raise FaultAnswered
                await send(message)
                if fault is not None and fault.mode == "stalls":
                    await asyncio.sleep(fault.seconds)
                return
            fault = state["fault"]
            if fault is not None and fault.mode == "drops_mid_file":
                await _send_until(send, message, state, fault.after_bytes, scope)
            elif fault is not None and fault.mode == "throttles":
                await _send_slowly(send, message, fault.after_bytes, fault.seconds)
            else:
                await send(message)

        try:
            await self.app(scope, receive, faulty_send)
        except FaultAnswered:
            pass


async def _error(send: Any, fault: Fault, key: str) -> None:
    message = f"injected fault server_error on {key}"
    body = json.dumps({"error": message}).encode()
    headers = [(b"content-type", b"application/json; charset=utf-8"), (b"content-length", str(len(body)).encode()),
               (b"x-error-message", message.encode("latin-1", "replace")),
               (b"retry-after", fault.retry_after.encode("latin-1"))]
    await send({"type": "http.response.start", "status": fault.status, "headers": headers})
    await send({"type": "http.response.body", "body": body, "more_body": False})


async def _send_until(send: Any, message: dict[str, Any], state: dict[str, Any], limit: int,
                      scope: dict[str, Any]) -> None:
    """Forward body bytes until ``limit`` went out in total, then cut the connection."""
    size = int(message["count"]) if message["type"] == ZEROCOPY else len(message.get("body", b""))
    left = limit - state["sent"]
    if size < left or (size == left and message.get("more_body", False) is False):
        await send(message)
        state["sent"] += size
        return
    if left > 0:
        if message["type"] == ZEROCOPY:
            await send({**message, "count": left, "more_body": True})
        else:
            await send({**message, "body": message["body"][:left], "more_body": True})
    state["sent"] += max(left, 0)
    closer = scope.get("extensions", {}).get(CLOSE)
    if closer:
        closer["close"]()
    raise PartialSend("injected fault drops_mid_file", max(left, 0))


async def _send_slowly(send: Any, message: dict[str, Any], piece: int, pause: float) -> None:
    """Forward a body message in pieces of ``piece`` bytes with ``pause`` seconds after each."""
    zerocopy = message["type"] == ZEROCOPY
    size = int(message["count"]) if zerocopy else len(message.get("body", b""))
    done = 0
    while True:
        n = min(piece, size - done)
        last = done + n >= size
        more = message.get("more_body", False) if last else True
        if zerocopy:
            await send({**message, "offset": message["offset"] + done, "count": n, "more_body": more})
        else:
            await send({**message, "body": message["body"][done:done + n], "more_body": more})
        done += n
        if last:
            return
        await asyncio.sleep(pause)
