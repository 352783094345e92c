"""Bad input never gets a 500, dropped clients do not hurt the server, keep-alive and concurrency work."""

from __future__ import annotations

import hashlib
import http.client
import json
import logging
import os
import socket
import struct
import threading
from pathlib import Path

import pytest

from smart_model_manager.mirror import MirrorServer
from smart_model_manager.store.cache import import_folder

try:
    from ._mirror_fixtures import pseudo_random_bytes, raw_request, small_root
except ImportError:  # tests/ is not a package: pytest put this folder on sys.path
    from _mirror_fixtures import pseudo_random_bytes, raw_request, small_root

pytestmark = pytest.mark.integration
_FIXTURES = (small_root,)
WEIGHTS = b"/org/small/resolve/main/sub/dir/weights.bin"


@pytest.fixture
def server(small_root):
    with MirrorServer(small_root[0]) as srv:
        yield srv


@pytest.mark.parametrize(("method", "target", "headers", "status"), [
    (b"GET", b"/", {}, 404),
    (b"GET", b"/api", {}, 404),
    (b"GET", b"/api/models", {}, 404),
    (b"GET", b"/api/models/org/small/commits/main", {}, 404),
    (b"GET", b"/api/models/org/small/tree", {}, 404),
    (b"GET", b"/api/models/org/small/revision", {}, 404),
    (b"GET", b"/org/small/resolve", {}, 404),
    (b"GET", b"/org/small/resolve/main", {}, 404),
    (b"GET", b"/org/small/resolve/main/", {}, 404),
    (b"GET", b"/org/small/resolve/main/sub", {}, 404),
    (b"GET", b"/org/small/resolve/main/sub/dir/", {}, 404),
    (b"GET", b"/api/models/" + b"a" * 5000, {}, 404),
    (b"GET", b"/api/models/org/small?blobs=%zz&recursive", {}, 200),
    (b"GET", b"/org/small/resolve/main/config.json?x=%ff", {}, 200),
    (b"GET", b"/org/small/resolve/%ff/config.json", {}, 400),
    (b"GET", WEIGHTS, {"Range": "bytes=99999999999999999999999-"}, 416),
    (b"GET", WEIGHTS, {"Range": "garbage"}, 200),
    (b"GET", WEIGHTS, {"Authorization": "Bearer \u00e9"}, 200),
    (b"GET", b"http://example.org/org/small/resolve/main/config.json", {}, 200),
    (b"DELETE", b"/org/small/resolve/main/config.json", {}, 405),
    (b"PUT", b"/api/models/org/small", {"Content-Length": "3"}, 405),
    (b"BREW", b"/api/models/org/small", {}, 405),
    (b"POST", b"/org/small/resolve/main/config.json", {}, 405),
    (b"POST", b"/api/models/org/small/paths-info/main", {"Content-Length": "x"}, 200),
    (b"GET", b"/api/models/org/small/paths-info/main", {}, 405),
])
def test_bad_requests_get_clean_json_errors(server, method, target, headers, status) -> None:
    body_out = b"abc" if headers.get("Content-Length") == "3" else b""
    got, resp_headers, body = raw_request(server.url, target, method, headers, body_out)
    assert got == status, body[:300]
    assert got < 500
    if method != b"HEAD" and got != 200:
        assert "error" in json.loads(body)
    assert "x-xet-hash" not in resp_headers


def test_crafted_names_cannot_inject_headers(server) -> None:
    status, headers, body = raw_request(server.url, b"/org/small/resolve/main/x%0d%0aSet-Cookie:%20a=b%0d%0a%0d%0aHTTP")
    assert status == 404 and "set-cookie" not in headers
    assert "Set-Cookie" in headers["x-error-message"] and "\n" not in headers["x-error-message"]
    assert json.loads(body)["error"]


def test_an_internal_bug_is_a_logged_json_500_and_the_server_lives_on(server, monkeypatch, caplog) -> None:
    def broken(*args, **kwargs):
        raise RuntimeError("simulated bug")

    with monkeypatch.context() as patch:
        patch.setattr(server.index, "has_repo", broken)
        status, headers, body = raw_request(server.url, b"/api/models/org/small")
    assert status == 500 and headers["retry-after"] == "0" and "simulated" not in body.decode()
    assert any(r.levelno == logging.ERROR and r.exc_info for r in caplog.records)
    assert raw_request(server.url, b"/api/models/org/small")[0] == 200


def test_garbage_request_lines_do_not_kill_the_server(server) -> None:
    host, port = server.url.rsplit("//", 1)[1].split(":")
    for junk in (b"\x16\x03\x01\x02\x00\x01\x00\x01\xfc\x03\x03\r\n\r\n", b"GET\r\n\r\n", b"GET / HTTP/9.9\r\n\r\n",
                 b"GET / HTTP/1.1\r\n" + b"X: y\r\n" * 200 + b"\r\n", b"GET /" + b"a" * 70000 + b" HTTP/1.1\r\n\r\n"):
        with socket.create_connection((host, int(port)), timeout=5) as sock:
            sock.sendall(junk)
            try:
                reply = sock.recv(100)
            except (ConnectionResetError, TimeoutError):
                reply = b""
        assert not reply.startswith(b"HTTP/1.1 5") and not reply.startswith(b"HTTP/1.0 5"), reply
    assert raw_request(server.url, b"/api/models/org/small")[0] == 200


@pytest.fixture(scope="module")
def big_server(tmp_path_factory: pytest.TempPathFactory):
    """A 32 MiB file: larger than loopback socket buffers, so a dropped client really stops the stream."""
    base = tmp_path_factory.mktemp("big")
    (base / "src").mkdir()
    data = os.urandom(32 << 20)
    (base / "src" / "big.bin").write_bytes(data)
    import_folder(base / "src", base / "root", "org/big")
    with MirrorServer(base / "root") as srv:
        yield srv, hashlib.sha256(data).hexdigest()


def test_client_dropping_mid_file_is_quiet_and_counted(big_server, caplog) -> None:
    server, digest = big_server
    host, port = server.url.rsplit("//", 1)[1].split(":")
    caplog.set_level(logging.DEBUG, logger="smart_model_manager.mirror")
    for _ in range(3):
        with socket.create_connection((host, int(port)), timeout=5) as sock:
            sock.sendall(b"GET /org/big/resolve/main/big.bin HTTP/1.1\r\nHost: x\r\n\r\n")
            assert sock.recv(1024)
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))  # close with RST
    status, _h, body = raw_request(server.url, b"/org/big/resolve/main/big.bin")
    assert status == 200 and hashlib.sha256(body).hexdigest() == digest
    stats = server.stats["org/big/big.bin"]
    assert stats.full_gets == 4 and (32 << 20) <= stats.bytes_served < 4 * (32 << 20)
    assert not [r for r in caplog.records if r.levelno >= logging.WARNING]
    assert any("went away" in r.getMessage() for r in caplog.records)


def test_keep_alive_serves_many_requests_on_one_connection(server) -> None:
    host, port = server.url.rsplit("//", 1)[1].split(":")
    conn = http.client.HTTPConnection(host, int(port), timeout=10)
    try:
        socks = set()
        for path in ("/api/models/org/small", "/org/small/resolve/main/config.json", "/nope",
                     "/org/small/resolve/main/sub/dir/weights.bin", "/org/small/resolve/main/missing"):
            conn.request("HEAD" if "weights" in path else "GET", path)
            resp = conn.getresponse()
            resp.read()
            socks.add(id(conn.sock))
            assert resp.status in (200, 404)
        assert len(socks) == 1  # the same socket carried every request: Content-Length is right each time
    finally:
        conn.close()


def test_parallel_downloads_get_identical_bytes(server) -> None:
    want = pseudo_random_bytes(300_000)
    results: list[bytes] = []
    errors: list[BaseException] = []

    def fetch() -> None:
        try:
            results.append(raw_request(server.url, WEIGHTS)[2])
        except BaseException as err:  # noqa: BLE001 - reported below
            errors.append(err)

    threads = [threading.Thread(target=fetch) for _ in range(16)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(30)
    assert not errors and len(results) == 16 and all(r == want for r in results)


def test_stop_closes_idle_keep_alive_connections(small_root) -> None:
    srv = MirrorServer(small_root[0]).start()
    host, port = srv.url.rsplit("//", 1)[1].split(":")
    conn = http.client.HTTPConnection(host, int(port), timeout=5)
    conn.request("GET", "/api/models/org/small")
    conn.getresponse().read()
    srv.stop()
    with pytest.raises((ConnectionError, http.client.HTTPException, OSError)):
        conn.request("GET", "/api/models/org/small")
        conn.getresponse().read()
    conn.close()
    assert Path(small_root[0]).is_dir()


def test_ipv6_loopback(small_root) -> None:
    if not socket.has_ipv6:
        pytest.skip("no IPv6 in this Python build")
    try:
        srv = MirrorServer(small_root[0], host="::1").start()
    except OSError as err:  # MirrorError is an OSError: no ::1 on this machine
        pytest.skip(f"cannot bind ::1 here: {err}")
    try:
        assert srv.url.startswith("http://[::1]:")
        host_port = srv.url.split("//", 1)[1]
        conn = http.client.HTTPConnection(host_port, timeout=5)
        conn.request("GET", "/api/models/org/small")
        resp = conn.getresponse()
        assert resp.status == 200 and json.loads(resp.read())["sha"] == small_root[2]
        conn.close()
    finally:
        srv.stop()
