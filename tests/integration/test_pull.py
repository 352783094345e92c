"""`pull` / `smm pull` / `smm import` in-process against a real mirror: provisioning, pre-flight checks
(space, writability) before any download, integrity failures that leave no manifest, repairs, imports."""

from __future__ import annotations

import errno
import hashlib
import shutil
from collections import namedtuple
from pathlib import Path

import pytest

from smart_model_manager.cli.main import main
from smart_model_manager.formats import lockfile, manifest
from smart_model_manager.formats.spec import loads as load_spec
from smart_model_manager.mirror import MirrorServer
from smart_model_manager.ops.lock import resolve_lock
from smart_model_manager.ops.pull import provision_from_folder, pull
from smart_model_manager.sources.base import Request, Unavailable
from smart_model_manager.sources.volume import VolumeSource

try:
    from ._artifacts_fixtures import hub_like_root, make_sentiment_folder, smm_env
except ImportError:
    from _artifacts_fixtures import hub_like_root, make_sentiment_folder, smm_env

pytestmark = pytest.mark.integration

SPEC = "models:\n  fin:\n    repo_id: org/fin\n    model_type: sentiment\n"


@pytest.fixture
def upstream(tmp_path: Path):  # type: ignore[no-untyped-def]
    root = tmp_path / "upstream"
    src = make_sentiment_folder(tmp_path / "src", weights=400_000)
    commit = hub_like_root(src, root, "org/fin")
    with MirrorServer(root) as mirror:
        lock = resolve_lock(load_spec(SPEC, "models.yaml"), mirror.url, timeout=10, retries=0)
        path = tmp_path / "models.lock"
        lockfile.write_lock(path, lock)
        mirror.stats.reset()
        yield mirror, root, src, commit, lockfile.load(path)


def full_check(volume: Path, name: str = "fin") -> None:
    VolumeSource(volume).resolve(Request(name, "org/fin", None, "sentiment", verify="full"))


def test_pull_target_provisions_a_verified_volume_with_the_manifest_last(upstream, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    mirror, _root, src, commit, lock = upstream
    vol = tmp_path / "vol"
    report = pull(lock, target=vol, endpoint=mirror.url, timeout=10, retries=0)
    assert report.is_volume and report.files_downloaded == 4 and report.bytes_downloaded == report.needed_bytes
    man = manifest.load(vol / "model-metadata.yaml")
    record = man.find("fin")  # the alias is recorded
    assert record is not None and list(record.commits) == [commit]
    entry = record.get(commit)
    assert entry is not None and entry.commit == commit and entry.files == lock.models["fin"].files
    assert man.lock_digest == lock.digest and man.generated_by.startswith("smart-model-manager ")
    assert entry.labels == ("negative", "neutral", "positive")
    full_check(vol)
    # a second pull downloads nothing and rewrites the manifest with the same models
    again = pull(lock, target=vol, endpoint=mirror.url, timeout=10, retries=0)
    assert again.files_downloaded == 0 and again.needed_bytes == 0
    assert all(s.full_gets == 1 for s in mirror.stats.files().values())


def test_pull_repairs_a_corrupt_local_blob(upstream, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    mirror, _root, src, commit, lock = upstream
    vol = tmp_path / "vol"
    pull(lock, target=vol, endpoint=mirror.url, timeout=10, retries=0)
    target = (vol / "models--org--fin" / "snapshots" / commit / "model.safetensors").resolve()
    target.write_bytes(b"\0" * target.stat().st_size)  # bit rot, same size
    report = pull(lock, target=vol, endpoint=mirror.url, timeout=10, retries=0)
    assert report.models[0].repaired == ("model.safetensors",)
    full_check(vol)


def test_tampered_upstream_fails_and_leaves_no_manifest(upstream, tmp_path: Path, capsys) -> None:  # type: ignore[no-untyped-def]
    mirror, root, src, commit, lock = upstream
    sha = lock.models["fin"].files["model.safetensors"].sha256.removeprefix("sha256:")
    blob = root / "models--org--fin" / "blobs" / sha
    blob.write_bytes(blob.read_bytes()[::-1])
    vol = tmp_path / "vol"
    assert main(["pull", "--lock", str(lock.path), "--target", str(vol), "--endpoint", mirror.url, "--no-progress"]) == 1
    err = capsys.readouterr().err
    assert "integrity error" in err and "model.safetensors" in err and f"expected sha256:{sha}" in err
    assert not (vol / "model-metadata.yaml").exists()
    assert not (vol / "models--org--fin" / "snapshots").exists()
    assert not (vol / ".staging").exists()  # no bookkeeping folder left, on failure either
    with pytest.raises(Unavailable):
        full_check(vol)


def test_not_enough_space_fails_before_any_download(upstream, tmp_path: Path, monkeypatch) -> None:  # type: ignore[no-untyped-def]
    mirror, *_ , lock = upstream
    Usage = namedtuple("Usage", "total used free")
    monkeypatch.setattr(shutil, "disk_usage", lambda p: Usage(10**9, 10**9 - 1000, 1000))
    with pytest.raises(OSError) as exc:
        pull(lock, target=tmp_path / "vol", endpoint=mirror.url, timeout=10, retries=0)
    assert exc.value.errno == errno.ENOSPC
    assert "only 0.0 MB is free; short by" in str(exc.value) and str(tmp_path / "vol") in str(exc.value)
    assert mirror.stats.files() == {}


def test_unwritable_target_fails_before_any_download(upstream, tmp_path: Path, capsys) -> None:  # type: ignore[no-untyped-def]
    mirror, *_ , lock = upstream
    blocker = tmp_path / "a-file"
    blocker.write_text("not a folder")
    target = blocker / "vol"
    assert main(["pull", "--lock", str(lock.path), "--target", str(target), "--endpoint", mirror.url]) == 1
    err = capsys.readouterr().err
    assert f"target {target} is not writable" in err
    assert mirror.stats.files() == {}


def test_pull_into_the_cache_then_load_path_finds_it(upstream, tmp_path: Path, monkeypatch, capsys) -> None:  # type: ignore[no-untyped-def]
    mirror, _root, src, commit, lock = upstream
    for k, v in smm_env(mirror.url, MODEL_CACHE_DIR=str(tmp_path / "cache")).items():
        if k.startswith(("HF_", "SMM_", "MODEL_")):
            monkeypatch.setenv(k, v)
    assert main(["pull", "--lock", str(lock.path), "--no-progress"]) == 0
    assert "1 model(s) verified in cache" in capsys.readouterr().out
    snap = tmp_path / "cache" / "models--org--fin" / "snapshots" / commit
    assert sorted(p.name for p in snap.iterdir()) == sorted(lock.models["fin"].files)
    assert not (tmp_path / "cache" / "model-metadata.yaml").exists()


def test_import_into_a_volume_updates_the_manifest(tmp_path: Path, capsys) -> None:
    src = make_sentiment_folder(tmp_path / "src")
    vol = tmp_path / "vol"
    assert main(["import", str(src), "--as", "myorg/fin-tuned", "--target", str(vol), "--alias", "tuned"]) == 0
    assert "imported" in capsys.readouterr().out
    man = manifest.load(vol / "model-metadata.yaml")
    record = man.find("tuned")
    assert record is not None and len(record.commits) == 1
    entry = record.latest()
    assert entry.repo_id == "myorg/fin-tuned" and entry.labels[0] == "negative"
    for rel, f in entry.files.items():
        assert f.sha256 == "sha256:" + hashlib.sha256((src / rel).read_bytes()).hexdigest()
    resolved = VolumeSource(vol).resolve(Request("tuned", "tuned", None, "sentiment", verify="full"))
    assert resolved.commit == entry.commit
    # a second import of another model keeps the first one listed
    other = make_sentiment_folder(tmp_path / "other", seed=b"o")
    provision_from_folder(other, vol, "myorg/other", model_type="sentiment", write_manifest=True)
    assert sorted(manifest.load(vol / "model-metadata.yaml").models) == ["myorg/fin-tuned", "myorg/other"]


def test_import_of_a_sentiment_folder_without_labels_is_refused(tmp_path: Path, capsys) -> None:
    src = make_sentiment_folder(tmp_path / "src")
    (src / "config.json").write_text('{"hidden_size": 8}')
    assert main(["import", str(src), "--as", "org/x", "--target", str(tmp_path / "vol")]) == 2
    assert "has no id2label" in capsys.readouterr().err
    assert not (tmp_path / "vol").exists()  # refused before anything was written


@pytest.mark.parametrize("bad", ["not a repo", "org/x/y", "org--x", "org/x.git", "org/x\n"])
def test_import_under_an_invalid_repo_id_is_refused(tmp_path: Path, capsys, bad: str) -> None:
    """One repo-id rule (_layout.is_repo_id): what models.yaml rejects, `smm import --as` rejects too."""
    src = make_sentiment_folder(tmp_path / "src")
    assert main(["import", str(src), "--as", bad, "--target", str(tmp_path / "vol")]) == 2
    assert "is not a valid repo id" in capsys.readouterr().err
    assert not (tmp_path / "vol").exists()  # refused before anything was written


def test_token_protected_mirror_needs_hf_token(tmp_path: Path) -> None:
    root = tmp_path / "upstream"
    hub_like_root(make_sentiment_folder(tmp_path / "src"), root, "org/fin")
    with MirrorServer(root, token="s3cret") as mirror:
        spec_ = load_spec(SPEC, "models.yaml")
        with pytest.raises(Exception, match=r"org/fin@main cannot be locked: .*set HF_TOKEN"):
            resolve_lock(spec_, mirror.url, None, timeout=10, retries=0)
        lock = resolve_lock(spec_, mirror.url, "s3cret", timeout=10, retries=0)
        report = pull(lock, target=tmp_path / "vol", endpoint=mirror.url, token="s3cret", timeout=10, retries=0)
        assert report.files_downloaded == 4
        assert not any(status == 401 for _m, path, status in mirror.stats.requests if "/resolve/" in path)
    full_check(tmp_path / "vol")


def test_leftovers_of_killed_writers_are_cleaned(upstream, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    mirror, _root, src, commit, lock = upstream
    vol = tmp_path / "vol"
    pull(lock, target=vol, endpoint=mirror.url, timeout=10, retries=0)
    rdir = vol / "models--org--fin"
    planted = [rdir / "refs" / ".tmp-main.dead", rdir / "blobs" / ".tmp-abc.dead.incomplete",
               rdir / "blobs" / ("f" * 40 + ".incomplete"), vol / ".tmp-model-metadata.yaml.dead"]
    for p in planted:
        p.write_bytes(b"half")
    (rdir / "snapshots" / commit / ".tmp-config.json.dead").symlink_to("../../blobs/nothing")
    (vol / ".staging" / "deadbeef").mkdir(parents=True)  # a dead writer left it (the base may be gone)
    (vol / ".staging" / "deadbeef" / "00000.incomplete").write_bytes(b"half")
    report = pull(lock, target=vol, endpoint=mirror.url, timeout=10, retries=0)
    assert report.stale_staging_removed == 1 and report.files_downloaded == 0
    assert [p for p in planted if p.exists()] == []
    assert sorted(p.name for p in (rdir / "snapshots" / commit).iterdir()) == sorted(lock.models["fin"].files)
    assert not (vol / ".staging").exists()
    full_check(vol)


def test_plain_progress_lines_when_not_a_terminal(upstream, tmp_path: Path, capsys) -> None:  # type: ignore[no-untyped-def]
    mirror, *_, lock = upstream
    assert main(["pull", "--lock", str(lock.path), "--cache-dir", str(tmp_path / "c"), "--endpoint", mirror.url]) == 0
    captured = capsys.readouterr()
    assert "downloading org/fin/model.safetensors (0.4 MB)" in captured.err
    assert "fetched org/fin/model.safetensors (0.4 MB)" in captured.err
    assert "downloading" not in captured.out  # stdout keeps only the summary


@pytest.mark.parametrize("command", ["lock", "pull", "import"])
def test_help_has_examples(command: str, capsys) -> None:  # type: ignore[no-untyped-def]
    assert main([command, "--help"]) == 0
    assert "Examples:" in capsys.readouterr().out


def test_usage_errors_exit_2(tmp_path: Path, capsys) -> None:  # type: ignore[no-untyped-def]
    assert main(["pull", "--target", str(tmp_path / "a"), "--cache-dir", str(tmp_path / "b")]) == 2
    assert main(["import", str(tmp_path), "--as", "org/x", "--target", "a", "--cache-dir", "b"]) == 2
    assert main(["pull", "--lock", str(tmp_path / "nope.lock"), "--cache-dir", str(tmp_path / "c")]) == 2
    assert "create it with `smm lock`" in capsys.readouterr().err
