"""Benchmark baseline only: the mirror as it was before it moved to uvicorn + Starlette (stdlib http.server,
one thread per connection, os.sendfile), copied from git history (commit 25368864e0c2,
src/smart_model_manager/mirror/server.py) with only its imports made absolute. bench/bench_mirror.py
serves the same root with it and with the current mirror in the same run. Not used by the package or tests.
"""
# ruff: noqa


from __future__ import annotations

import hmac
import json
import logging
import re
import socket
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qs, quote, unquote, urlsplit

from smart_model_manager.errors import MirrorError
from smart_model_manager.mirror import routes
from smart_model_manager.mirror.faults import Fault, FaultPlan
from smart_model_manager.mirror.index import BadPath, MirrorIndex, NotFound
from smart_model_manager.mirror.stats import MirrorStats

log = logging.getLogger(__name__)
access_log = logging.getLogger(__name__ + ".access")

CHUNK = 8 << 20
MAX_BODY = 1 << 20
MAX_REQUEST_LINE = 8192  # bytes, CRLF included; longer request lines get a 414 (docs/mirror.md)
# Keep-alive connections idle this long are closed, so idle clients do not pin threads forever.
IDLE_TIMEOUT = 120.0


class _Server(ThreadingHTTPServer):
    daemon_threads = True
    allow_reuse_address = True
    request_queue_size = 64

    def __init__(self, addr: tuple[str, int], index: MirrorIndex, token: str | None, stats: MirrorStats,
                 faults: FaultPlan):
        self.index = index
        self.token = token
        self.stats = stats
        self.faults = faults
        self.open_sockets: set[socket.socket] = set()
        self.sockets_lock = threading.Lock()
        if ":" in addr[0]:  # "::1", "::": an IPv6 listener
            self.address_family = socket.AF_INET6
        super().__init__(addr, _Handler)

    def process_request_thread(self, request: Any, client_address: Any) -> None:
        with self.sockets_lock:
            self.open_sockets.add(request)
        try:
            super().process_request_thread(request, client_address)
        finally:
            with self.sockets_lock:
                self.open_sockets.discard(request)

    def handle_error(self, request: Any, client_address: Any) -> None:
        # The default prints a traceback to stderr; log it instead (disconnects never reach here).
        log.exception("mirror: unhandled error while serving %s", client_address)

    def close_connections(self) -> None:
        with self.sockets_lock:
            for sock in list(self.open_sockets):
                try:
                    sock.shutdown(socket.SHUT_RDWR)
                except OSError:
                    pass


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    server_version = "smm-mirror"
    timeout = IDLE_TIMEOUT
    server: _Server
    _status: int | None = None  # the response status, set by log_request (None: nothing sent yet)

    # -- plumbing -------------------------------------------------------------------------------
    def __getattr__(self, name: str) -> Any:
        # Any method we do not implement (PUT, DELETE, FOO...) gets a JSON 405 instead of an HTML 501.
        if name.startswith("do_"):
            return self._method_not_allowed
        raise AttributeError(name)

    def log_message(self, format: str, *args: Any) -> None:  # noqa: A002 - stdlib signature
        log.debug("%s " + format, self.address_string(), *args)

    def log_request(self, code: int | str = "-", size: int | str = "-") -> None:
        # Called by send_response; the access line is written once the body went out (handle_one_request).
        self._status = int(code) if str(code).isdigit() else 0

    def handle(self) -> None:
        try:
            super().handle()
        except (ConnectionError, TimeoutError) as err:  # the client went away between requests: routine
            log.debug("mirror: connection from %s ended: %s", self.client_address[0], err)

    def handle_one_request(self) -> None:
        self._status = None
        self._sent = 0
        self.requestline = ""
        self.path = ""  # parse_request may refuse the line before setting it
        try:
            self._handle_one_request()
        finally:
            if self._status is not None:
                self.server.stats.record_request(self.command or "-", getattr(self, "path", "-"), self._status)
                access_log.info('%s "%s" %d %d', self.client_address[0], self.requestline, self._status,
                                self._sent)

    def _handle_one_request(self) -> None:
        """The stdlib's handle_one_request with our request-line limit (the stdlib allows 64 KiB)."""
        try:
            self.raw_requestline = self.rfile.readline(MAX_REQUEST_LINE + 1)
            if len(self.raw_requestline) > MAX_REQUEST_LINE:
                self.requestline = self.request_version = self.command = ""
                self.path = self.raw_requestline[:200].decode("latin-1")
                self.send_error(414)
                return
            if not self.raw_requestline:
                self.close_connection = True
                return
            if not self.parse_request():  # it already sent the error (through send_error below)
                return
            getattr(self, "do_" + self.command)()  # __getattr__ answers 405 for methods we do not serve
            self.wfile.flush()
        except TimeoutError as err:
            log.debug("mirror: request from %s timed out: %s", self.client_address[0], err)
            self.close_connection = True

    def send_error(self, code: int, message: str | None = None, explain: str | None = None) -> None:
        """Requests the stdlib parser refuses (bad request line, too many or too long headers, HTTP/9.9)
        get the same JSON envelope as every other error, and the connection is closed."""
        if code == 414:
            text = f"request line longer than {MAX_REQUEST_LINE} bytes (the mirror's limit)"
        elif code == 505:  # bad input is the client's fault: a 4xx, never a 5xx (HTTP/9.9, HTTP/2.0 in text)
            code, text = 400, f"unsupported HTTP version: {message or '?'}; send HTTP/1.1"
        else:
            short, _long = self.responses.get(code, ("Error", ""))
            text = f"{short}: {message}" if message and message != short else short
        self.close_connection = True
        if self.request_version not in ("HTTP/1.0", "HTTP/1.1"):  # else the stdlib answers 0.9-style: no status line
            self.request_version = self.protocol_version
        self._error(code, None, text, head=self.command == "HEAD", extra={"Connection": "close"})

    def do_GET(self) -> None:
        self._dispatch(head=False)

    def do_HEAD(self) -> None:
        self._dispatch(head=True)

    def do_POST(self) -> None:
        self._dispatch(head=False)

    def _method_not_allowed(self) -> None:
        self._drain_body()
        self._json(405, {"error": f"Method {self.command} not allowed: this mirror is read-only"},
                   extra={"Allow": "GET, HEAD, POST"})

    def _drain_body(self) -> bytes:
        try:
            n = int(self.headers.get("Content-Length") or 0)
        except ValueError:
            n = -1
        if n < 0 or n > MAX_BODY:
            self.close_connection = True  # we cannot find the next request in this stream
            return b""
        return self.rfile.read(n) if n else b""

    def _dispatch(self, *, head: bool) -> None:
        try:
            self._answer(head=head)
        except Exception:  # noqa: BLE001 - a bug or an unreadable folder: answer, log, keep serving
            log.exception("mirror: error while answering %s %s", self.command, self.path[:200])
            if self._status is None:  # nothing sent yet: the client gets a JSON 500, never an empty reply
                self._error(500, None, "internal error in the mirror (see its log)", head=head,
                            extra={"Retry-After": "0"})
            self.close_connection = True  # headers (or part of a body) may be out: the stream is unusable

    def _answer(self, *, head: bool) -> None:
        body = self._drain_body()
        target = self.path
        if target.startswith(("http://", "https://")):  # absolute-form request target
            parts = urlsplit(target)
            target = parts.path + ("?" + parts.query if parts.query else "")
        raw_path, _, query = target.partition("?")
        if not self._authorized():
            self._error(401, "RepoNotFound", "Invalid or missing token: this mirror needs "
                        "'Authorization: Bearer <token>' (set HF_TOKEN to the mirror's --token)",
                        head=head, extra={"WWW-Authenticate": 'Bearer realm="smm-mirror"'})
            return
        # Split the RAW path first, then decode each segment: "refs%2Fpr%2F1" is one segment.
        try:
            segments = [unquote(s, errors="strict") for s in raw_path.split("/")[1:]]
        except UnicodeDecodeError:
            self._error(400, None, "request path is not valid percent-encoded UTF-8", head=head)
            return
        request = routes.Request(self.command, segments, parse_qs(query, keep_blank_values=True), body)
        try:
            response = routes.route(self.server.index, request)
        except NotFound as err:
            extra = {"X-Repo-Commit": err.commit} if err.commit else {}
            self._error(404, err.code, str(err), head=head, extra=extra)
            return
        except BadPath as err:
            self._error(400, None, f"bad path: {err}", head=head)
            return
        except routes.HttpError as err:
            self._error(err.status, None, str(err), head=head)
            return
        if isinstance(response, routes.FileResponse):
            self._send_file(response, head=head)
        else:
            self._json(200, response, head=head)

    def _authorized(self) -> bool:
        token = self.server.token
        if token is None:
            return True
        header = self.headers.get("Authorization", "")
        scheme, _, given = header.partition(" ")
        # compare_digest: the time taken does not reveal how much of the token was right.
        return scheme.lower() == "bearer" and hmac.compare_digest(given.strip().encode(), token.encode())

    # -- responses ------------------------------------------------------------------------------
    def _headers(self, status: int, headers: dict[str, str]) -> None:
        self.send_response(status)
        for name, value in headers.items():
            self.send_header(name, _header_value(value))
        self.end_headers()

    def _json(self, status: int, payload: Any, *, head: bool = False,
              extra: dict[str, str] | None = None) -> None:
        data = json.dumps(payload, separators=(",", ":")).encode()
        headers = {"Content-Type": "application/json; charset=utf-8", "Content-Length": str(len(data))}
        headers.update(extra or {})
        self._headers(status, headers)
        if not head:
            self._write(data)

    def _error(self, status: int, code: str | None, message: str, *, head: bool,
               extra: dict[str, str] | None = None) -> None:
        headers = {"X-Error-Message": message}
        if code:
            headers["X-Error-Code"] = code
        headers.update(extra or {})
        log.debug("mirror %s %s -> %d %s: %s", self.command, self.path[:200], status, code, message)
        self._json(status, {"error": message}, head=head, extra=headers)

    def _write(self, data: bytes) -> None:
        try:
            self.wfile.write(data)
            self._sent += len(data)
        except (ConnectionError, TimeoutError):
            self.close_connection = True

    def _send_file(self, resp: routes.FileResponse, *, head: bool) -> None:
        entry = resp.entry
        size = entry.size
        rng = parse_range(self.headers.get("Range"), size)
        name = entry.path.rsplit("/", 1)[-1]
        headers = {
            "Content-Type": "application/octet-stream",
            "X-Repo-Commit": resp.commit,
            "ETag": f'"{entry.etag}"',
            "Accept-Ranges": "bytes",
            "Content-Disposition": f"inline; filename*=UTF-8''{quote(name)}; "
                                   f'filename="{_ascii_name(name)}";',
        }
        if entry.sha256 is not None:  # what the Hub sends for LFS files
            headers["X-Linked-Etag"] = f'"{entry.etag}"'
            headers["X-Linked-Size"] = str(size)
        if rng == "unsatisfiable":
            headers["Content-Range"] = f"bytes */{size}"
            self._error(416, None, f"Range {self.headers.get('Range')!r} is outside the file "
                        f"({size} bytes)", head=head, extra=headers)
            return
        start, end = rng if isinstance(rng, tuple) else (0, size - 1)  # "unsatisfiable" was answered above
        length = end - start + 1 if size else 0
        headers["Content-Length"] = str(length)
        if rng:
            headers["Content-Range"] = f"bytes {start}-{end}/{size}"
        key = f"{resp.repo_id}/{entry.path}"
        fault = None if head else self.server.faults.take(key)
        if fault is not None and fault.mode == "server_error":
            self._error(fault.status, None, f"injected fault server_error on {key}", head=False,
                        extra={"Retry-After": "0"})
            return
        try:
            fh = open(entry.real, "rb")  # noqa: SIM115 - closed in finally, after the headers went out
        except OSError as err:
            self._error(404, "EntryNotFound", f"{entry.path} vanished: {err}", head=head,
                        extra={"X-Repo-Commit": resp.commit})
            return
        try:
            self._headers(206 if rng else 200, headers)
            if head:
                return
            self.server.stats.record_get(key, partial=bool(rng))
            if fault is not None and fault.mode == "stalls":
                time.sleep(fault.seconds)
            if fault is not None and fault.mode == "drops_mid_file":
                self._stream(fh, start, min(length, fault.after_bytes), key)
                self.close_connection = True
                self.connection.shutdown(socket.SHUT_RDWR)
                return
            self._stream(fh, start, length, key)
        finally:
            fh.close()

    def _stream(self, fh: Any, start: int, length: int, key: str) -> None:
        sent_total = 0
        try:
            while sent_total < length:
                n = min(CHUNK, length - sent_total)
                sent = self.connection.sendfile(fh, offset=start + sent_total, count=n)
                if sent <= 0:  # the file shrank under us; the client's size check will catch it
                    self.close_connection = True
                    return
                sent_total += sent
                self._sent += sent
                self.server.stats.add_bytes(key, sent)
        except (ConnectionError, TimeoutError, OSError) as err:
            log.debug("mirror: client %s went away after %d of %d bytes of %s: %s",
                      self.client_address[0], sent_total, length, key, err)
            self.close_connection = True


def _header_value(value: str) -> str:
    """Header-safe text: no CR/LF (header injection), latin-1 only (http.server encodes latin-1)."""
    flat = " ".join(str(value).splitlines())
    return flat.encode("latin-1", "backslashreplace").decode("latin-1")


def _ascii_name(name: str) -> str:
    return "".join(c if 32 <= ord(c) < 127 and c not in '"\\' else "_" for c in name)


_RANGE = re.compile(r"\s*bytes\s*=\s*([0-9]*)\s*-\s*([0-9]*)\s*", re.ASCII | re.IGNORECASE)


def parse_range(header: str | None, size: int) -> tuple[int, int] | str | None:
    """``bytes=N-M``, ``bytes=N-`` or ``bytes=-N`` -> (start, end) inclusive; None = send everything.

    Malformed or multi-range headers are ignored (RFC 9110 §14.2 allows answering 200 with the whole body);
    a well-formed range that does not overlap the file gives ``"unsatisfiable"`` (416). Digits are ASCII
    only: ``str.isdigit()`` also accepts '²' (0xB2), which ``int()`` then refused.
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

    ``port=0`` picks a free port; ``url`` is known after :meth:`start`. ``token`` makes every request
    need ``Authorization: Bearer <token>``. ``stats`` counts GETs and bytes per file; :meth:`inject` adds
    named failures (``drops_mid_file``, ``server_error``, ``stalls``) for resilience tests.
    """

    def __init__(self, root: str | Any, host: str = "127.0.0.1", port: int = 0, token: str | None = None,
                 *, warm: bool = True):
        self.index = MirrorIndex(root)
        self.host = host
        self.port = port
        self.token = token or None
        self.warm = warm
        self.stats = MirrorStats()
        self.faults = FaultPlan()
        self._server: _Server | None = None
        self._thread: threading.Thread | None = None

    @property
    def url(self) -> str:
        if self._server is None:
            raise MirrorError("the mirror is not started; call start() first")
        host, port = self._server.server_address[:2]
        host = f"[{host!s}]" if ":" in str(host) else str(host)  # AF_INET/AF_INET6: host is a str
        return f"http://{host}:{port}"

    def start(self) -> MirrorServer:
        if self._server is not None:
            return self
        try:
            self._server = _Server((self.host, self.port), self.index, self.token, self.stats, self.faults)
        except OSError as err:
            raise MirrorError(f"cannot listen on {self.host}:{self.port}: {err}; pick another --port "
                              f"(0 picks a free one)") from err
        self._thread = threading.Thread(target=self._server.serve_forever, kwargs={"poll_interval": 0.05},
                                        name=f"smm-mirror-{self.port}", daemon=True)
        self._thread.start()
        if self.warm:
            # Hash plain (non-blob) files now, so a client's first HEAD never waits on a multi-GB hash.
            threading.Thread(target=self._warm, name="smm-mirror-warm", daemon=True).start()
        log.info("mirror serving %s at %s", self.index.root, self.url)
        return self

    def inject(self, fault: Fault) -> None:
        """Make the next matching GET(s) fail in a named way (see :mod:`.faults`); ``faults.clear()`` undoes."""
        self.faults.add(fault)

    def _warm(self) -> None:
        t0 = time.monotonic()
        try:
            n = self.index.warm()
            log.debug("mirror: indexed %d files in %.2fs", n, time.monotonic() - t0)
        except OSError as err:
            log.warning("mirror: indexing %s failed: %s", self.index.root, err)

    def stop(self) -> None:
        server, self._server = self._server, None
        if server is None:
            return
        server.shutdown()
        server.close_connections()
        server.server_close()
        if self._thread is not None:
            self._thread.join(timeout=5)
        log.info("mirror stopped")

    def __enter__(self) -> MirrorServer:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()
