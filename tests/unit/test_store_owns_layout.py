"""store/ is the only owner of the Hugging Face cache layout: no other module spells its names.

Every string constant in src/ outside store/ (f-string parts included; docstrings are prose and left
out) is checked for the layout's folder names as path parts, the repo-folder prefix and the partial
download suffix. A module that needs them asks ``store.layout`` (names, repo folders, temp names) or
``store.scan`` (the walk), so a rule changes in one place.
"""

from __future__ import annotations

import ast
import re
from pathlib import Path

import pytest

pytestmark = pytest.mark.unit

PKG = Path(__file__).resolve().parents[2] / "src" / "smart_model_manager"

# the layout's folder names as a whole string or a path part; the prefix and suffix anywhere
_PART = re.compile(r"(?:^|[/*])(snapshots|blobs|refs)(?:$|/)")
_ANYWHERE = ("models--", ".incomplete")

# Same words, other things (not the cache layout): (module, the exact string) -> what it is.
OTHER_MEANINGS = {
    ("image/layout.py", "blobs"): "an OCI image layout's blobs/sha256 folder",
    ("image/build.py", "blobs"): "an OCI image layout's blobs/sha256 folder",
    ("image/transfer.py", "blobs"): "an OCI image layout's blobs/sha256 folder",
    ("image/registry.py", "/blobs/"): "the OCI distribution API (/v2/<name>/blobs/<digest>)",
    ("image/registry.py", "/blobs/uploads/"): "the OCI distribution API (blob uploads)",
    ("mirror/routes.py", "refs"): "a Hub HTTP API route word (/api/models/{id}/refs)",
    ("mirror/routes.py", "blobs"): "a Hub HTTP API query flag (?blobs=true)",
    ("mirror/routes.py", "refs/pr/"): "a git ref name in a revision the Hub API accepts (refs/pr/1)",
    ("mirror/routes.py", "refs/heads/"): "a git ref name the Hub API answers with (refs/heads/main)",
    ("cli/artifacts.py", "refs"): "the CLI argument of model references (ORG/NAME@REV)",
}


def _docstrings(tree: ast.AST) -> set[int]:
    ids = set()
    for node in ast.walk(tree):
        if isinstance(node, (ast.Module, ast.ClassDef, ast.FunctionDef, ast.AsyncFunctionDef)) and node.body:
            first = node.body[0]
            if isinstance(first, ast.Expr) and isinstance(first.value, ast.Constant):
                ids.add(id(first.value))
    return ids


def _hits(text: str) -> list[str]:
    found = [m.group(1) for m in _PART.finditer(text)]
    return found + [w for w in _ANYWHERE if w in text]


def layout_literals() -> list[tuple[str, int, str, str]]:
    """(module, line, word, the string) for every layout name spelled outside store/."""
    out = []
    for path in sorted(PKG.rglob("*.py")):
        rel = path.relative_to(PKG).as_posix()
        if rel.startswith("store/"):
            continue
        tree = ast.parse(path.read_text(encoding="utf-8"))
        skip = _docstrings(tree)
        for node in ast.walk(tree):
            if isinstance(node, ast.Constant) and isinstance(node.value, str) and id(node) not in skip:
                if (rel, node.value) in OTHER_MEANINGS:
                    continue
                for word in _hits(node.value):
                    out.append((rel, node.lineno, word, node.value))
    return out


def test_the_cache_layout_names_appear_only_in_store() -> None:
    found = layout_literals()
    assert not found, "\n".join(f"{m}:{line}: {w!r} in {s!r}: ask store.layout / store.scan instead"
                                for m, line, w, s in found)


def test_the_check_sees_what_it_must_refuse() -> None:
    """The detector itself: plain strings, globs and f-string parts are caught, prose words are not."""
    for text in ("snapshots", "models--*/snapshots/*/onnx", "/blobs/", "x.incomplete", "refs/pr/1", "*/refs"):
        assert _hits(text), text
    for text in ("snapshot", "refs pointing to it", "the blobs it keeps", "references"):
        assert not _hits(text), text
    tree = ast.parse('x = f"{root}/blobs/{sha}"')
    parts = [n.value for n in ast.walk(tree) if isinstance(n, ast.Constant) and isinstance(n.value, str)]
    assert any(_hits(p) for p in parts)


def test_other_meanings_are_still_used() -> None:
    """An exception nobody needs any more goes, so the list never hides a new use."""
    used = set()
    for rel, text in OTHER_MEANINGS:
        assert _hits(text), text  # an entry the check would not flag anyway is noise
        tree = ast.parse((PKG / rel).read_text(encoding="utf-8"))
        if any(isinstance(n, ast.Constant) and n.value == text for n in ast.walk(tree)):
            used.add((rel, text))
    assert used == set(OTHER_MEANINGS)
