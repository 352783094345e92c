"""`smm mirror`: serve an HF hub cache folder as a read-only Hugging Face-compatible mirror."""

from __future__ import annotations

import logging
import signal
import sys
import threading
from pathlib import Path
from types import FrameType

import click

from ..errors import ConfigurationError
from ..mirror import Limits, MirrorServer
from ..mirror.server import access_log
from ..store.layout import REPO_FOLDER_EXAMPLE


@click.group("mirror")
def mirror() -> None:
    """A read-only Hugging Face mirror over a local HF cache or a provisioned volume."""


@mirror.command("serve")
@click.option("--root", required=True, type=click.Path(exists=True, file_okay=False, path_type=Path),
              help=f"HF hub cache folder (holds {REPO_FOLDER_EXAMPLE}/).")
@click.option("--host", default="127.0.0.1", show_default=True, help="Interface to listen on.")
@click.option("--port", default=0, show_default=True, type=click.IntRange(0, 65535),
              help="Port; 0 picks a free one (the URL is printed).")
@click.option("--token", default=None, help="Require 'Authorization: Bearer TOKEN' (clients: HF_TOKEN=TOKEN).")
@click.option("--token-file", default=None, type=click.Path(exists=True, dir_okay=False, path_type=Path),
              help="Read the token from this file instead (keeps it out of `ps`).")
@click.option("--access-log", "access_log_path", default=None, type=click.Path(dir_okay=False, path_type=Path),
              help="Append one line per request to this file.")
@click.option("--max-streams", default=Limits.max_streams, show_default=True, type=click.IntRange(1),
              help="Concurrent file downloads; beyond it a GET gets 503 with Retry-After.")
@click.option("--max-connections", default=Limits.max_connections, show_default=True, type=click.IntRange(1),
              help="Open connections; beyond it a new one gets 503 with Retry-After and is closed.")
@click.option("--backlog", default=Limits.backlog, show_default=True, type=click.IntRange(1),
              help="Pending connections the kernel queues before the mirror accepts them.")
@click.option("--keep-alive-timeout", default=Limits.keep_alive_timeout, show_default=True,
              type=click.FloatRange(min=1), help="Seconds an idle keep-alive connection stays open.")
@click.option("--header-timeout", default=Limits.header_timeout, show_default=True,
              type=click.FloatRange(min=0.1), help="Seconds a connection has to send a complete request head.")
@click.option("--send-timeout", default=Limits.send_timeout, show_default=True, type=click.FloatRange(min=0.1),
              help="Seconds a download may make no progress before its connection is cut.")
@click.option("--retry-after", default=Limits.retry_after, show_default=True, type=click.IntRange(1),
              help="Seconds sent in Retry-After with the 503s of --max-streams and --max-connections.")
def serve(root: Path, host: str, port: int, token: str | None, token_file: Path | None,
          access_log_path: Path | None, max_streams: int, max_connections: int, backlog: int,
          keep_alive_timeout: float, header_timeout: float, send_timeout: float, retry_after: int) -> None:
    """Serve the --root folder read-only over HTTP until SIGINT/SIGTERM (see docs/mirror.md).

    \b
    Health: GET /healthz (alive), /readyz (the root is readable and indexed), /metrics (Prometheus).

    \b
    Examples:
      smm mirror serve --root ~/.cache/huggingface/hub --port 8080
      HF_ENDPOINT=http://127.0.0.1:8080 HF_HUB_DISABLE_XET=1 \\
        python -c 'from huggingface_hub import snapshot_download as s; print(s("org/name"))'
      smm mirror serve --root /mnt/models --host 0.0.0.0 --port 8080 --token-file /etc/smm/token
    """
    if token and token_file:
        raise ConfigurationError("give --token or --token-file, not both")
    if token_file is not None:
        token = token_file.read_text(encoding="utf-8").strip()
        if not token:
            raise ConfigurationError(f"--token-file {token_file} is empty")
    limits = Limits(max_streams=max_streams, max_connections=max_connections, backlog=backlog,
                    keep_alive_timeout=keep_alive_timeout, header_timeout=header_timeout,
                    send_timeout=send_timeout, retry_after=retry_after)
    server = MirrorServer(root, host=host, port=port, token=token, limits=limits)
    server.start()
    handler = _attach_access_log(access_log_path) if access_log_path else None
    stop = threading.Event()

    def _on_signal(signum: int, frame: FrameType | None) -> None:
        stop.set()

    previous = {sig: signal.signal(sig, _on_signal) for sig in (signal.SIGINT, signal.SIGTERM)}
    try:
        click.echo(f"Serving {root} at {server.url}")
        sys.stdout.flush()
        while not stop.wait(0.5):  # a bounded wait keeps the main thread responsive to signals
            pass
    finally:
        server.stop()
        for sig, old in previous.items():
            signal.signal(sig, old)
        if handler is not None:
            access_log.removeHandler(handler)
            handler.close()


def _attach_access_log(path: Path) -> logging.Handler:
    handler = logging.FileHandler(path, encoding="utf-8")
    handler.setFormatter(logging.Formatter("%(asctime)s %(message)s"))
    access_log.addHandler(handler)
    access_log.setLevel(logging.INFO)
    access_log.propagate = False  # the file gets the lines; stderr stays quiet unless -v
    return handler
