"""MirrorIndex over hand-built HF-cache folders, Range parsing and path checks (no server, no network)."""

from __future__ import annotations

import hashlib
import os
from pathlib import Path

import pytest

from smart_model_manager.errors import MirrorError
from smart_model_manager.mirror.index import BadPath, MirrorIndex, NotFound, check_rel_path, git_sha1_bytes
from smart_model_manager.mirror.server import parse_range

pytestmark = pytest.mark.unit

C1 = "1" * 40
C2 = "2" * 40


def _blob(repo: Path, data: bytes, name: str | None = None) -> str:
    name = name or hashlib.sha256(data).hexdigest()
    (repo / "blobs").mkdir(parents=True, exist_ok=True)
    (repo / "blobs" / name).write_bytes(data)
    return name


def _link(repo: Path, commit: str, rel: str, blob: str) -> None:
    dest = repo / "snapshots" / commit / rel
    dest.parent.mkdir(parents=True, exist_ok=True)
    dest.symlink_to(os.path.relpath(repo / "blobs" / blob, dest.parent))


@pytest.fixture
def root(tmp_path: Path) -> Path:
    """org/name with two commits (main -> C2, refs/pr/1 -> C1), a git-sha1 blob, a plain file, a dangling link."""
    repo = tmp_path / "models--org--name"
    big = _blob(repo, b"w" * 1000)
    _link(repo, C1, "model.bin", big)
    _link(repo, C2, "model.bin", big)
    small = b'{"a": 1}'
    sha1 = _blob(repo, small, git_sha1_bytes(small))
    _link(repo, C2, "config.json", sha1)
    (repo / "snapshots" / C2 / "docs").mkdir()
    (repo / "snapshots" / C2 / "docs" / "README.md").write_text("plain file, not a symlink\n")
    (repo / "snapshots" / C2 / "missing.bin").symlink_to("../../blobs/" + "0" * 64)  # partial snapshot
    (repo / "snapshots" / ".tmp-staging").mkdir()                                   # writer's temp dir
    (repo / "refs" / "refs" / "pr").mkdir(parents=True)
    (repo / "refs" / "main").write_text(C2)
    (repo / "refs" / "refs" / "pr" / "1").write_text(C1 + "\n")
    (repo / "refs" / ".tmp-main.abc").write_text(C1)
    return tmp_path


def test_revisions_resolve_to_snapshot_commits(root: Path) -> None:
    repo = MirrorIndex(root).repo("org/name")
    assert repo.commits() == [C1, C2]
    assert repo.refs() == {"main": C2, "refs/pr/1": C1}
    assert repo.resolve(None) == repo.resolve("main") == C2
    assert repo.resolve("refs/pr/1") == repo.resolve(C1) == C1
    for bad in ("v9", "3" * 40, "../main", "refs/../main"):
        with pytest.raises(NotFound) as info:
            repo.resolve(bad)
        assert info.value.code == "RevisionNotFound"


def test_single_snapshot_without_refs_is_main(tmp_path: Path) -> None:
    repo_dir = tmp_path / "models--solo"
    _link(repo_dir, C1, "a.txt", _blob(repo_dir, b"a"))
    assert MirrorIndex(tmp_path).repo("solo").resolve("main") == C1


def test_file_entries_use_blob_names_and_hash_plain_files(root: Path) -> None:
    repo = MirrorIndex(root).repo("org/name")
    files = {f.path: f for f in repo.files(C2)}
    assert sorted(files) == ["config.json", "docs/README.md", "model.bin"]  # dangling link skipped
    weights = files["model.bin"]
    assert weights.etag == weights.sha256 == hashlib.sha256(b"w" * 1000).hexdigest() and weights.size == 1000
    entry = weights.tree_entry()
    assert entry["lfs"] == {"oid": weights.sha256, "size": 1000, "pointerSize": 129}
    assert "xetHash" not in entry and entry["oid"] != weights.sha256
    config = files["config.json"]
    assert config.sha256 is None and config.etag == config.oid == git_sha1_bytes(b'{"a": 1}')
    assert "lfs" not in config.tree_entry()
    readme = files["docs/README.md"]
    assert readme.etag == hashlib.sha256(b"plain file, not a symlink\n").hexdigest()


def test_plain_file_is_rehashed_after_an_edit(root: Path) -> None:
    index = MirrorIndex(root)
    path = root / "models--org--name" / "snapshots" / C2 / "docs" / "README.md"
    before = index.repo("org/name").file(C2, "docs/README.md").etag
    path.write_text("edited, longer than before\n")
    after = index.repo("org/name").file(C2, "docs/README.md").etag
    assert before != after == hashlib.sha256(b"edited, longer than before\n").hexdigest()


def test_tree_listing_recursive_and_folders(root: Path) -> None:
    repo = MirrorIndex(root).repo("org/name")
    flat = [(e["type"], e["path"]) for e in repo.tree(C2)]
    assert flat == [("directory", "docs"), ("file", "config.json"), ("file", "model.bin")]
    deep = [e["path"] for e in repo.tree(C2, recursive=True)]
    assert deep == ["docs", "config.json", "docs/README.md", "model.bin"]
    assert [e["path"] for e in repo.tree(C2, "docs")] == ["docs/README.md"]
    with pytest.raises(NotFound) as info:
        repo.tree(C2, "nope")
    assert info.value.code == "EntryNotFound" and info.value.commit == C2


def test_missing_file_carries_the_commit(root: Path) -> None:
    repo = MirrorIndex(root).repo("org/name")
    for path in ("nope.txt", "missing.bin", "docs", "../refs/main"):
        with pytest.raises(NotFound) as info:
            repo.file(C2, path)
        assert info.value.code == "EntryNotFound" and info.value.commit == C2


def test_symlinked_folder_inside_the_repo_is_neither_listed_nor_served(root: Path) -> None:
    snap = root / "models--org--name" / "snapshots" / C2
    (snap / "alias").symlink_to("docs", target_is_directory=True)  # stays inside the repo folder
    repo = MirrorIndex(root).repo("org/name")
    assert "alias/README.md" not in {f.path for f in repo.files(C2)}
    assert repo.file(C2, "docs/README.md").size > 0
    with pytest.raises(NotFound):
        repo.file(C2, "alias/README.md")


def test_repo_lookup(root: Path) -> None:
    index = MirrorIndex(root)
    assert [r.repo_id for r in index.repos()] == ["org/name"]
    for bad in ("org/nope", "org--x/name", "../models--org--name", "a/b/c", "org/name.git", ""):
        with pytest.raises(NotFound) as info:
            index.repo(bad)
        assert info.value.code == "RepoNotFound"


def test_root_must_be_a_folder(tmp_path: Path) -> None:
    with pytest.raises(MirrorError, match="not a folder"):
        MirrorIndex(tmp_path / "absent")


@pytest.mark.parametrize(("header", "expected"), [
    (None, None), ("", None),
    ("bytes=0-9", (0, 9)), ("bytes=10-", (10, 99)), ("bytes=-5", (95, 99)), ("bytes=-500", (0, 99)),
    ("bytes=90-500", (90, 99)), ("BYTES = 1-2", (1, 2)),
    ("bytes=100-", "unsatisfiable"), ("bytes=-0", "unsatisfiable"),
    ("bytes=5-2", None), ("bytes=a-b", None), ("bytes=-", None), ("bytes=0-1,5-6", None), ("lines=0-1", None),
])
def test_parse_range(header: str | None, expected: object) -> None:
    assert parse_range(header, 100) == expected


def test_parse_range_empty_file() -> None:
    assert parse_range("bytes=0-", 0) == "unsatisfiable"
    assert parse_range("bytes=-1", 0) == "unsatisfiable"


@pytest.mark.parametrize("path", ["", "/etc/passwd", "a//b", "a/../b", "..", "./a", "a\\b", "a\0b", "C:x", "a/"])
def test_check_rel_path_rejects(path: str) -> None:
    with pytest.raises(BadPath):
        check_rel_path(path)


def test_check_rel_path_accepts_odd_but_safe_names() -> None:
    for path in ("with space+plus #1.txt", "a/b/c.bin", "..hidden", "x..y", "ünï/cödé"):
        assert check_rel_path(path) == path


def test_mirror_and_its_cli_import_nothing_heavy() -> None:
    """The mirror needs only the core install (no extra): no torch/numpy/huggingface_hub/fastapi/httpx."""
    import subprocess
    import sys

    code = ("import sys, smart_model_manager.mirror, smart_model_manager.cli.mirror; "
            "heavy = {'torch', 'transformers', 'onnxruntime', 'numpy', 'huggingface_hub', 'fastapi', 'uvicorn', "
            "'httpx'}; print(sorted(heavy & {m.split('.')[0] for m in sys.modules}))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60, check=True)
    assert out.stdout.strip() == "[]", out.stdout


def test_repo_ids_match_case_insensitively_like_the_hub(root: Path) -> None:
    index = MirrorIndex(root)
    repo = index.repo("ORG/Name")
    assert repo.repo_id == "org/name" and repo.resolve(None) == C2  # answered with the stored spelling
    assert index.has_repo("Org/NAME") and not index.has_repo("org/other")
