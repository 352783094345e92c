"""How many CPU threads may this process use? stdlib only (layer 2).

``os.cpu_count()`` answers "how many CPUs does the *machine* have". In a container limited to
1.5 CPUs on a 64-core node that is 64, and an inference runtime sized to 64 threads spends its
time being throttled by the CFS quota. We take the smallest of three limits:

1. the cgroup CPU quota: v2 ``cpu.max`` ("<quota> <period>" or "max <period>") on the process's
   cgroup and each ancestor, or v1 ``cpu/cpu.cfs_quota_us`` / ``cpu.cfs_period_us``
   (quota -1 = unlimited); a fractional quota rounds *up* (1.5 CPUs -> 2 threads);
2. the process affinity mask (``os.sched_getaffinity``; ``taskset``, cpusets);
3. ``os.cpu_count()``.

``default_threads(explicit)`` lets an explicit setting (``SMM_NUM_THREADS``, read by
``settings``, not here) win. Nothing here reads ``os.environ``.
"""

from __future__ import annotations

import logging
import math
import os
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path

from ..errors import ConfigurationError

log = logging.getLogger(__name__)

DEFAULT_CGROUP_ROOT = "/sys/fs/cgroup"


@dataclass(frozen=True)
class CpuLimits:
    """The three limits we looked at; ``None`` means "no limit found"."""

    quota: int | None
    affinity: int | None
    cpu_count: int | None

    @property
    def available(self) -> int:
        found = [n for n in (self.quota, self.affinity, self.cpu_count) if n is not None]
        return max(1, min(found)) if found else 1


def _quota_from_cpu_max(text: str, where: Path) -> int | None:
    """Parse a cgroup v2 ``cpu.max`` line. None = unlimited or unparseable (logged)."""
    parts = text.split()
    if not parts or parts[0] == "max":
        return None
    try:
        quota = int(parts[0])
        period = int(parts[1]) if len(parts) > 1 else 100_000
    except ValueError:
        log.debug("ignoring unparseable %s: %r", where, text)
        return None
    if quota <= 0 or period <= 0:
        return None
    return max(1, math.ceil(quota / period))


def _read(path: Path) -> str | None:
    try:
        return path.read_text(encoding="ascii").strip()
    except (OSError, UnicodeDecodeError):
        return None


def _own_cgroup_v2_path(proc_self_cgroup: Path) -> str:
    """The unified-hierarchy path of this process ("0::/a/b" -> "a/b"); "" when unknown."""
    text = _read(proc_self_cgroup) or ""
    for line in text.splitlines():
        if line.startswith("0::"):
            return line[3:].strip("/")
    return ""


def cgroup_quota(cgroup_root: str | os.PathLike[str] = DEFAULT_CGROUP_ROOT, *,
                 proc_self_cgroup: str | os.PathLike[str] = "/proc/self/cgroup") -> int | None:
    """Whole CPUs allowed by the cgroup quota (rounded up), or None when unlimited / no cgroup."""
    root = Path(cgroup_root)
    limits: list[int] = []
    # v2: the process's own cgroup and every ancestor up to the root; the tightest one applies.
    rel = _own_cgroup_v2_path(Path(proc_self_cgroup))
    node = root / rel if rel else root
    while True:
        text = _read(node / "cpu.max")
        if text is not None:
            q = _quota_from_cpu_max(text, node / "cpu.max")
            if q is not None:
                limits.append(q)
        if node == root or root not in node.parents:
            break
        node = node.parent
    # v1 (still common on older nodes): cpu controller mounted at <root>/cpu
    for v1 in (root / "cpu", root / "cpu,cpuacct"):
        quota_s, period_s = _read(v1 / "cpu.cfs_quota_us"), _read(v1 / "cpu.cfs_period_us")
        if quota_s is None or period_s is None:
            continue
        try:
            quota, period = int(quota_s), int(period_s)
        except ValueError:
            continue
        if quota > 0 and period > 0:
            limits.append(max(1, math.ceil(quota / period)))
    return min(limits) if limits else None


def cpu_limits(cgroup_root: str | os.PathLike[str] = DEFAULT_CGROUP_ROOT, *,
               proc_self_cgroup: str | os.PathLike[str] = "/proc/self/cgroup",
               affinity: Iterable[int] | None = None,
               cpu_count: int | None = None) -> CpuLimits:
    """Collect the three limits. ``affinity``/``cpu_count`` are injectable for tests."""
    if affinity is None and hasattr(os, "sched_getaffinity"):
        try:
            affinity = os.sched_getaffinity(0)
        except OSError:
            affinity = None
    count = cpu_count if cpu_count is not None else os.cpu_count()
    return CpuLimits(
        quota=cgroup_quota(cgroup_root, proc_self_cgroup=proc_self_cgroup),
        affinity=len(set(affinity)) if affinity is not None else None,
        cpu_count=count,
    )


def available_cpus(cgroup_root: str | os.PathLike[str] = DEFAULT_CGROUP_ROOT, *,
                   proc_self_cgroup: str | os.PathLike[str] = "/proc/self/cgroup",
                   affinity: Iterable[int] | None = None,
                   cpu_count: int | None = None) -> int:
    """The number of CPUs this process can actually keep busy (>= 1)."""
    return cpu_limits(cgroup_root, proc_self_cgroup=proc_self_cgroup, affinity=affinity,
                      cpu_count=cpu_count).available


def default_threads(explicit: int | None = None, **kwargs: object) -> int:
    """Threads for an inference runtime: the explicit setting if given, else ``available_cpus()``.

    ``explicit`` comes from ``settings.num_threads`` (``SMM_NUM_THREADS``); ``kwargs`` are passed
    to :func:`available_cpus` (tests use a fake cgroup root).
    """
    if explicit is not None:
        if isinstance(explicit, bool) or not isinstance(explicit, int) or explicit < 1:
            raise ConfigurationError(
                f"number of threads must be a positive integer, got {explicit!r} "
                "(set SMM_NUM_THREADS to e.g. 2, or leave it unset to size from the CPU quota)")
        return explicit
    return available_cpus(**kwargs)  # type: ignore[arg-type]


# The CPU flags that pick ONNX Runtime's int8 kernels (x86: AVX2 vs AVX-512 vs VNNI vs AMX; ARM: dot
# product, i8mm). Everything else in /proc/cpuinfo is noise for the int8 gate.
INT8_FLAGS = ("sse4_1", "sse4_2", "avx", "avx2", "fma", "f16c", "avx512f", "avx512bw", "avx512vl",
              "avx512_vnni", "avx_vnni", "avx512_bf16", "amx_tile", "amx_int8", "amx_bf16",
              "asimd", "asimddp", "i8mm", "sve", "sve2")


def cpu_features(cpuinfo: str | os.PathLike[str] = "/proc/cpuinfo") -> dict[str, object]:
    """``{"machine", "model", "flags"}`` of this CPU: the int8-relevant flags (:data:`INT8_FLAGS`) from the
    first processor entry of ``/proc/cpuinfo``, and its model name. Cheap (one small file read); on a system
    without ``/proc/cpuinfo`` the flags are empty and the model is ``platform.processor()``."""
    import platform

    text = _read(Path(cpuinfo)) or ""
    flags: set[str] = set()
    model = ""
    for line in text.splitlines():
        key, _, value = line.partition(":")
        key = key.strip().lower()
        if key in ("flags", "features") and not flags:
            flags = set(value.split())
        elif key in ("model name", "cpu model", "hardware") and not model:
            model = value.strip()
        if flags and model:
            break
    return {"machine": platform.machine(), "model": model or platform.processor(),
            "flags": [f for f in INT8_FLAGS if f in flags]}


def isa_name(features: dict[str, object]) -> str:
    """A short name for the int8 kernels these flags select: amx, avx512-vnni, avx-vnni, avx512, avx2, ..."""
    flags = set(features.get("flags") or [])  # type: ignore[call-overload]
    for name, needs in (("amx", {"amx_int8"}), ("avx512-vnni", {"avx512_vnni"}), ("avx-vnni", {"avx_vnni"}),
                        ("avx512", {"avx512bw"}), ("avx2", {"avx2"}), ("arm-i8mm", {"i8mm"}),
                        ("arm-dotprod", {"asimddp"}), ("arm-neon", {"asimd"})):
        if needs <= flags:
            return name
    return "baseline"


__all__ = ["INT8_FLAGS", "CpuLimits", "available_cpus", "cgroup_quota", "cpu_features", "cpu_limits",
           "default_threads", "isa_name"]
