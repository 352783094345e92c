"""The REAL huggingface_hub and transformers clients against ``MirrorServer`` on 127.0.0.1.

huggingface_hub runs in-process with ``endpoint=`` (Xet left *enabled*: hf_xet is installed, so any Xet
header or ``xetHash`` we leaked would make these downloads fail). transformers runs in a subprocess with
``HF_ENDPOINT`` because it freezes the endpoint at import (its constants are read once).
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from smart_model_manager.mirror import MirrorServer

try:
    from ._mirror_fixtures import (
        REPO,
        WEIRD_NAME,
        digests,
        hf_env,
        pseudo_random_bytes,
        raw_request,
        sha256_of,
        small_root,
        tiny_bert_root,
    )
except ImportError:  # tests/ is not a package: pytest put this folder on sys.path
    from _mirror_fixtures import (
        REPO,
        WEIRD_NAME,
        digests,
        hf_env,
        pseudo_random_bytes,
        raw_request,
        sha256_of,
        small_root,
        tiny_bert_root,
    )

pytestmark = pytest.mark.integration
_FIXTURES = (small_root, tiny_bert_root)  # imported for pytest's fixture lookup


@pytest.fixture
def hub(monkeypatch: pytest.MonkeyPatch):
    """huggingface_hub with telemetry and offline mode off and Xet ON (its constants are frozen at import).

    Xet stays enabled on purpose (hf_xet is installed): had the mirror advertised Xet anywhere, the client
    would switch protocols and these downloads would fail.
    """
    import huggingface_hub
    from huggingface_hub import constants
    from huggingface_hub.utils._runtime import is_xet_available

    monkeypatch.setattr(constants, "HF_HUB_DISABLE_TELEMETRY", True)
    monkeypatch.setattr(constants, "HF_HUB_OFFLINE", False)
    monkeypatch.setattr(constants, "HF_HUB_DISABLE_XET", False)
    assert is_xet_available()
    return huggingface_hub


@pytest.fixture(scope="module")
def bert_mirror(tiny_bert_root):
    root, src, commit = tiny_bert_root
    with MirrorServer(root) as server:
        yield server, src, commit


@pytest.fixture(scope="module")
def small_mirror(small_root):
    root, src, commit = small_root
    with MirrorServer(root) as server:
        yield server, src, commit


@pytest.mark.ml_models  # the fixture builds a torch model
def test_snapshot_download_bytes_match_source(hub, bert_mirror, tmp_path: Path) -> None:
    server, src, commit = bert_mirror
    server.stats.reset()
    path = Path(hub.snapshot_download(REPO, endpoint=server.url, cache_dir=tmp_path, token=False))
    assert path.name == commit
    assert digests(path) == digests(src)
    repo_dir = tmp_path / "models--org--tinybert"
    assert (repo_dir / "refs" / "main").read_text() == commit
    weights = path / "model.safetensors"
    # The blob name is our etag, the sha256 of the bytes: the client cache mirrors ours exactly.
    assert weights.is_symlink() and weights.resolve().name == sha256_of(src / "model.safetensors")
    files = server.stats.files()
    assert {k: v.full_gets for k, v in files.items()} == {f"{REPO}/{p}": 1 for p in digests(src) if p != "empty.txt"}
    assert files[f"{REPO}/model.safetensors"].bytes_served == (src / "model.safetensors").stat().st_size

    # Warm cache: one revision call, no file is fetched again.
    server.stats.reset()
    again = Path(hub.snapshot_download(REPO, endpoint=server.url, cache_dir=tmp_path, token=False))
    assert again == path
    assert [(m, p.split("?")[0]) for m, p, _s in server.stats.requests] == [
        ("GET", "/api/models/org/tinybert/revision/main")]


def test_hf_hub_download_percent_encoded_name(hub, small_mirror, tmp_path: Path) -> None:
    server, src, commit = small_mirror
    server.stats.reset()
    got = hub.hf_hub_download("org/small", WEIRD_NAME, endpoint=server.url, cache_dir=tmp_path, token=False)
    assert Path(got).read_bytes() == (src / WEIRD_NAME).read_bytes()
    assert Path(got).parent.name == commit
    sent = [p for _m, p, _s in server.stats.requests]
    assert "/org/small/resolve/main/with%20space%2Bplus%20%231.txt" in sent


def test_subfolder_single_segment_repo_and_commit_revision(hub, small_mirror, tmp_path: Path) -> None:
    server, src, commit = small_mirror
    got = hub.hf_hub_download("org/small", "weights.bin", subfolder="sub/dir", revision=commit,
                              endpoint=server.url, cache_dir=tmp_path, token=False)
    assert Path(got).read_bytes() == pseudo_random_bytes(300_000)
    solo = Path(hub.snapshot_download("solo", endpoint=server.url, cache_dir=tmp_path, token=False))
    assert digests(solo) == digests(src)


def test_unknown_repo_revision_and_file_raise_the_exact_hub_errors(hub, small_mirror, tmp_path: Path) -> None:
    from huggingface_hub.errors import (
        EntryNotFoundError,
        RemoteEntryNotFoundError,
        RepositoryNotFoundError,
        RevisionNotFoundError,
    )

    server, _src, commit = small_mirror
    kw = {"endpoint": server.url, "cache_dir": tmp_path, "token": False}
    with pytest.raises(RepositoryNotFoundError):
        hub.hf_hub_download("org/nope", "config.json", **kw)
    with pytest.raises(RepositoryNotFoundError):
        hub.snapshot_download("org/nope", **kw)
    with pytest.raises(RevisionNotFoundError):
        hub.hf_hub_download("org/small", "config.json", revision="v9", **kw)
    with pytest.raises(RevisionNotFoundError):
        hub.snapshot_download("org/small", revision="f" * 40, **kw)
    with pytest.raises(EntryNotFoundError) as info:
        hub.hf_hub_download("org/small", "missing.json", **kw)
    assert isinstance(info.value, RemoteEntryNotFoundError)
    # X-Repo-Commit on the 404 lets the client remember the absence (.no_exist), as the Hub does.
    assert (tmp_path / "models--org--small" / ".no_exist" / commit / "missing.json").exists()


def test_api_model_info_tree_refs(hub, small_mirror) -> None:
    server, src, commit = small_mirror
    api = hub.HfApi(endpoint=server.url, token=False)
    info = api.model_info("org/small", files_metadata=True)
    assert info.sha == commit
    sizes = {s.rfilename: s.size for s in info.siblings}
    assert sizes == {p: (src / p).stat().st_size for p in digests(src)}
    weights = next(s for s in info.siblings if s.rfilename == "sub/dir/weights.bin")
    assert weights.lfs.sha256 == sha256_of(src / "sub/dir/weights.bin")
    top = {e.path: type(e).__name__ for e in api.list_repo_tree("org/small")}
    assert top == {"config.json": "RepoFile", "empty.txt": "RepoFile", "sub": "RepoFolder", WEIRD_NAME: "RepoFile"}
    nested = [e.path for e in api.list_repo_tree("org/small", path_in_repo="sub/dir")]
    assert nested == ["sub/dir/weights.bin"]
    refs = api.list_repo_refs("org/small")
    assert [(b.name, b.target_commit) for b in refs.branches] == [("main", commit)]


def test_no_xet_is_ever_advertised(small_mirror) -> None:
    server, _src, commit = small_mirror
    status, headers, _ = raw_request(server.url, b"/org/small/resolve/main/sub/dir/weights.bin", b"HEAD")
    assert status == 200 and headers["x-repo-commit"] == commit
    assert not [h for h in headers if h.startswith("x-xet")] and "link" not in headers
    assert "content-encoding" not in headers
    _, _, body = raw_request(server.url, f"/api/models/org/small/tree/{commit}?recursive=True".encode())
    assert b"xetHash" not in body and json.loads(body)


@pytest.mark.parametrize(("header", "status", "start", "end"), [
    ("bytes=100-199", 206, 100, 199),
    ("bytes=299990-", 206, 299990, 299999),
    ("bytes=-10", 206, 299990, 299999),
    ("bytes=0-", 206, 0, 299999),
    ("bytes=299000-999999", 206, 299000, 299999),
    ("bytes=5-2", 200, 0, 299999),          # malformed: ignored, whole file
    ("items=0-5", 200, 0, 299999),          # other unit: ignored
])
def test_range_returns_the_right_slice(small_mirror, header: str, status: int, start: int, end: int) -> None:
    server, _src, _commit = small_mirror
    got, headers, body = raw_request(server.url, b"/org/small/resolve/main/sub/dir/weights.bin",
                                     headers={"Range": header})
    assert got == status
    assert body == pseudo_random_bytes(300_000)[start:end + 1]
    assert int(headers["content-length"]) == end - start + 1
    if status == 206:
        assert headers["content-range"] == f"bytes {start}-{end}/300000"


@pytest.mark.parametrize("header", ["bytes=300000-", "bytes=400000-400010", "bytes=-0"])
def test_unsatisfiable_range_is_416(small_mirror, header: str) -> None:
    server, _src, _commit = small_mirror
    status, headers, body = raw_request(server.url, b"/org/small/resolve/main/sub/dir/weights.bin",
                                        headers={"Range": header})
    assert status == 416 and headers["content-range"] == "bytes */300000"
    assert "error" in json.loads(body)


def test_token_required_when_set(hub, small_root, tmp_path: Path) -> None:
    from huggingface_hub.errors import RepositoryNotFoundError

    root, src, _commit = small_root
    with MirrorServer(root, token="s3cret-token") as server:
        for token in (False, "wrong-token"):
            with pytest.raises(RepositoryNotFoundError) as info:
                hub.hf_hub_download("org/small", "config.json", endpoint=server.url, cache_dir=tmp_path / "a",
                                    token=token)
            assert info.value.response.status_code == 401
        status, headers, body = raw_request(server.url, b"/api/models/org/small")
        assert status == 401 and headers["x-error-code"] == "RepoNotFound" and "error" in json.loads(body)
        got = hub.hf_hub_download("org/small", "config.json", endpoint=server.url, cache_dir=tmp_path / "b",
                                  token="s3cret-token")
        assert Path(got).read_bytes() == (src / "config.json").read_bytes()


TRANSFORMERS_SCRIPT = r"""
import json, sys, torch
from transformers import AutoConfig, AutoModelForSequenceClassification, AutoTokenizer
repo, src = sys.argv[1], sys.argv[2]
texts = ["Bitcoin hits a record high", "markets fall on weak guidance"]
cfg = AutoConfig.from_pretrained(repo)
tok = AutoTokenizer.from_pretrained(repo)
model = AutoModelForSequenceClassification.from_pretrained(repo).eval()
ref_tok = AutoTokenizer.from_pretrained(src)
ref = AutoModelForSequenceClassification.from_pretrained(src).eval()
enc, ref_enc = tok(texts, padding=True, return_tensors="pt"), ref_tok(texts, padding=True, return_tensors="pt")
with torch.no_grad():
    a, b = model(**enc).logits, ref(**ref_enc).logits
print(json.dumps({"labels": cfg.id2label, "ids": enc["input_ids"].tolist(), "ref_ids": ref_enc["input_ids"].tolist(),
                  "shape": list(a.shape), "max_diff": float((a - b).abs().max())}))
"""


@pytest.mark.ml_models
@pytest.mark.slow  # a transformers subprocess, ~15 s on 2 cores
def test_transformers_auto_classes_through_the_mirror(bert_mirror, tmp_path: Path) -> None:
    server, src, commit = bert_mirror
    server.stats.reset()
    proc = subprocess.run([sys.executable, "-c", TRANSFORMERS_SCRIPT, REPO, str(src)],
                          env=hf_env(server.url, tmp_path), capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stderr[-3000:]
    out = json.loads(proc.stdout.strip().splitlines()[-1])
    assert out["labels"] == {"0": "negative", "1": "neutral", "2": "positive"}
    assert out["ids"] == out["ref_ids"] and out["shape"] == [2, 3] and out["max_diff"] == 0.0
    snap = tmp_path / "hub" / "models--org--tinybert" / "snapshots" / commit
    got = digests(snap)
    assert {"config.json", "model.safetensors", "tokenizer.json", "tokenizer_config.json"} <= set(got)
    want = digests(src)
    assert {p: got[p] for p in got} == {p: want[p] for p in got}
    # transformers' probes for optional files got EntryNotFound (no 5xx, no other error).
    assert all(s in (200, 404) for _m, _p, s in server.stats.requests), server.stats.requests
    assert server.stats[f"{REPO}/model.safetensors"].full_gets == 1
    assert os.environ.get("HF_ENDPOINT") != server.url  # the subprocess env did not leak into ours


def test_pull_request_revision_travels_percent_encoded(hub, small_root, tmp_path: Path) -> None:
    """``refs/pr/1`` arrives as ``refs%2Fpr%2F1``: split the raw path first, then decode (as huggingface_hub quotes it)."""
    from smart_model_manager.store.cache import import_folder

    _root, src, main_commit = small_root
    root = tmp_path / "root"
    import_folder(src, root, "org/pr")
    changed = tmp_path / "changed"
    changed.mkdir()
    (changed / "config.json").write_text('{"hidden_size": 16}')
    pr_commit = import_folder(changed, root, "org/pr", revision="refs/pr/1").commit
    assert pr_commit != main_commit
    with MirrorServer(root) as server:
        path = Path(hub.snapshot_download("org/pr", revision="refs/pr/1", endpoint=server.url,
                                          cache_dir=tmp_path / "c", token=False))
        assert path.name == pr_commit and digests(path) == digests(changed)
        assert "/api/models/org/pr/revision/refs%2Fpr%2F1" in [p for _m, p, _s in server.stats.requests]
        refs = hub.HfApi(endpoint=server.url, token=False).list_repo_refs("org/pr", include_pull_requests=True)
        assert [(r.ref, r.target_commit) for r in refs.pull_requests] == [("refs/pr/1", pr_commit)]
        assert [(r.name, r.target_commit) for r in refs.branches] == [("main", main_commit)]


def test_serves_a_provisioned_volume_and_not_its_manifest(hub, small_root, tmp_path: Path) -> None:
    from _volumes import make_volume  # tests/_volumes.py, the shared volume builder

    _root, src, commit = small_root
    volume = tmp_path / "volume"
    make_volume(volume, {"org/vol": src})
    assert (volume / "model-metadata.yaml").is_file()
    with MirrorServer(volume) as server:
        path = Path(hub.snapshot_download("org/vol", endpoint=server.url, cache_dir=tmp_path / "c", token=False))
        assert path.name == commit and digests(path) == digests(src)
        status, _h, _b = raw_request(server.url, b"/model-metadata.yaml")
        assert status == 404


@pytest.mark.ml_models  # the fixture builds a torch model
def test_a_client_cache_filled_from_the_mirror_can_itself_be_served(hub, bert_mirror, tmp_path: Path) -> None:
    """Mirror of a mirror: the client's cache (with trees/, .no_exist/, .locks) is a valid root as is."""
    from huggingface_hub.errors import EntryNotFoundError

    server, src, commit = bert_mirror
    first = tmp_path / "first"
    hub.snapshot_download(REPO, endpoint=server.url, cache_dir=first, token=False)
    with pytest.raises(EntryNotFoundError):  # leaves a .no_exist marker in the cache we are about to serve
        hub.hf_hub_download(REPO, "absent.txt", endpoint=server.url, cache_dir=first, token=False)
    with MirrorServer(first) as second:
        path = Path(hub.snapshot_download(REPO, endpoint=second.url, cache_dir=tmp_path / "again", token=False))
        assert path.name == commit and digests(path) == digests(src)
