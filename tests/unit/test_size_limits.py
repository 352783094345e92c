"""No module in src/ over 400 lines, no function over 80 (docs/design.md): a reader should see a module's
shape in one sitting and a function's in one screen. Past these sizes the code is split into well-named
helpers or modules, never squeezed. Measured with ast, so nested functions and methods count on their own
and a decorator line is not part of the function it decorates."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

pytestmark = pytest.mark.unit

PKG = Path(__file__).resolve().parents[2] / "src" / "smart_model_manager"
MAX_MODULE_LINES = 400
MAX_FUNCTION_LINES = 80

def _files() -> list[Path]:
    return sorted(PKG.rglob("*.py"))


def _rel(path: Path) -> str:
    return path.relative_to(PKG).as_posix()


def _lines(path: Path) -> int:
    return len(path.read_text().splitlines())


def _long_functions(source: str) -> list[tuple[str, int, int]]:
    """(name, first line, length) of every function or method longer than the limit, nested ones included."""
    out = []
    for node in ast.walk(ast.parse(source)):
        if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)):
            assert node.end_lineno is not None
            length = node.end_lineno - node.lineno + 1
            if length > MAX_FUNCTION_LINES:
                out.append((node.name, node.lineno, length))
    return out


@pytest.mark.parametrize("path", _files(), ids=_rel)
def test_module_is_at_most_400_lines(path: Path) -> None:
    assert _lines(path) <= MAX_MODULE_LINES, (
        f"{_rel(path)} has {_lines(path)} lines (limit {MAX_MODULE_LINES}); split it along a real seam")


@pytest.mark.parametrize("path", _files(), ids=_rel)
def test_every_function_is_at_most_80_lines(path: Path) -> None:
    long = _long_functions(path.read_text())
    assert long == [], "split into named helpers: " + ", ".join(
        f"{_rel(path)}:{line} {name} ({n} lines, limit {MAX_FUNCTION_LINES})" for name, line, n in long)


def test_the_function_measure_counts_nested_functions_and_skips_decorators() -> None:
    body = "".join(f"    x{i} = {i}\n" for i in range(MAX_FUNCTION_LINES))
    nested = "def outer():\n    def inner():\n" + "".join("    " + line for line in body.splitlines(True))
    assert [name for name, _, _ in _long_functions(nested)] == ["outer", "inner"]
    exactly = "@decorator\ndef f():\n" + body[: -len(body.splitlines(True)[-1])]  # def line + 79 = 80 lines
    assert _long_functions(exactly) == []
    assert [(n, line, length) for n, line, length in _long_functions(exactly + "    y = 1\n")] == [("f", 2, 81)]
