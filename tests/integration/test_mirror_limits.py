"""The mirror's operational side: health, readiness and metrics endpoints, the bound on concurrent file
streams, the connection limit, the header timeout, and an idle-connection flood that must not stop a real
download. Real sockets on 127.0.0.1, the real huggingface_hub client for the download."""

from __future__ import annotations

import hashlib
import json
import os
import re
import resource
import socket
import sys
import time
from pathlib import Path

import pytest

from smart_model_manager.mirror import Limits, MirrorServer
from smart_model_manager.store.cache import import_folder

try:
    from ._mirror_fixtures import raw_request
except ImportError:  # tests/ is not a package: pytest put this folder on sys.path
    from _mirror_fixtures import raw_request

pytestmark = pytest.mark.integration
BIG = 32 << 20  # larger than loopback socket buffers: a client that does not read holds its stream open
BIG_PATH = b"/org/big/resolve/main/big.bin"
MID = 8 << 20  # the file the flood test downloads while the idle connections are held


@pytest.fixture(scope="module")
def big_root(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, str]:
    base = tmp_path_factory.mktemp("limits")
    (base / "src").mkdir()
    data = os.urandom(BIG)
    (base / "src" / "big.bin").write_bytes(data)
    (base / "src" / "config.json").write_text("{}")
    (base / "src" / "weights.bin").write_bytes(data[:MID])
    import_folder(base / "src", base / "root", "org/big")
    return base / "root", hashlib.sha256(data).hexdigest()


def _hostport(url: str) -> tuple[str, int]:
    host, port = url.rsplit("//", 1)[1].rsplit(":", 1)
    return host, int(port)


def _metric(url: str, name: str) -> float:
    status, _h, body = raw_request(url, b"/metrics")
    assert status == 200
    m = re.search(rb"^" + name.encode() + rb"(?:\{[^}]*\})? ([0-9.e+]+)$", body, re.M)
    assert m, f"{name} not in /metrics"
    return float(m[1])


def _wait_for(predicate, timeout: float = 10.0) -> None:
    deadline = time.monotonic() + timeout
    while not predicate():
        assert time.monotonic() < deadline, "condition not reached in time"
        time.sleep(0.02)


def _stalled_download(url: str) -> socket.socket:
    """A GET of the big file whose client reads the headers and then stops reading."""
    sock = socket.create_connection(_hostport(url), timeout=10)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 64 << 10)
    sock.sendall(b"GET " + BIG_PATH + b" HTTP/1.1\r\nHost: x\r\n\r\n")
    assert sock.recv(4096).startswith(b"HTTP/1.1 200")
    return sock


def test_health_ready_and_metrics_answer_without_the_token(big_root) -> None:
    with MirrorServer(big_root[0], token="sekrit", warm=False) as srv:
        assert raw_request(srv.url, b"/api/models/org/big")[0] == 401
        status, headers, body = raw_request(srv.url, b"/healthz")
        assert status == 200 and json.loads(body) == {"status": "ok"}
        status, headers, body = raw_request(srv.url, b"/readyz")
        ready = json.loads(body)
        assert status == 200 and ready["status"] == "ready" and ready["max_streams"] == Limits().max_streams
        assert raw_request(srv.url, b"/api/models/org/big", headers={"Authorization": "Bearer sekrit"})[0] == 200
        status, headers, body = raw_request(srv.url, b"/metrics")
        assert status == 200 and headers["content-type"].startswith("text/plain")
        text = body.decode()
        assert 'smm_mirror_requests_total{method="GET",status="401"} 1.0' in text
        assert 'smm_mirror_requests_total{method="GET",status="200"} 1.0' in text
        assert "org/big" not in text  # no repo or path labels: nothing about the content leaks
        status, headers, body = raw_request(srv.url, b"/healthz", b"DELETE")
        assert status == 405 and json.loads(body)["error"] and headers["allow"] == "GET, HEAD"


def test_readyz_is_503_while_the_root_is_gone(tmp_path: Path) -> None:
    root = tmp_path / "root"
    root.mkdir()
    with MirrorServer(root, warm=False) as srv:
        assert raw_request(srv.url, b"/readyz")[0] == 200
        root.rename(tmp_path / "unmounted")  # what an unmounted or replaced volume looks like
        status, headers, body = raw_request(srv.url, b"/readyz")
        assert status == 503 and json.loads(body)["status"] == "not ready"
        assert "not a readable folder" in json.loads(body)["error"] and headers["retry-after"] == "1"
        assert raw_request(srv.url, b"/healthz")[0] == 200  # alive: a restart would not bring the volume back
        (tmp_path / "unmounted").rename(root)
        assert raw_request(srv.url, b"/readyz")[0] == 200


def test_readyz_waits_for_the_index_to_warm(big_root) -> None:
    with MirrorServer(big_root[0], warm=True) as srv:
        _wait_for(lambda: raw_request(srv.url, b"/readyz")[0] == 200)
        assert json.loads(raw_request(srv.url, b"/readyz")[2])["status"] == "ready"


def test_downloads_beyond_max_streams_get_503_with_retry_after(big_root) -> None:
    root, digest = big_root
    with MirrorServer(root, warm=False, limits=Limits(max_streams=2, retry_after=7)) as srv:
        held = [_stalled_download(srv.url) for _ in range(2)]
        try:
            _wait_for(lambda: _metric(srv.url, "smm_mirror_streams_active") == 2)
            status, headers, body = raw_request(srv.url, BIG_PATH)
            assert status == 503 and headers["retry-after"] == "7"
            assert "too many downloads in progress" in json.loads(body)["error"] and headers["x-error-message"]
            # metadata is not a stream: HEAD and the API still answer while every stream is busy
            assert raw_request(srv.url, BIG_PATH, b"HEAD")[0] == 200
            assert raw_request(srv.url, b"/api/models/org/big")[0] == 200
            assert _metric(srv.url, 'smm_mirror_refused_total{reason="streams"}') == 1
        finally:
            for sock in held:
                sock.close()
        _wait_for(lambda: _metric(srv.url, "smm_mirror_streams_active") == 0)
        status, _h, body = raw_request(srv.url, BIG_PATH)
        assert status == 200 and hashlib.sha256(body).hexdigest() == digest


def test_a_reader_that_stalls_past_the_send_timeout_frees_its_stream(big_root) -> None:
    root, digest = big_root
    with MirrorServer(root, warm=False, limits=Limits(max_streams=1, send_timeout=0.5)) as srv:
        stalled = _stalled_download(srv.url)
        try:
            assert _metric(srv.url, "smm_mirror_streams_active") == 1
            assert raw_request(srv.url, BIG_PATH)[0] == 503  # the one stream is taken
            _wait_for(lambda: _metric(srv.url, "smm_mirror_streams_active") == 0, timeout=10)
            status, _h, body = raw_request(srv.url, BIG_PATH)
            assert status == 200 and hashlib.sha256(body).hexdigest() == digest
            stalled.settimeout(5)
            with pytest.raises((ConnectionError, TimeoutError, AssertionError)):
                while True:  # the stalled client finds its connection cut before the whole body
                    assert stalled.recv(1 << 20)
        finally:
            stalled.close()


def test_connections_beyond_the_limit_get_a_json_503(big_root) -> None:
    with MirrorServer(big_root[0], warm=False, limits=Limits(max_connections=5, retry_after=4)) as srv:
        idle = [socket.create_connection(_hostport(srv.url), timeout=10) for _ in range(5)]
        try:
            _wait_for(lambda: _metric_conns(srv) >= 5)
            status, headers, body = raw_request(srv.url, b"/api/models/org/big")
            assert status == 503 and headers["retry-after"] == "4" and headers["connection"] == "close"
            assert "too many open connections" in json.loads(body)["error"]
        finally:
            for sock in idle:
                sock.close()
        _wait_for(lambda: raw_request(srv.url, b"/api/models/org/big")[0] == 200)


def _metric_conns(srv: MirrorServer) -> int:
    """Open connections as the server counts them (read in-process: a request would add one)."""
    return len(srv._server.server_state.connections)


def test_a_connection_that_sends_no_request_is_closed_after_the_header_timeout(big_root) -> None:
    with MirrorServer(big_root[0], warm=False, limits=Limits(header_timeout=0.5)) as srv:
        slow = socket.create_connection(_hostport(srv.url), timeout=5)
        slow.sendall(b"GET /api/models/org/big HTTP/1.1\r\nHost: x\r\n")  # never finishes its head
        t0 = time.monotonic()
        assert slow.recv(100) == b""  # closed by the server, without an answer
        assert 0.3 < time.monotonic() - t0 < 4
        slow.close()
        assert raw_request(srv.url, b"/api/models/org/big")[0] == 200


def test_a_body_over_the_limit_is_a_json_413_and_the_connection_closes(big_root) -> None:
    with MirrorServer(big_root[0], warm=False) as srv:
        body = b"paths=" + b"a" * (2 << 20)
        status, headers, reply = raw_request(srv.url, b"/api/models/org/big/paths-info/main", b"POST",
                                             {"Content-Length": str(len(body))}, body)
        assert status == 413 and headers["connection"] == "close" and "over" in json.loads(reply)["error"]
        small = b"paths=config.json"
        status, _h, reply = raw_request(srv.url, b"/api/models/org/big/paths-info/main", b"POST",
                                        {"Content-Length": str(len(small)),
                                         "Content-Type": "application/x-www-form-urlencoded"}, small)
        assert status == 200 and [e["path"] for e in json.loads(reply)] == ["config.json"]


def test_without_the_server_stack_start_says_which_extra_to_install(big_root, monkeypatch) -> None:
    from smart_model_manager.errors import MirrorError

    monkeypatch.setitem(sys.modules, "uvicorn", None)  # what an install without [mirror] looks like
    with pytest.raises(MirrorError, match=r"smart-model-manager\[mirror\]"):
        MirrorServer(big_root[0], warm=False).start()


def _rss() -> int:
    import psutil

    return psutil.Process().memory_info().rss


IDLE = 3000


def test_3000_idle_connections_do_not_stop_a_real_download(big_root, tmp_path: Path, monkeypatch) -> None:
    import huggingface_hub
    from huggingface_hub import constants

    monkeypatch.setattr(constants, "HF_HUB_DISABLE_TELEMETRY", True)
    monkeypatch.setattr(constants, "HF_HUB_OFFLINE", False)
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    need = 2 * IDLE + 512  # both ends of every connection live in this process
    if soft < need:
        if hard != resource.RLIM_INFINITY and hard < need:
            pytest.skip(f"the open-file limit is {hard}; this test needs {need}")
        resource.setrlimit(resource.RLIMIT_NOFILE, (need, hard))
    root = big_root[0]
    idle: list[socket.socket] = []
    try:
        with MirrorServer(root, warm=False) as srv:
            # warm up the client and the server's code paths before measuring memory
            huggingface_hub.hf_hub_download("org/big", "config.json", endpoint=srv.url,
                                            cache_dir=tmp_path / "warm", token=False)
            before = _rss()
            for _ in range(IDLE):
                idle.append(socket.create_connection(_hostport(srv.url), timeout=30))
            _wait_for(lambda: _metric_conns(srv) >= IDLE, timeout=60)
            grown = _rss() - before
            t0 = time.monotonic()
            got = huggingface_hub.hf_hub_download("org/big", "weights.bin", endpoint=srv.url,
                                                  cache_dir=tmp_path / "hub", token=False)
            took = time.monotonic() - t0
            assert Path(got).read_bytes() == (root.parent / "src" / "weights.bin").read_bytes()
            # the idle connections were held open the whole time (not shed to make room)
            assert _metric_conns(srv) >= IDLE
            for sock in idle[:: IDLE // 10]:
                sock.setblocking(False)
                with pytest.raises(BlockingIOError):
                    sock.recv(1, socket.MSG_PEEK)
        print(f"flood: {IDLE} idle connections, RSS +{grown / 2**20:.1f} MiB, {MID >> 20} MiB download {took:.3f}s")
        assert took < 1.0, f"a {MID >> 20} MiB download took {took:.2f}s with {IDLE} idle connections open"
        # 3,000 threads cost 106 MB in the thread-per-connection server; here both ends of every
        # connection live in this process, and the bound still leaves a wide margin.
        assert grown < 64 << 20, f"{IDLE} idle connections grew RSS by {grown >> 20} MiB"
    finally:
        for sock in idle:
            sock.close()
