"""models.yaml parsing (file:line:field errors), file selection, and the byte-stable lock writer."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from smart_model_manager.errors import ConfigurationError, LockfileError
from smart_model_manager.formats import lockfile, spec

pytestmark = pytest.mark.unit

GOOD = """\
models:
  finbert:
    repo_id: ProsusAI/finbert
    model_type: sentiment
  minilm:
    repo_id: sentence-transformers/all-MiniLM-L6-v2
    revision: 'c9745ed1d9f207416be6d2e6f8de32d1f16199bf'
    model_type: embeddings
    include: ["*.json", "*.safetensors", "vocab.txt"]
    exclude: onnx/**
"""


def test_good_spec_parses_with_defaults() -> None:
    s = spec.loads(GOOD, "models.yaml")
    assert sorted(s.models) == ["finbert", "minilm"]
    assert s.models["finbert"].revision == "main"
    assert s.models["finbert"].line == 2  # the alias key
    m = s.models["minilm"]
    assert m.revision == "c9745ed1d9f207416be6d2e6f8de32d1f16199bf"
    assert m.include == ("*.json", "*.safetensors", "vocab.txt") and m.exclude == ("onnx/**",)


@pytest.mark.parametrize("text, line, needle", [
    ("models:\n  a:\n    repo_id: 'bad repo'\n    model_type: sentiment\n", 3, "models.a.repo_id: expected a repo id"),
    ("models:\n  a:\n    repo_id: org/a\n    model_type: sentimnt\n", 4, "models.a.model_type: unknown model type"),
    ("models:\n  a:\n    repo_id: org/a\n", 2, "models.a: missing required key 'model_type'"),
    ("models:\n  a:\n    repo_id: org/a\n    model_type: sentiment\n    revison: main\n", 5,
     "models.a.revison: unknown key"),
    ("models:\n  a:\n    repo_id: org/a\n    model_type: sentiment\n    revision: 1234\n", 5,
     "models.a.revision: expected a branch, tag or 40-hex commit as a string"),
    ("models:\n  a:\n    repo_id: org/a\n    model_type: sentiment\n    include: [1]\n", 5,
     "models.a.include: expected a list of glob patterns"),
    ("models:\n  a: org/a\n", 2, "models.a: expected a mapping, e.g. {repo_id: org/a"),
    ("models: []\n", 1, "models: expected a non-empty mapping"),
    ("model:\n  a: {}\n", 1, "model: unknown key"),
    ("models:\n  a:\n    repo_id: org/a\n    model_type: sentiment\n  a:\n    repo_id: org/b\n", 5,
     "models.a: duplicate key"),
])
def test_errors_name_file_line_and_field(text: str, line: int, needle: str) -> None:
    with pytest.raises(LockfileError) as exc:
        spec.loads(text, "conf/models.yaml")
    assert exc.value.path == "conf/models.yaml"
    assert exc.value.line == line, str(exc.value)
    assert needle in str(exc.value)
    assert str(exc.value).startswith(f"conf/models.yaml:{line}: ")


def test_same_repo_twice_names_both_aliases() -> None:
    text = ("models:\n  finbert:\n    repo_id: ProsusAI/finbert\n    model_type: sentiment\n"
            "  fin2:\n    repo_id: prosusai/FinBERT\n    model_type: sentiment\n")
    with pytest.raises(LockfileError) as exc:
        spec.loads(text, "models.yaml")
    msg = str(exc.value)
    assert exc.value.line == 6 and "'finbert'" in msg and "'fin2'" in msg


def test_aliases_differing_only_in_case_conflict() -> None:
    text = ("models:\n  FinBert:\n    repo_id: org/a\n    model_type: sentiment\n"
            "  finbert:\n    repo_id: org/b\n    model_type: sentiment\n")
    with pytest.raises(LockfileError, match=r"alias 'finbert' conflicts with alias 'FinBert'") as exc:
        spec.loads(text, "models.yaml")
    assert exc.value.line == 5


def test_alias_spelled_like_another_repo_conflicts() -> None:
    text = ("models:\n  finbert:\n    repo_id: org/a\n    model_type: sentiment\n"
            "  org/a:\n    repo_id: org/b\n    model_type: sentiment\n")
    with pytest.raises(LockfileError, match=r"alias 'org/a' is the repo id of 'finbert'"):
        spec.loads(text, "models.yaml")


def test_missing_spec_file_says_how_to_fix(tmp_path: Path) -> None:
    with pytest.raises(ConfigurationError, match="does not exist"):
        spec.load(tmp_path / "models.yaml")


FILES = ["config.json", "model.safetensors", "pytorch_model.bin", "tf_model.h5", "flax_model.msgpack",
         "onnx/model.onnx", "onnx/model_O4.onnx", "onnx/model_qint8_avx512.onnx", "tokenizer.json", "vocab.txt", "README.md", ".gitattributes", "1_Pooling/config.json"]


def test_default_selection_keeps_what_loaders_read() -> None:
    assert spec.select_files(FILES) == ["1_Pooling/config.json", "config.json", "model.safetensors",
                                        "onnx/model.onnx", "tokenizer.json", "vocab.txt"]


def test_pickle_weights_kept_when_they_are_the_only_weights() -> None:
    assert "pytorch_model.bin" in spec.select_files([f for f in FILES if f != "model.safetensors"])


def test_include_and_exclude_globs() -> None:
    assert spec.select_files(FILES, include=["*.json"]) == ["1_Pooling/config.json", "config.json", "tokenizer.json"]
    assert spec.select_files(FILES, include=["*.json"], exclude=["1_Pooling/**"]) == ["config.json", "tokenizer.json"]
    assert spec.select_files(FILES, include=["onnx/**"]) == ["onnx/model.onnx", "onnx/model_O4.onnx",
                                                             "onnx/model_qint8_avx512.onnx"]


def _lock() -> lockfile.Lock:
    text = """\
version: 1
models:
  a:
    repo_id: org/a
    revision: main
    commit: 0123456789abcdef0123456789abcdef01234567
    model_type: sentiment
    labels: [neg, pos]
    files:
      config.json: {size: 3, sha256: 'sha256:%s'}
""" % ("ab" * 32)
    return lockfile.loads(text, "models.lock")


def test_write_lock_is_atomic_and_rewrites_no_bytes_when_unchanged(tmp_path: Path) -> None:
    path = tmp_path / "models.lock"
    assert lockfile.write_lock(path, _lock()) is True
    first = path.read_bytes()
    os.utime(path, (1_000_000, 1_000_000))
    assert lockfile.write_lock(path, lockfile.load(path)) is False
    assert path.read_bytes() == first
    assert path.stat().st_mtime == 1_000_000  # not even touched
    assert lockfile.load(path).models["a"].labels == ("neg", "pos")
    assert [p.name for p in tmp_path.iterdir()] == ["models.lock"]  # no temp files left
