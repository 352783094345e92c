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
from ..settings import parse_bool
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
    # models.lock mapping "finbert" to a tuned repo serves the tuned repo.
    model: str = ""
    # Several models in one service (see routes_config): "crypto=kk08/CryptoBERT,stock=finbert"; the routes
    # that may fail to load without making the service unready ("stock"); the market detector
    # ("keywords" or "module:function"); and whether the models' batches run at once, one model thread
    # each ("per-model", the default: measured faster, bench/bench_multi_model.py) or take turns on one
    # ("shared": never more busy runner threads than one model's).
    models: str = ""
    optional: str = ""
    detector: str = ""
    model_executor: str = "per-model"
    host: str = "127.0.0.1"
    port: int = 8000
    # Overload (docs/service.md, "Under overload"). Estimated tokens of work that may wait for the
    # model: 0 = auto (what the measured throughput finishes in half the deadline), N = a fixed
    # bound, -1 = no bound (every request is queued). Beyond it: 503 + Retry-After at once.
    max_queued_tokens: int = 0
    # Every request's deadline in seconds (a client may lower it with X-Request-Timeout); a request
    # still waiting for the model then is dropped and answered 503. 0 = no deadline. 2 s: the auto
    # bound keeps answered requests well inside common 5 s client and proxy timeouts.
    request_timeout_s: float = 2.0
    drop_disconnected: bool = True  # texts of a client that disconnected are never computed
    limit_concurrency: int = 1024   # uvicorn --limit-concurrency: connections + tasks; 0 = no limit
    backlog: int = 2048             # uvicorn --backlog: pending TCP connections the kernel holds

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
        self._check_overload()
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

    def _check_overload(self) -> None:
        def bad(name: str, rule: str) -> ConfigurationError:
            return ConfigurationError(f"ServiceConfig.{name}={getattr(self, name)!r} must be {rule} "
                                      f"(variable {PREFIX}{name.upper()})")

        q = self.max_queued_tokens
        if isinstance(q, bool) or not isinstance(q, int) or q < -1:
            raise bad("max_queued_tokens", "-1 (no bound), 0 (auto) or a number of tokens >= 1")
        t = self.request_timeout_s
        if isinstance(t, bool) or not isinstance(t, (int, float)) or not 0 <= t <= 3600:
            raise bad("request_timeout_s", "a number of seconds in [0, 3600] (0: no deadline)")
        if not isinstance(self.drop_disconnected, bool):
            raise bad("drop_disconnected", "a boolean")
        for name in ("limit_concurrency", "backlog"):
            v = getattr(self, name)
            if isinstance(v, bool) or not isinstance(v, int) or v < 0:
                raise bad(name, "an integer >= 0" + (" (0: no limit)" if name == "limit_concurrency" else ""))

    @property
    def deadline_s(self) -> float | None:
        """The default deadline, or None when deadlines are off."""
        return float(self.request_timeout_s) if self.request_timeout_s else None

    def uvicorn_limits(self) -> dict[str, Any]:
        """``limit_concurrency`` and ``backlog`` as uvicorn takes them (None: no limit)."""
        return {"limit_concurrency": self.limit_concurrency or None, "backlog": self.backlog or 2048}

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
            elif f.type in ("bool", bool):
                kwargs[f.name] = parse_bool(var, raw)
            elif f.type in ("float", float):
                try:
                    kwargs[f.name] = float(raw)
                except ValueError:
                    raise ConfigurationError(f"{var}={raw!r} is not a number") from None
            else:
                kwargs[f.name] = raw
        return cls(**kwargs)
