"""A read-only Hugging Face-compatible HTTP server over an HF hub cache folder, on uvicorn + Starlette.

The contract is the Hub's own HTTP API as huggingface_hub and transformers use it (docs/mirror.md): the routes
``/api/models/{repo}[/revision/{rev}]``, ``/api/models/{repo}/tree/{rev}[/{path}]``, ``/api/models/{repo}/refs``,
``POST /api/models/{repo}/paths-info/{rev}``, ``HEAD|GET /{repo}/resolve/{rev}/{path}`` and
``/api/agent-harnesses``; plus ``/healthz``, ``/readyz`` and Prometheus ``/metrics`` for operators.

Never sent: Xet headers or ``xetHash`` (they switch the client to a protocol we do not speak), redirects,
compression. Errors carry ``X-Error-Code`` so huggingface_hub raises its precise exception types.

Layers: ``protocol.py`` (connections: limits, timeouts, sendfile), ``app.py`` (requests), ``routes.py`` and
``index.py`` (the Hub's grammar and the cache layout), ``faults.py`` (test-only failures, as middleware).
uvicorn, Starlette and prometheus_client are imported when a server starts, not on import.
"""

from __future__ import annotations

import logging
import os
import re
import socket
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from typing import Any

from ..errors import ConfigurationError, MirrorError
from .faults import Fault, FaultPlan
from .index import MirrorIndex
from .stats import MirrorStats

log = logging.getLogger(__name__)
access_log = logging.getLogger(__name__ + ".access")

MAX_REQUEST_LINE = 8192  # bytes, CRLF included; longer request lines get a 414 (docs/mirror.md)
EXTRA_HINT = "the mirror needs uvicorn, starlette and prometheus-client: pip install 'smart-model-manager[mirror]'"


@dataclass(frozen=True)
class Limits:
    """What one mirror allows (``smm mirror serve`` options; docs/mirror.md, "Limits")."""

    max_streams: int = 64           # concurrent file downloads; beyond: 503 + Retry-After
    max_connections: int = 4096     # open connections; beyond: 503 + Retry-After, then closed
    keep_alive_timeout: float = 30.0  # an idle keep-alive connection is closed after this
    header_timeout: float = 30.0    # a connection must complete a request head within this
    send_timeout: float = 60.0      # a download that makes no progress for this long is cut
    backlog: int = 2048             # the listening socket's accept queue
    retry_after: int = 1            # seconds, in the 503s for the bounds above

    def __post_init__(self) -> None:
        for name in ("max_streams", "max_connections", "backlog", "retry_after"):
            if getattr(self, name) < 1:
                raise ConfigurationError(f"mirror limit {name} must be >= 1, got {getattr(self, name)}")
        for name in ("keep_alive_timeout", "header_timeout", "send_timeout"):
            if not getattr(self, name) > 0:
                raise ConfigurationError(f"mirror timeout {name} must be > 0, got {getattr(self, name)}")


_RANGE = re.compile(r"\s*bytes\s*=\s*([0-9]*)\s*-\s*([0-9]*)\s*", re.ASCII | re.IGNORECASE)


def parse_range(header: str | None, size: int) -> tuple[int, int] | str | None:
    """``bytes=N-M``, ``bytes=N-`` or ``bytes=-N`` -> (start, end) inclusive; None = send everything.

    Malformed or multi-range headers are ignored (RFC 9110 §14.2 allows answering 200 with the whole body);
    a well-formed range that does not overlap the file gives ``"unsatisfiable"`` (416). Digits are ASCII
    only: ``str.isdigit()`` also accepts '²' (0xB2), which ``int()`` then refused (a crafted header once crashed the handler).
    """
    if not header:
        return None
    m = _RANGE.fullmatch(header)
    if m is None or not (m[1] or m[2]):
        return None
    first, last = m[1], m[2]
    if not first:  # suffix: the last N bytes
        n = int(last)
        if n == 0 or size == 0:
            return "unsatisfiable"
        return max(0, size - n), size - 1
    start = int(first)
    if last and int(last) < start:
        return None  # "bytes=5-2" is invalid syntax, not an unsatisfiable range
    if start >= size:
        return "unsatisfiable"
    return start, min(int(last), size - 1) if last else size - 1


class MirrorServer:
    """The mirror in a background thread: ``with MirrorServer(root) as m: ... m.url ...``.

    ``port=0`` picks a free port; ``url`` is known after :meth:`start`. ``token`` makes every Hub request
    need ``Authorization: Bearer <token>`` (``/healthz``, ``/readyz`` and ``/metrics`` stay open: probes and
    scrapers carry no token, and they reveal no repo names). ``stats`` counts GETs and bytes per file;
    :meth:`inject` adds named failures (``drops_mid_file``, ``server_error``, ``stalls``) for resilience tests.
    """

    def __init__(self, root: str | Any, host: str = "127.0.0.1", port: int = 0, token: str | None = None,
                 *, warm: bool = True, limits: Limits | None = None, sendfile: bool = True):
        self.index = MirrorIndex(root)
        self.host = host
        self.port = port
        self.token = token or None
        self.warm = warm
        self.limits = limits or Limits()
        self.sendfile = sendfile  # False: bodies are read into memory and written (benchmarks compare both)
        self.stats = MirrorStats()
        self.faults = FaultPlan()
        self._server: Any = None
        self._thread: threading.Thread | None = None
        self._sock: socket.socket | None = None
        self._warming: str | None = None  # why /readyz says "not ready" while the index warms
        self._senders: ThreadPoolExecutor | None = None  # threads running sendfile, one per active download

    @property
    def url(self) -> str:
        if self._sock is None:
            raise MirrorError("the mirror is not started; call start() first")
        host, port = self._sock.getsockname()[:2]
        host = f"[{host!s}]" if ":" in str(host) else str(host)
        return f"http://{host}:{port}"

    def _listen(self) -> socket.socket:
        family = socket.AF_INET6 if ":" in self.host else socket.AF_INET  # "::1", "::": an IPv6 listener
        sock = socket.socket(family, socket.SOCK_STREAM)
        try:
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
            sock.bind((self.host, self.port))
            sock.listen(self.limits.backlog)
        except OSError as err:
            sock.close()
            raise MirrorError(f"cannot listen on {self.host}:{self.port}: {err}; pick another --port "
                              f"(0 picks a free one)") from err
        sock.setblocking(False)
        return sock

    def start(self) -> MirrorServer:
        if self._server is not None:
            return self
        try:
            import uvicorn

            from .app import MirrorApp, Settings, build_app
            from .protocol import Limits as ProtocolLimits, protocol_class
            from .telemetry import Telemetry
        except ImportError as err:
            raise MirrorError(f"{EXTRA_HINT} ({err})") from err
        lim = self.limits
        self._senders = ThreadPoolExecutor(max_workers=lim.max_streams, thread_name_prefix="smm-mirror-send")
        telemetry = Telemetry(max_streams=lim.max_streams, max_connections=lim.max_connections)
        mirror = MirrorApp(self.index, self.stats, telemetry, Settings(self.token, lim.max_streams, lim.retry_after))
        self._warming = "indexing the mirror root" if self.warm else None
        app = build_app(mirror, self.faults, self._not_ready)
        proto = protocol_class(ProtocolLimits(max_connections=lim.max_connections,
                                              header_timeout=lim.header_timeout, send_timeout=lim.send_timeout,
                                              on_reject=lambda status, message: self._refused(telemetry, status,
                                                                                              message),
                                              zerocopy=self.sendfile, retry_after=lim.retry_after,
                                              senders=self._senders))
        config = uvicorn.Config(app, http=proto, loop="asyncio", lifespan="off", log_config=None,
                                access_log=False, timeout_keep_alive=lim.keep_alive_timeout,  # type: ignore[arg-type]
                                timeout_graceful_shutdown=3, server_header=False, date_header=True,
                                ws="none", backlog=lim.backlog)
        self._sock = self._listen()
        server = uvicorn.Server(config)
        telemetry.track_connections(lambda: len(server.server_state.connections))
        self._server = server
        self._thread = threading.Thread(target=server.run, kwargs={"sockets": [self._sock]},
                                        name=f"smm-mirror-{self.port}", daemon=True)
        self._thread.start()
        deadline = time.monotonic() + 30
        while not server.started and self._thread.is_alive() and time.monotonic() < deadline:
            time.sleep(0.005)
        if not server.started:
            self.stop()
            raise MirrorError(f"the mirror on {self.host}:{self.port} did not start (see the log above)")
        if self.warm:
            # Hash plain (non-blob) files now, so a client's first HEAD never waits on a multi-GB hash.
            threading.Thread(target=self._warm, name="smm-mirror-warm", daemon=True).start()
        log.info("mirror serving %s at %s", self.index.root, self.url)
        return self

    def _refused(self, telemetry: Any, status: int, message: str) -> None:
        """A request refused by the connection layer (limits, unparseable input): counted like any other."""
        telemetry.refused(status)
        self.stats.record_request("-", "-", status)
        access_log.info('- "-" %d 0 (%s)', status, message)

    def _not_ready(self) -> str | None:
        """None when the mirror can answer, else why not (``/readyz``)."""
        if self._warming:
            return self._warming
        if not os.access(self.index.root, os.R_OK | os.X_OK) or not self.index.root.is_dir():
            return f"the mirror root {self.index.root} is not a readable folder (volume unmounted?)"
        return None

    def inject(self, fault: Fault) -> None:
        """Make the next matching GET(s) fail in a named way (see :mod:`.faults`); ``faults.clear()`` undoes."""
        self.faults.add(fault)

    def _warm(self) -> None:
        t0 = time.monotonic()
        try:
            n = self.index.warm()
            log.debug("mirror: indexed %d files in %.2fs", n, time.monotonic() - t0)
            self._warming = None
        except OSError as err:
            log.warning("mirror: indexing %s failed: %s", self.index.root, err)
            self._warming = f"indexing {self.index.root} failed: {err}"

    def stop(self) -> None:
        server, self._server = self._server, None
        if server is None:
            return
        server.should_exit = True
        if self._thread is not None:
            self._thread.join(timeout=10)
        if self._sock is not None:
            self._sock.close()
            self._sock = None
        if self._senders is not None:
            self._senders.shutdown(wait=False, cancel_futures=True)
            self._senders = None
        log.info("mirror stopped")

    def __enter__(self) -> MirrorServer:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()
