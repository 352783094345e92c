"""scripts/demo.sh and the README's quick start: what the demo tells a new user to run next."""

from __future__ import annotations

from pathlib import Path

import pytest

pytestmark = pytest.mark.unit

REPO = Path(__file__).resolve().parents[2]


def test_demo_prints_how_to_activate_the_environment() -> None:
    text = (REPO / "scripts" / "demo.sh").read_text(encoding="utf-8")
    assert 'echo "    source .venv/bin/activate"' in text
    readme = (REPO / "README.md").read_text(encoding="utf-8")
    quick = readme[readme.index("## Quick start"):readme.index("## What is in the box")]
    assert "source .venv/bin/activate" in quick
