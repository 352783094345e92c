"""The public API: ``get_model_manager()`` and ``ModelManager``.

The environment decides the source chain: ``sources.chains.CHAINS`` (test: mock; dev/ci/hub: cache -> hub;
production: volume). Outside ``test`` nothing ever degrades to a mock: the original design did, and it hid
broken production.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from . import telemetry
from ._layout import LOCK_NAME
from .errors import ConfigurationError, SignatureError
from .formats.labels import parse_id2label, read_config
from .loaders.mock import mock_runner
from .model import LoadInfo, Model
from .registry import get_model_type
from .settings import BACKENDS, ENVIRONMENTS, Settings, parse_device, parse_dtype
from .sources import known_models
from .sources.base import Request, Resolved, Source
from .sources.chains import build_chain
from .sources.environment import Detection, detect
from .sources.folder import is_folder_ref

log = logging.getLogger(__name__)
DEFAULT_LOCK_NAME = LOCK_NAME  # == lockfile.DEFAULT_NAME (lockfile is not imported: it pulls in PyYAML)


@dataclass(frozen=True)
class HistoryEntry:
    name: str
    model_type: str
    revision: str | None
    info: LoadInfo | None
    error: str | None = None


class ModelManager:
    """Resolves and loads models for one environment. Thread-safe; caches per (name, type, revision)."""

    def __init__(self, environment: str | None = None, *, settings: Settings | None = None,
                 sources: Sequence[Source] | None = None, backend: str | None = None,
                 lock: Any = None, device: str | None = None, dtype: str | None = None):
        self.settings = settings or Settings.from_env()
        if environment is not None:
            if environment not in ENVIRONMENTS:
                raise ConfigurationError(
                    f"environment {environment!r} is not valid; valid values: {', '.join(ENVIRONMENTS)}")
            self.detection = Detection(environment, "argument", f"ModelManager(environment={environment!r})")
        else:
            self.detection = detect(self.settings)
        self.environment = self.detection.environment
        if backend is not None and backend not in BACKENDS:
            raise ConfigurationError(f"backend {backend!r} is not valid; valid values: {', '.join(BACKENDS)}")
        self.backend = backend or self.settings.backend
        self.device = parse_device(device, "device") if device is not None else self.settings.device
        self.dtype = parse_dtype(dtype, "dtype") if dtype is not None else self.settings.dtype
        self._sources = list(sources) if sources is not None else self._default_sources()
        self._lock_obj = lock
        self._models: dict[tuple[str, str, str | None, str | None, str, str], Model] = {}
        self._history: list[HistoryEntry] = []
        self._mutex = threading.RLock()

    # -- policy -------------------------------------------------------------------------------
    def _default_sources(self) -> list[Source]:
        return build_chain(self.environment, self.settings)  # the table in sources/chains.py

    @property
    def sources(self) -> list[str]:
        return [s.name for s in self._sources]

    # -- lock ---------------------------------------------------------------------------------
    def _lock(self) -> Any:
        if self._lock_obj is None:
            signed = bool(self.settings.signature_public_keys or self.settings.verify_signature)
            if self.settings.lock_path is None and not Path(DEFAULT_LOCK_NAME).is_file():
                if signed:
                    raise ConfigurationError("SMM_SIGNATURE_PUBLIC_KEYS / SMM_VERIFY_SIGNATURE ask for a signed "
                                             "lock, but there is none: set SMM_LOCK")
                self._lock_obj = False  # no lock: skip importing the YAML machinery (mock cold start)
            else:
                from .formats import lockfile

                lock = lockfile.find_lock(self.settings)
                if signed and lock is not None:
                    self._check_signature(lock)
                self._lock_obj = lock or False
        return self._lock_obj or None

    def _check_signature(self, lock: Any) -> None:
        """Nothing is loaded from a lock whose signature is missing, malformed or by a key not accepted."""
        from .ops.signing import signature_path, signed_digest, verify_lock

        verify_lock(Path(lock.path), self.settings.signature_public_keys)
        if signed_digest(signature_path(Path(lock.path))) != lock.digest:  # the file changed between the reads
            raise SignatureError(f"{lock.path} changed while it was verified; nothing was loaded", path=lock.path)

    def _request(self, name: str, model_type: str, revision: str | None) -> Request:
        if not isinstance(name, str) or not name.strip():
            raise ValueError(f"model name must be a non-empty string, got {name!r}")
        get_model_type(model_type)  # unknown type -> error listing the known ones
        lock = self._lock()
        pinned = lock.find(name) if lock is not None else None
        if pinned is not None:
            repo_id = pinned.repo_id
            if pinned.model_type and pinned.model_type != model_type:
                raise ConfigurationError(
                    f"{name!r} is locked as model_type {pinned.model_type!r}, not {model_type!r} (see {lock.path})")
        else:
            repo_id = known_models.resolve_alias(name)
            if repo_id == name and "/" not in name:
                _refuse_near_miss(name, lock)
        return Request(name=name, repo_id=repo_id, revision=revision, model_type=model_type, pinned=pinned,
                       verify=self.settings.verify)

    # -- public -------------------------------------------------------------------------------
    def declared_polarity(self, *names: str | None) -> dict[str, str]:
        """The label -> polarity map models.lock declares for the first of ``names`` (alias or repo id)
        it holds; ``{}`` without a lock or a declaration (then the known table and the label names
        decide, see ``smart_model_manager.polarity``)."""
        lock = self._lock()
        for name in names:
            entry = lock.find(name) if lock is not None and name else None
            if entry is not None:
                return dict(entry.polarity)
        return {}

    def resolve(self, name_or_alias: str | None = None, *, revision: str | None = None,
                model_type: str = "sentiment") -> Resolved:
        """The verified local folder, commit and source, without loading anything (no name: the
        default model)."""
        from .sources.resolver import resolve_chain

        if name_or_alias is None:
            name_or_alias = known_models.default_model(self.settings)
        if isinstance(name_or_alias, str) and is_folder_ref(name_or_alias):
            return self._resolve_folder(name_or_alias, model_type, revision)
        request = self._request(name_or_alias, model_type, revision)
        return resolve_chain(self._sources, request, self.environment)

    def _resolve_folder(self, name: str, model_type: str, revision: str | None) -> Resolved:
        """A local folder (``./my-model``): hashed and loaded as is in dev/CI/hub, refused in
        production (volume only), a mock with the folder's labels in tests."""
        mt = get_model_type(model_type)
        if self.environment == "production":
            raise ConfigurationError(
                f"{name!r} is a local folder, and production loads only from the verified volume "
                f"{self.settings.volume_dir}; provision it there with `smm import {name} --as ORG/NAME "
                f"--target {self.settings.volume_dir}` and load it by that name")
        if revision is not None:
            raise ConfigurationError(f"{name!r} is a local folder; it has no revisions (drop revision=)")
        if self.environment == "test":
            from .formats.labels import read_schema
            from .sources.base import Verified

            folder = Path(name).expanduser()
            labels, dim = read_schema(folder) if folder.is_dir() else ((), None)
            return Resolved(repo_id=str(folder.resolve()), source="mock", path=None, commit=None,
                            revision=None, labels=(labels or mt.default_labels) if mt.has_labels else (),
                            dimension=dim or mt.default_dimension, verified=Verified.SCHEMA,
                            schema_origin="folder config.json")
        from .sources.folder import FolderSource

        resolved = FolderSource().resolve(Request(name=name, repo_id=name, revision=None,
                                                  model_type=model_type, verify="full"))
        log.info("resolved %s in env=%s from source=folder commit=%s (content hash of %d files)",
                 name, self.environment, (resolved.commit or "-")[:12], len(resolved.files))
        return resolved

    def load_model(self, name_or_alias: str | None = None, model_type: str = "sentiment", *,
                   revision: str | None = None, backend: str | None = None, device: str | None = None,
                   dtype: str | None = None) -> Model:
        """Load (once) and return a Model. ``backend``, ``device`` (``auto``, ``cpu``, ``cuda``, ``cuda:N``)
        and ``dtype`` (``auto``, ``fp32``, ``fp16``, ``bf16``) override SMM_BACKEND / SMM_DEVICE / SMM_DTYPE
        and the manager's own values. See docs/gpu.md for the rules.

        With no name: the default model (``SMM_MODEL``, else ``finbert``; see
        ``known_models.default_model``), the same rule every command uses."""
        if name_or_alias is None:
            name_or_alias = known_models.default_model(self.settings)
        if backend is not None and backend not in BACKENDS:
            raise ConfigurationError(f"backend {backend!r} is not valid; valid values: {', '.join(BACKENDS)}")
        dev = parse_device(device, "device") if device is not None else self.device
        dt = parse_dtype(dtype, "dtype") if dtype is not None else self.dtype
        key = (name_or_alias, model_type, revision, backend, dev, dt)
        with self._mutex:
            if key in self._models:
                return self._models[key]
            try:
                with telemetry.span("smm.load_model", model=name_or_alias, model_type=model_type,
                                    environment=self.environment) as s:
                    model = self._load(name_or_alias, model_type, revision, backend or self.backend, dev, dt)
                    telemetry.set_attributes(s, repo_id=model.info.repo_id, source=model.info.source,
                                             commit=model.info.commit, backend=model.info.backend)
            except Exception as err:
                self._history.append(HistoryEntry(name_or_alias, model_type, revision, None,
                                                  f"{type(err).__name__}: {err}"))
                raise
            self._models[key] = model
            self._history.append(HistoryEntry(name_or_alias, model_type, revision, model.info))
            return model

    def _load(self, name: str, model_type: str, revision: str | None, backend: str, device: str = "auto",
              dtype: str = "auto") -> Model:
        t0 = time.perf_counter()
        mt = get_model_type(model_type)
        choice = None
        if self.environment != "test":  # mocks compute nothing on a device: the test environment never probes
            from .loaders.device import choose_device

            choice = choose_device(device, dtype)  # before any download: a device that cannot be had fails fast
        with telemetry.span("smm.resolve", model=name, revision=revision) as s:
            resolved = self.resolve(name, revision=revision, model_type=model_type)
            telemetry.set_attributes(s, repo_id=resolved.repo_id, source=resolved.source, commit=resolved.commit)
        runner: Any
        if resolved.path is None:  # a mock: a schema, no bytes
            runner = mock_runner(resolved.repo_id, model_type, labels=resolved.labels, dimension=resolved.dimension)
            labels = resolved.labels
        else:
            from .loaders import load_runner
            from .loaders.device import choose_device
            from .sources.verify import pinned_file_verifier

            choice = choice or choose_device(device, dtype)

            _check_type(resolved, model_type)
            labels = resolved.labels or parse_id2label(read_config(resolved.path), strict=False)
            with telemetry.span("smm.load", repo_id=resolved.repo_id, backend=backend, device=choice.device) as s:
                runner = load_runner(resolved.path, model_type, backend=backend,
                                     allow_pickle=self.settings.allow_pickle, threads=self.settings.num_threads,
                                     labels=labels, verify=pinned_file_verifier(resolved),
                                     model_ref=resolved.repo_id, device=choice,
                                     token_budget=self.settings.token_budget,
                                     int8_verdicts=self.settings.int8_verdicts)
                telemetry.set_attributes(s, backend=getattr(runner, "backend", None))
        dim = _true_dimension(runner, resolved) if resolved.path is not None and not mt.has_labels \
            else resolved.dimension
        info = LoadInfo(repo_id=resolved.repo_id, model_type=model_type, environment=self.environment,
                        source=resolved.source, path=str(resolved.path) if resolved.path else None,
                        commit=resolved.commit, revision=revision, backend=getattr(runner, "backend", "?"),
                        load_seconds=round(time.perf_counter() - t0, 4), dimension=dim,
                        alias=name if name != resolved.repo_id else None,
                        device=getattr(runner, "device", "cpu"), dtype=getattr(runner, "dtype", "fp32"),
                        int8_check=getattr(runner, "int8_check", None))
        log.info("loaded %s: source=%s backend=%s device=%s dtype=%s in %.3fs", resolved.repo_id, info.source,
                 info.backend, info.device, info.dtype, info.load_seconds)
        return Model(runner, model_type=model_type, labels=labels if mt.has_labels else (), info=info)

    def clear(self) -> int:
        """Forget every loaded model (the next load_model() loads again); returns how many were held."""
        with self._mutex:
            n = len(self._models)
            self._models.clear()
            return n

    def info(self) -> dict[str, Any]:
        with self._mutex:
            return {
                "environment": self.environment,
                "reason": self.detection.reason,
                "signal": self.detection.signal,
                "sources": self.sources,
                "backend": self.backend,
                "device": self.device,
                "dtype": self.dtype,
                "loaded": [m.info.as_dict() for m in self._models.values()],
                "history": [{"name": h.name, "model_type": h.model_type, "revision": h.revision,
                             "info": h.info.as_dict() if h.info else None, "error": h.error}
                            for h in self._history],
            }


def _refuse_near_miss(name: str, lock: Any) -> None:
    """``finbrt``: a bare name that is no alias but nearly one is a typo, said before any network
    request (a 4 s Hub round trip ending in "not found" helps nobody). Real one-word repo ids that
    resemble no alias pass through."""
    import difflib

    known = set(known_models.ALIASES) | (set(lock.models) if lock is not None else set())
    close = difflib.get_close_matches(name.lower(), sorted(known), n=1, cutoff=0.75)
    if close:
        raise ConfigurationError(f"unknown model {name!r}: did you mean {close[0]!r}? Known aliases: "
                                 f"{', '.join(sorted(known))}; or give a repo id like org/name")


def _check_type(resolved: Resolved, model_type: str) -> None:
    """Refuse a checkpoint whose own config.json says it is another kind of model."""
    import json

    from .registry import config_mismatch

    assert resolved.path is not None
    try:
        cfg = json.loads((resolved.path / "config.json").read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return  # the loader reports a missing or malformed config.json with file and line
    why = config_mismatch(model_type, cfg) if isinstance(cfg, dict) else None
    if why:
        raise ConfigurationError(f"{resolved.repo_id} cannot be loaded as {model_type!r}: {why}")


def _true_dimension(runner: Any, resolved: Resolved) -> int | None:
    """The vector length the runner really returns (one short probe text), so ``info.dimension``
    can never disagree with the vectors; a disagreeing config/manifest value is refused."""
    dim = len(runner(["dimension probe"])[0])
    if resolved.dimension is not None and resolved.dimension != dim:
        raise ConfigurationError(
            f"{resolved.repo_id}: the model returns {dim}-number vectors but its config/manifest says "
            f"dimension {resolved.dimension}; it is not the embeddings model that was pinned")
    return dim


_manager: ModelManager | None = None
_manager_lock = threading.Lock()


def get_model_manager() -> ModelManager:
    """The process-wide manager, built on first use from the environment. See reset_model_manager()."""
    global _manager
    with _manager_lock:
        if _manager is None:
            _manager = ModelManager()
        return _manager


def reset_model_manager() -> None:
    """Forget the process-wide manager (tests, or after changing environment variables)."""
    global _manager
    with _manager_lock:
        _manager = None


def load_model(name_or_alias: str | None = None, model_type: str = "sentiment", *,
               revision: str | None = None, backend: str | None = None, device: str | None = None,
               dtype: str | None = None) -> Model:
    """Shortcut for ``get_model_manager().load_model(...)``."""
    return get_model_manager().load_model(name_or_alias, model_type, revision=revision, backend=backend,
                                          device=device, dtype=dtype)
