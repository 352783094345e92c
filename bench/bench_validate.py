#!/usr/bin/env python3
"""How fast is `smm validate --quick` (the Kubernetes startup probe) next to a full re-hash?

Builds a volume of 3 models with realistic file sets (config, tokenizer, vocab, weights; one with an
exported ONNX file), ~345 MiB of random bytes, with the same code the provisioner uses. Then, alternating
the variants in every round so drift hits all of them alike:

* ``quick``          validate(mode="quick") in-process: os.stat per file + manifest parse
* ``quick+lock``     the same, also comparing the manifest with a models.lock
* ``full``           validate(mode="full"): re-hash every byte (the named baseline; warm page cache)
* ``probe-process``  `smm validate --quick --dir V` as a new process: what a startupProbe really costs
* ``python-startup`` `python -c pass`: the floor under any probe written in Python
* ``sha256sum``      coreutils sha256sum over every snapshot file (a naive shell script, for context)

Medians over --rounds rounds; JSON to bench/results/bench_validate.json.

    .venv/bin/python bench/bench_validate.py            # ~30 s on 2 cores
    .venv/bin/python bench/bench_validate.py --rounds 3 --scale 0.1
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import resource
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO / "tests"))  # the shared volume builder used by the tests

MiB = 1 << 20
MODELS = {  # repo id -> {path: size in bytes}; weights scaled by --scale
    "acme/finbert-like": {"model.safetensors": 160 * MiB, "tokenizer.json": 695_000, "vocab.txt": 231_508,
                          "tokenizer_config.json": 1_200, "special_tokens_map.json": 125},
    "acme/minilm-like": {"model.safetensors": 87 * MiB, "onnx/model.onnx": 45 * MiB, "tokenizer.json": 466_000,
                         "vocab.txt": 231_508, "tokenizer_config.json": 1_300, "modules.json": 350},
    "acme/twitter-like": {"model.safetensors": 48 * MiB, "vocab.json": 899_000, "merges.txt": 456_000,
                          "tokenizer_config.json": 1_100},
}


def build(tmp: Path, scale: float) -> tuple[Path, Path]:
    from _volumes import lock_for, make_model_folder, make_volume

    folders = {}
    for rid, files in MODELS.items():
        data = {rel: os.urandom(max(1, int(size * scale)) if size > MiB else size) for rel, size in files.items()}
        folders[rid] = make_model_folder(tmp / "src" / rid.replace("/", "_"), data)
    man = make_volume(tmp / "volume", folders)
    lock_for(man, tmp / "models.lock")
    shutil.rmtree(tmp / "src")
    return tmp / "volume", tmp / "models.lock"


def timed(fn) -> tuple[float, float]:
    """(wall seconds, CPU seconds of this process and its children). CPU is the steadier number on a
    shared machine: wall time includes waiting for a core."""
    r0, c0 = resource.getrusage(resource.RUSAGE_SELF), resource.getrusage(resource.RUSAGE_CHILDREN)
    t0 = time.perf_counter()
    fn()
    wall = time.perf_counter() - t0
    r1, c1 = resource.getrusage(resource.RUSAGE_SELF), resource.getrusage(resource.RUSAGE_CHILDREN)
    cpu = sum(getattr(b, f) - getattr(a, f) for a, b in ((r0, r1), (c0, c1)) for f in ("ru_utime", "ru_stime"))
    return wall, cpu


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--rounds", type=int, default=7)
    ap.add_argument("--scale", type=float, default=1.0, help="scale the weight files (1.0 = ~345 MiB)")
    ap.add_argument("--out", type=Path, default=REPO / "bench" / "results" / "bench_validate.json")
    ap.add_argument("--force", action="store_true", help="write the result even if the machine is busy")
    args = ap.parse_args()
    sys.path.insert(0, str(Path(__file__).resolve().parent))
    from _bench_util import load_guard

    before = load_guard(args.force)

    from smart_model_manager.ops.validate import validate
    from smart_model_manager.store import layout as store_layout, scan as store_scan

    smm = Path(sys.executable).with_name("smm")
    probe_cmd = [str(smm)] if smm.exists() else [sys.executable, "-m", "smart_model_manager.cli.main"]
    with tempfile.TemporaryDirectory(prefix="bench-validate-") as d:
        tmp = Path(d)
        t0 = time.perf_counter()
        vol, lock = build(tmp, args.scale)
        build_s = time.perf_counter() - t0
        files = [str(p) for rid in MODELS for p in store_scan.snapshot_files(
            next((store_layout.repo_dir(vol, rid) / "snapshots").iterdir())).values()]
        total = sum(os.path.getsize(f) for f in files)
        env = {**os.environ, "SMM_VOLUME_DIR": str(vol)}

        def check(report) -> None:
            assert report.ok, report.findings

        variants = {
            "quick": lambda: check(validate(vol, mode="quick")),
            "quick+lock": lambda: check(validate(vol, mode="quick", lock=lock)),
            "full": lambda: check(validate(vol, mode="full")),
            "probe-process": lambda: subprocess.run([*probe_cmd, "validate", "--quick", "--dir", str(vol), "--no-lock"],
                                                    check=True, env=env, capture_output=True),
            "python-startup": lambda: subprocess.run([sys.executable, "-c", "pass"], check=True),
        }
        if shutil.which("sha256sum"):
            variants["sha256sum"] = lambda: subprocess.run(["sha256sum", *files], check=True, capture_output=True)
        for fn in variants.values():  # warm-up: page cache, imports, .pyc
            fn()
        samples: dict[str, list[float]] = {k: [] for k in variants}
        cpu: dict[str, list[float]] = {k: [] for k in variants}
        for r in range(args.rounds):
            order = list(variants) if r % 2 == 0 else list(reversed(variants))  # alternate the order
            for name in order:
                wall, used = timed(variants[name])
                samples[name].append(wall)
                cpu[name].append(used)
    med = {k: statistics.median(v) for k, v in samples.items()}
    med_cpu = {k: statistics.median(v) for k, v in cpu.items()}
    result = {
        "benchmark": "validate",
        "command": "python bench/bench_validate.py " + " ".join(sys.argv[1:]),
        "machine": {"python": platform.python_version(), "cpus": os.cpu_count(), "platform": platform.platform()},
        "volume": {"models": len(MODELS), "files": len(files), "bytes": total, "build_seconds": round(build_s, 2)},
        "rounds": args.rounds,
        "median_ms": {k: round(v * 1000, 3) for k, v in med.items()},
        "median_cpu_ms": {k: round(v * 1000, 3) for k, v in med_cpu.items()},
        "samples_ms": {k: [round(x * 1000, 3) for x in v] for k, v in samples.items()},
        "load_average": os.getloadavg(),
        "machine_before": before,
        "ratios": {
            "full_over_quick": round(med["full"] / med["quick"], 1),
            "full_over_quick_cpu": round(med_cpu["full"] / max(med_cpu["quick"], 1e-6), 1),
            **({"sha256sum_over_quick": round(med["sha256sum"] / med["quick"], 1)} if "sha256sum" in med else {}),
            "probe_process_over_python_startup": round(med["probe-process"] / med["python-startup"], 2),
        },
        "full_throughput_mib_s": round(total / MiB / med["full"], 1),
        "target": "quick well under 100 ms",
        "quick_under_100ms": med["quick"] < 0.1,
    }
    for k, v in result["median_ms"].items():
        print(f"{k:<16} median {v:10.2f} ms wall {result['median_cpu_ms'][k]:10.2f} ms cpu"
              f"{'   <- baseline' if k == 'full' else ''}")
    print(json.dumps(result["ratios"]))
    from _bench_util import busy_refusal, portable

    busy_refusal(result, force=args.force)  # exits 3 when the machine was busy and --force was not given
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(portable(result), indent=2) + "\n")
    print(f"-> {args.out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
