"""The mirror's ASGI application: the Hub's routes (``routes.py``) plus ``/healthz``, ``/readyz``, ``/metrics``.

Every answer the mirror gives is either a JSON value, a file, or the JSON error envelope
``{"error": message}`` with ``X-Error-Message`` (and ``X-Error-Code`` where huggingface_hub maps it to an
exception type). The raw request path is split on ``/`` before each segment is percent-decoded, because
revisions arrive as ``refs%2Fpr%2F1``.
"""

from __future__ import annotations

import hmac
import json
import logging
import time
from dataclasses import dataclass
from typing import Any
from urllib.parse import parse_qs, quote, unquote, urlsplit

import anyio.to_thread
from starlette.applications import Starlette
from starlette.middleware import Middleware
from starlette.requests import Request as StarletteRequest
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from . import routes
from .faults import CLOSE, FILE_KEY, ZEROCOPY, FaultMiddleware, PartialSend
from .index import BadPath, NotFound
from .protocol import header_safe
from .telemetry import Telemetry

log = logging.getLogger("smart_model_manager.mirror.server")
access_log = logging.getLogger("smart_model_manager.mirror.server.access")

CHUNK = 8 << 20   # bytes per sendfile call (and per read where sendfile is not offered)
MAX_BODY = 1 << 20
MAX_DRAIN = 16 << 20  # an oversized body is read and dropped up to this, so its 413 arrives intact


@dataclass
class Settings:
    token: str | None
    max_streams: int
    retry_after: int = 1


class _Exchange:
    """One request's send side: remembers the status and body bytes for the access log and metrics."""

    def __init__(self, scope: dict[str, Any], send: Any):
        self.scope = scope
        self._send = send
        self.status: int | None = None
        self.sent = 0
        self.head = scope["method"] == "HEAD"

    async def start(self, status: int, headers: dict[str, str]) -> None:
        raw = [(k.lower().encode("latin-1"), header_safe(v).encode("latin-1")) for k, v in headers.items()]
        await self._send({"type": "http.response.start", "status": status, "headers": raw})
        self.status = status  # set once it went out: a fault that answers instead leaves it unset

    async def body(self, data: bytes, *, more: bool = False) -> None:
        await self._send({"type": "http.response.body", "body": b"" if self.head else data, "more_body": more})
        self.sent += 0 if self.head else len(data)

    async def json(self, status: int, payload: Any, extra: dict[str, str] | None = None) -> None:
        data = json.dumps(payload, separators=(",", ":")).encode()
        headers = {"Content-Type": "application/json; charset=utf-8", "Content-Length": str(len(data))}
        headers.update(extra or {})
        await self.start(status, headers)
        await self.body(data)

    async def error(self, status: int, code: str | None, message: str, extra: dict[str, str] | None = None) -> None:
        headers = {"X-Error-Message": message}
        if code:
            headers["X-Error-Code"] = code
        headers.update(extra or {})
        log.debug("mirror %s %s -> %d %s: %s", self.scope["method"], _target(self.scope)[:200], status, code, message)
        await self.json(status, {"error": message}, headers)

    def close_connection(self) -> None:
        closer = self.scope.get("extensions", {}).get(CLOSE)
        if closer:
            closer["close"]()


def _target(scope: dict[str, Any]) -> str:
    raw = scope.get("raw_path") or scope["path"].encode()
    query = scope.get("query_string") or b""
    return raw.decode("latin-1") + ("?" + query.decode("latin-1") if query else "")


class MirrorApp:
    """The Hub protocol as a raw ASGI app (Starlette routes the operational endpoints to their handlers)."""

    def __init__(self, index: Any, stats: Any, telemetry: Telemetry, settings: Settings):
        self.index = index
        self.stats = stats
        self.telemetry = telemetry
        self.settings = settings
        self.streams = 0

    async def __call__(self, scope: dict[str, Any], receive: Any, send: Any) -> None:
        if scope["type"] != "http":
            return
        ex = _Exchange(scope, send)
        try:
            await self._answer(ex, receive)
        except ConnectionError as err:
            log.debug("mirror: client %s went away during %s: %s", scope.get("client"), _target(scope)[:200], err)
        except Exception:  # noqa: BLE001 - a bug or an unreadable folder: answer, log, keep serving
            log.exception("mirror: error while answering %s %s", scope["method"], _target(scope)[:200])
            if ex.status is None:  # nothing sent yet: the client gets a JSON 500, never an empty reply
                await ex.error(500, None, "internal error in the mirror (see its log)",
                               {"Retry-After": "0", "Connection": "close"})
            else:  # headers (or part of a body) are out: the stream is unusable
                ex.close_connection()
        finally:
            self._record(ex)

    def _record(self, ex: _Exchange) -> None:
        if ex.status is None:
            return
        method, target = ex.scope["method"], _target(ex.scope)
        self.stats.record_request(method, target, ex.status)
        self.telemetry.request(method, ex.status)
        client = (ex.scope.get("client") or ("-",))[0]
        access_log.info('%s "%s %s HTTP/%s" %d %d', client, method, target[:2048], ex.scope["http_version"],
                        ex.status, ex.sent)

    async def _read_body(self, scope: dict[str, Any], receive: Any) -> tuple[bytes, bool]:
        """(body, complete): a body over MAX_BODY is not kept (the answer is a 413 and the connection closes)."""
        chunks, size = [], 0
        while True:
            message = await receive()
            if message["type"] == "http.disconnect":
                raise ConnectionResetError("client disconnected while sending its body")
            size += len(message.get("body", b""))
            if size <= MAX_BODY:
                chunks.append(message.get("body", b""))
            more = message.get("more_body", False)
            if size > MAX_BODY and (not more or size > MAX_DRAIN):
                # Read (and drop) a moderately oversized body, so the client reads the 413 instead of a
                # reset; beyond MAX_DRAIN stop reading: the answer closes the connection.
                return b"", False
            if not more:
                return b"".join(chunks), True

    async def _answer(self, ex: _Exchange, receive: Any) -> None:
        scope = ex.scope
        if scope["http_version"] not in ("1.0", "1.1"):  # bad input is the client's fault: never a 5xx
            await ex.error(400, None, f"unsupported HTTP version: HTTP/{scope['http_version']}; send HTTP/1.1",
                           {"Connection": "close"})
            return
        body, complete = await self._read_body(scope, receive)
        if not complete:  # the rest of the body is still in the stream: the connection cannot be reused
            await ex.error(413, None, f"request body over {MAX_BODY} bytes (the mirror's limit)",
                           {"Connection": "close"})
            return
        method = scope["method"]
        if method not in ("GET", "HEAD", "POST"):
            await ex.error(405, None, f"Method {method} not allowed: this mirror is read-only",
                           {"Allow": "GET, HEAD, POST"})
            return
        target = _target(scope)
        if target.startswith(("http://", "https://")):  # absolute-form request target
            parts = urlsplit(target)
            target = parts.path + ("?" + parts.query if parts.query else "")
        raw_path, _, query = target.partition("?")
        if not self._authorized(scope):
            await ex.error(401, "RepoNotFound", "Invalid or missing token: this mirror needs "
                           "'Authorization: Bearer <token>' (set HF_TOKEN to the mirror's --token)",
                           {"WWW-Authenticate": 'Bearer realm="smm-mirror"'})
            return
        try:  # split the RAW path first, then decode each segment: "refs%2Fpr%2F1" is one segment
            segments = [unquote(s, errors="strict") for s in raw_path.split("/")[1:]]
        except UnicodeDecodeError:
            await ex.error(400, None, "request path is not valid percent-encoded UTF-8")
            return
        request = routes.Request(method, segments, parse_qs(query, keep_blank_values=True), body)
        try:  # the index reads (and may hash) files: off the event loop, so one slow disk stalls no one else
            response = await anyio.to_thread.run_sync(routes.route, self.index, request)
        except NotFound as err:
            await ex.error(404, err.code, str(err), {"X-Repo-Commit": err.commit} if err.commit else {})
            return
        except BadPath as err:
            await ex.error(400, None, f"bad path: {err}")
            return
        except routes.HttpError as err:
            await ex.error(err.status, None, str(err))
            return
        if isinstance(response, routes.FileResponse):
            await self._file(ex, response)
        else:
            await ex.json(200, response)

    def _authorized(self, scope: dict[str, Any]) -> bool:
        token = self.settings.token
        if token is None:
            return True
        header = next((v for k, v in scope["headers"] if k == b"authorization"), b"").decode("latin-1")
        scheme, _, given = header.partition(" ")
        # compare_digest: the time taken does not reveal how much of the token was right.
        return scheme.lower() == "bearer" and hmac.compare_digest(given.strip().encode(), token.encode())

    async def _file(self, ex: _Exchange, resp: routes.FileResponse) -> None:
        from . import server  # parse_range lives there (its documented home); looked up per call

        entry, size = resp.entry, resp.entry.size
        range_header = next((v for k, v in ex.scope["headers"] if k == b"range"), b"").decode("latin-1") or None
        rng = server.parse_range(range_header, size)
        headers = _file_headers(resp)
        if rng == "unsatisfiable":
            headers["Content-Range"] = f"bytes */{size}"
            await ex.error(416, None, f"Range {range_header!r} is outside the file ({size} bytes)", headers)
            return
        start, end = rng if isinstance(rng, tuple) else (0, size - 1)
        length = end - start + 1 if size else 0
        headers["Content-Length"] = str(length)
        if rng:
            headers["Content-Range"] = f"bytes {start}-{end}/{size}"
        if ex.head:
            await ex.start(206 if rng else 200, headers)
            await ex.body(b"")
            return
        if self.streams >= self.settings.max_streams:
            self.telemetry.stream_rejected()
            await ex.error(503, None, f"too many downloads in progress (the mirror's limit is "
                           f"{self.settings.max_streams}); retry in {self.settings.retry_after}s",
                           {"Retry-After": str(self.settings.retry_after)})
            return
        try:
            fh = open(entry.real, "rb")  # noqa: SIM115 - closed in finally, after the body went out
        except OSError as err:
            await ex.error(404, "EntryNotFound", f"{entry.path} vanished: {err}", {"X-Repo-Commit": resp.commit})
            return
        self.streams += 1
        self.telemetry.streams(self.streams)
        key = f"{resp.repo_id}/{entry.path}"
        ex.scope[FILE_KEY] = key
        try:
            await ex.start(206 if rng else 200, headers)
            self.stats.record_get(key, partial=bool(rng))
            await self._stream(ex, fh, start, length, key)
        finally:
            fh.close()
            self.streams -= 1
            self.telemetry.streams(self.streams)

    async def _stream(self, ex: _Exchange, fh: Any, start: int, length: int, key: str) -> None:
        zerocopy = ZEROCOPY in ex.scope.get("extensions", {})
        sent = 0
        try:
            while True:
                # sendfile takes the whole range in one call (a sender thread loops over it without
                # returning to the event loop); reads go in CHUNK pieces
                n = length - sent if zerocopy else min(CHUNK, length - sent)
                more = sent + n < length
                if zerocopy and n:
                    await ex._send({"type": ZEROCOPY, "file": fh, "offset": start + sent, "count": n,
                                    "more_body": more})
                else:
                    fh.seek(start + sent)
                    data = fh.read(n)
                    if len(data) < n:  # the file shrank under us; the client's size check will catch it
                        raise ConnectionAbortedError(f"{key} shrank while being sent")
                    await ex._send({"type": "http.response.body", "body": data, "more_body": more})
                sent += n
                ex.sent += n
                self.stats.add_bytes(key, n)
                self.telemetry.bytes_sent(n)
                if not more:
                    return
        except (ConnectionError, OSError) as err:
            if isinstance(err, PartialSend):
                sent += err.sent
                ex.sent += err.sent
                self.stats.add_bytes(key, err.sent)
            log.debug("mirror: client %s went away after %d of %d bytes of %s: %s",
                      (ex.scope.get("client") or ("-",))[0], sent, length, key, err)
            ex.close_connection()


def _file_headers(resp: routes.FileResponse) -> dict[str, str]:
    entry = resp.entry
    name = entry.path.rsplit("/", 1)[-1]
    headers = {
        "Content-Type": "application/octet-stream",
        "X-Repo-Commit": resp.commit,
        "ETag": f'"{entry.etag}"',
        "Accept-Ranges": "bytes",
        "Content-Disposition": f"inline; filename*=UTF-8''{quote(name)}; filename=\"{_ascii_name(name)}\";",
    }
    if entry.sha256 is not None:  # what the Hub sends for LFS files
        headers["X-Linked-Etag"] = f'"{entry.etag}"'
        headers["X-Linked-Size"] = str(entry.size)
    return headers


def _ascii_name(name: str) -> str:
    return "".join(c if 32 <= ord(c) < 127 and c not in '"\\' else "_" for c in name)


def build_app(mirror: MirrorApp, faults: Any, ready: Any) -> Starlette:
    """Starlette routes the operational endpoints; everything else reaches the Hub protocol untouched."""
    started = time.time()

    def refused(request: StarletteRequest) -> Response | None:
        if request.method in ("GET", "HEAD"):
            return None
        message = f"Method {request.method} not allowed here (allowed: GET, HEAD)"
        return JSONResponse({"error": message}, status_code=405,
                            headers={"Allow": "GET, HEAD", "X-Error-Message": header_safe(message)})

    async def healthz(request: StarletteRequest) -> Response:
        return refused(request) or JSONResponse({"status": "ok"})

    async def readyz(request: StarletteRequest) -> Response:
        state = await anyio.to_thread.run_sync(ready)
        if refused(request) or state is None:
            return refused(request) or JSONResponse({"status": "ready",
                                 "streams": mirror.streams, "max_streams": mirror.settings.max_streams,
                                 "uptime_s": round(time.time() - started, 1)})
        return JSONResponse({"status": "not ready", "error": state}, status_code=503,
                            headers={"Retry-After": "1", "X-Error-Message": header_safe(state)})

    async def metrics(request: StarletteRequest) -> Response:
        return refused(request) or Response(mirror.telemetry.render(), media_type=mirror.telemetry.content_type)

    every = ["GET", "HEAD", "POST", "PUT", "DELETE", "PATCH", "OPTIONS"]
    app = Starlette(routes=[Route("/healthz", healthz, methods=every), Route("/readyz", readyz, methods=every),
                            Route("/metrics", metrics, methods=every)],
                    middleware=[Middleware(FaultMiddleware, plan=faults)])
    app.router.default = mirror  # type: ignore[assignment]
    return app
