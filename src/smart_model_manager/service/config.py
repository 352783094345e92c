"""``ServiceConfig``: the sentiment service's knobs, built from a mapping (never read at import).

Every field has an ``SMM_SERVICE_<FIELD>`` variable; ``ServiceConfig.from_env(environ)`` takes the
mapping as an argument so tests pass a dict and only the edge (CLI, ASGI factory) passes
``os.environ``. A bad value raises ``ConfigurationError`` naming the variable.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, fields, replace
from typing import Any

from ..errors import ConfigurationError
from .routes_config import SINGLE, RouteSpec, parse_routes

PREFIX = "SMM_SERVICE_"


@dataclass(frozen=True)
class ServiceConfig:
    """Limits and batching for one service process. Defaults suit 2-4 CPU cores."""

    max_batch: int = 32          # texts per model call (model on the CPU)
    max_wait_ms: float = 5.0     # how long the first queued text waits for company (CPU)
    gpu_max_batch: int = 256     # texts per model call when the model runs on a GPU
    gpu_max_wait_ms: float = 2.0  # GPU: a batch of 256 costs about what one text does; wait less
    max_texts: int = 64          # texts per request            -> 413 limit=max_texts
    max_chars: int = 2000        # characters per text          -> 413 limit=max_chars
    max_body_bytes: int = 1_000_000  # request body            -> 413 limit=max_body_bytes
    # "" = the library's default-model rule (SMM_MODEL, else finbert). The name goes to
    # load_model() as given: the manager alone resolves aliases (lock, manifest, built-ins), so a
    # models.lock mapping "finbert" to a tuned repo serves the tuned repo (issue 11).
    model: str = ""
    # Several models in one service (see routes_config): "crypto=kk08/CryptoBERT,stock=finbert"; the routes
    # that may fail to load without making the service unready ("stock"); the market detector
    # ("keywords" or "module:function"); and whether the models' batches take turns on one model thread
    # ("shared", each using every core) or run at once on one thread each ("per-model").
    models: str = ""
    optional: str = ""
    detector: str = ""
    model_executor: str = "shared"
    host: str = "127.0.0.1"
    port: int = 8000

    def __post_init__(self) -> None:
        for name in ("max_batch", "gpu_max_batch", "max_texts", "max_chars", "max_body_bytes"):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, int) or value < 1:
                raise ConfigurationError(f"ServiceConfig.{name}={value!r} must be an integer >= 1 "
                                         f"(variable {PREFIX}{name.upper()})")
        for name in ("max_wait_ms", "gpu_max_wait_ms"):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, (int, float)) or not 0 <= value <= 10_000:
                raise ConfigurationError(f"ServiceConfig.{name}={value!r} must be a number in [0, 10000] "
                                         f"(variable {PREFIX}{name.upper()})")
        if not isinstance(self.port, int) or not 0 <= self.port <= 65535:
            raise ConfigurationError(f"ServiceConfig.port={self.port!r} must be in [0, 65535] "
                                     f"(variable {PREFIX}PORT)")
        if not isinstance(self.model, str):
            raise ConfigurationError(f"ServiceConfig.model={self.model!r} must be a model name "
                                     f"(variable {PREFIX}MODEL)")
        object.__setattr__(self, "model", self.model.strip())
        self.routes()  # a bad SMM_SERVICE_MODELS / _OPTIONAL fails here, naming the entry
        if self.model and self.models:
            raise ConfigurationError(f"both {PREFIX}MODEL ({self.model!r}) and {PREFIX}MODELS ({self.models!r}) "
                                     "are set; give one model, or name every route in MODELS")
        if self.model_executor not in ("shared", "per-model"):
            raise ConfigurationError(f"ServiceConfig.model_executor={self.model_executor!r} must be 'shared' or "
                                     f"'per-model' (variable {PREFIX}MODEL_EXECUTOR)")

    def routes(self) -> list[RouteSpec]:
        """The models to serve, in order: the named routes, or one route "default" for ``model``."""
        if self.models.strip():
            return parse_routes(self.models, self.optional)
        if self.optional.strip():
            raise ConfigurationError(f"{PREFIX}OPTIONAL={self.optional!r} needs named routes in {PREFIX}MODELS "
                                     "(a one-model service cannot run without its model)")
        return [RouteSpec(SINGLE, self.model)]

    def batching_for(self, device: str) -> tuple[int, float]:
        """(max texts per model call, max wait in ms) for a model on ``device`` ("cpu", "cuda:N")."""
        if str(device).startswith("cuda"):
            return self.gpu_max_batch, self.gpu_max_wait_ms
        return self.max_batch, self.max_wait_ms

    @property
    def model_name(self) -> str | None:
        """What to pass to ``load_model``: the configured name, or None for the default rule."""
        return self.model or None

    @property
    def model_label(self) -> str:
        """For humans: the configured name(s) or what the default rule means."""
        if self.models.strip():
            return ", ".join(f"{r.name}={r.model}" + (" (optional)" if r.optional else "") for r in self.routes())
        return self.model or "the default model (SMM_MODEL, else finbert)"

    def with_overrides(self, **changes: Any) -> ServiceConfig:
        """A copy with the non-None ``changes`` applied (CLI options that were not given stay)."""
        return replace(self, **{k: v for k, v in changes.items() if v is not None})

    def to_env(self) -> dict[str, str]:
        """The ``SMM_SERVICE_*`` variables that rebuild this config (for uvicorn worker processes)."""
        return {PREFIX + f.name.upper(): str(getattr(self, f.name)) for f in fields(self)}

    @classmethod
    def from_env(cls, environ: Mapping[str, str]) -> ServiceConfig:
        """Build from ``SMM_SERVICE_*`` entries of ``environ``; unset or empty keeps the default."""
        kwargs: dict[str, Any] = {}
        for f in fields(cls):
            var = PREFIX + f.name.upper()
            raw = environ.get(var)
            if raw is None or raw.strip() == "":
                continue
            raw = raw.strip()
            if f.type in ("int", int):
                try:
                    kwargs[f.name] = int(raw)
                except ValueError:
                    raise ConfigurationError(f"{var}={raw!r} is not an integer") from None
            elif f.type in ("float", float):
                try:
                    kwargs[f.name] = float(raw)
                except ValueError:
                    raise ConfigurationError(f"{var}={raw!r} is not a number") from None
            else:
                kwargs[f.name] = raw
        return cls(**kwargs)
