"""The original design's module surface, on this package's engine: a drop-in for its callers.

A project that had ``shared/smart_model_manager.py`` replaces that file with one line::

    from smart_model_manager.compat import *

and its callers keep working (``get_model_manager()``, ``manager.environment.value``,
``except ModelLoadingError``, ``model(text, truncation=True, max_length=512)``, ...). What changed on
purpose, and the one line of caller code each change touches, is in ``docs/migrating.md``:
no silent mock outside tests, each model's real labels (FinBERT: positive/negative/neutral),
deterministic mocks, verified files.

Importing this module imports no torch, transformers or onnxruntime (availability is checked with
``importlib.util.find_spec``).
"""

from __future__ import annotations

import enum
import gc
import importlib.util
import logging
import threading
import time
from collections.abc import Iterable, Mapping
from typing import Any

from . import settings as _settings
from .api import ModelManager
from .errors import ConfigurationError, SmmError
from .model import Model
from .settings import Settings

__all__ = [
    "COMMON_MODELS",
    "ENVIRONMENT_SOURCES",
    "TORCH_AVAILABLE",
    "TRANSFORMERS_AVAILABLE",
    "ModelLoadFailed",
    "ModelLoadingError",
    "ModelSource",
    "SmartModelManager",
    "get_model_manager",
    "load_sentiment_model",
    "reset_model_manager",
]

log = logging.getLogger(__name__)

TRANSFORMERS_AVAILABLE: bool = importlib.util.find_spec("transformers") is not None
TORCH_AVAILABLE: bool = importlib.util.find_spec("torch") is not None


class ModelSource(str, enum.Enum):
    """Where models come from; ``manager.environment`` is one of these. Compares equal to its value."""

    PERSISTENT_VOLUME = "persistent_volume"     # production: the read-only, verified volume
    LOCAL_CACHE = "local_cache"                 # dev: the local Hugging Face cache
    MOCK_MODELS = "mock_models"                 # test: deterministic mocks
    DOWNLOAD_ON_DEMAND = "download_on_demand"   # ci: downloads verified against models.lock
    HUGGINGFACE_HUB = "huggingface_hub"         # hub: the fallback

    def __str__(self) -> str:
        return str(self.value)

    def __format__(self, spec: str) -> str:
        return format(str(self.value), spec)


#: this package's environment names -> the original's sources
ENVIRONMENT_SOURCES: dict[str, ModelSource] = {
    _settings.TEST: ModelSource.MOCK_MODELS,
    _settings.DEV: ModelSource.LOCAL_CACHE,
    _settings.CI: ModelSource.DOWNLOAD_ON_DEMAND,
    _settings.PRODUCTION: ModelSource.PERSISTENT_VOLUME,
    _settings.HUB: ModelSource.HUGGINGFACE_HUB,
}
_ENVIRONMENT_NAMES = {v: k for k, v in ENVIRONMENT_SOURCES.items()}

#: ``except ModelLoadingError`` catches every failure of ``load_model``: every error this package raises
#: is an ``SmmError``, and anything else raised while loading is re-raised as :class:`ModelLoadFailed`.
ModelLoadingError = SmmError


class ModelLoadFailed(SmmError, RuntimeError):
    """A load failed for a reason outside this package's error tree (the cause is chained)."""


#: The original aliases (alias -> repo id). ``manager.load_model(COMMON_MODELS["finbert"])``.
COMMON_MODELS: dict[str, str] = {
    "finbert": "ProsusAI/finbert",
    "cryptobert": "kk08/CryptoBERT",
    "twitter_roberta": "cardiffnlp/twitter-roberta-base-sentiment-latest",
}

_DESCRIPTIONS = {
    ModelSource.PERSISTENT_VOLUME: "read-only, verified model volume",
    ModelSource.LOCAL_CACHE: "local Hugging Face cache",
    ModelSource.MOCK_MODELS: "deterministic mock models for tests",
    ModelSource.DOWNLOAD_ON_DEMAND: "download on demand, verified against models.lock",
    ModelSource.HUGGINGFACE_HUB: "Hugging Face Hub",
}


def _environment_name(environment: ModelSource | str | None) -> str | None:
    """ModelSource, its value, or one of this package's names -> this package's name."""
    if environment is None:
        return None
    if isinstance(environment, ModelSource):
        return _ENVIRONMENT_NAMES[environment]
    if environment in ENVIRONMENT_SOURCES:
        return environment
    for source in ModelSource:
        if environment == source.value:
            return _ENVIRONMENT_NAMES[source]
    valid = [*ENVIRONMENT_SOURCES, *(s.value for s in ModelSource)]
    raise ConfigurationError(f"environment {environment!r} is not valid; valid values: {', '.join(valid)}")


def _device_argument(device: int | str | None) -> str | None:
    """The original's ``device`` (-1 CPU, N >= 0 GPU N, as transformers.pipeline took it) -> ours."""
    if device is None:
        return None
    if isinstance(device, bool):
        raise ConfigurationError(f"device must be -1 (CPU), a GPU index or a device string, got {device!r}")
    if isinstance(device, int):
        return "cpu" if device < 0 else f"cuda:{device}"
    return str(device)


class SmartModelManager:
    """The original manager: ``environment``, ``models``, ``config``, ``loading_history``, ``load_model()``,
    ``get_model_info()``, ``clear_cache()``, ``warmup_models()``.

    ``environment`` (optional) forces one: a :class:`ModelSource`, its value, or test/dev/ci/production/hub.
    ``device`` is the original's setting (-1 CPU, 0 the first GPU).
    """

    def __init__(self, environment: ModelSource | str | None = None, *, settings: Settings | None = None,
                 device: int | str | None = None, backend: str | None = None):
        self.logger = logging.getLogger(__name__)
        self._manager = ModelManager(_environment_name(environment), settings=settings, backend=backend)
        self.environment: ModelSource = ENVIRONMENT_SOURCES[self._manager.environment]
        self._device = _device_argument(device)
        self.models: dict[str, Model] = {}
        self.loading_history: list[dict[str, Any]] = []
        self.config: dict[str, Any] = self._config(device)
        self._mutex = threading.RLock()
        self.logger.info("Initialized SmartModelManager for %s (%s)", self.environment.value,
                         self._manager.detection.reason)

    @property
    def manager(self) -> ModelManager:
        """The :class:`~smart_model_manager.ModelManager` doing the work (migrate to it at your pace)."""
        return self._manager

    def _config(self, device: int | str | None) -> dict[str, Any]:
        s, env = self._manager.settings, self.environment
        cache_dir = {ModelSource.PERSISTENT_VOLUME: s.volume_dir, ModelSource.MOCK_MODELS: None}.get(env, s.cache_dir)
        return {
            "cache_dir": str(cache_dir) if cache_dir is not None else None,
            "local": env in (ModelSource.PERSISTENT_VOLUME, ModelSource.LOCAL_CACHE),
            "timeout": s.timeout,
            "device": (None if env is ModelSource.MOCK_MODELS else getattr(self._manager, "device", -1))
            if device is None else device,
            "description": _DESCRIPTIONS[env],
            "environment": self._manager.environment,
            "reason": self._manager.detection.reason,
            "sources": self._manager.sources,
            "backend": self._manager.backend,
        }

    @staticmethod
    def cache_key(model_name: str, model_type: str = "sentiment") -> str:
        """The key of ``manager.models``: ``"sentiment_ProsusAI_finbert"``, as in the original."""
        return f"{model_type}_{model_name.replace('/', '_')}"

    def load_model(self, model_name: str, model_type: str = "sentiment", *, revision: str | None = None,
                   backend: str | None = None, device: int | str | None = None) -> Model:
        """Load once per (name, type) and return the same :class:`Model` afterwards.

        Raises a ``ModelLoadingError`` (an ``SmmError``) in every environment: there is no mock
        fallback outside tests. Sentiment models answer pipeline-keyword calls as the original's
        pipelines did (``return_all_scores=True``: every label, label-id order).
        """
        key = self.cache_key(str(model_name), model_type) + (f"@{revision}" if revision else "")
        with self._mutex:
            if key in self.models:
                return self.models[key]
            t0 = time.time()
            entry: dict[str, Any] = {"model": model_name, "type": model_type,
                                     "environment": self.environment.value, "timestamp": t0}
            try:
                model = self._load(model_name, model_type, revision, backend, device)
            except Exception as err:
                entry.update(load_time=time.time() - t0, success=False, error=f"{type(err).__name__}: {err}")
                self.loading_history.append(entry)
                self.logger.error("Failed to load %s: %s", model_name, err)
                if isinstance(err, SmmError):
                    raise
                raise ModelLoadFailed(f"Failed to load {model_name!r} ({model_type}): "
                                      f"{type(err).__name__}: {err}") from err
            info = model.info
            entry.update(load_time=time.time() - t0, success=True, source=info.source, backend=info.backend,
                         repo_id=info.repo_id, commit=info.commit, path=info.path)
            self.loading_history.append(entry)
            self.models[key] = model
            self.logger.info("Loaded %s from %s in %.2fs", model_name, info.source, entry["load_time"])
            return model

    def _load(self, model_name: str, model_type: str, revision: str | None, backend: str | None,
              device: int | str | None) -> Model:
        kwargs: dict[str, Any] = {"revision": revision, "backend": backend}
        dev = _device_argument(device) if device is not None else self._device
        if dev is not None:
            kwargs["device"] = dev
        model = self._manager.load_model(model_name, model_type, **kwargs)
        return model.with_call_defaults(return_all_scores=True) if model.labels else model

    def get_model_info(self) -> dict[str, Any]:
        """Environment, config, loaded model keys, loading history, library availability."""
        with self._mutex:
            return {
                "environment": self.environment.value,
                "config": dict(self.config),
                "loaded_models": list(self.models),
                "loading_history": [dict(e) for e in self.loading_history],
                "transformers_available": TRANSFORMERS_AVAILABLE,
                "torch_available": TORCH_AVAILABLE,
                "models": {k: m.info.as_dict() for k, m in self.models.items()},
            }

    def clear_cache(self) -> int:
        """Forget every loaded model (here and in the engine) and free their memory; returns how many."""
        with self._mutex:
            count = len(self.models)
            self.models.clear()
            self._manager.clear()
        gc.collect()
        self.logger.info("Cleared %d models from cache", count)
        return count

    def warmup_models(self, model_list: Iterable[Mapping[str, str] | str] | None = None) -> dict[str, Model]:
        """Load ``[{"name": ..., "type": ...}, ...]`` (default: every model in COMMON_MODELS) now.

        Every model is tried; if any failed, one ``ModelLoadingError`` names each failure (the original
        only logged a warning, and the failure surfaced at the first request instead of at start-up).
        """
        items = list(model_list) if model_list is not None else [
            {"name": repo, "type": "sentiment"} for repo in COMMON_MODELS.values()]
        loaded: dict[str, Model] = {}
        failures: list[str] = []
        self.logger.info("Warming up %d models", len(items))
        for item in items:
            if isinstance(item, str):
                name, mtype = item, "sentiment"
            elif isinstance(item, Mapping) and isinstance(item.get("name"), str):
                name, mtype = item["name"], str(item.get("type", "sentiment"))
            else:
                raise ConfigurationError(f"warmup_models: each item must be a model name or "
                                         f"{{'name': ..., 'type': ...}}, got {item!r}")
            try:
                loaded[name] = self.load_model(name, mtype)
            except SmmError as err:
                failures.append(f"{name} ({mtype}): {err}")
        if failures:
            raise ModelLoadFailed(f"warmup failed for {len(failures)} of {len(items)} model(s):\n  "
                                  + "\n  ".join(failures))
        return loaded

    def __repr__(self) -> str:
        return f"SmartModelManager(environment={self.environment.value!r}, loaded={list(self.models)})"


_global_manager: SmartModelManager | None = None
_global_lock = threading.Lock()


def get_model_manager() -> SmartModelManager:
    """The process-wide :class:`SmartModelManager`, built on first use from the environment."""
    global _global_manager
    with _global_lock:
        if _global_manager is None:
            _global_manager = SmartModelManager()
        return _global_manager


def reset_model_manager() -> None:
    """Forget the process-wide manager (tests, or after changing environment variables)."""
    global _global_manager
    with _global_lock:
        _global_manager = None


def load_sentiment_model(model_name: str) -> Model:
    """``get_model_manager().load_model(model_name, "sentiment")``."""
    return get_model_manager().load_model(model_name, "sentiment")
