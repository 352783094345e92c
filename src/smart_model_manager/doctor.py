"""The facts `smm env` prints: environment, why, and the effective settings. Pure reads; creates nothing."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

from .device import describe
from .environment import cache_has_models, detect
from .settings import Settings


def _threads(settings: Settings) -> dict[str, Any]:
    """The thread count loaders will use (not just the variable), and where it comes from."""
    from .cpu import default_threads

    origin = "SMM_NUM_THREADS" if settings.num_threads else "CPU quota and affinity (cgroup cpu.max)"
    return {"num_threads": default_threads(settings.num_threads), "num_threads_from": origin}


def _writable(path: Path) -> str:
    """'yes', 'no', or 'would be created' — without creating anything."""
    p = path
    while not p.exists():
        if p.parent == p:
            return "no"
        p = p.parent
    ok = os.access(p, os.W_OK | os.X_OK)
    if p != path:
        return "would be created" if ok else "no (cannot be created)"
    return "yes" if ok else "no"


def report(settings: Settings) -> dict[str, Any]:
    det = detect(settings)
    from .api import ModelManager

    chain = ModelManager(settings=settings).sources
    return {
        "environment": det.environment,
        "signal": det.signal,
        "reason": det.reason,
        "sources": chain,
        "cache_dir": str(settings.cache_dir),
        "cache_dir_from": settings.cache_dir_origin,
        "cache_dir_exists": settings.cache_dir.is_dir(),
        "cache_dir_writable": _writable(settings.cache_dir),
        "cache_has_models": cache_has_models(settings.cache_dir),
        "volume_dir": str(settings.volume_dir),
        "volume_manifest": str(settings.manifest_path),
        "volume_manifest_exists": settings.manifest_path.is_file(),
        "volume_dir_writable": _writable(settings.volume_dir) if settings.volume_dir.exists() else "absent",
        "endpoint": settings.endpoint,
        "token": "set" if settings.token else "not set",
        "offline": settings.offline,
        "offline_from": settings.offline_origin,
        "backend": settings.backend,
        "device_setting": settings.device,
        "dtype_setting": settings.dtype,
        **describe(settings.device, settings.dtype),
        "token_budget": settings.token_budget,
        "verify": settings.verify,
        "lock": str(settings.lock_path) if settings.lock_path else ("models.lock" if Path("models.lock").is_file()
                                                                     else None),
        **_threads(settings),
        "timeout_s": settings.timeout,
        "timeout_from": settings.timeout_origin,
        "progress_bars": settings.progress_bars,
        "retries": settings.retries,
        "allow_pickle": settings.allow_pickle,
        "debug": settings.debug,
    }
