"""`smm image build`: a verified volume packed into a reproducible OCI image layout (no daemon, no root).

Real parts: a mirror on 127.0.0.1, real locks, a real cache filled by `smm pull`; the layers are unpacked
with the stdlib tarfile and the result validated by the same `validate` the init container runs."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import tarfile
import time
from pathlib import Path

import pytest
from _image_fixtures import REPO_ID, TwoVersions, two_versions

from smart_model_manager.cli.main import main
from smart_model_manager.errors import IntegrityError, MissingFileError
from smart_model_manager.formats import lockfile
from smart_model_manager.formats.lockfile import Lock
from smart_model_manager.image.build import build_image, group
from smart_model_manager.image.layout import read_image
from smart_model_manager.ops.pull import pull
from smart_model_manager.ops.validate import validate
from smart_model_manager.remote.fake import FakeRemote, read_folder
from smart_model_manager.store.layout import repo_dir

pytestmark = [pytest.mark.integration, pytest.mark.timeout(240)]
ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture(scope="module")
def versions(tmp_path_factory: pytest.TempPathFactory) -> TwoVersions:
    return two_versions(tmp_path_factory.mktemp("image-src"))


def unpack(layout: Path, dest: Path) -> Path:
    """Apply the layers in order, as a container runtime does (no whiteouts in our images)."""
    img = read_image(layout)
    dest.mkdir(parents=True)
    for layer in img.layers:
        with tarfile.open(layout / "blobs" / "sha256" / layer["digest"][7:]) as tar:
            tar.extractall(dest, filter="tar")
    return dest


def tree(root: Path) -> dict[str, tuple[str, str]]:
    out = {}
    for p in sorted(root.rglob("*")):
        rel = p.relative_to(root).as_posix()
        if rel.startswith(".locks") or rel.startswith(".staging") or rel == "model-metadata.yaml":
            continue
        if p.is_symlink():
            out[rel] = ("link", os.readlink(p))
        elif p.is_file():
            out[rel] = ("file", p.read_bytes().hex()[:64] + str(p.stat().st_size))
        else:
            out[rel] = ("dir", "")
    return out


def test_build_is_reproducible_across_folders_times_and_processes(versions: TwoVersions, tmp_path: Path) -> None:
    lock = lockfile.load(versions.lock1)
    a = build_image(lock, versions.cache, tmp_path / "a" / "img", tag="v1")
    time.sleep(1.5)  # a later second: any time in any byte would show
    env = {**os.environ, "TZ": "Asia/Tokyo", "SOURCE_DATE_EPOCH": "1234567890"}
    out_b = tmp_path / "elsewhere" / "deeper" / "img"
    r = subprocess.run([sys.executable, "-c", "import os,sys; os.umask(0o077); from smart_model_manager.cli.main "
                        "import main; sys.exit(main(sys.argv[1:]))", "image", "build", "--lock", str(versions.lock1),
                        "--from", str(versions.cache), "--output", str(out_b), "--tag", "v1", "--json"],
                       cwd=tmp_path, env=env, capture_output=True, text=True, timeout=120)
    assert r.returncode == 0, r.stderr
    b = json.loads(r.stdout)
    assert b["digest"] == a.digest
    assert [la["digest"] for la in b["layers"]] == [la.digest for la in a.layers]
    assert (out_b / "index.json").read_bytes() == (a.path / "index.json").read_bytes()
    # one layer for the weights, one for the small files, one for the metadata
    assert len(a.layers) == 3 and "model.safetensors" in a.layers[0].holds
    assert not list(tmp_path.glob("a/.img*"))  # nothing left of the temp folder


def test_image_rootfs_is_the_volume_pull_writes(versions: TwoVersions, tmp_path: Path) -> None:
    lock = lockfile.load(versions.lock1)
    rep = build_image(lock, versions.cache, tmp_path / "img")
    rootfs = unpack(rep.path, tmp_path / "rootfs")
    vol = tmp_path / "vol"
    pull(lock, target=vol, endpoint="http://127.0.0.1:9", timeout=1, retries=0,
         client=_cache_copy(lock, versions.cache))
    assert tree(rootfs) == tree(vol)
    report = validate(rootfs, lock=lock, mode="full", require_manifest=True)
    assert report.ok, report.errors
    img = read_image(rep.path)
    ann = img.manifest["annotations"]
    assert ann["dev.smart-model-manager.lock.digest"] == lock.digest
    assert ann["dev.smart-model-manager.models"] == f"news={REPO_ID}@{lock.models['news'].commit}"
    assert img.config["config"]["Labels"] == ann and "created" not in img.config
    assert img.config["rootfs"]["diff_ids"] == [la["digest"] for la in img.layers]
    with tarfile.open(rep.path / "blobs" / "sha256" / rep.layers[0].digest[7:]) as tar:
        infos = tar.getmembers()
    assert {(i.uid, i.gid, i.uname, i.gname, i.mtime) for i in infos} == {(0, 0, "", "", 0)}
    assert [i.name for i in infos] == sorted(i.name for i in infos)


def _cache_copy(lock: Lock, cache: Path) -> FakeRemote:
    """A remote serving the verified cache's snapshots (pull re-verifies what it returns)."""
    remote = FakeRemote(endpoint="cache")
    for e in lock.models.values():
        remote.add(e.repo_id, read_folder(repo_dir(cache, e.repo_id) / "snapshots" / e.commit), commit=e.commit)
    return remote


def test_two_versions_share_every_unchanged_layer(versions: TwoVersions, tmp_path: Path) -> None:
    one = build_image(lockfile.load(versions.lock1), versions.cache, tmp_path / "v1")
    two = build_image(lockfile.load(versions.lock2), versions.cache, tmp_path / "v2")
    d1, d2 = {la.digest: la for la in one.layers}, {la.digest: la for la in two.layers}
    shared, new = set(d1) & set(d2), [d2[d] for d in d2 if d not in d1]
    # the small files (config, tokenizer, tf_model.h5) are byte-identical: their layer is shared
    assert shared == {one.layers[1].digest} and two.layers[1].digest == one.layers[1].digest
    assert sorted(la.holds for la in new) == ["news: model.safetensors", "snapshots, refs, model-metadata.yaml"]
    new_bytes = sum(la.size for la in new)
    assert 3 << 20 < new_bytes < (3 << 20) + 64 * 1024  # the changed weights plus a few KB of metadata
    print(f"v2 after v1: {new_bytes} new bytes of {two.size} ({len(new)} of {len(two.layers)} layers)")


def test_a_corrupt_file_is_never_packed(versions: TwoVersions, tmp_path: Path) -> None:
    import shutil

    cache = tmp_path / "cache"
    shutil.copytree(versions.cache, cache, symlinks=True)
    lock = lockfile.load(versions.lock1)
    blob = (repo_dir(cache, REPO_ID) / "snapshots" / lock.models["news"].commit / "model.safetensors").resolve()
    data = bytearray(blob.read_bytes())
    data[1000] ^= 1
    blob.write_bytes(bytes(data))
    with pytest.raises(IntegrityError) as info:
        build_image(lock, cache, tmp_path / "out")
    msg = str(info.value)
    assert "model.safetensors" in msg and lock.models["news"].files["model.safetensors"].sha256 in msg
    assert info.value.actual and info.value.actual in msg
    assert list(tmp_path.glob("*out*")) == []  # nothing written, not even a temp folder


def test_a_missing_file_is_refused_and_an_existing_image_is_kept(versions: TwoVersions, tmp_path: Path,
                                                                  capsys: pytest.CaptureFixture[str]) -> None:
    import shutil

    out = tmp_path / "out"
    good = build_image(lockfile.load(versions.lock1), versions.cache, out)
    before = sorted(p.relative_to(out) for p in out.rglob("*"))
    cache = tmp_path / "cache"
    shutil.copytree(versions.cache, cache, symlinks=True)
    lock = lockfile.load(versions.lock2)
    (repo_dir(cache, REPO_ID) / "snapshots" / lock.models["news"].commit / "vocab.txt").unlink()
    with pytest.raises(MissingFileError, match="news: vocab.txt"):
        build_image(lock, cache, out)
    assert sorted(p.relative_to(out) for p in out.rglob("*")) == before
    assert read_image(out).manifest_digest == good.digest
    code = main(["image", "build", "--lock", str(versions.lock2), "--from", str(cache), "--output", str(out)])
    err = capsys.readouterr().err.strip().splitlines()
    assert code == 1 and "vocab.txt" in err[0] and len(err) == 2  # one line + the SMM_DEBUG hint


def test_layer_grouping_stays_under_the_overlay_limit() -> None:
    from smart_model_manager.formats.lockfile import LockEntry
    from smart_model_manager.image.build import MAX_LAYERS, PlannedFile

    e = LockEntry("m", "org/m", "main", "a" * 40, "sentiment", {})
    files = [PlannedFile(e, f"shard-{i:03d}.bin", Path("x"), (2 << 20) + i, f"{i:064x}") for i in range(200)]
    files += [PlannedFile(e, f"small-{i}.json", Path("x"), 100, f"{i + 1000:064x}") for i in range(30)]
    own, grouped = group(files)
    assert len(own) == MAX_LAYERS - 2 and len(own) + 2 < 127
    assert min(f.size for f in own) > max(f.size for f in grouped if f.size > 1000)  # the biggest get own layers
    assert len(own) + len(grouped) == 230


def test_a_disk_too_small_is_refused_before_anything_is_written(versions: TwoVersions, tmp_path: Path,
                                                                 monkeypatch: pytest.MonkeyPatch) -> None:
    import shutil as shutil_mod
    from collections import namedtuple

    usage = namedtuple("usage", "total used free")
    monkeypatch.setattr(shutil_mod, "disk_usage", lambda p: usage(10 << 20, 9 << 20, 1 << 20))
    with pytest.raises(OSError, match="short by"):
        build_image(lockfile.load(versions.lock1), versions.cache, tmp_path / "out")
    assert list(tmp_path.iterdir()) == []


def test_a_disk_that_fills_while_packing_leaves_nothing(versions: TwoVersions, tmp_path: Path,
                                                        monkeypatch: pytest.MonkeyPatch) -> None:
    import errno

    from smart_model_manager.image import tarlayer

    real = tarlayer._HashingWriter.write
    written = [0]

    def full(self: object, b: bytes) -> int:
        written[0] += len(b)
        if written[0] > 1 << 20:
            raise OSError(errno.ENOSPC, "No space left on device")
        return real(self, b)

    monkeypatch.setattr(tarlayer._HashingWriter, "write", full)
    with pytest.raises(OSError, match="No space left"):
        build_image(lockfile.load(versions.lock1), versions.cache, tmp_path / "out")
    assert list(tmp_path.iterdir()) == []


def test_an_image_that_is_not_ours_or_not_this_lock_is_refused(versions: TwoVersions, tmp_path: Path,
                                                              capsys: pytest.CaptureFixture[str],
                                                              monkeypatch: pytest.MonkeyPatch) -> None:
    """What the init container sees at /app/models: another version's image, or a foreign image."""
    other = unpack(build_image(lockfile.load(versions.lock2), versions.cache, tmp_path / "img2").path,
                   tmp_path / "rootfs2")
    report = validate(other, lock=lockfile.load(versions.lock1), mode="quick", require_manifest=True)
    assert not report.ok and [f.kind for f in report.errors] == ["stale"]
    foreign = tmp_path / "foreign"
    (foreign / "etc").mkdir(parents=True)
    (foreign / "etc" / "os-release").write_text("ID=debian\n")
    monkeypatch.setenv("SMM_VOLUME_DIR", str(foreign))  # as in the pod: --dir /app/models = SMM_VOLUME_DIR
    code = main(["validate", "--dir", str(foreign), "--lock", str(versions.lock1)])
    out = capsys.readouterr().out
    assert code == 1 and out.startswith("FAILED") and "model-metadata.yaml" in out, out
