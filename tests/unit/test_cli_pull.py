"""`smm pull` in-process, without a server: offline variables and names that cannot be pinned fail before
any download, with a last line that says what to try; offline with everything present still verifies."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from smart_model_manager.cli.main import main

pytestmark = pytest.mark.unit

REPO = Path(__file__).resolve().parents[2]
K3S_LOCK = REPO / "deploy" / "k3s" / "base" / "models.lock"


@pytest.mark.parametrize("variable", ["HF_HUB_OFFLINE", "TRANSFORMERS_OFFLINE"])
def test_offline_pull_fails_before_any_download_and_names_the_variable(variable: str, tmp_path: Path, capsys,
                                                                      monkeypatch: pytest.MonkeyPatch) -> None:
    shutil.copy(K3S_LOCK, tmp_path / "models.lock")
    monkeypatch.setenv(variable, "1")
    assert main(["pull", "--lock", str(tmp_path / "models.lock")]) == 1
    err = capsys.readouterr().err
    assert "downloading" not in err, err
    assert f"{variable} is set: no download attempted" in err
    last = err.strip().splitlines()[-1]
    assert last.startswith("smm pull failed:") and f"Try: unset {variable}" in last, last


def test_offline_pull_with_everything_present_still_verifies(tmp_path: Path, capsys,
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


def test_pull_org_name_that_cannot_be_pinned_ends_with_a_try_line(tmp_path: Path, capsys) -> None:
    code = main(["pull", "ORG/NAME", "--spec", str(tmp_path / "models.yaml"), "--lock", str(tmp_path / "models.lock"),
                 "--endpoint", "http://127.0.0.1:9"])
    err = capsys.readouterr().err
    assert code == 1
    last = err.strip().splitlines()[-1]
    assert last.startswith("smm pull failed: the model could not be pinned at http://127.0.0.1:9"), last
    assert "models.yaml and models.lock unchanged" in last and "Try: check the ORG/NAME spelling" in last
    assert not (tmp_path / "models.yaml").exists() and not (tmp_path / "models.lock").exists()
