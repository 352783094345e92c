"""Helpers for the model-image tests: two versions of a sentiment "model" locked against a real mirror on
127.0.0.1 and pulled into a real cache, and a real CNCF distribution registry (Debian's ``docker-registry``)
on 127.0.0.1 with its storage in a temp folder. Not a conftest: import what you need."""

from __future__ import annotations

import contextlib
import os
import shutil
import signal
import socket
import subprocess
import time
import urllib.request
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

from smart_model_manager.formats import lockfile
from smart_model_manager.formats.spec import loads as load_spec
from smart_model_manager.mirror import MirrorServer
from smart_model_manager.ops.lock import resolve_lock
from smart_model_manager.ops.pull import pull

try:
    from ._artifacts_fixtures import hub_like_root, make_sentiment_folder
except ImportError:
    from _artifacts_fixtures import hub_like_root, make_sentiment_folder

REPO_ID = "org/news-sentiment"
SPEC = f"models:\n  news:\n    repo_id: {REPO_ID}\n    model_type: sentiment\n"
WEIGHTS = 3 << 20  # big enough for a layer of its own


@dataclass(frozen=True)
class TwoVersions:
    cache: Path          # holds both commits
    lock1: Path
    lock2: Path


def two_versions(tmp: Path) -> TwoVersions:
    """v1 and v2 differ only in model.safetensors; both pulled (verified) into ``tmp/cache``."""
    upstream, cache = tmp / "upstream", tmp / "cache"
    spec = load_spec(SPEC, "models.yaml")
    paths = []
    upstream.mkdir(parents=True)
    with MirrorServer(upstream) as mirror:
        for i, seed in enumerate((b"one", b"two"), start=1):
            hub_like_root(make_sentiment_folder(tmp / f"v{i}", weights=WEIGHTS, seed=seed), upstream, REPO_ID)
            path = tmp / f"v{i}.lock"
            lockfile.write_lock(path, resolve_lock(spec, mirror.url, timeout=10, retries=0))
            pull(lockfile.load(path), cache_dir=cache, endpoint=mirror.url, timeout=10, retries=0)
            paths.append(path)
    return TwoVersions(cache, paths[0], paths[1])


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


REGISTRY_BIN = shutil.which("docker-registry") or "/usr/bin/docker-registry"


@dataclass
class Registry:
    host: str            # 127.0.0.1:PORT
    storage: Path
    proc: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        return f"http://{self.host}"


def _config(storage: Path, port: int, htpasswd: Path | None) -> str:
    auth = (f"auth:\n  htpasswd:\n    realm: smm-test\n    path: {htpasswd}\n" if htpasswd else "")
    return (f"version: 0.1\nlog:\n  level: warn\nstorage:\n  filesystem:\n    rootdirectory: {storage}\n"
            f"  delete:\n    enabled: true\nhttp:\n  addr: 127.0.0.1:{port}\n{auth}")


@contextlib.contextmanager
def registry(tmp: Path, *, users: dict[str, str] | None = None, port: int | None = None) -> Iterator[Registry]:
    """A real registry on 127.0.0.1; ``users`` (name -> password) turns on htpasswd (bcrypt) basic auth."""
    tmp.mkdir(parents=True, exist_ok=True)
    htpasswd = None
    if users:
        import bcrypt

        htpasswd = tmp / "htpasswd"
        htpasswd.write_text("".join(f"{u}:{bcrypt.hashpw(p.encode(), bcrypt.gensalt(rounds=5)).decode()}\n"
                                    for u, p in users.items()))
    port = port or free_port()
    reg = Registry(f"127.0.0.1:{port}", tmp / "storage")
    cfg = tmp / "registry.yml"
    cfg.write_text(_config(reg.storage, port, htpasswd))
    log = open(tmp / "registry.log", "wb")  # noqa: SIM115 - a file, never a pipe (a pipe can hang the test)
    reg.proc = subprocess.Popen([REGISTRY_BIN, "serve", str(cfg)], stdout=log, stderr=subprocess.STDOUT,
                                start_new_session=True, env={**os.environ, "OTEL_TRACES_EXPORTER": "none"})
    try:
        deadline = time.monotonic() + 30
        while True:
            try:
                urllib.request.urlopen(f"{reg.url}/v2/", timeout=2)  # noqa: S310 - our own 127.0.0.1 registry
                break
            except urllib.error.HTTPError as err:
                if err.code == 401:
                    break
            except OSError:
                pass
            if reg.proc.poll() is not None or time.monotonic() > deadline:
                raise RuntimeError(f"docker-registry did not start: {(tmp / 'registry.log').read_text()[-2000:]}")
            time.sleep(0.1)
        yield reg
    finally:
        stop(reg)
        log.close()


def stop(reg: Registry) -> None:
    if reg.proc is not None and reg.proc.poll() is None:
        os.killpg(reg.proc.pid, signal.SIGTERM)
        try:
            reg.proc.wait(10)
        except subprocess.TimeoutExpired:
            os.killpg(reg.proc.pid, signal.SIGKILL)
            reg.proc.wait(10)
