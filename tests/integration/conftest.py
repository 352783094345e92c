"""Fixtures shared by the integration test files (helpers that are not fixtures live in tests/integration/_*.py)."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from _artifacts_fixtures import FIN_SPEC, hub_like_root
from _model_folders import CLASSIFIER, make_model_folder
from _volumes import make_volume

from smart_model_manager.formats import lockfile
from smart_model_manager.formats.spec import loads as load_spec
from smart_model_manager.mirror import MirrorServer
from smart_model_manager.ops.lock import resolve_lock
from smart_model_manager.sources.known_models import DEMO_REPO_ID


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


@pytest.fixture(scope="module")
def demo_volume(demo_model_dir: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A production volume holding the real demo model under its repo id, with its manifest."""
    root = tmp_path_factory.mktemp("demo-volume")
    make_volume(root, {DEMO_REPO_ID: demo_model_dir})
    return root
