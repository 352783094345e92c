"""Fixtures shared by the integration test files (helpers that are not fixtures live in tests/integration/_*.py)."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from _artifacts_fixtures import FIN_SPEC, hub_like_root
from _model_folders import CLASSIFIER, make_model_folder

from smart_model_manager.formats import lockfile
from smart_model_manager.formats.spec import loads as load_spec
from smart_model_manager.mirror import MirrorServer
from smart_model_manager.ops.lock import resolve_lock


@pytest.fixture
def fin_upstream(tmp_path: Path) -> Iterator[tuple[MirrorServer, Path]]:
    """A mirror on 127.0.0.1 serving org/fin (a 200 kB fake sentiment model) and a models.lock pinning it."""
    root = tmp_path / "upstream"
    hub_like_root(make_model_folder(tmp_path / "src", weights=200_000,
                                    architectures=CLASSIFIER, hub_extras=True), root, "org/fin")
    with MirrorServer(root) as mirror:
        lock = resolve_lock(load_spec(FIN_SPEC, "models.yaml"), mirror.url, timeout=10, retries=0)
        path = tmp_path / "models.lock"
        lockfile.write_lock(path, lock)
        yield mirror, path
