"""Every field of model-metadata.yaml, models.lock and models.yaml is checked against its documented
type and pattern (issue 9, B9): values the formats forbid were accepted (``format: true``,
``format: 1.0``, a ``lock_digest`` of any type, any ``model_type`` string in the lock, an ``extra`` that
is not a mapping, repo ids or commits with a trailing newline)."""

from __future__ import annotations

import pytest

from smart_model_manager.errors import LockfileError, ManifestError
from smart_model_manager.formats import lockfile, manifest, spec

pytestmark = pytest.mark.unit

SHA = "sha256:" + "ab" * 32
C40 = "c" * 40
MANIFEST = f"""format: 1
generated_by: tests
verified_at: '2026-11-26T09:00:00Z'
lock_digest: '{SHA}'
models:
  org/model:
    commit: {C40}
    model_type: sentiment
    labels: [positive, negative, neutral]
    aliases: [fin]
    files:
      config.json: {{size: 10, sha256: '{SHA}'}}
    extra: {{gate: passed}}
"""
LOCK = f"""version: 1
models:
  fin:
    repo_id: org/model
    revision: main
    commit: {C40}
    model_type: sentiment
    labels: [positive, negative, neutral]
    files:
      config.json: {{size: 10, sha256: '{SHA}'}}
    extra: {{gate: passed}}
"""
SPEC = """models:
  fin:
    repo_id: org/model
    revision: main
    model_type: sentiment
"""


def test_the_good_files_parse() -> None:
    m = manifest.loads(MANIFEST)
    assert m.find("org/model") is not None and m.find("fin") is m.find("org/model")
    assert lockfile.loads(LOCK).models["fin"].extra == {"gate": "passed"}
    assert spec.loads(SPEC).models["fin"].repo_id == "org/model"


@pytest.mark.parametrize("old, new, field", [
    ("format: 1", "format: true", "format"),
    ("format: 1", "format: 1.0", "format"),
    ("format: 1", "format: '1'", "format"),
    (f"lock_digest: '{SHA}'", "lock_digest: 12", "lock_digest"),
    (f"lock_digest: '{SHA}'", "lock_digest: [a]", "lock_digest"),
    (f"lock_digest: '{SHA}'", "lock_digest: 'md5:00'", "lock_digest"),
    ("generated_by: tests", "generated_by: [x]", "generated_by"),
    ("verified_at: '2026-11-26T09:00:00Z'", "verified_at: {a: 1}", "verified_at"),
    ("    model_type: sentiment", "    model_type: 'sentime\"t'", "model_type"),
    ("    model_type: sentiment", "    model_type: 7", "model_type"),
    (f"    commit: {C40}", f'    commit: "{C40}\\n"', "commit"),
    ("  org/model:", '  "org/model\\n":', "models"),
    ("    extra: {gate: passed}", "    extra: [gate]", "extra"),
    ("    labels: [positive, negative, neutral]", "    labels: [positive, \"neg\\native\", neutral]", "labels"),
    ("    aliases: [fin]", "    aliases: ['fin\\n']", "aliases"),
    ("    aliases: [fin]", "    aliases: ['a b']", "aliases"),
    ("      config.json:", '      "config.json\\n":', "files"),
    ("size: 10,", "size: 10.0,", "size"),
])
def test_manifest_refuses_values_its_format_forbids(old: str, new: str, field: str) -> None:
    text = MANIFEST.replace(old, new)
    assert text != MANIFEST
    with pytest.raises(ManifestError) as exc:
        manifest.loads(text, "vol/model-metadata.yaml")
    assert exc.value.line is not None and field in str(exc.value), str(exc.value)


@pytest.mark.parametrize("old, new, field", [
    ("version: 1", "version: true", "version"),
    ("version: 1", "version: 1.0", "version"),
    ("    model_type: sentiment", "    model_type: 'sentime\"t'", "model_type"),
    ("    extra: {gate: passed}", "    extra: [gate]", "extra"),
    ("    extra: {gate: passed}", "    extra: gate", "extra"),
    ("    repo_id: org/model", '    repo_id: "org/model\\n"', "repo_id"),
    (f"    commit: {C40}", f'    commit: "{C40}\\n"', "commit"),
    ("    revision: main", '    revision: "main\\n"', "revision"),
    ("    revision: main", "    revision: 'a b'", "revision"),
    ("  fin:", '  "fin\\n":', "models"),
    ("    labels: [positive, negative, neutral]", "    labels: [positive, '', neutral]", "labels"),
])
def test_lock_refuses_values_its_format_forbids(old: str, new: str, field: str) -> None:
    text = LOCK.replace(old, new)
    assert text != LOCK
    with pytest.raises(LockfileError) as exc:
        lockfile.loads(text, "models.lock")
    assert exc.value.line is not None and field in str(exc.value), str(exc.value)


@pytest.mark.parametrize("old, new, field", [
    ("    repo_id: org/model", '    repo_id: "org/model\\n"', "repo_id"),
    ("  fin:", '  "fin\\n":', "models"),
    ("    revision: main", '    revision: "main\\n"', "revision"),
    ("models:", "version: true\nmodels:", "version"),
])
def test_spec_refuses_values_its_format_forbids(old: str, new: str, field: str) -> None:
    text = SPEC.replace(old, new)
    assert text != SPEC
    with pytest.raises(LockfileError) as exc:
        spec.loads(text, "models.yaml")
    assert exc.value.line is not None and field in str(exc.value), str(exc.value)
