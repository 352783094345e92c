"""Shared helpers of the backend benchmarks: fresh-process runs, medians, machine notes, JSON output.

Every benchmark here runs its baseline in the same run as the candidates, alternating them round by
round (order rotated) so that load drift on a shared machine hits all of them alike.
"""

from __future__ import annotations

import json
import os
import platform
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parents[1]
MODELS = REPO / "bench" / ".models"
RESULTS = REPO / "bench" / "results"
PY = sys.executable


def machine() -> dict[str, Any]:
    """What the numbers were measured on, including how busy the machine was."""
    cpu = ""
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    try:
        uptime = subprocess.run(["uptime"], capture_output=True, text=True, timeout=5).stdout.strip()
    except (OSError, subprocess.SubprocessError):
        uptime = ""
    return {"cpu": cpu, "cpus_affinity": len(os.sched_getaffinity(0)), "python": platform.python_version(),
            "loadavg": [round(x, 2) for x in os.getloadavg()], "uptime": uptime,
            "time_utc": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())}


def versions() -> dict[str, str]:
    from importlib.metadata import PackageNotFoundError, version

    out = {}
    for name in ("torch", "transformers", "onnxruntime", "tokenizers", "numpy"):
        try:
            out[name] = version(name)
        except PackageNotFoundError:
            out[name] = "absent"
    return out


def run_child(code: str, env: dict[str, str] | None = None, timeout: float = 600) -> dict[str, Any]:
    """Run ``python -c code`` in a fresh process.

    The child must print, as its last stdout line, a JSON object with ``t_done`` (``time.time()``
    when its work was done). Returns that object plus ``seconds`` (spawn -> t_done), and the child's
    peak RSS and CPU time from ``wait4`` (the kernel's accounting, not the child's word).
    """
    full_env = dict(os.environ)
    full_env.update(env or {})
    with tempfile.TemporaryFile() as err:
        t0 = time.time()
        proc = subprocess.Popen([PY, "-c", code], stdout=subprocess.PIPE, stderr=err, env=full_env,
                                cwd=str(REPO))
        assert proc.stdout is not None
        out = proc.stdout.read().decode()
        _, status, ru = os.wait4(proc.pid, 0)
        proc.returncode = os.waitstatus_to_exitcode(status)
        if proc.returncode != 0:
            err.seek(0)
            raise RuntimeError(f"child failed ({proc.returncode}):\n{err.read().decode()[-3000:]}")
    result = json.loads(out.strip().splitlines()[-1])
    result["seconds"] = result["t_done"] - t0
    result["peak_rss_mb"] = ru.ru_maxrss / 1024  # Linux: KiB
    result["cpu_seconds"] = ru.ru_utime + ru.ru_stime
    return result


def proc_rss_mib(pid: int) -> dict[str, float]:
    """A process's resident set now (VmRSS) and at its peak (VmHWM), in MiB, from /proc."""
    out = {}
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        key, _, value = line.partition(":")
        if key in ("VmRSS", "VmHWM"):
            out[key] = round(int(value.split()[0]) / 1024, 1)
    return out


def median(values: list[float]) -> float:
    return statistics.median(values)


def rotated(names: list[str], round_no: int) -> list[str]:
    k = round_no % len(names)
    return names[k:] + names[:k]


def cores() -> int:
    return len(os.sched_getaffinity(0))


def load_guard(force: bool) -> dict[str, Any]:
    """Print the machine's load average against its core count and return :func:`machine`.

    A 1-minute load average above the core count means the numbers measure the neighbours as much
    as the code: :func:`write_result` will then refuse to write unless ``--force`` was given.
    """
    info = machine()
    load, n = info["loadavg"][0], cores()
    state = "BUSY" if load > n else "ok"
    print(f"machine: load average {info['loadavg']} on {n} cores ({state}"
          f"{'; --force given' if force and load > n else ''})", file=sys.stderr)
    return info


def busy_refusal(data: dict[str, Any], *, force: bool) -> None:
    """Record ``load_check`` in ``data``; exit 3 (writing nothing) if the machine was busy -- 1-minute
    load average above the core count before or after the run -- and ``force`` is false."""
    loads = [data.get("machine_before", {}).get("loadavg", [0])[0], os.getloadavg()[0]]
    busy = max(loads) > cores()
    data["load_check"] = {"cores": cores(), "loadavg_1min_before_after": [round(x, 2) for x in loads],
                          "busy": busy, "forced": bool(force and busy)}
    if busy and not force:
        print(f"NOT writing the result: load average {max(loads):.2f} > {cores()} cores, the numbers "
              "would measure the neighbours; re-run on a quieter machine, or pass --force (recorded "
              "in the file as load_check.forced)", file=sys.stderr)
        sys.exit(3)


def portable(data: Any) -> Any:
    """``data`` with no path of the machine that ran the benchmark, wherever a path stands in a string
    ("given folder /x/y" too): paths in the checkout become repo-relative, paths in the home folder
    ``~/...``, paths in the temporary folder ``<tmp>/...`` (results files are committed; docs and data
    name no machine's paths)."""
    import re
    import tempfile

    if isinstance(data, dict):
        return {k: portable(v) for k, v in data.items()}
    if isinstance(data, (list, tuple)):
        return [portable(v) for v in data]
    if not isinstance(data, str):
        return data
    # the checkout first: it may itself lie in the home or temporary folder
    for root, short in ((str(REPO), "."), (str(Path.home()), "~"), (tempfile.gettempdir().rstrip(os.sep), "<tmp>")):
        pattern = r"(?<![\w./<>~-])" + re.escape(root) + r"(?=/|$|[\s\"',;)])"
        data = re.sub(pattern + "/", "" if short == "." else short + "/", data)
        data = re.sub(pattern, short, data)
    return data


def write_result(name: str, data: dict[str, Any], *, force: bool = False) -> Path:
    """Write ``bench/results/<name>.json`` (paths made :func:`portable`) unless :func:`busy_refusal` refuses."""
    busy_refusal(data, force=force)
    RESULTS.mkdir(parents=True, exist_ok=True)
    path = RESULTS / f"{name}.json"
    tmp = path.with_suffix(".json.tmp")
    tmp.write_text(json.dumps(portable(data), indent=2, sort_keys=True) + "\n")
    os.replace(tmp, path)
    return path


def headlines(n: int | None = None) -> list[str]:
    """The project's headline texts (train + test), cycled to ``n`` if given."""
    texts = []
    for f in sorted((REPO / "data" / "headlines").glob("*.jsonl")):
        texts += [json.loads(line)["text"] for line in f.read_text().splitlines() if line.strip()]
    if n is None:
        return texts
    return [texts[i % len(texts)] for i in range(n)]
