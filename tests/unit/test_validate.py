"""validate(): each finding kind for its own reason, quick vs full, and the `smm validate` CLI exit codes."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
from _model_folders import make_model_folder
from _volumes import lock_for, make_volume

from smart_model_manager.cli.main import main
from smart_model_manager.errors import ConfigurationError
from smart_model_manager.formats import lockfile, manifest
from smart_model_manager.ops import validate as validate_mod
from smart_model_manager.ops.validate import validate
from smart_model_manager.store import cache as store, layout as store_layout

pytestmark = pytest.mark.unit

A, B = "acme/sentiment-a", "acme/embed-b"
K3S_LOCK = Path(__file__).resolve().parents[2] / "deploy" / "k3s" / "base" / "models.lock"


@pytest.fixture
def vol(tmp_path: Path) -> Path:
    a = make_model_folder(tmp_path / "src-a", {"model.safetensors": os.urandom(4096), "vocab.txt": b"[PAD]\nhi\n",
                                               "onnx/model.onnx": os.urandom(2048)})
    b = make_model_folder(tmp_path / "src-b", {"model.safetensors": os.urandom(3000)}, labels=())
    make_volume(tmp_path / "vol", {A: a, B: b}, model_type={A: "sentiment", B: "embeddings"})
    return tmp_path / "vol"


def snap_file(root: Path, repo_id: str, rel: str) -> Path:
    man = manifest.load(root / manifest.MANIFEST_NAME)
    return store_layout.repo_dir(root, repo_id) / "snapshots" / man.models[repo_id].latest().commit / rel


def flip_byte(path: Path, offset: int = 100) -> None:
    with open(os.path.realpath(path), "r+b") as fh:
        fh.seek(offset)
        b = fh.read(1)
        fh.seek(offset)
        fh.write(bytes([b[0] ^ 0xFF]))


def kinds(report) -> list[str]:
    return [f.kind for f in report.findings]


def test_a_clean_volume_passes_quick_and_full_with_and_without_lock(vol: Path, tmp_path: Path) -> None:
    lock_for(manifest.load(vol / manifest.MANIFEST_NAME), tmp_path / "models.lock")
    for mode in ("quick", "full"):
        for lock in (None, tmp_path / "models.lock"):
            r = validate(vol, lock=lock, mode=mode)
            assert r.ok and r.findings == (), r.findings
            assert (r.models_checked, r.files_checked) == (2, 6)
            assert r.manifest == str(vol / manifest.MANIFEST_NAME)


def test_missing_file_and_dangling_link_and_missing_snapshot(vol: Path) -> None:
    os.unlink(snap_file(vol, A, "vocab.txt"))
    os.unlink(os.path.realpath(snap_file(vol, B, "model.safetensors")))  # the blob: the link now dangles
    r = validate(vol)
    by_file = {Path(f.file).name: f for f in r.findings}
    assert kinds(r) == ["missing", "missing"]
    assert "is absent" in by_file["vocab.txt"].message and by_file["vocab.txt"].model == A
    assert "link to a missing blob" in by_file["model.safetensors"].message

    import shutil
    shutil.rmtree(snap_file(vol, A, ""))
    r = validate(vol)
    snap = [f for f in r.findings if f.model == A]
    assert [f.kind for f in snap] == ["missing"] and "snapshot" in snap[0].message


def test_wrong_size_is_corrupt_even_in_quick_mode(vol: Path) -> None:
    with open(os.path.realpath(snap_file(vol, B, "model.safetensors")), "ab") as fh:
        fh.write(b"tail")
    r = validate(vol, mode="quick")
    assert kinds(r) == ["corrupt"]
    assert (r.findings[0].expected, r.findings[0].actual) == ("3000 bytes", "3004 bytes")
    assert r.findings[0].file.endswith("model.safetensors")


def test_flipped_byte_found_by_full_only_and_names_the_file(vol: Path, capsys: pytest.CaptureFixture[str]) -> None:
    target = snap_file(vol, A, "onnx/model.onnx")  # exported files are listed and hashed like any other
    flip_byte(target)
    assert validate(vol, mode="quick").ok  # same size: quick cannot know, by design
    r = validate(vol, mode="full")
    assert kinds(r) == ["corrupt"]
    f = r.findings[0]
    assert f.file == str(target) and f.model == A
    assert f.expected == manifest.load(vol / manifest.MANIFEST_NAME).models[A].latest().files["onnx/model.onnx"].sha256
    assert f.actual is not None and f.actual.startswith("sha256:") and f.actual != f.expected

    assert main(["validate", "--full", "--dir", str(vol)]) == 1
    out = capsys.readouterr().out
    line = next(ln for ln in out.splitlines() if ln.startswith("corrupt"))
    assert str(target) in line and f.expected in line and f.actual in line


def test_quick_never_hashes_and_full_hashes_each_blob_once(vol: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    calls: list[str] = []

    def counting_sha256(path: str) -> str:
        calls.append(path)
        from smart_model_manager.store.hashing import sha256_file
        return sha256_file(path)

    monkeypatch.setattr(validate_mod, "sha256_file", counting_sha256)
    assert validate(vol, mode="quick").ok and calls == []
    assert validate(vol, mode="full").ok
    assert len(calls) == len(set(calls)) == 6  # six listed files, each read exactly once


def test_lock_with_another_commit_or_other_files_is_stale(vol: Path, tmp_path: Path) -> None:
    man = manifest.load(vol / manifest.MANIFEST_NAME)
    lock = lock_for(man)
    a = lock.models["sentiment-a"]
    changed = dict(a.files)
    changed["vocab.txt"] = manifest.FileEntry(size=99, sha256="sha256:" + "0" * 64)
    other = lockfile.Lock(models={
        "sentiment-a": lockfile.LockEntry(**{**a.__dict__, "files": changed}),
        "embed-b": lockfile.LockEntry(**{**lock.models["embed-b"].__dict__, "commit": "f" * 40})})
    r = validate(vol, lock=other)
    assert kinds(r) == ["stale", "stale"]
    by_model = {f.model: f for f in r.findings}
    assert (by_model[B].expected, by_model[B].actual) == ("f" * 40, man.models[B].latest().commit)
    assert "vocab.txt" in by_model[A].message and by_model[A].expected.startswith("99 bytes")


def test_contents_not_the_lock_file_bytes_decide(tmp_path: Path) -> None:
    # A volume provisioned by another lock file (format 2 keeps several) validates against any lock whose
    # pins are all recorded: a relock that only reorders or comments changes the digest, not the model.
    a = make_model_folder(tmp_path / "a")
    man = make_volume(tmp_path / "v", {A: a}, lock_digest="sha256:" + "1" * 64)
    lock = lock_for(man, tmp_path / "models.lock")
    assert lock.digest != man.lock_digest
    r = validate(tmp_path / "v", lock=lock)
    assert r.ok and r.findings == ()


def test_locked_model_absent_from_the_volume_is_missing(vol: Path, tmp_path: Path) -> None:
    c = make_model_folder(tmp_path / "src-c")
    man_c = make_volume(tmp_path / "other", {"acme/c": c})
    lock = lock_for(manifest.Manifest(models={**manifest.load(vol / manifest.MANIFEST_NAME).models,
                                              **man_c.models}))
    r = validate(vol, lock=lock)
    assert kinds(r) == ["missing"] and r.findings[0].model == "acme/c" and "not on the volume" in r.findings[0].message


def test_unlisted_file_snapshot_and_model_are_extra(vol: Path, tmp_path: Path) -> None:
    (snap_file(vol, A, "notes.txt")).write_text("left behind")
    old = store.import_folder(make_model_folder(tmp_path / "old-a", {"model.safetensors": b"old"}), vol, A,
                              revision="v0")
    store.import_folder(make_model_folder(tmp_path / "z"), vol, "acme/unlisted")
    r = validate(vol)
    assert kinds(r) == ["extra", "extra", "extra"]
    severity = {Path(f.file).name: f.severity for f in r.findings}
    # a stray file inside the listed snapshot could be loaded: an error; leftovers beside it are warnings
    assert severity == {"notes.txt": "error", old.commit: "warning", "models--acme--unlisted": "warning"}
    assert not r.ok
    (snap_file(vol, A, "notes.txt")).unlink()
    r = validate(vol)
    assert r.ok and len(r.warnings) == 2 and r.errors == ()


def test_leftovers_from_an_older_lock_warn_and_fail_only_with_strict(vol: Path, tmp_path: Path,
                                                                     capsys: pytest.CaptureFixture[str]) -> None:
    """Re-provisioning from a new lock leaves the old snapshot and the dropped model behind."""
    man = manifest.load(vol / manifest.MANIFEST_NAME)
    store.import_folder(make_model_folder(tmp_path / "a-v0", {"model.safetensors": b"v0"}), vol, A, revision="v0")
    lock_for(manifest.Manifest(models={A: man.models[A]}), tmp_path / "models.lock")  # B dropped from the lock
    r = validate(vol, lock=tmp_path / "models.lock")
    assert r.ok and sorted((f.kind, f.model) for f in r.warnings) == [("extra", A), ("stale", B)]
    assert main(["validate", "--dir", str(vol)]) == 0
    assert capsys.readouterr().out.startswith("OK with 2 warning(s):")
    assert main(["validate", "--dir", str(vol), "--strict"]) == 1
    assert "stale (warning)" in capsys.readouterr().out


def test_malformed_manifest_is_reported_with_file_and_line(vol: Path, capsys: pytest.CaptureFixture[str]) -> None:
    path = vol / manifest.MANIFEST_NAME
    lines = path.read_text().splitlines()
    n = next(i for i, ln in enumerate(lines) if ln.strip().startswith("model_type:"))
    lines[n] = lines[n].split(":")[0] + ": 5"
    path.write_text("\n".join(lines) + "\n")
    r = validate(vol)
    assert kinds(r) == ["malformed"]
    assert (r.findings[0].file, r.findings[0].line) == (str(path), n + 1)
    assert "model_type" in r.findings[0].message
    assert main(["validate", "--dir", str(vol)]) == 1
    assert f"{path}:{n + 1}:" in capsys.readouterr().out


def test_malformed_lock_is_a_finding_not_a_crash(vol: Path, tmp_path: Path) -> None:
    bad = tmp_path / "models.lock"
    bad.write_text("version: 1\nmodels:\n  a: [1, 2\n")
    r = validate(vol, lock=bad)
    assert kinds(r) == ["malformed"] and r.findings[0].file == str(bad) and r.findings[0].line == 4


def test_cache_against_lock_and_cache_structure(tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                                                capsys: pytest.CaptureFixture[str]) -> None:
    cache = Path(os.environ["MODEL_CACHE_DIR"])
    man = make_volume(cache, {A: make_model_folder(tmp_path / "a")}, write_manifest=False)
    lock_for(man, tmp_path / "models.lock")  # tmp_path is the cwd: found as ./models.lock
    assert main(["validate", "--cache"]) == 0
    assert "against models.lock" in capsys.readouterr().out
    flip_byte(snap_file_from(cache, A, man.models[A].latest().commit, "model.safetensors"))
    assert main(["validate", "--cache", "--full"]) == 1
    assert main(["validate", "--cache", "--full", "--no-lock"]) == 1  # structure: blob name is its sha256
    # a ref to a snapshot that is not there
    (store_layout.repo_dir(cache, A) / "refs" / "dev").write_text("e" * 40)
    r = validate(cache)
    assert kinds(r) == ["missing"] and r.findings[0].expected == "e" * 40


def snap_file_from(root: Path, repo_id: str, commit: str, rel: str) -> Path:
    return store_layout.repo_dir(root, repo_id) / "snapshots" / commit / rel


def test_default_dir_is_the_volume_and_it_must_have_a_manifest(tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                                                               capsys: pytest.CaptureFixture[str]) -> None:
    v = tmp_path / "v"
    make_volume(v, {A: make_model_folder(tmp_path / "a")})
    monkeypatch.setenv("SMM_VOLUME_DIR", str(v))
    assert main(["validate", "--quick"]) == 0
    (v / manifest.MANIFEST_NAME).unlink()
    assert main(["validate", "--quick"]) == 1
    assert "provision" in capsys.readouterr().out
    # --dir naming SMM_VOLUME_DIR (the startup probe's form) also insists on the manifest, even when every
    # locked file is present: the manifest is written last, so without it provisioning did not finish
    lock_for(manifest.Manifest(models=make_volume(tmp_path / "w", {A: make_model_folder(tmp_path / "a")},
                                                  write_manifest=False).models), tmp_path / "models.lock")
    assert validate(v, lock=tmp_path / "models.lock").ok  # as a plain folder: the files are all there
    assert main(["validate", "--quick", "--dir", str(v)]) == 1
    assert main(["validate", "--quick", "--dir", str(v) + "/"]) == 1
    # --dir on a folder with neither manifest nor lock: nothing to check is a finding, not a pass
    empty = tmp_path / "empty"
    empty.mkdir()
    assert kinds(validate(empty)) == ["missing"]


def test_cli_exit_codes_and_json(vol: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["validate", "--dir", str(vol), "--json"]) == 0
    doc = json.loads(capsys.readouterr().out)
    assert doc["ok"] is True and doc["models_checked"] == 2 and doc["counts"]["corrupt"] == 0
    flip_byte(snap_file(vol, B, "model.safetensors"))
    assert main(["validate", "--dir", str(vol), "--full", "--json"]) == 1
    doc = json.loads(capsys.readouterr().out)
    assert doc["ok"] is False and [f["kind"] for f in doc["findings"]] == ["corrupt"]
    assert main(["validate", "--quick", "--full"]) == 2
    assert main(["validate", "--cache", "--dir", str(vol)]) == 2
    assert main(["validate", "--dir", str(vol), "--lock", str(vol / "no-such.lock")]) == 2
    with pytest.raises(ConfigurationError):
        validate(vol, mode="thorough")


def test_validate_writes_nothing(vol: Path) -> None:
    def tree() -> dict[str, tuple[int, int]]:
        return {str(p): (p.lstat().st_mtime_ns, p.lstat().st_size) for p in vol.rglob("*")}
    before = tree()
    validate(vol, mode="full")
    assert tree() == before


def test_the_validate_command_imports_nothing_heavy(vol: Path) -> None:
    code = ("import sys; from smart_model_manager.cli.main import main; rc = main(['validate', '--dir', sys.argv[1]]);"
            "heavy = sorted({m.split('.')[0] for m in sys.modules} & {'huggingface_hub', 'rich', 'torch', "
            "'transformers', 'numpy', 'onnxruntime', 'fastapi', 'requests', 'httpx'}); print(rc, heavy)")
    out = subprocess.run([sys.executable, "-c", code, str(vol)], capture_output=True, text=True, check=True)
    assert out.stdout.strip().splitlines()[-1] == "0 []"


def test_a_directory_link_cycle_in_a_snapshot_terminates_as_an_extra_error(vol: Path) -> None:
    os.symlink(".", snap_file(vol, A, "loop"))
    r = validate(vol)
    assert not r.ok and [(f.kind, Path(f.file).name) for f in r.errors] == [("extra", "loop")]


def test_validate_says_which_lock_it_uses_and_where_it_came_from(tmp_path: Path, capsys,
                                                                 monkeypatch: pytest.MonkeyPatch) -> None:
    folder = tmp_path / "new-models"
    folder.mkdir()
    main(["validate", "--dir", str(folder)])
    assert "lock: none (no --lock, no SMM_LOCK, no models.lock in the working directory" in capsys.readouterr().err
    shutil.copy(K3S_LOCK, tmp_path / "models.lock")  # conftest chdirs into tmp_path: a stray lock in the cwd
    main(["validate", "--dir", str(folder)])
    err = capsys.readouterr().err
    assert f"lock: models.lock (found in the working directory {tmp_path}; --lock FILE or --no-lock" in err, err
    main(["validate", "--dir", str(folder), "--no-lock"])
    assert "lock: none (--no-lock" in capsys.readouterr().err
    monkeypatch.setenv("SMM_LOCK", str(K3S_LOCK))
    main(["validate", "--dir", str(folder), "--json"])
    captured = capsys.readouterr()
    report = json.loads(captured.out)
    assert (report["lock"], report["lock_from"]) == (str(K3S_LOCK), "from SMM_LOCK") and captured.err == ""
    main(["validate", "--dir", str(folder), "--lock", str(tmp_path / "models.lock")])
    assert f"lock: {tmp_path / 'models.lock'} (from --lock)" in capsys.readouterr().err
