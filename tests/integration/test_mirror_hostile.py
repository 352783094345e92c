"""Hostile input to the mirror (issue 9, B5, B6 and the JSON envelope): no empty reply, no 5xx for bad
input, bounded memory for what it remembers about requests, one JSON error shape for everything."""

from __future__ import annotations

import json
import socket
import time

import pytest

from smart_model_manager.mirror import MirrorServer, server as server_mod
from smart_model_manager.mirror.server import MAX_REQUEST_LINE, parse_range
from smart_model_manager.mirror.stats import MirrorStats

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


def _raw(url: str, data: bytes) -> bytes:
    """Send bytes exactly as given (latin-1 header bytes included); return everything the server sent."""
    host, port = url.rsplit("//", 1)[1].split(":")
    out = b""
    with socket.create_connection((host, int(port)), timeout=10) as sock:
        sock.sendall(data)
        while len(out) < 2_000_000:
            try:
                chunk = sock.recv(65536)
            except (ConnectionResetError, TimeoutError):
                break
            if not chunk:
                break
            out += chunk
    return out


def _split(reply: bytes) -> tuple[int, dict[str, str], bytes]:
    head, _, body = reply.partition(b"\r\n\r\n")
    lines = head.decode("latin-1").split("\r\n")
    status = int(lines[0].split()[1])
    headers = {k.strip().lower(): v.strip() for k, _, v in (ln.partition(":") for ln in lines[1:])}
    return status, headers, body


# B5: str.isdigit() accepts superscript and other Unicode digits; int() then raised outside the handler.
@pytest.mark.parametrize("value", [b"bytes=\xb2-", b"bytes=\xb9-", b"bytes=\xb3-", b"bytes=-\xb2", b"bytes=1-\xb3",
                                   b"bytes=\xb2-\xb3", b"bytes= 1-2", b"bytes=0x1-", b"bytes=+1-", b"bytes=1_0-"])
def test_non_ascii_digit_ranges_are_ignored_and_the_whole_file_sent(server, value: bytes) -> None:
    reply = _raw(server.url, b"GET " + WEIGHTS + b" HTTP/1.1\r\nHost: x\r\nConnection: close\r\nRange: " + value
                 + b"\r\n\r\n")
    assert reply, "empty reply: the handler died"
    status, headers, body = _split(reply)
    if value == b"bytes= 1-2":  # optional whitespace after '=' is still a valid range
        assert status == 206 and body == pseudo_random_bytes(300_000)[1:3]
        return
    assert status == 200, reply[:200]
    assert body == pseudo_random_bytes(300_000) and "content-range" not in headers


@pytest.mark.parametrize("header", ["bytes=\u00b2-", "bytes=\u0663-", "bytes=\uff11-", "bytes=-\u00b9",
                                   "bytes=1-\u2083", "bytes=\u00b2\u00b3-1"])
def test_parse_range_accepts_ascii_digits_only(header: str) -> None:
    assert parse_range(header, 100) is None


def test_parse_range_still_parses_valid_ranges() -> None:
    assert parse_range("bytes=5-", 10) == (5, 9)
    assert parse_range("bytes=2-4", 10) == (2, 4)
    assert parse_range("bytes=-3", 10) == (7, 9)
    assert parse_range("Bytes = 2-4 ", 10) == (2, 4)
    assert parse_range("bytes=10-", 10) == "unsatisfiable"
    assert parse_range("bytes=4-2", 10) is None


def test_a_failure_while_sending_a_file_is_a_json_500_not_an_empty_reply(server, monkeypatch) -> None:
    def broken(header, size):
        raise RuntimeError("simulated bug in the response path")

    monkeypatch.setattr(server_mod, "parse_range", broken)
    status, headers, body = raw_request(server.url, WEIGHTS, headers={"Range": "bytes=1-"})
    assert status == 500 and json.loads(body) == {"error": "internal error in the mirror (see its log)"}
    assert "simulated" not in body.decode()
    monkeypatch.undo()
    assert raw_request(server.url, WEIGHTS)[0] == 200


# B6: the mirror kept the last 10,000 raw paths (up to 64 KB each) even for 401s.
def test_request_line_over_the_documented_limit_is_a_json_414(server) -> None:
    target = b"/api/models/" + b"a" * (MAX_REQUEST_LINE + 10)
    reply = _raw(server.url, b"GET " + target + b" HTTP/1.1\r\nHost: x\r\n\r\n")
    status, headers, body = _split(reply)
    assert status == 414
    assert json.loads(body)["error"].startswith("request line longer than")
    assert headers["content-type"].startswith("application/json") and headers["connection"] == "close"
    assert raw_request(server.url, b"/api/models/org/small")[0] == 200


def test_request_line_just_under_the_limit_is_served(server) -> None:
    target = b"/api/models/org/small?x=" + b"a" * (MAX_REQUEST_LINE - 60)
    assert raw_request(server.url, target)[0] == 200


def test_remembered_requests_are_bounded_in_count_and_size(small_root) -> None:
    with MirrorServer(small_root[0], token="sekrit") as srv:
        long_path = b"/api/models/" + b"b" * (MAX_REQUEST_LINE - 100)
        for _ in range(60):
            assert raw_request(srv.url, long_path)[0] == 401
        stats = srv.stats
        for _ in range(100):  # a request is counted just after its reply went out: wait for the last one
            if stats.total_requests() >= 60:
                break
            time.sleep(0.05)
        assert stats.status_counts()[401] == 60 and stats.total_requests() == 60
        assert all(len(path) <= MirrorStats.MAX_SAMPLE_CHARS for _m, path, _s in stats.requests)
        assert any(path.endswith("...") for _m, path, _s in stats.requests)
    small = MirrorStats(keep_requests=5)
    for i in range(50):
        small.record_request("G" * 1000, "/x" * 10_000, 400 + i % 3)
    assert len(small.requests) == 5 and small.total_requests() == 50
    assert sum(small.status_counts().values()) == 50
    assert all(len(m) <= 16 and len(p) <= MirrorStats.MAX_SAMPLE_CHARS for m, p, _s in small.requests)


def test_status_counts_are_bounded_whatever_the_status(small_root) -> None:
    stats = MirrorStats()
    for status in range(0, 5000):
        stats.record_request("GET", "/", status)
    assert len(stats.status_counts()) <= 1000 and stats.total_requests() == 5000


# Cosmetic: requests the stdlib parser refuses got an HTML page, not our JSON envelope.
@pytest.mark.parametrize("junk, status", [
    (b"GET\r\n\r\n", 400),
    (b"GET / HTTP/9.9\r\n\r\n", 400),  # the stdlib's 505, turned into a 4xx: bad input is never a 5xx
    (b"GET / HTTP/1.1 extra\r\n\r\n", 400),
    (b"GET / HTTP/1.1\r\n" + b"X: y\r\n" * 200 + b"\r\n", 431),
    (b"GET / HTTP/1.1\r\nX: " + b"y" * 70000 + b"\r\n\r\n", 431),
    (b"GET /" + b"a" * 70000 + b" HTTP/1.1\r\n\r\n", 414),
])
def test_unparseable_requests_get_the_json_error_envelope(server, junk: bytes, status: int) -> None:
    reply = _raw(server.url, junk)
    got, headers, body = _split(reply)
    assert got == status, reply[:300]
    assert headers["content-type"].startswith("application/json")
    assert isinstance(json.loads(body)["error"], str) and headers.get("x-error-message")
    assert int(headers["content-length"]) == len(body)
