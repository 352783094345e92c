"""bench/bench_yaml.py's harness: it records a result only when asked (--write)."""

from __future__ import annotations

import importlib.util
import sys
from pathlib import Path

import pytest

pytestmark = pytest.mark.unit

REPO = Path(__file__).resolve().parents[2]


def _bench_yaml(monkeypatch: pytest.MonkeyPatch):
    monkeypatch.syspath_prepend(str(REPO / "bench"))
    spec = importlib.util.spec_from_file_location("bench_yaml_under_test", REPO / "bench" / "bench_yaml.py")
    assert spec is not None and spec.loader is not None
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    monkeypatch.setattr(mod, "inputs", lambda: {"tiny": "a: 1\nb: [1, 2]\n"})
    writes: list[str] = []
    monkeypatch.setattr(mod, "write_result", lambda name, data, force=False: writes.append(name) or Path(name))
    return mod, writes


def test_bench_yaml_writes_its_result_only_with_write(monkeypatch: pytest.MonkeyPatch, capsys) -> None:
    mod, writes = _bench_yaml(monkeypatch)
    monkeypatch.setattr(sys, "argv", ["bench_yaml.py", "--rounds", "1"])
    mod.main()
    assert writes == [] and "not recorded; --write records it" in capsys.readouterr().out
    monkeypatch.setattr(sys, "argv", ["bench_yaml.py", "--rounds", "1", "--write", "--force"])
    mod.main()
    assert writes == ["yaml"]
