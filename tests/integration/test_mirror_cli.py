"""`smm mirror serve` as a real process: URL line, token, access log, clean exit on SIGTERM/SIGINT."""

from __future__ import annotations

import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest
from _mirror_fixtures import raw_request, small_root

from smart_model_manager.cli.main import main

pytestmark = pytest.mark.integration
_FIXTURES = (small_root,)


def _start(*args: str) -> tuple[subprocess.Popen[str], str]:
    proc = subprocess.Popen([sys.executable, "-m", "smart_model_manager.cli.main", "mirror", "serve", *args],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    line = proc.stdout.readline() if proc.stdout else ""
    if not line.startswith("Serving "):
        proc.kill()
        _, err = proc.communicate(timeout=10)
        pytest.fail(f"no URL line: {line!r} {err[-2000:]}")
    return proc, line.rsplit(" at ", 1)[1].strip()


@pytest.mark.parametrize("sig", [signal.SIGTERM, signal.SIGINT])
def test_serve_prints_url_enforces_token_logs_and_stops_cleanly(small_root, tmp_path: Path, sig) -> None:
    root, src, commit = small_root
    log_file = tmp_path / "access.log"
    token_file = tmp_path / "token"
    token_file.write_text("t0ken\n")
    proc, url = _start("--root", str(root), "--port", "0", "--token-file", str(token_file),
                       "--access-log", str(log_file))
    try:
        assert url.startswith("http://127.0.0.1:")
        status, _h, _b = raw_request(url, b"/api/models/org/small")
        assert status == 401
        status, headers, body = raw_request(url, b"/org/small/resolve/main/config.json",
                                            headers={"Authorization": "Bearer t0ken"})
        assert status == 200 and body == (src / "config.json").read_bytes()
        assert headers["x-repo-commit"] == commit
        t0 = time.monotonic()
        proc.send_signal(sig)
        assert proc.wait(timeout=15) == 0
        assert time.monotonic() - t0 < 10
    finally:
        if proc.poll() is None:
            proc.kill()
        proc.communicate(timeout=10)
    lines = log_file.read_text().splitlines()
    assert any('"GET /api/models/org/small HTTP/1.1" 401' in ln for ln in lines), lines
    assert any('"GET /org/small/resolve/main/config.json HTTP/1.1" 200 ' in ln for ln in lines), lines
    assert "t0ken" not in log_file.read_text()


def test_missing_root_is_a_usage_error(tmp_path: Path, capsys) -> None:
    assert main(["mirror", "serve", "--root", str(tmp_path / "absent")]) == 2
    assert "does not exist" in capsys.readouterr().err


def test_token_and_token_file_together_is_a_usage_error(small_root, tmp_path: Path, capsys) -> None:
    (tmp_path / "t").write_text("x")
    code = main(["mirror", "serve", "--root", str(small_root[0]), "--token", "a", "--token-file", str(tmp_path / "t")])
    assert code == 2 and "not both" in capsys.readouterr().err


def test_port_in_use_fails_with_a_clear_message(small_root, capsys) -> None:
    with socket.socket() as busy:
        busy.bind(("127.0.0.1", 0))
        busy.listen(1)
        port = busy.getsockname()[1]
        code = main(["mirror", "serve", "--root", str(small_root[0]), "--port", str(port)])
    err = capsys.readouterr().err
    assert code == 1 and f"cannot listen on 127.0.0.1:{port}" in err


def test_help_shows_examples(capsys) -> None:
    assert main(["mirror", "serve", "--help"]) == 0
    out = capsys.readouterr().out
    assert "HF_ENDPOINT=" in out and "--token" in out
