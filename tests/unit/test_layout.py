"""One home per truth: the commit pattern and the repo-id rule every format and command shares."""

from __future__ import annotations

import pytest

from smart_model_manager import _layout
from smart_model_manager.errors import ConfigurationError, FormatError
from smart_model_manager.formats import lockfile, manifest, spec
from smart_model_manager.mirror.index import valid_repo_id
from smart_model_manager.store import layout

pytestmark = pytest.mark.unit

C = "a" * 40
BAD_IDS = ["", "not a repo", "org/x/y", "org--x", "org/x.git", "org/x\n", "/abs", "../x", "a..b", "-x", "x" * 97]
GOOD_IDS = ["bert-base-uncased", "ProsusAI/finbert", "org/x.y_z-1", "a/" + "b" * 96]


def test_commit_pattern_is_a_full_match() -> None:
    assert _layout.is_commit(C)
    for bad in (C + "\n", C[:-1], C.upper(), C + "a", None, 1):
        assert not _layout.is_commit(bad), bad


@pytest.mark.parametrize("rid", BAD_IDS)
def test_every_reader_rejects_the_same_bad_repo_ids(rid: str) -> None:
    assert not _layout.is_repo_id(rid)
    assert not valid_repo_id(rid)
    with pytest.raises(ConfigurationError):
        layout.repo_folder_name(rid)
    with pytest.raises(FormatError, match="repo id"):
        spec.loads(f"models:\n  x:\n    repo_id: {rid!r}\n    model_type: sentiment\n", "models.yaml")
    files = "{a.json: {size: 1, sha256: 'sha256:" + "0" * 64 + "'}}"
    with pytest.raises(FormatError):
        manifest.loads(f"format: 1\nmodels:\n  {rid!r}:\n    commit: '{C}'\n    model_type: sentiment\n"
                       f"    files: {files}\n", "model-metadata.yaml")
    with pytest.raises(FormatError, match="repo id"):
        lockfile.loads(f"version: 1\nmodels:\n  x:\n    repo_id: {rid!r}\n    revision: main\n    commit: '{C}'\n"
                       f"    model_type: sentiment\n    files: {files}\n", "models.lock")


@pytest.mark.parametrize("rid", GOOD_IDS)
def test_every_reader_accepts_the_same_good_repo_ids(rid: str) -> None:
    assert _layout.is_repo_id(rid) and valid_repo_id(rid)
    folder = layout.repo_folder_name(rid)
    assert folder.startswith("models--") and layout.repo_id_from_folder(folder) == rid


def test_tmp_names_are_unique_and_recognisable() -> None:
    a, b = layout.tmp_name("x"), layout.tmp_name("x")
    assert a != b and a.startswith(layout.TMP_PREFIX + "x.")
    assert layout.is_temp_name(a) and layout.is_temp_name(layout.incomplete_name("x"))
