"""Settings: the ONLY module that reads the process environment.

``Settings.from_env(mapping)`` builds an immutable snapshot from any mapping (tests pass a dict);
``Settings.from_env()`` reads ``os.environ`` at call time (never frozen at import). Building settings
creates no folders and touches no network. Every variable is documented in docs/configuration.md.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from pathlib import Path

from ._layout import CI_VARIABLES, LOCK_NAME, MANIFEST_NAME
from .backends import check_backend
from .errors import ConfigurationError

ENVIRONMENTS = ("test", "dev", "ci", "production", "hub")
#: compare an environment with these names, never with a string literal
TEST, DEV, CI, PRODUCTION, HUB = ENVIRONMENTS
VERIFY_MODES = ("quick", "full")
DEVICES = ("auto", "cpu", "cuda", "cuda:N")   # cuda:N = the N-th GPU (0-based)
DTYPES = ("auto", "fp32", "fp16", "bf16")
DEFAULT_VOLUME_DIR = "/app/models"
DEFAULT_ENDPOINT = "https://huggingface.co"
TRUE = {"1", "true", "yes", "on"}
FALSE = {"0", "false", "no", "off", ""}


def debug_enabled(env: Mapping[str, str] | None = None) -> bool:
    """SMM_DEBUG, read leniently: the error path must never fail on a bad value of another variable."""
    value = (os.environ if env is None else env).get("SMM_DEBUG", "")
    return value.strip().lower() in TRUE


def environ() -> Mapping[str, str]:
    """A snapshot of os.environ, for edge code (service, CLI) that needs raw variables."""
    return dict(os.environ)


def parse_bool(name: str, value: str | None, default: bool = False) -> bool:
    if value is None:
        return default
    v = value.strip().lower()
    if v in TRUE:
        return True
    if v in FALSE:
        return False
    raise ConfigurationError(f"{name}={value!r} is not a boolean; use one of 1/true/yes/on or 0/false/no/off")


def _choice(name: str, value: str | None, choices: tuple[str, ...], default: str | None) -> str | None:
    if value is None or value.strip() == "":
        return default
    v = value.strip().lower()
    if v not in choices:
        raise ConfigurationError(f"{name}={value!r} is not valid; valid values: {', '.join(choices)}")
    return v


def parse_device(value: str | None, name: str = "SMM_DEVICE") -> str:
    """``auto``, ``cpu``, ``cuda`` or ``cuda:N``, normalised (lower case, no spaces); else ConfigurationError."""
    if value is None or str(value).strip() == "":
        return "auto"
    if isinstance(value, bool) or not isinstance(value, (str, int)):
        raise ConfigurationError(f"{name}={value!r} is not valid; valid values: {', '.join(DEVICES)}")
    v = str(value).strip().lower()
    if v in ("auto", "cpu", "cuda"):
        return v
    if v.startswith("cuda:") and v[5:].isdigit():
        return f"cuda:{int(v[5:])}"
    raise ConfigurationError(f"{name}={value!r} is not valid; valid values: {', '.join(DEVICES)} "
                             "(e.g. cuda:1 for the second GPU)")


def parse_dtype(value: str | None, name: str = "SMM_DTYPE") -> str:
    """``auto``, ``fp32``, ``fp16`` or ``bf16``; else ConfigurationError."""
    if value is None or str(value).strip() == "":
        return "auto"
    return _choice(name, str(value), DTYPES, "auto") or "auto"


def _positive_int(name: str, value: str | None) -> int | None:
    if value is None or value.strip() == "":
        return None
    try:
        n = int(value)
    except ValueError:
        raise ConfigurationError(f"{name}={value!r} is not an integer") from None
    if n < 1:
        raise ConfigurationError(f"{name}={value!r} must be >= 1")
    return n


def _retries(value: str | None) -> int:
    """SMM_RETRIES: unset -> 3; 0 disables retries; negative or non-integer is an error saying >= 0."""
    if value is None or value.strip() == "":
        return 3
    try:
        n = int(value)
    except ValueError:
        raise ConfigurationError(f"SMM_RETRIES={value!r} is not an integer") from None
    if n < 0:
        raise ConfigurationError(f"SMM_RETRIES={value!r} must be >= 0 (0 disables retries)")
    return n


def _float(name: str, value: str | None, default: float) -> float:
    if value is None or value.strip() == "":
        return default
    try:
        f = float(value)
    except ValueError:
        raise ConfigurationError(f"{name}={value!r} is not a number") from None
    if f <= 0:
        raise ConfigurationError(f"{name}={value!r} must be > 0")
    return f


def default_cache_dir(env: Mapping[str, str]) -> tuple[Path, str]:
    """MODEL_CACHE_DIR, else the cache huggingface_hub itself would use, in its order: HF_HUB_CACHE, the older
    HUGGINGFACE_HUB_CACHE, HF_HOME/hub, ~/.cache/huggingface/hub (docs/configuration.md has the table)."""
    if env.get("MODEL_CACHE_DIR"):
        return Path(env["MODEL_CACHE_DIR"]).expanduser(), "MODEL_CACHE_DIR"
    for name in ("HF_HUB_CACHE", "HUGGINGFACE_HUB_CACHE"):
        if env.get(name):
            return Path(env[name]).expanduser(), name
    if env.get("HF_HOME"):
        return Path(env["HF_HOME"]).expanduser() / "hub", "HF_HOME"
    xdg = env.get("XDG_CACHE_HOME")
    base = Path(xdg).expanduser() if xdg else Path(env.get("HOME", "~")).expanduser() / ".cache"
    return base / "huggingface" / "hub", "default"


def _offline(env: Mapping[str, str]) -> tuple[bool, str | None]:
    """Offline if any of these is true, as huggingface_hub (HF_HUB_OFFLINE or TRANSFORMERS_OFFLINE) decides;
    every one is parsed, so a typo in one is an error rather than silently "online"."""
    found = None
    for name in ("HF_HUB_OFFLINE", "TRANSFORMERS_OFFLINE", "SMM_OFFLINE"):
        if parse_bool(name, env.get(name)) and found is None:
            found = name
    return found is not None, found


def _timeout(env: Mapping[str, str]) -> tuple[float, str]:
    """SMM_TIMEOUT wins (it is this tool's own, more specific knob); else HF_HUB_DOWNLOAD_TIMEOUT; else 30 s."""
    for name in ("SMM_TIMEOUT", "HF_HUB_DOWNLOAD_TIMEOUT"):
        value = env.get(name)
        if value is not None and value.strip():
            return _float(name, value, 30.0), name
    return 30.0, "default"


@dataclass(frozen=True)
class Settings:
    """Effective configuration. Build with :meth:`from_env`; override fields with :meth:`replace`."""

    env_override: str | None = None          # SMM_ENV
    cache_dir: Path = Path("~/.cache/huggingface/hub")
    cache_dir_origin: str = "default"        # which variable set cache_dir
    volume_dir: Path = Path(DEFAULT_VOLUME_DIR)
    endpoint: str = DEFAULT_ENDPOINT          # HF_ENDPOINT
    token: str | None = field(default=None, repr=False)  # HF_TOKEN
    offline: bool = False                     # HF_HUB_OFFLINE / TRANSFORMERS_OFFLINE / SMM_OFFLINE
    offline_origin: str | None = None         # which of them made it offline
    backend: str = "auto"                     # SMM_BACKEND
    verify: str = "quick"                     # SMM_VERIFY
    lock_path: Path | None = None             # SMM_LOCK
    allow_pickle: bool = False                # SMM_ALLOW_PICKLE
    num_threads: int | None = None            # SMM_NUM_THREADS
    device: str = "auto"                      # SMM_DEVICE: auto | cpu | cuda | cuda:N
    dtype: str = "auto"                       # SMM_DTYPE: auto | fp32 | fp16 | bf16
    token_budget: int | None = None           # SMM_TOKEN_BUDGET: padded tokens per GPU batch
    int8_verdicts: Path | None = None         # SMM_INT8_VERDICTS: int8 re-checks `smm validate` wrote on this node
    timeout: float = 30.0                     # SMM_TIMEOUT, else HF_HUB_DOWNLOAD_TIMEOUT: s per network operation
    timeout_origin: str = "default"           # which variable set timeout
    progress_bars: bool = True                # False when HF_HUB_DISABLE_PROGRESS_BARS is true
    retries: int = 3                          # SMM_RETRIES
    retry_budget: float = 120.0               # SMM_RETRY_BUDGET: s of waiting between retries of one request
    debug: bool = False                       # SMM_DEBUG
    default_model: str | None = None          # SMM_MODEL
    # registry credentials for `smm image push/pull` (from a Secret): basic auth, a bearer token, or a
    # docker config.json (the `.dockerconfigjson` of a kubernetes.io/dockerconfigjson Secret)
    registry_username: str | None = None      # SMM_REGISTRY_USERNAME
    registry_password: str | None = field(default=None, repr=False)  # SMM_REGISTRY_PASSWORD
    registry_token: str | None = field(default=None, repr=False)     # SMM_REGISTRY_TOKEN
    registry_auth_file: Path | None = None    # SMM_REGISTRY_AUTH_FILE
    # public keys (PEM files) whose signature on models.lock is accepted; two during a key rotation
    signature_public_keys: tuple[Path, ...] = ()  # SMM_SIGNATURE_PUBLIC_KEYS, comma-separated
    verify_signature: bool = False            # SMM_VERIFY_SIGNATURE
    # detection signals, copied verbatim so detection stays a pure function of Settings
    signals: tuple[tuple[str, str], ...] = ()
    # the OTEL_* variables, verbatim, for telemetry.py (the OpenTelemetry SDK defines their meaning)
    otel: tuple[tuple[str, str], ...] = ()

    @classmethod
    def from_env(cls, env: Mapping[str, str] | None = None) -> Settings:
        env = os.environ if env is None else env
        cache_dir, origin = default_cache_dir(env)
        lock = env.get("SMM_LOCK")
        retries = env.get("SMM_RETRIES")
        watched = ("PYTEST_CURRENT_TEST", "TESTING", *CI_VARIABLES)
        offline, offline_origin = _offline(env)
        timeout, timeout_origin = _timeout(env)
        return cls(
            env_override=_choice("SMM_ENV", env.get("SMM_ENV"), ENVIRONMENTS, None),
            cache_dir=cache_dir,
            cache_dir_origin=origin,
            volume_dir=Path(env.get("SMM_VOLUME_DIR") or DEFAULT_VOLUME_DIR).expanduser(),
            endpoint=(env.get("HF_ENDPOINT") or DEFAULT_ENDPOINT).rstrip("/"),
            token=env.get("HF_TOKEN") or None,
            offline=offline,
            offline_origin=offline_origin,
            backend=check_backend(env.get("SMM_BACKEND"), "SMM_BACKEND"),
            verify=_choice("SMM_VERIFY", env.get("SMM_VERIFY"), VERIFY_MODES, "quick") or "quick",
            lock_path=Path(lock).expanduser() if lock else None,
            allow_pickle=parse_bool("SMM_ALLOW_PICKLE", env.get("SMM_ALLOW_PICKLE")),
            num_threads=_positive_int("SMM_NUM_THREADS", env.get("SMM_NUM_THREADS")),
            device=parse_device(env.get("SMM_DEVICE")),
            dtype=parse_dtype(env.get("SMM_DTYPE")),
            token_budget=_positive_int("SMM_TOKEN_BUDGET", env.get("SMM_TOKEN_BUDGET")),
            int8_verdicts=Path(env["SMM_INT8_VERDICTS"]).expanduser() if env.get("SMM_INT8_VERDICTS") else None,
            timeout=timeout,
            timeout_origin=timeout_origin,
            progress_bars=not parse_bool("HF_HUB_DISABLE_PROGRESS_BARS", env.get("HF_HUB_DISABLE_PROGRESS_BARS")),
            retries=_retries(retries),
            retry_budget=_float("SMM_RETRY_BUDGET", env.get("SMM_RETRY_BUDGET"), 120.0),
            debug=parse_bool("SMM_DEBUG", env.get("SMM_DEBUG")),
            default_model=env.get("SMM_MODEL") or None,
            registry_username=env.get("SMM_REGISTRY_USERNAME") or None,
            registry_password=env.get("SMM_REGISTRY_PASSWORD") or None,
            registry_token=env.get("SMM_REGISTRY_TOKEN") or None,
            registry_auth_file=Path(env["SMM_REGISTRY_AUTH_FILE"]).expanduser()
            if env.get("SMM_REGISTRY_AUTH_FILE") else None,
            signature_public_keys=tuple(Path(p.strip()).expanduser()
                                        for p in env.get("SMM_SIGNATURE_PUBLIC_KEYS", "").split(",") if p.strip()),
            verify_signature=parse_bool("SMM_VERIFY_SIGNATURE", env.get("SMM_VERIFY_SIGNATURE")),
            signals=tuple((k, env[k]) for k in watched if k in env),
            otel=tuple(sorted((k, v) for k, v in env.items() if k.startswith("OTEL_"))),
        )

    def find_lock_path(self, cwd: Path | None = None) -> tuple[Path | None, str]:
        """The lock every command reads, and how it was found, in words: ``SMM_LOCK`` if set (its reader
        refuses a missing file), else ``models.lock`` in the working directory (``cwd``) if present, else
        None. The one rule: ``ModelManager``, ``smm validate``, ``smm env`` and ``lockfile.find_lock``."""
        if self.lock_path is not None:
            return self.lock_path, "from SMM_LOCK"
        here = Path(cwd) / LOCK_NAME if cwd is not None else Path(LOCK_NAME)
        if here.is_file():
            return here, f"found in the working directory {here.resolve().parent}"
        return None, f"no SMM_LOCK, no {LOCK_NAME} in the working directory"

    @property
    def manifest_path(self) -> Path:
        return self.volume_dir / MANIFEST_NAME

    def signal(self, name: str) -> str | None:
        return dict(self.signals).get(name)

    def replace(self, **changes: object) -> Settings:
        return replace(self, **changes)  # type: ignore[arg-type]
