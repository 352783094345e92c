"""Rate limits: HubClient waits as long as the server says (Retry-After, RateLimit), and no longer than its budget.

The server is a few lines of the standard library's http.server on 127.0.0.1 that answers scripted statuses
and records when each request arrived; the assertions are on those server-side times, not on how long the
test took.
"""

from __future__ import annotations

import hashlib
import threading
import time
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest

from smart_model_manager.errors import SourceError
from smart_model_manager.remote.hub import HubClient, _retry_after

pytestmark = pytest.mark.integration

BODY = b"weights" * 1000


class _Scripted(ThreadingHTTPServer):
    daemon_threads = True

    def __init__(self, script: list[tuple[int, dict[str, str]]]) -> None:
        super().__init__(("127.0.0.1", 0), _Handler)
        self.script = list(script)    # (status, headers) for the next requests; then 200 with BODY
        self.arrivals: list[float] = []


class _Handler(BaseHTTPRequestHandler):
    server: _Scripted

    def do_GET(self) -> None:  # noqa: N802 - http.server's naming
        self.server.arrivals.append(time.monotonic())
        status, headers = self.server.script.pop(0) if self.server.script else (200, {})
        body = BODY if status == 200 else b'{"error": "rate limited"}'
        self.send_response(status)
        for k, v in {"Content-Length": str(len(body)), **headers}.items():
            self.send_header(k, v)
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *args: object) -> None:
        pass


@pytest.fixture
def serve() -> Iterator[object]:
    servers: list[_Scripted] = []

    def start(script: list[tuple[int, dict[str, str]]]) -> _Scripted:
        srv = _Scripted(script)
        threading.Thread(target=srv.serve_forever, daemon=True).start()
        servers.append(srv)
        return srv

    yield start
    for srv in servers:
        srv.shutdown()
        srv.server_close()


def _download(srv: _Scripted, tmp_path: Path, **kw: float) -> tuple[int, str]:
    client = HubClient(f"http://127.0.0.1:{srv.server_address[1]}", retries=3, timeout=10, **kw)
    return client.download("org/model", "a" * 40, "model.bin", tmp_path / "out", size=len(BODY))


def test_429_with_retry_after_3_is_retried_after_3_seconds_not_before(serve, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    srv = serve([(429, {"Retry-After": "3"})])
    assert _download(srv, tmp_path) == (len(BODY), hashlib.sha256(BODY).hexdigest())
    assert len(srv.arrivals) == 2
    gap = srv.arrivals[1] - srv.arrivals[0]
    assert 3.0 <= gap < 6.0, f"retried {gap:.2f}s after the 429 that said Retry-After: 3"


def test_ratelimit_header_with_nothing_left_waits_for_the_reset(serve, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    # the Hub's own form (IETF draft): 0 requests left, the window resets in 1 s (rounded down, so +1 s)
    srv = serve([(429, {"RateLimit": '"api";r=0;t=1', "RateLimit-Policy": '"fixed window";"api";q=500;w=300'})])
    _download(srv, tmp_path)
    gap = srv.arrivals[1] - srv.arrivals[0]
    assert 2.0 <= gap < 5.0, f"retried {gap:.2f}s after a RateLimit reset of 1 s (+1 s rounding)"


def test_without_headers_the_backoff_stays_short(serve, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    srv = serve([(503, {}), (503, {})])
    _download(srv, tmp_path, backoff=0.2)
    gaps = [b - a for a, b in zip(srv.arrivals, srv.arrivals[1:])]
    assert len(gaps) == 2 and 0.2 <= gaps[0] < 2.0 and 0.4 <= gaps[1] < 2.0, gaps


def test_retry_after_beyond_the_budget_fails_at_once_saying_when(serve, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    srv = serve([(429, {"Retry-After": "600"})])
    with pytest.raises(SourceError) as exc:
        _download(srv, tmp_path, retry_budget=120)
    message = str(exc.value)
    assert "HTTP 429" in message and "retry in 600s" in message and "UTC" in message
    assert "SMM_RETRY_BUDGET" in message
    assert len(srv.arrivals) == 1  # no second request: waiting could not help within the budget


def test_the_budget_counts_every_wait_of_one_request(serve, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    srv = serve([(429, {"Retry-After": "1"}), (429, {"Retry-After": "2"})])
    with pytest.raises(SourceError, match="retry budget"):
        _download(srv, tmp_path, retry_budget=2.5)   # 1 s spent, 2 s asked, 1.5 s left
    assert len(srv.arrivals) == 2


def test_retry_after_forms() -> None:
    from email.utils import formatdate

    assert _retry_after("3") == 3.0 and _retry_after(" 120 ") == 120.0
    assert _retry_after(None) is None and _retry_after("") is None and _retry_after("soon") is None
    later = _retry_after(formatdate(time.time() + 30, usegmt=True))
    assert later is not None and 25 <= later <= 31
    assert _retry_after(formatdate(time.time() - 30, usegmt=True)) == 0.0


def test_smm_pull_uses_the_retry_budget_from_the_environment(serve, tmp_path: Path, capsys,  # type: ignore[no-untyped-def]
                                                             monkeypatch: pytest.MonkeyPatch) -> None:
    import shutil

    from smart_model_manager.cli.main import main

    repo = Path(__file__).resolve().parents[2]
    shutil.copy(repo / "deploy" / "k3s" / "base" / "models.lock", tmp_path / "models.lock")
    srv = serve([(429, {"Retry-After": "30"})] * 8)
    monkeypatch.setenv("SMM_RETRY_BUDGET", "5")
    code = main(["pull", "--lock", str(tmp_path / "models.lock"), "--cache-dir", str(tmp_path / "cache"),
                 "--endpoint", f"http://127.0.0.1:{srv.server_address[1]}", "--jobs", "1", "--no-progress"])
    err = capsys.readouterr().err
    assert code == 1 and "retry in 30s" in err and "5s left of the retry budget (SMM_RETRY_BUDGET)" in err, err
    assert len(srv.arrivals) == 1  # failed at once: no second request


def test_a_429_injected_by_the_mirror_is_waited_out_as_its_retry_after_says(tmp_path: Path) -> None:
    """The same rule against the project's own mirror and its fault injection: a 429 with Retry-After: 3
    on the file's GET; the download succeeds on the retry, and not before those 3 s have passed."""
    from smart_model_manager.mirror import Fault, MirrorServer
    from smart_model_manager.store.cache import import_folder

    (tmp_path / "src").mkdir()
    (tmp_path / "src" / "model.bin").write_bytes(BODY)
    commit = import_folder(tmp_path / "src", tmp_path / "root", "org/model").commit
    with MirrorServer(tmp_path / "root") as server:
        server.inject(Fault("server_error", "org/model/model.bin", status=429, retry_after="3"))
        client = HubClient(server.url, retries=3, timeout=10)
        started = time.monotonic()
        got = client.download("org/model", commit, "model.bin", tmp_path / "out", size=len(BODY))
        waited = time.monotonic() - started
    assert got == (len(BODY), hashlib.sha256(BODY).hexdigest())
    assert server.faults.triggered == [("server_error", "org/model/model.bin")]  # the 429 was sent, once
    assert waited >= 3.0, f"retried {waited:.2f}s after a 429 that said Retry-After: 3"
