"""pytest plugin (entry point ``pytest11``): markers, fixtures and ``--smm-env``.

Markers: ``unit``, ``integration``, ``real_models``, ``ml_models``, ``slow``, ``mock_models`` (the
original design's marker: the test uses mock models, so the test environment is forced for it even if
``SMM_ENV`` says otherwise).

Fixtures:
* ``model_manager``: a manager for the test environment (mocks), or for ``--smm-env`` when given;
* ``real_model_manager``: a non-test manager that only looks at what is already on disk (cache, volume):
  it never downloads (pass ``--smm-allow-download`` to let it);
* ``real_model(name, model_type)``: loads a real model or **skips** the test saying how to provide it;
* ``smm_cache``: an isolated, empty model cache (sets ``MODEL_CACHE_DIR``) for the duration of a test;
* ``smm_isolated``: ``smm_cache`` plus a clean ``SMM_*``/``HF_*`` environment.

Loading the plugin stays cheap: no torch, transformers or huggingface_hub import at collection time.
"""

from __future__ import annotations

import sys
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pytest

from ._layout import CI_VARIABLES
from .settings import ENVIRONMENTS

if TYPE_CHECKING:
    from .sources.base import Source

MARKERS = {
    "unit": "fast, isolated tests: mock models only, no network, no real weights",
    "integration": "tests against real components (servers on 127.0.0.1, real clients, real files)",
    "real_models": "needs real model weights available locally; skipped with instructions when absent",
    "ml_models": "loads an ML framework (torch / transformers / onnxruntime)",
    "slow": "takes more than a few seconds",
    "mock_models": "uses mock models: the test environment is forced (SMM_ENV=test) for this test",
}

ISOLATED_PREFIXES = ("SMM_", "HF_", "TRANSFORMERS_")
ISOLATED_NAMES = ("MODEL_CACHE_DIR", "TESTING", *CI_VARIABLES)


def pytest_addoption(parser: pytest.Parser) -> None:
    group = parser.getgroup("smart-model-manager")
    group.addoption("--smm-env", choices=ENVIRONMENTS, default=None,
                    help="Force the environment of the model_manager fixture (default: test, i.e. mocks).")
    group.addoption("--smm-allow-download", action="store_true", default=False,
                    help="Let real_model / real_model_manager download missing models (default: never).")


def pytest_configure(config: pytest.Config) -> None:
    for name, description in MARKERS.items():
        config.addinivalue_line("markers", f"{name}: {description}")


def _reset_managers() -> None:
    for name in ("smart_model_manager.api", "smart_model_manager.compat"):  # only those imported at all
        module = sys.modules.get(name)
        if module is not None:
            module.reset_model_manager()


@pytest.fixture(autouse=True)
def _smm_reset_manager(request: pytest.FixtureRequest) -> Iterator[None]:
    """Each test starts with a fresh process-wide manager; ``mock_models`` tests run in the test environment."""
    if request.node.get_closest_marker("mock_models") is not None:
        request.getfixturevalue("monkeypatch").setenv("SMM_ENV", "test")
        _reset_managers()
    yield
    _reset_managers()


@pytest.fixture
def smm_cache(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """An empty, isolated model cache for this test (MODEL_CACHE_DIR points at it)."""
    cache = tmp_path / "smm-cache"
    cache.mkdir()
    monkeypatch.setenv("MODEL_CACHE_DIR", str(cache))
    return cache


@pytest.fixture
def smm_isolated(smm_cache: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """smm_cache plus a clean environment: no SMM_*/HF_*/CI variables leak in from the outside."""
    from .settings import environ

    for key in environ():
        if key.startswith(ISOLATED_PREFIXES) or key in ISOLATED_NAMES:
            if key != "MODEL_CACHE_DIR":
                monkeypatch.delenv(key, raising=False)
    monkeypatch.setenv("HF_HOME", str(tmp_path / "hf-home"))
    monkeypatch.setenv("SMM_VOLUME_DIR", str(tmp_path / "no-volume"))
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    return smm_cache


@pytest.fixture
def model_manager(request: pytest.FixtureRequest) -> Any:
    """A ModelManager for the test environment (mock models), or for --smm-env when given."""
    from .api import ModelManager

    env = request.config.getoption("--smm-env") or "test"
    return ModelManager(environment=env)


@pytest.fixture
def real_model_manager(request: pytest.FixtureRequest) -> Any:
    """A non-test manager that sees only what is on disk (local cache, volume), unless downloads are allowed."""
    from .api import ModelManager
    from .settings import Settings
    from .sources.cache import CacheSource
    from .sources.environment import detect
    from .sources.volume import VolumeSource

    settings = Settings.from_env()
    env = request.config.getoption("--smm-env")
    if env in (None, "test"):
        # detect() would say "test" inside pytest; look at the other signals instead.
        det = detect(settings.replace(signals=tuple((k, v) for k, v in settings.signals
                                                    if k not in ("PYTEST_CURRENT_TEST", "TESTING"))))
        env = det.environment
    if request.config.getoption("--smm-allow-download"):
        return ModelManager(environment=env, settings=settings)
    sources: list[Source] = [VolumeSource(settings.volume_dir)] if env == "production" else [
        CacheSource(settings.cache_dir), VolumeSource(settings.volume_dir)]
    return ModelManager(environment=env, settings=settings, sources=sources)


@pytest.fixture
def real_model(real_model_manager: Any) -> Callable[..., Any]:
    """``real_model(name, model_type="sentiment")`` loads a real model, or skips saying how to provide it."""
    from .errors import ModelNotFoundError

    def load(name: str, model_type: str = "sentiment", *, revision: str | None = None) -> Any:
        try:
            return real_model_manager.load_model(name, model_type, revision=revision)
        except ModelNotFoundError as err:
            pytest.skip(f"real model {name!r} is not available locally, so this real_models test is skipped. {err}")

    return load
