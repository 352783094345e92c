"""Fuzzed model-metadata.yaml / models.lock / models.yaml (issue 9, B4 and B9).

Each good file is mutated by Hypothesis (derandomized: the same examples on every run, bounded count):
characters deleted, replaced or inserted from an alphabet of YAML syntax, and whole YAML fragments
(anchors, aliases, tags, brackets, huge numbers, impossible dates) spliced in. Whatever comes out, the
parser either returns a result or raises the format's own error with the file and a line, never
anything else (before the fix: ValueError, KeyError, AttributeError, RecursionError escaped).
"""

from __future__ import annotations

import pytest
from hypothesis import HealthCheck, given, settings, strategies as st
from test_yaml_hostile import LOCK, MANIFEST, SPEC

from smart_model_manager.errors import LockfileError, ManifestError
from smart_model_manager.formats import lockfile, manifest, spec

pytestmark = pytest.mark.unit

EXAMPLES = 300  # per format; ~2 s each here
FRAGMENTS = ["&a ", "*a", "!!float x", "!!bool maybe", "!!python/none ''", "!t ", "[", "]", "{", "}", ": ",
             "- ", "\n", "\n  ", "'", '"', "#", "---\n", "2026-13-45", "9" * 4400, "0x", "1_0", "12:30:60",
             "\t", "\\", "%YAML 1.1\n", "? ", "|\n  ", ">-\n  ", "\x00", "\ufeff", "\udcff", "~", "null", "1e999",
             "sha256:" + "g" * 64, "c" * 40 + "\n", "..", "/", "<<: ", "=", ".inf", "-.nan"]
ALPHABET = st.sampled_from(list(":-[]{}&*!|>'\"#,?%@` \n\t0123456789.abcxyz_/\\"))


@st.composite
def mutated(draw: st.DrawFn, good: str) -> str:
    text = good
    for _ in range(draw(st.integers(1, 4))):
        pos = draw(st.integers(0, len(text)))
        op = draw(st.sampled_from(["delete", "replace", "insert", "splice"]))
        if op == "delete":
            end = min(len(text), pos + draw(st.integers(1, 20)))
            text = text[:pos] + text[end:]
        elif op == "replace" and pos < len(text):
            text = text[:pos] + draw(ALPHABET) + text[pos + 1:]
        elif op == "insert":
            text = text[:pos] + draw(ALPHABET) + text[pos:]
        else:
            text = text[:pos] + draw(st.sampled_from(FRAGMENTS)) + text[pos:]
    return text


def _check(parse, err_cls, text: str) -> None:  # type: ignore[no-untyped-def]
    try:
        parse(text, "fuzz/file.yaml")
    except err_cls as err:
        assert err.path == "fuzz/file.yaml"
        assert isinstance(err.line, int) and err.line >= 1, str(err)
        assert str(err).startswith(f"fuzz/file.yaml:{err.line}: ")


FUZZ = settings(max_examples=EXAMPLES, derandomize=True, deadline=None, database=None,
                suppress_health_check=[HealthCheck.too_slow])


@FUZZ
@given(mutated(MANIFEST))
def test_fuzzed_manifest_raises_only_manifest_error(text: str) -> None:
    _check(manifest.loads, ManifestError, text)


@FUZZ
@given(mutated(LOCK))
def test_fuzzed_lock_raises_only_lockfile_error(text: str) -> None:
    _check(lockfile.loads, LockfileError, text)


@FUZZ
@given(mutated(SPEC))
def test_fuzzed_spec_raises_only_lockfile_error(text: str) -> None:
    _check(spec.loads, LockfileError, text)
