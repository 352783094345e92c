"""What a new user tripped over: each fixed behaviour, checked as the user meets it (CLI output, files)."""

from __future__ import annotations

import importlib.util
import json
import shutil
import sys
from pathlib import Path

import pytest

from smart_model_manager.cli.main import main

pytestmark = pytest.mark.unit

REPO = Path(__file__).resolve().parents[2]
K3S_LOCK = REPO / "deploy" / "k3s" / "base" / "models.lock"


@pytest.mark.parametrize("variable", ["HF_HUB_OFFLINE", "TRANSFORMERS_OFFLINE"])
def test_offline_pull_fails_before_any_download_and_names_the_variable(variable: str, tmp_path: Path, capsys,  # type: ignore[no-untyped-def]
                                                                      monkeypatch: pytest.MonkeyPatch) -> None:
    shutil.copy(K3S_LOCK, tmp_path / "models.lock")
    monkeypatch.setenv(variable, "1")
    assert main(["pull", "--lock", str(tmp_path / "models.lock")]) == 1
    err = capsys.readouterr().err
    assert "downloading" not in err, err
    assert f"{variable} is set: no download attempted" in err
    last = err.strip().splitlines()[-1]
    assert last.startswith("smm pull failed:") and f"Try: unset {variable}" in last, last


def test_offline_pull_with_everything_present_still_verifies(tmp_path: Path, capsys,  # type: ignore[no-untyped-def]
                                                             monkeypatch: pytest.MonkeyPatch) -> None:
    """Offline forbids the network, not the pull: nothing to fetch means nothing fails."""
    import hashlib

    from smart_model_manager.formats import lockfile
    from smart_model_manager.formats.manifest import FileEntry

    data = b'{"model_type": "bert"}'
    sha = hashlib.sha256(data).hexdigest()
    blobs = tmp_path / "cache" / "models--org--tiny" / "blobs"
    blobs.mkdir(parents=True)
    (blobs / sha).write_bytes(data)  # already downloaded earlier, e.g. by a connected run
    entry = lockfile.LockEntry(alias="tiny", repo_id="org/tiny", revision="main", commit="c" * 40,
                               model_type="sentiment", files={"config.json": FileEntry(len(data), f"sha256:{sha}")})
    lock_path = tmp_path / "models.lock"
    lockfile.write_lock(lock_path, lockfile.Lock(models={"tiny": entry}))
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    assert main(["pull", "--lock", str(lock_path), "--cache-dir", str(tmp_path / "cache")]) == 0, capsys.readouterr()
    assert "1 model(s) verified" in capsys.readouterr().out


def test_pull_org_name_that_cannot_be_pinned_ends_with_a_try_line(tmp_path: Path, capsys) -> None:  # type: ignore[no-untyped-def]
    code = main(["pull", "ORG/NAME", "--spec", str(tmp_path / "models.yaml"), "--lock", str(tmp_path / "models.lock"),
                 "--endpoint", "http://127.0.0.1:9"])
    err = capsys.readouterr().err
    assert code == 1
    last = err.strip().splitlines()[-1]
    assert last.startswith("smm pull failed: the model could not be pinned at http://127.0.0.1:9"), last
    assert "models.yaml and models.lock unchanged" in last and "Try: check the ORG/NAME spelling" in last
    assert not (tmp_path / "models.yaml").exists() and not (tmp_path / "models.lock").exists()


def test_validate_says_which_lock_it_uses_and_where_it_came_from(tmp_path: Path, capsys,  # type: ignore[no-untyped-def]
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


def _bench_yaml(monkeypatch: pytest.MonkeyPatch):  # type: ignore[no-untyped-def]
    monkeypatch.syspath_prepend(str(REPO / "bench"))
    spec = importlib.util.spec_from_file_location("bench_yaml_under_test", REPO / "bench" / "bench_yaml.py")
    assert spec is not None and spec.loader is not None
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    monkeypatch.setattr(mod, "inputs", lambda: {"tiny": "a: 1\nb: [1, 2]\n"})
    writes: list[str] = []
    monkeypatch.setattr(mod, "write_result", lambda name, data, force=False: writes.append(name) or Path(name))
    return mod, writes


def test_bench_yaml_writes_its_result_only_with_write(monkeypatch: pytest.MonkeyPatch, capsys) -> None:  # type: ignore[no-untyped-def]
    mod, writes = _bench_yaml(monkeypatch)
    monkeypatch.setattr(sys, "argv", ["bench_yaml.py", "--rounds", "1"])
    mod.main()
    assert writes == [] and "not recorded; --write records it" in capsys.readouterr().out
    monkeypatch.setattr(sys, "argv", ["bench_yaml.py", "--rounds", "1", "--write", "--force"])
    mod.main()
    assert writes == ["yaml"]


def test_a_classifier_loaded_as_embeddings_reads_as_english(tmp_path: Path) -> None:
    from smart_model_manager.registry import config_mismatch

    message = config_mismatch("embeddings", {"architectures": ["BertForSequenceClassification"],
                                             "id2label": {"0": "a", "1": "b"}})
    assert message is not None and "not an embedding vector" in message and "a embeddings" not in message


def test_demo_prints_how_to_activate_the_environment() -> None:
    text = (REPO / "scripts" / "demo.sh").read_text(encoding="utf-8")
    assert 'echo "    source .venv/bin/activate"' in text
    readme = (REPO / "README.md").read_text(encoding="utf-8")
    quick = readme[readme.index("## Quick start"):readme.index("## What is in the box")]
    assert "source .venv/bin/activate" in quick
