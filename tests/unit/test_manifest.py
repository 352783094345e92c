"""model-metadata.yaml: canonical round trip; every malformation names file, line and what was expected."""

from __future__ import annotations

from pathlib import Path

import pytest

from smart_model_manager import ManifestError
from smart_model_manager.formats import manifest

pytestmark = pytest.mark.unit

SHA = "sha256:" + "ab" * 32
GOOD = f"""format: 1
generated_by: tests
verified_at: '2026-11-26T09:00:00Z'
models:
  org/model:
    commit: {"c" * 40}
    model_type: sentiment
    labels: [positive, negative, neutral]
    aliases: [fin]
    files:
      config.json: {{size: 10, sha256: '{SHA}'}}
      sub/model.safetensors: {{size: 20, sha256: '{SHA}'}}
"""


def test_parse_and_find_by_id_alias_and_case():
    m = manifest.loads(GOOD, "vol/model-metadata.yaml")
    rec = m.find("org/model")
    assert rec is m.find("fin") is m.find("ORG/Model")
    e = rec.get("c" * 40)
    assert e is m.entry("fin", "c" * 40) and e.model_type == "sentiment"
    assert e.labels == ("positive", "negative", "neutral") and e.files["sub/model.safetensors"].size == 20


def test_dump_is_canonical_and_round_trips():
    m = manifest.loads(GOOD)
    text = m.dumps()
    assert manifest.loads(text).as_dict() == m.as_dict()
    assert manifest.loads(text).dumps() == text


@pytest.mark.parametrize("old,new,line,expect", [
    ("format: 1", "format: 3", 1, "expected format: 2 (or 1, still read)"),
    ("format: 1", "format: true", 1, "got True"),
    ("format: 1", "format: 1.0", 1, "got 1.0"),
    ("    commit: " + "c" * 40, "    commit: abc", 6, "commit: expected a 40-hex commit id"),
    ("size: 10,", "size: -1,", 11, "size: expected a non-negative integer"),
    (f"size: 20, sha256: '{SHA}'", "size: 20, sha256: 'md5:00'", 12, "sha256: expected 'sha256:'"),
    ("    labels: [positive, negative, neutral]", "    labels: positive", 8, "labels: expected a list"),
    ("      config.json:", "      ../etc/passwd:", 11, "relative POSIX paths"),
    ("    model_type: sentiment\n", "", 5, "missing required key 'model_type'"),
    ("    aliases: [fin]", "    aliasez: [fin]", 9, "unknown key"),
])
def test_malformed_manifest_names_file_line_and_expectation(old, new, line, expect):
    text = GOOD.replace(old, new)
    assert text != GOOD
    with pytest.raises(ManifestError) as exc:
        manifest.loads(text, "/app/models/model-metadata.yaml")
    msg = str(exc.value)
    assert msg.startswith(f"/app/models/model-metadata.yaml:{line}:"), msg
    assert expect in msg
    assert exc.value.line == line


def test_invalid_yaml_syntax_reports_line(tmp_path: Path):
    p = tmp_path / "model-metadata.yaml"
    p.write_text("format: 1\nmodels:\n  org/x: [unclosed\n")
    with pytest.raises(ManifestError, match=rf"{p}:\d+: invalid YAML"):
        manifest.load(p)


def test_empty_and_non_utf8(tmp_path: Path):
    p = tmp_path / "m.yaml"
    p.write_text("")
    with pytest.raises(ManifestError, match="empty"):
        manifest.load(p)
    p.write_bytes(b"\xff\xfe\x00")
    with pytest.raises(ManifestError, match="not UTF-8"):
        manifest.load(p)


def test_duplicate_alias_names_both_models():
    text = GOOD + f"""  org/other:
    commit: {"d" * 40}
    model_type: sentiment
    aliases: [fin]
    files:
      config.json: {{size: 1, sha256: '{SHA}'}}
"""
    with pytest.raises(ManifestError, match="alias 'fin' is also used by org/model"):
        manifest.loads(text, "m.yaml")
