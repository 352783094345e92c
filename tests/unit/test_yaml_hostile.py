"""Hostile YAML (issue 9, B4): model-metadata.yaml, models.lock and models.yaml are data, so every parse
failure is the file's own FormatError subclass with file and line, never a ValueError/KeyError/
RecursionError escaping from PyYAML, and nothing in the file can make parsing expensive (aliases,
deep nesting, huge files are refused before any work proportional to their expansion)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings, strategies as st

from smart_model_manager.errors import FormatError, LockfileError, ManifestError
from smart_model_manager.formats import _yaml, lockfile, manifest, spec

pytestmark = pytest.mark.unit

SHA = "sha256:" + "ab" * 32
MANIFEST = f"""format: 1
generated_by: tests
verified_at: '2026-11-26T09:00:00Z'
models:
  org/model:
    commit: {"c" * 40}
    model_type: sentiment
    labels: [positive, negative, neutral]
    files:
      config.json: {{size: 10, sha256: '{SHA}'}}
"""
LOCK = f"""version: 1
models:
  fin:
    repo_id: org/model
    revision: main
    commit: {"c" * 40}
    model_type: sentiment
    labels: [positive, negative, neutral]
    files:
      config.json: {{size: 10, sha256: '{SHA}'}}
"""
SPEC = """models:
  fin:
    repo_id: org/model
    revision: main
    model_type: sentiment
"""

# (the file's parser, its good text, the line to replace, the error class)
FORMATS = {
    "manifest": (manifest.loads, MANIFEST, "generated_by: tests", ManifestError),
    "lock": (lockfile.loads, LOCK, "    revision: main", LockfileError),
    "spec": (spec.loads, SPEC, "    revision: main", LockfileError),
}

# Values PyYAML's constructors turn into ValueError / KeyError / AttributeError (found by the attack).
BAD_VALUES = {
    "impossible-date": "2026-13-45",
    "float-tag": "!!float abc",
    "bool-tag": "!!bool maybe",
    "int-over-4300-digits": "1" * 5000,
    "custom-tag": "!local thing",
    "python-tag": "!!python/name:os.system ''",
    "binary-tag": "!!binary '!!!'",
    "set-tag": "!!set {a: null}",
    "omap-tag": "!!omap [a: 1]",
}


@pytest.mark.parametrize("fmt", sorted(FORMATS))
@pytest.mark.parametrize("name", sorted(BAD_VALUES))
def test_constructor_failures_become_the_formats_error_with_file_and_line(fmt: str, name: str) -> None:
    parse, good, line_text, err_cls = FORMATS[fmt]
    key = line_text.split(":")[0]
    text = good.replace(line_text, f"{key}: {BAD_VALUES[name]}")
    assert text != good
    lineno = next(i for i, ln in enumerate(text.splitlines(), 1) if ln.startswith(key + ":"))
    with pytest.raises(err_cls) as exc:
        parse(text, f"conf/{fmt}.yaml")
    assert exc.value.path == f"conf/{fmt}.yaml"
    assert exc.value.line == lineno, str(exc.value)
    assert str(exc.value).startswith(f"conf/{fmt}.yaml:{lineno}: ")


@pytest.mark.parametrize("fmt", sorted(FORMATS))
def test_recursive_alias_is_refused_at_the_anchor(fmt: str) -> None:
    parse, _good, _line, err_cls = FORMATS[fmt]
    text = "format: 1\nversion: 1\nmodels: &m {x: *m}\n"
    with pytest.raises(err_cls, match=r"anchors and aliases are not allowed") as exc:
        parse(text, "f.yaml")
    assert exc.value.line == 3


@pytest.mark.timeout(30)  # before the fix one level more than this took minutes; the refusal is immediate
@pytest.mark.parametrize("fmt", sorted(FORMATS))
def test_alias_bomb_is_refused_not_expanded(fmt: str) -> None:
    parse, _good, _line, err_cls = FORMATS[fmt]
    levels = ["a0: &a0 [x, x, x, x, x, x, x, x, x, x]"]
    for i in range(1, 9):
        levels.append(f"a{i}: &a{i} [" + ", ".join([f"*a{i - 1}"] * 10) + "]")
    text = "\n".join(levels) + "\nmodels: *a8\n"
    assert len(text) < 1000
    with pytest.raises(err_cls, match="anchors and aliases are not allowed") as exc:
        parse(text, "bomb.yaml")
    assert exc.value.line == 1


def test_plain_anchor_without_alias_is_refused_too() -> None:
    with pytest.raises(ManifestError, match="anchors and aliases are not allowed") as exc:
        manifest.loads(MANIFEST.replace("generated_by: tests", "generated_by: &g tests"), "m.yaml")
    assert exc.value.line == 2


@pytest.mark.parametrize("opener, closer", [("[", "]"), ("{a: ", "}")])
def test_deep_nesting_is_refused_with_its_line(opener: str, closer: str) -> None:
    depth = 5000
    text = "format: 1\nmodels:\n  x: " + opener * depth + "1" + closer * depth + "\n"
    # ours says "nested deeper than 32 levels"; libyaml may stop first with "exceeded maximum nesting depth"
    with pytest.raises(ManifestError, match=r"nested deeper than \d+ levels|maximum nesting depth") as exc:
        manifest.loads(text, "deep.yaml")
    assert exc.value.line == 3


def test_nesting_within_the_limit_still_parses() -> None:
    depth = _yaml.MAX_DEPTH - 2
    doc = _yaml.load("a: " + "[" * depth + "1" + "]" * depth + "\n", "ok.yaml", ManifestError)
    inner = doc.data["a"]
    for _ in range(depth - 1):
        inner = inner[0]
    assert inner == [1]


def test_oversized_file_is_refused_before_parsing(tmp_path: Path) -> None:
    p = tmp_path / "model-metadata.yaml"
    p.write_text("format: 1\n" + "# padding\n" * (_yaml.MAX_BYTES // 10 + 1))
    with pytest.raises(ManifestError, match=r"larger than the \d+ MiB limit") as exc:
        manifest.load(p)
    assert exc.value.path == str(p)
    with pytest.raises(LockfileError, match="limit"):
        lockfile.load(p)
    with pytest.raises(LockfileError, match="limit"):
        spec.load(p)
    with pytest.raises(ManifestError, match="limit"):
        manifest.loads(p.read_text(), "m.yaml")


def test_several_documents_are_refused_with_a_line() -> None:
    with pytest.raises(ManifestError, match="one YAML document") as exc:
        manifest.loads(MANIFEST + "---\nformat: 1\n", "m.yaml")
    assert exc.value.line == 11


def test_standard_tags_on_the_right_values_still_work() -> None:
    doc = _yaml.load("a: !!str 12\nb: !!int '7'\nc: !!float '1.5'\nd: [x]\n", "t.yaml", ManifestError)
    assert doc.data == {"a": "12", "b": 7, "c": 1.5, "d": ["x"]}
    assert doc.lines[("b",)] == 2 and doc.lines[("d", 0)] == 4


def test_lines_are_recorded_for_every_key_and_item() -> None:
    doc = _yaml.load(MANIFEST, "m.yaml", ManifestError)
    assert doc.lines[("models", "org/model", "files", "config.json")] == 10
    assert doc.lines[("models", "org/model", "labels", 2)] == 8
    assert doc.lines[("format",)] == 1


def test_validate_json_reports_a_hostile_manifest_as_a_finding(tmp_path: Path) -> None:
    """The startup probe must print its JSON report and exit 1, not exit 2 or print 'unexpected error'."""
    from click.testing import CliRunner

    from smart_model_manager.cli.main import cli

    vol = tmp_path / "vol"
    vol.mkdir()
    (vol / "model-metadata.yaml").write_text("format: 1\nmodels: &m {x: *m}\n")
    res = CliRunner().invoke(cli, ["validate", "--dir", str(vol), "--json", "--no-lock"])
    assert res.exit_code == 1, res.output
    report = json.loads(res.output)
    assert not report["ok"]
    assert any("anchors and aliases" in f["message"] for f in report["findings"]), report


def test_load_model_in_production_raises_manifest_error(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from smart_model_manager import get_model_manager

    vol = tmp_path / "vol"
    vol.mkdir()
    (vol / "model-metadata.yaml").write_text(MANIFEST.replace("'2026-11-26T09:00:00Z'", "2026-13-45"))
    monkeypatch.setenv("SMM_VOLUME_DIR", str(vol))
    monkeypatch.setenv("SMM_ENV", "production")
    with pytest.raises(ManifestError, match=r"model-metadata.yaml:3: ") as exc:
        get_model_manager().load_model("org/model", "sentiment")
    assert isinstance(exc.value, FormatError)


# --- core tags on empty and odd scalars: PyYAML's int/float constructors index value[0] and raise a raw
# IndexError on an empty value; every exception from construction must become the format's error

CORE_TAGS = ["!!int", "!!float", "!!bool", "!!null", "!!str", "!!seq", "!!map", "!!timestamp", "!!binary",
             "!<tag:yaml.org,2002:int>", "!<tag:yaml.org,2002:float>"]
ODD_SCALARS = ["", "''", '""', "-", "+", ".", "_", "0x", "0b", "0o", "1_", "._", "-.", "+.inf.", "1e", "e1", ":",
               "1:", "0:60", "~", " ", "  # comment", "'\\t'", "\"\\u0000\"", "!", "0x_", "9" * 30, "1.2.3", "."]


@pytest.mark.parametrize(("fmt", "text", "line"), [
    ("manifest", "format: 1\nmodels: !!int\n", 2),
    ("lock", "version: !!int\nmodels: {}\n", 1),
    ("spec", "models: !!float\n", 1),
])
def test_a_core_tag_on_an_empty_value_is_the_formats_error_with_its_line(fmt: str, text: str, line: int) -> None:
    parse, _, _, error = FORMATS[fmt]
    with pytest.raises(error, match=rf"f\.yaml:{line}: .*empty value") as exc:
        parse(text, "f.yaml")
    assert type(exc.value.__context__) is IndexError  # what PyYAML raised, kept for SMM_DEBUG tracebacks


@settings(max_examples=200, derandomize=True, deadline=None, database=None,
          suppress_health_check=[HealthCheck.too_slow])
@given(fmt=st.sampled_from(sorted(FORMATS)), tag=st.sampled_from(CORE_TAGS), value=st.sampled_from(ODD_SCALARS),
       where=st.sampled_from(["top", "nested"]))
def test_tags_on_empty_and_odd_scalars_never_escape_the_format_error(fmt: str, tag: str, value: str,
                                                                      where: str) -> None:
    parse, good, replaced, error = FORMATS[fmt]
    if where == "top":
        text = good.replace(good.splitlines()[0], good.splitlines()[0].split(":")[0] + f": {tag} {value}", 1)
    else:
        text = good.replace(replaced, replaced.split(":")[0] + f": {tag} {value}", 1)
    try:
        parse(text, "f.yaml")
    except error as err:
        assert "f.yaml" in str(err) and err.line is not None, str(err)
    # parsing may also succeed (``!!str ''``, ``!!null x``): the contract is only that nothing else escapes


@pytest.mark.parametrize("text", ["format: 1\nmodels: !!int\n", "format: !!float\nmodels: {}\n"])
def test_validate_json_reports_an_empty_tagged_value(tmp_path: Path, text: str) -> None:
    from click.testing import CliRunner

    from smart_model_manager.cli.main import cli

    vol = tmp_path / "vol"
    vol.mkdir()
    (vol / "model-metadata.yaml").write_text(text)
    res = CliRunner().invoke(cli, ["validate", "--dir", str(vol), "--json", "--no-lock"])
    assert res.exit_code == 1, res.output
    report = json.loads(res.output)
    assert not report["ok"] and "unexpected error" not in res.output
    assert any("empty value" in f["message"] for f in report["findings"]), report


def test_load_model_in_production_raises_manifest_error_for_an_empty_tag(tmp_path: Path,
                                                                         monkeypatch: pytest.MonkeyPatch) -> None:
    from smart_model_manager import get_model_manager

    vol = tmp_path / "vol"
    vol.mkdir()
    (vol / "model-metadata.yaml").write_text("format: 1\nmodels: !!int\n")
    monkeypatch.setenv("SMM_VOLUME_DIR", str(vol))
    monkeypatch.setenv("SMM_ENV", "production")
    with pytest.raises(ManifestError, match=r"model-metadata.yaml:2: .*empty value"):
        get_model_manager().load_model("org/model", "sentiment")
