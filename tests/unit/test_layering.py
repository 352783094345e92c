"""Lower layers never import higher ones (docs/design.md). Walks src/ with ast, function bodies included."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

pytestmark = pytest.mark.unit

PKG = Path(__file__).resolve().parents[2] / "src" / "smart_model_manager"

LAYER = {  # one line per layer: a package or root module, and what it may import (its layer and below)
    "errors": 0, "_version": 0, "_layout": 0, "backends": 0,       # stdlib only
    "settings": 1, "telemetry": 1, "progress": 1,                  # the environment, spans, progress lines
    "store": 2, "remote": 2, "registry": 2, "model": 2, "pipeline_call": 2,  # the cache, the Hub, model types
    "formats": 3,                                                   # our YAML files and their fields
    "sources": 4,                                                   # where a model comes from
    "polarity": 5, "ops": 5, "image": 5,                            # what `smm` commands do
    "loaders": 6, "onnx": 6, "demo": 6,                             # runners; ONNX export and its gate
    "api": 7,                                                       # ModelManager
    "cli": 9, "compat": 9, "mirror": 9, "pytest_plugin": 9, "service": 9, "__init__": 9,  # the edge
}
# heavy third-party imports allowed only in these top-level modules (and only inside functions there)
HEAVY = {"torch", "transformers", "onnxruntime", "tokenizers", "numpy", "fastapi", "uvicorn", "prometheus_client"}


def _module_of(path: Path) -> str:
    rel = path.relative_to(PKG).with_suffix("")
    return rel.parts[0]


def _is_module(parts: list[str]) -> bool:
    """Whether smart_model_manager.<parts> is a module or package (not a name defined in an __init__)."""
    base = PKG.joinpath(*parts)
    return base.with_suffix(".py").is_file() or (base / "__init__.py").is_file()


def _imports_of(source: str, rel: Path) -> list[tuple[str, int]]:
    """(top-level submodule of smart_model_manager that is imported, line) for every intra-package import,
    at any depth: ``ast.walk`` sees imports inside functions and methods too, where back-edges like to hide.

    A name taken from a package's ``__init__`` (``from smart_model_manager import __version__``) counts as an
    import of ``__init__`` (the edge layer); a module taking names from its OWN package's ``__init__``
    (``from . import X`` in ``loaders/onnx.py``) is reported as ``<own __init__>``: that ``__init__``
    imports the module, so the edge is a hidden cycle.
    """
    package = ["smart_model_manager", *rel.parts[:-1]]  # the package this file lives in
    out = []
    for node in ast.walk(ast.parse(source)):
        if isinstance(node, ast.ImportFrom):
            if node.level:
                base = package[: len(package) - (node.level - 1)]
                full = [*base, *(node.module.split(".") if node.module else [])]
            else:
                full = node.module.split(".") if node.module else []
            if full[:1] != ["smart_model_manager"]:
                continue
            if len(full) == 1:  # from smart_model_manager import x, y  /  from .. import x
                out += [(a.name if _is_module([a.name]) else "__init__", node.lineno) for a in node.names]
            else:
                if rel.name != "__init__.py" and full[1:] == list(rel.parts[:-1]):  # from . import x (own package)
                    out += [("<own __init__>", node.lineno) for a in node.names
                            if not _is_module([*full[1:], a.name])]
                out.append((full[1], node.lineno))
        elif isinstance(node, ast.Import):
            for a in node.names:
                parts = a.name.split(".")
                if parts[0] == "smart_model_manager" and len(parts) > 1:
                    out.append((parts[1], node.lineno))
    return out


def _imports(path: Path) -> list[tuple[str, int]]:
    return _imports_of(path.read_text(), path.relative_to(PKG))


def _files():
    return sorted(p for p in PKG.rglob("*.py"))


@pytest.mark.parametrize("path", _files(), ids=lambda p: str(p.relative_to(PKG)))
def test_lower_layers_do_not_import_higher_ones(path):
    me = _module_of(path)
    mine = LAYER.get(me)
    assert mine is not None, f"{me} has no layer in this test; add it to LAYER and docs/design.md"
    for target, line in _imports(path):
        assert target != "<own __init__>", (
            f"{path.relative_to(PKG)}:{line} takes names from its own package's __init__, which imports it; "
            "import them from the module that defines them")
        if target == me or target not in LAYER:
            continue
        assert LAYER[target] <= mine or mine == 9, (
            f"{path.relative_to(PKG)}:{line} (layer {mine}) imports {target} (layer {LAYER[target]})")


MIRROR_STACK = {"mirror/app.py", "mirror/protocol.py", "mirror/telemetry.py"}


def test_the_mirror_stack_is_imported_only_when_a_server_starts() -> None:
    """`import smart_model_manager.mirror` (and `smm --help`) must not pull in uvicorn or Starlette."""
    for rel in ("mirror/__init__.py", "mirror/server.py", "mirror/faults.py", "mirror/routes.py", "cli/mirror.py"):
        for node in ast.parse((PKG / rel).read_text()).body:
            if isinstance(node, ast.ImportFrom) and node.level and node.module:
                assert f"mirror/{node.module.split('.')[-1]}.py" not in MIRROR_STACK, f"{rel}:{node.lineno}"
            if isinstance(node, (ast.Import, ast.ImportFrom)):
                mods = [a.name for a in node.names] if isinstance(node, ast.Import) else [node.module or ""]
                assert not {m.split(".")[0] for m in mods} & {"uvicorn", "starlette", "prometheus_client", "h11"}, (
                    f"{rel}:{node.lineno}")


@pytest.mark.parametrize("path", _files(), ids=lambda p: str(p.relative_to(PKG)))
def test_heavy_libraries_are_imported_inside_functions_only(path):
    tree = ast.parse(path.read_text())
    for node in tree.body:
        names = []
        if isinstance(node, ast.Import):
            names = [a.name.split(".")[0] for a in node.names]
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            names = [node.module.split(".")[0]]
        heavy = set(names) & HEAVY
        rel = path.relative_to(PKG)
        # The service, and the mirror's HTTP stack (imported only when a MirrorServer starts).
        server_stack = rel.parts[0] == "service" or rel.as_posix() in MIRROR_STACK
        allowed = server_stack and heavy <= {"fastapi", "uvicorn", "prometheus_client"}
        assert not heavy or allowed, (
            f"{path.relative_to(PKG)}:{node.lineno} imports {sorted(heavy)} at module level")


def test_the_walk_sees_imports_inside_functions() -> None:
    """The back-edges issue 12 found were all inside functions; the walk must see them."""
    src = "def f():\n    from .. import __version__\n    from . import QUALITY_FILE\n    from ..api import x\n"
    found = _imports_of(src, Path("loaders/onnx.py"))
    assert ("__init__", 2) in found and ("<own __init__>", 3) in found and ("api", 4) in found
    assert LAYER["__init__"] > LAYER["loaders"] and LAYER["api"] > LAYER["loaders"]


def test_only_settings_reads_os_environ():
    offenders = []
    for path in _files():
        if path.name == "settings.py":
            continue
        for node in ast.walk(ast.parse(path.read_text())):
            if (isinstance(node, ast.Attribute) and isinstance(node.value, ast.Name) and node.value.id == "os"
                    and node.attr in ("environ", "getenv", "putenv")):
                offenders.append(f"{path.relative_to(PKG)}:{node.lineno}")
    assert offenders == [], f"these modules read the environment directly: {offenders}"
