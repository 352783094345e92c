"""Helpers for the lock / pull / hub-source tests: Hub-like mirror roots, failure-mode listeners, subprocess env.

Not a conftest on purpose (the lead owns those): import what you need.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import socket
import sys
import time
from collections.abc import Iterator
from pathlib import Path

from smart_model_manager.store.hashing import content_commit

ROOT = Path(__file__).resolve().parents[2]
LFS_MIN = 10_000  # files at least this big are "LFS" (sha256 blob names); smaller ones are git blobs (sha1)


def git_sha1(data: bytes) -> str:
    return hashlib.sha1(b"blob %d\0" % len(data) + data).hexdigest()


def sha256(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def hub_like_root(src: Path, root: Path, repo_id: str, *, commit: str | None = None, revision: str = "main",
                  lfs_min: int = LFS_MIN) -> str:
    """Publish ``src`` into ``root`` the way the real Hub's cache looks: small files under their git sha1,
    big ones under their sha256. The mirror then lists LFS metadata only for the big ones, so a lock
    has to download the small files to learn their sha256. Returns the commit."""
    files = {p.relative_to(src).as_posix(): p.read_bytes() for p in sorted(src.rglob("*")) if p.is_file()}
    commit = commit or content_commit((rel, len(b), sha256(b)) for rel, b in files.items())
    rdir = root / f"models--{repo_id.replace('/', '--')}"
    (rdir / "blobs").mkdir(parents=True, exist_ok=True)
    snap = rdir / "snapshots" / commit
    for rel, data in files.items():
        etag = sha256(data) if len(data) >= lfs_min else git_sha1(data)
        (rdir / "blobs" / etag).write_bytes(data)
        link = snap / rel
        link.parent.mkdir(parents=True, exist_ok=True)
        if link.is_symlink() or link.exists():
            link.unlink()
        os.symlink(os.path.relpath(rdir / "blobs" / etag, link.parent), link)
    (rdir / "refs").mkdir(exist_ok=True)
    (rdir / "refs" / revision).write_text(commit)
    return commit


def make_sentiment_folder(dest: Path, *, weights: int = 50_000, seed: bytes = b"w") -> Path:
    """A torch-free 'model': config with id2label, tokenizer-ish json, one LFS-sized weights file."""
    dest.mkdir(parents=True, exist_ok=True)
    (dest / "config.json").write_text(json.dumps({
        "architectures": ["BertForSequenceClassification"], "hidden_size": 16,
        "id2label": {"0": "negative", "1": "neutral", "2": "positive"}}, sort_keys=True))
    (dest / "tokenizer_config.json").write_text('{"do_lower_case": true}\n')
    (dest / "vocab.txt").write_text("[PAD]\n[UNK]\nbitcoin\n")
    (dest / "tf_model.h5").write_bytes(b"tf weights nobody here loads" * 500)
    blob = bytearray()
    i = 0
    while len(blob) < weights:
        blob += hashlib.sha256(seed + i.to_bytes(8, "big")).digest()
        i += 1
    (dest / "model.safetensors").write_bytes(bytes(blob[:weights]))
    return dest


def write(path: Path, text: str) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text)
    return path


@contextlib.contextmanager
def silent_listener() -> Iterator[str]:
    """failure mode ``stalls``: accepts TCP connections (kernel backlog) and never answers a byte."""
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.bind(("127.0.0.1", 0))
    sock.listen(16)
    try:
        yield f"http://127.0.0.1:{sock.getsockname()[1]}"
    finally:
        sock.close()


def closed_port() -> str:
    """failure mode ``connection_refused``: a port nothing listens on."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    return f"http://127.0.0.1:{port}"


def smm_env(endpoint: str, **extra: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items()
           if not k.startswith(("HF_", "SMM_", "MODEL_CACHE_DIR", "TRANSFORMERS_", "HUGGINGFACE_"))}
    env.update(HF_ENDPOINT=endpoint, HF_HUB_DISABLE_TELEMETRY="1", HF_HUB_DISABLE_XET="1", SMM_TIMEOUT="20",
               SMM_RETRIES="2", PYTHONPATH=str(ROOT / "src"))
    env.update(extra)
    return env


def smm_cmd(*args: str) -> list[str]:
    return [sys.executable, "-m", "smart_model_manager.cli.main", *args]


def snapshot_problems(root: Path, repo_id: str, expected: dict[str, int]) -> list[str]:
    """Anything under ``snapshots/`` that a reader could see as partial: a commit folder missing a file,
    a dangling link, a wrong size, or a non-commit entry."""
    snaps = root / f"models--{repo_id.replace('/', '--')}" / "snapshots"
    problems = []
    try:
        entries = list(snaps.iterdir())
    except FileNotFoundError:
        return []
    for d in entries:
        if len(d.name) != 40:
            problems.append(f"non-commit entry {d.name}")
            continue
        for rel, size in expected.items():
            p = d / rel
            try:
                actual = p.stat().st_size
            except OSError:
                problems.append(f"{d.name[:8]}/{rel} missing or dangling")
                continue
            if actual != size:
                problems.append(f"{d.name[:8]}/{rel} has {actual} bytes, expected {size}")
    return problems


def wait_for(predicate, timeout: float, interval: float = 0.01) -> bool:  # type: ignore[no-untyped-def]
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return True
        time.sleep(interval)
    return False
