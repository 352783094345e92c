"""Shared helpers for the sentiment-service tests: a deterministic runner, loaders, real servers.

Not a conftest: test modules import what they use. ``slow_app`` / ``table_app`` are ASGI factories
for ``uvicorn --factory --app-dir tests/integration _service_fixtures:slow_app`` subprocesses.
"""

from __future__ import annotations

import contextlib
import hashlib
import os
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterator, Mapping
from pathlib import Path

import httpx
import uvicorn

from smart_model_manager.model import LoadInfo, Model, RunnerDefaults
from smart_model_manager.service.app import create_app
from smart_model_manager.service.config import ServiceConfig

REPO = Path(__file__).resolve().parents[2]
HERE = Path(__file__).resolve().parent
LABELS = ("positive", "negative", "neutral")  # FinBERT's id order

# Texts with hand-picked probabilities (positive, negative, neutral) for hand-checked aggregates.
TABLE: dict[str, tuple[float, float, float]] = {
    "Bitcoin ETF inflows hit a record": (0.7, 0.1, 0.2),
    "Exchange halts ETH withdrawals after hack": (0.2, 0.5, 0.3),
    "Ethereum developers schedule a call": (0.1, 0.1, 0.8),
    "Markets wait for the Fed": (0.3, 0.3, 0.4),
}


def hashed_probs(text: str) -> list[float]:
    """Deterministic, text-dependent probabilities for texts outside TABLE."""
    d = hashlib.sha256(text.encode()).digest()
    w = [1 + d[0], 1 + d[1], 1 + d[2]]
    return [x / sum(w) for x in w]


class TableRunner(RunnerDefaults):
    """TABLE lookups, else hashed probabilities. Optional per-call delay; records batch sizes."""

    backend = "fake"

    def __init__(self, delay: float = 0.0):
        self.delay = delay
        self.batch_sizes: list[int] = []
        self._lock = threading.Lock()

    def __call__(self, texts: list[str]) -> list[list[float]]:
        if self.delay:
            time.sleep(self.delay)
        with self._lock:
            self.batch_sizes.append(len(texts))
        return [list(TABLE[t]) if t in TABLE else hashed_probs(t) for t in texts]


def make_model(runner: Callable[[list[str]], list[list[float]]] | None = None,
               repo_id: str = "test/table-sentiment") -> Model:
    runner = runner or TableRunner()
    info = LoadInfo(repo_id=repo_id, model_type="sentiment", environment="test", source="fake", path=None,
                    commit="0" * 40, revision=None, backend=getattr(runner, "backend", "fake"),
                    load_seconds=0.0)
    return Model(runner, model_type="sentiment", labels=LABELS, info=info)


class BlockingLoader:
    """Blocks in ``__call__`` until ``release()``: readiness must not flip before."""

    def __init__(self, model: Model):
        self.model = model
        self.gate = threading.Event()
        self.called = threading.Event()
        self.names: list[str] = []

    def __call__(self, name: str) -> Model:
        self.names.append(name)
        self.called.set()
        if not self.gate.wait(30):
            raise TimeoutError("BlockingLoader never released")
        return self.model

    def release(self) -> None:
        self.gate.set()


class FailingLoader:
    def __call__(self, name: str) -> Model:
        raise FileNotFoundError(f"no volume holds {name}")


class ServerThread:
    """A real uvicorn server on 127.0.0.1:<free port> in a background thread."""

    def __init__(self, app, *, timeout: float = 15.0):
        self.config = uvicorn.Config(app, host="127.0.0.1", port=0, log_config=None, access_log=False,
                                     lifespan="on", timeout_graceful_shutdown=10)
        self.server = uvicorn.Server(self.config)
        self.thread = threading.Thread(target=self.server.run, name="uvicorn-test", daemon=True)
        self.timeout = timeout

    def __enter__(self) -> ServerThread:
        self.thread.start()
        deadline = time.monotonic() + self.timeout
        while not self.server.started:
            if not self.thread.is_alive() or time.monotonic() > deadline:
                raise RuntimeError("uvicorn did not start")
            time.sleep(0.01)
        return self

    @property
    def url(self) -> str:
        port = self.server.servers[0].sockets[0].getsockname()[1]
        return f"http://127.0.0.1:{port}"

    def __exit__(self, *exc: object) -> None:
        self.server.should_exit = True
        self.thread.join(self.timeout)


@contextlib.contextmanager
def serve(model: Model | None = None, *, loader=None, config: ServiceConfig | None = None,
          wait_ready: bool = True) -> Iterator[tuple[str, object]]:
    """Run ``create_app`` with a fake model on a real server; yield (base url, app)."""
    if loader is None:
        m = model or make_model()
        loader = lambda name: m  # noqa: E731
    app = create_app(config=config or ServiceConfig(), loader=loader)
    with ServerThread(app) as srv:
        if wait_ready:
            wait_for_ready(srv.url)
        yield srv.url, app


def wait_for_ready(url: str, timeout: float = 60.0) -> httpx.Response:
    deadline = time.monotonic() + timeout
    last = None
    while time.monotonic() < deadline:
        try:
            last = httpx.get(url + "/readyz", timeout=5)
            if last.status_code == 200:
                return last
        except httpx.TransportError:
            pass
        time.sleep(0.05)
    raise AssertionError(f"{url} not ready after {timeout}s: {last and last.text}")


@contextlib.contextmanager
def subprocess_server(args: list[str], env: Mapping[str, str], port: int,
                      ready_timeout: float = 120.0) -> Iterator[subprocess.Popen[str]]:
    """Start a server process (cwd = repo root) and wait until it accepts connections."""
    proc = subprocess.Popen([sys.executable, *args], cwd=REPO, env=dict(env), text=True,
                            stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
    try:
        deadline = time.monotonic() + ready_timeout
        while True:
            if proc.poll() is not None:
                raise AssertionError(f"server exited with {proc.returncode}:\n{proc.stdout.read()}")
            try:
                httpx.get(f"http://127.0.0.1:{port}/healthz", timeout=2)
                break
            except httpx.TransportError:
                if time.monotonic() > deadline:
                    raise AssertionError("server did not start") from None
                time.sleep(0.1)
        yield proc
    finally:
        if proc.poll() is None:
            proc.kill()
        proc.wait(10)
        if proc.stdout is not None:
            proc.stdout.close()


def child_env(**extra: str) -> dict[str, str]:
    # no SMM_*/HF_* and no PYTEST_CURRENT_TEST: a child is in the test environment only when asked
    env = {k: v for k, v in os.environ.items() if not k.startswith(("SMM_", "HF_", "PYTEST_"))}
    env["PYTHONPATH"] = os.pathsep.join([str(REPO / "src"), env.get("PYTHONPATH", "")]).rstrip(os.pathsep)
    env.update(extra)
    return env


# ASGI factories for subprocess servers ------------------------------------------------------

def slow_app():
    """Every model call takes SMM_TEST_DELAY seconds (graceful-shutdown test)."""
    delay = float(os.environ.get("SMM_TEST_DELAY", "1.0"))
    model = make_model(TableRunner(delay=delay))
    return create_app(config=ServiceConfig(max_wait_ms=0), loader=lambda name: model)
