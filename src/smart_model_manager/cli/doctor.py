"""The facts `smm env` prints: environment, why, and the effective settings. Pure reads; creates nothing."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

from ..loaders.device import describe
from ..settings import Settings
from ..sources.environment import cache_has_models, detect


def _threads(settings: Settings) -> dict[str, Any]:
    """The thread count loaders will use (not just the variable), and where it comes from."""
    from ..loaders.cpu import default_threads

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


def _int8(settings: Settings) -> dict[str, Any]:
    """This CPU's int8 kernels next to the CPU each published int8 model's gate ran on (cheap: reads the
    quality.json files; the re-check itself runs when a process loads the model, or `smm validate --full`)."""
    import json

    from ..loaders.cpu import cpu_features, isa_name

    here = cpu_features()
    flags = " ".join(here["flags"])  # type: ignore[arg-type]
    out: dict[str, Any] = {"cpu": f"{here['model']} ({here['machine']})",
                           "cpu_int8_isa": f"{isa_name(here)} (flags: {flags or 'none found'})"}
    gates = []
    for root in dict.fromkeys((settings.volume_dir, settings.cache_dir)):
        for q in sorted(Path(root).glob("models--*/snapshots/*/onnx/quality.json"))[:20]:
            try:
                int8 = json.loads(q.read_text(encoding="utf-8")).get("int8") or {}
            except (OSError, ValueError, AttributeError):
                continue
            if int8.get("accepted") is not True:
                continue
            model = f"{q.parents[3].name.removeprefix('models--').replace('--', '/')}@{q.parents[1].name[:12]}"
            cpu = (int8.get("references") or {}).get("cpu")
            if not isinstance(cpu, dict):
                gates.append(f"{model}: no references (not gated: processes load fp32)")
                continue
            same = "same kernels" if cpu.get("isa") == isa_name(here) else "OTHER kernels than this CPU"
            gates.append(f"{model}: gate ran on {cpu.get('isa')} ({' '.join(cpu.get('flags') or [])}), {same}; "
                         "re-checked when a process loads it (/v1/models int8_check, metric smm_int8_fallback; "
                         "now: smm validate --full)")
    out["int8_gates"] = gates or "no published int8 model found"
    out["int8_verdicts"] = _verdicts(settings.int8_verdicts)
    return out


def _verdicts(path: Path | None) -> Any:
    """What the init container's int8 re-check found on this node (SMM_INT8_VERDICTS): per model, whether
    a process here serves int8 or falls back to fp32."""
    import json

    if path is None:
        return "SMM_INT8_VERDICTS not set: each load re-checks int8 on this CPU itself"
    try:
        rows = json.loads(path.read_text(encoding="utf-8")).get("verdicts") or []
    except (OSError, ValueError, AttributeError) as err:
        return f"{path}: not readable ({err}); loads re-check int8 themselves"
    serves = {"passed": "int8", "fallback": "fp32 (this CPU disagrees)", "not-gated": "fp32 (not gated)"}
    return [f"{r.get('path')}: {r.get('status')} -> serves {serves.get(str(r.get('status')), '?')}" for r in rows
            if isinstance(r, dict)] or f"{path}: no int8 model checked"


def report(settings: Settings) -> dict[str, Any]:
    det = detect(settings)
    from ..api import ModelManager

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
        **_int8(settings),
        "timeout_s": settings.timeout,
        "timeout_from": settings.timeout_origin,
        "progress_bars": settings.progress_bars,
        "retries": settings.retries,
        "allow_pickle": settings.allow_pickle,
        "debug": settings.debug,
    }
