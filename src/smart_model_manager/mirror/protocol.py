"""The mirror's HTTP/1.1 connection handling: uvicorn's h11 protocol with the mirror's limits added.

uvicorn parses and frames requests; this subclass adds what a public file server needs and uvicorn does not
give in the mirror's terms:

* a request line over :data:`MAX_REQUEST_LINE`, more than :data:`MAX_HEADERS` header lines, a header line
  over :data:`MAX_HEADER_LINE` or a head over :data:`MAX_HEAD` bytes get the mirror's JSON error envelope
  (414 or 431), as does anything h11 refuses (400); never uvicorn's plain-text page;
* a connection beyond ``max_connections`` gets a JSON 503 with ``Retry-After`` on its first request;
* a connection that has not sent a complete request head within ``header_timeout`` seconds is closed,
  so idle or slow-header clients cannot pile up;
* the ASGI extension ``http.response.zerocopysend``: file bodies go out with ``os.sendfile`` (no copy
  through Python), while h11 still accounts for every byte against ``Content-Length``. The sendfile loop
  runs in a sender thread on a duplicate of the socket's descriptor, so concurrent downloads copy on
  every core (as the thread-per-connection server did) and a cold read from slow storage never stalls
  the event loop.
"""

from __future__ import annotations

import asyncio
import json
import logging
import os
import select
import threading
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import h11
from uvicorn.protocols.http.h11_impl import H11Protocol, RequestResponseCycle

from .faults import CLOSE, ZEROCOPY, PartialSend

log = logging.getLogger("smart_model_manager.mirror.http")

MAX_REQUEST_LINE = 8192  # bytes, CRLF included; longer request lines get a 414 (docs/mirror.md)
MAX_HEADERS = 100        # header lines; more get a 431 (the limit http.client and http.server use)
MAX_HEADER_LINE = 65536  # bytes per header line
MAX_HEAD = 128 << 10     # bytes for the whole request head
PHRASES = {400: "Bad Request", 414: "URI Too Long", 431: "Request Header Fields Too Large",
           503: "Service Unavailable"}


class Limits:
    """What one server allows; shared by its connections. ``on_reject(status)`` counts refusals."""

    def __init__(self, *, max_connections: int, header_timeout: float, send_timeout: float,
                 on_reject: Callable[[int, str], None], zerocopy: bool = True, retry_after: int = 1,
                 senders: ThreadPoolExecutor | None = None):
        self.zerocopy = zerocopy
        self.senders = senders
        self.retry_after = retry_after
        self.max_connections = max_connections
        self.header_timeout = header_timeout
        self.send_timeout = send_timeout
        self.on_reject = on_reject


def error_bytes(status: int, message: str, extra: dict[str, str] | None = None) -> bytes:
    """A complete HTTP/1.1 response with the JSON envelope; the connection closes after it."""
    body = json.dumps({"error": message}, separators=(",", ":")).encode()
    headers = {"Content-Type": "application/json; charset=utf-8", "Content-Length": str(len(body)),
               "Connection": "close", "X-Error-Message": header_safe(message)}
    headers.update(extra or {})
    head = f"HTTP/1.1 {status} {PHRASES.get(status, 'Error')}\r\n" + "".join(
        f"{k}: {v}\r\n" for k, v in headers.items()) + "\r\n"
    return head.encode("latin-1") + body


def header_safe(value: object) -> str:
    """Header-safe text: control characters escaped (no CR/LF injection, nothing h11 refuses), latin-1 only."""
    text = "".join(c if c == "\t" or (32 <= ord(c) != 127) else f"\\x{ord(c):02x}" for c in str(value))
    return text.encode("latin-1", "backslashreplace").decode("latin-1")


def check_head(buf: bytes) -> tuple[int, str] | None:
    """(status, message) when the (possibly incomplete) request head in ``buf`` breaks a limit, else None."""
    end = buf.find(b"\r\n\r\n")
    head = buf if end < 0 else buf[:end + 2]
    first = head.find(b"\n")
    if (first < 0 and len(head) > MAX_REQUEST_LINE) or first + 1 > MAX_REQUEST_LINE:
        return 414, f"request line longer than {MAX_REQUEST_LINE} bytes (the mirror's limit)"
    if first < 0:
        return None
    lines = head[first + 1:].split(b"\n")
    if len(lines) - 1 > MAX_HEADERS:
        return 431, f"more than {MAX_HEADERS} header lines (the mirror's limit)"
    if any(len(line) > MAX_HEADER_LINE for line in lines):
        return 431, f"a header line is longer than {MAX_HEADER_LINE} bytes (the mirror's limit)"
    if len(head) > MAX_HEAD or (end < 0 and len(buf) > MAX_HEAD):
        return 431, f"request head longer than {MAX_HEAD} bytes (the mirror's limit)"
    return None


def _head_end(buf: bytes | bytearray) -> int:
    """Index just past the blank line that ends a request head, or -1 while it is incomplete."""
    ends = [i + n for i, n in ((buf.find(b"\r\n\r\n"), 4), (buf.find(b"\n\n"), 2)) if i >= 0]
    return min(ends) if ends else -1


def fix_head(head: bytes) -> bytes | tuple[int, str]:
    """The head as h11 should see it, or (400, why) for what no route could use.

    A request target must be ASCII (clients percent-encode). A ``Content-Length`` that is not a number is
    dropped and the connection marked to close, as http.server did: the body cannot be found, but the
    request is still answered (h11 would refuse the whole request).
    """
    line_end = head.find(b"\n")
    if any(b >= 0x80 for b in head[:line_end]):
        return 400, "request line is not ASCII: percent-encode the path"
    lines = head.split(b"\n")
    keep = [ln for ln in lines if not (ln.lower().startswith(b"content-length:")
                                      and not ln.split(b":", 1)[1].strip().isdigit())]
    if len(keep) == len(lines):
        return head
    keep.insert(len(keep) - 2, b"Connection: close\r")
    return b"\n".join(keep)


class _Conn(h11.Connection):
    """h11 that hands a protocol error to the mirror instead of raising into uvicorn (which answers it
    in plain text and logs a warning for every port scan)."""

    on_error: Callable[[h11.RemoteProtocolError], None]

    def next_event(self) -> Any:
        try:
            return super().next_event()
        except h11.RemoteProtocolError as err:
            self.on_error(err)
            return h11.NEED_DATA  # handle_events stops; the connection is already closing


def blocking_sendfile(fd: int, in_fd: int, offset: int, count: int, timeout: float, stop: threading.Event) -> int:
    """Send ``count`` bytes of ``in_fd`` from ``offset`` to the non-blocking socket ``fd`` (closed at the
    end), waiting for room with poll; ``timeout`` seconds without progress, or ``stop``, end it."""
    sent = 0
    try:
        poller = select.poll()
        poller.register(fd, select.POLLOUT)
        idle = 0.0
        while sent < count:
            if stop.is_set():
                raise ConnectionAbortedError("the download was cancelled")
            try:
                n = os.sendfile(fd, in_fd, offset + sent, count - sent)
            except BlockingIOError:
                n = -1
            if n == 0:
                raise ConnectionAbortedError("the file shrank while being sent")
            if n > 0:
                sent, idle = sent + n, 0.0
                continue
            events = poller.poll(200)
            if not events:
                idle += 0.2
                if idle >= timeout:
                    raise TimeoutError(f"no progress for {timeout:.0f}s: the client stopped reading")
            elif events[0][1] & (select.POLLERR | select.POLLHUP | select.POLLNVAL):
                raise ConnectionResetError("the client closed the connection")
        return sent
    except OSError as err:
        raise PartialSend(f"{type(err).__name__}: {err}", sent) from err
    finally:
        os.close(fd)


class _Placeholder:
    """Stands in for ``count`` bytes sent by sendfile, so h11's Content-Length accounting stays right."""

    def __init__(self, count: int):
        self.count = count

    def __len__(self) -> int:
        return self.count


class MirrorCycle(RequestResponseCycle):
    """uvicorn's request/response cycle plus ``http.response.zerocopysend``."""

    send_timeout: float = 60.0
    senders: ThreadPoolExecutor | None = None

    async def send(self, message: Any) -> None:
        if message["type"] != ZEROCOPY:
            await super().send(message)
            return
        if self.disconnected or self.transport.is_closing():
            raise ConnectionResetError("client disconnected")
        if not self.response_started or self.response_complete:
            raise RuntimeError(f"{ZEROCOPY} outside a response body")
        count = int(message["count"])
        self.conn.send_with_data_passthrough(h11.Data(data=_Placeholder(count)))  # type: ignore[arg-type]
        if self.flow.write_paused:
            await self.flow.drain()
        try:
            await self._sendfile(message["file"], int(message["offset"]), count)
        except (OSError, RuntimeError, asyncio.TimeoutError) as err:
            self.disconnected = True
            self.transport.abort()
            raise PartialSend(f"sending the file failed: {err!r}", getattr(err, "sent", 0)) from err
        if not message.get("more_body", False):
            self.response_complete = True
            self.message_event.set()
            if self.disconnected or self.conn.our_state is h11.ERROR:
                return  # every byte went out and the client already closed: nothing left to finish
            self.transport.write(self.conn.send(event=h11.EndOfMessage()) or b"")
            if self.conn.our_state is h11.MUST_CLOSE or not self.keep_alive:
                self.conn.send(event=h11.ConnectionClosed())
                self.transport.close()
            self.on_response()

    async def _sendfile(self, file: Any, offset: int, count: int) -> None:
        loop = asyncio.get_running_loop()
        sock = self.transport.get_extra_info("socket")
        if self.senders is None or sock is None:
            for start in range(offset, offset + count, 8 << 20):
                n = min(8 << 20, offset + count - start)
                await asyncio.wait_for(loop.sendfile(self.transport, file, start, n), self.send_timeout)
            return
        waited = 0.0
        while self.transport.get_write_buffer_size():  # headers still queued go first (rare: a full socket)
            if self.transport.is_closing() or waited > self.send_timeout:
                raise ConnectionResetError("the client stopped reading before the body started")
            await asyncio.sleep(0.005)
            waited += 0.005
        # The sender thread owns a duplicate descriptor: if the connection is closed meanwhile, the
        # descriptor number cannot be reused for another client under the thread's feet.
        fd = os.dup(sock.fileno())
        stop = threading.Event()
        try:
            await loop.run_in_executor(self.senders, blocking_sendfile, fd, file.fileno(), offset, count,
                                       self.send_timeout, stop)
        except BaseException:
            stop.set()
            raise

    def close_now(self) -> None:
        self.disconnected = True
        self.keep_alive = False
        self.transport.close()


class MirrorProtocol(H11Protocol):
    """Bind ``limits`` with :func:`protocol_class`; uvicorn creates one instance per connection."""

    limits: Limits

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        conn = _Conn(h11.SERVER, max_incomplete_event_size=MAX_HEAD + 1024)
        conn.on_error = self._protocol_error
        self.conn = conn
        self._refused = False
        self._head = bytearray()
        self._head_timer: asyncio.TimerHandle | None = None

    def connection_made(self, transport: asyncio.Transport) -> None:  # type: ignore[override]
        super().connection_made(transport)
        if len(self.connections) > self.limits.max_connections:
            self._refuse(503, f"too many open connections (the mirror's limit is {self.limits.max_connections});"
                         " retry shortly", {"Retry-After": str(self.limits.retry_after)})
            return
        self._head_timer = self.loop.call_later(self.limits.header_timeout, self._head_timeout)

    def connection_lost(self, exc: Exception | None) -> None:
        self._cancel_head_timer()
        super().connection_lost(exc)

    def _cancel_head_timer(self) -> None:
        if self._head_timer is not None:
            self._head_timer.cancel()
            self._head_timer = None

    def _head_timeout(self) -> None:
        self._head_timer = None
        if self.conn.their_state is h11.IDLE and not self.transport.is_closing():
            log.debug("mirror: closing %s: no complete request within %.0fs", self.client, self.limits.header_timeout)
            self.transport.close()

    def data_received(self, data: bytes) -> None:
        if self._refused:
            return  # the error went out; what the client still sends is read and dropped until it closes
        if self.conn.their_state is not h11.IDLE:
            super().data_received(data)
            return
        # A new request: hold its head until it is complete, so the limits apply before h11 parses it.
        self._unset_keepalive_if_required()
        self._head += data
        problem = check_head(bytes(self._head))
        if problem is not None:
            self._refuse(*problem)
            return
        end = _head_end(self._head)
        if end < 0:
            return
        head, rest = bytes(self._head[:end]), bytes(self._head[end:])
        self._head.clear()
        fixed = fix_head(head)
        if isinstance(fixed, tuple):
            self._refuse(*fixed)
            return
        self.conn.receive_data(fixed + rest)
        self.handle_events()

    def handle_events(self) -> None:
        super().handle_events()
        cycle = self.cycle
        if cycle is not None and type(cycle) is RequestResponseCycle:  # a new request: give it sendfile
            self._cancel_head_timer()
            cycle.__class__ = MirrorCycle
            assert isinstance(cycle, MirrorCycle)
            cycle.send_timeout = self.limits.send_timeout
            cycle.senders = self.limits.senders
            extensions: dict[str, Any] = {CLOSE: {"close": cycle.close_now}}
            if self.limits.zerocopy:
                extensions[ZEROCOPY] = {}
            self.scope["extensions"] = extensions

    def on_response_complete(self) -> None:
        super().on_response_complete()
        if self.conn.their_state is h11.IDLE and self._head_timer is None and not self.transport.is_closing():
            self._head_timer = self.loop.call_later(self.limits.header_timeout, self._head_timeout)

    def _protocol_error(self, err: h11.RemoteProtocolError) -> None:
        status = err.error_status_hint if err.error_status_hint in (400, 414, 431) else 400
        self._refuse(status, f"Bad request: {err}" if status == 400 else str(err))

    def _refuse(self, status: int, message: str, extra: dict[str, str] | None = None) -> None:
        """Answer with the JSON envelope, half-close, and drop whatever else arrives: closing with unread
        input would send a reset that can destroy the answer before the client reads it."""
        self._refused = True
        self._cancel_head_timer()
        self._unset_keepalive_if_required()
        log.debug("mirror: %s refused with %d: %s", self.client, status, message)
        self.limits.on_reject(status, message)
        self.transport.write(error_bytes(status, message, extra))
        if self.transport.can_write_eof():
            self.transport.write_eof()
        self.loop.call_later(5.0, self.transport.close)


def protocol_class(limits: Limits) -> type[MirrorProtocol]:
    """A MirrorProtocol subclass bound to one server's limits (uvicorn takes a class, not an instance)."""
    return type("BoundMirrorProtocol", (MirrorProtocol,), {"limits": limits})
