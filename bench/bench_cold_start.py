#!/usr/bin/env python3
"""Cold start: a fresh process, from spawn to its first prediction, and that process's peak RSS.

Candidates (ours) and the baseline run on the SAME folder (bench/.models/finbert-shaped, a
BERT-base shaped like FinBERT), alternating round by round with the order rotated:

* ``lean-int8``  ``load_runner(folder, backend="onnx-int8", int8_verdicts=FILE)``: onnxruntime + tokenizers,
  no torch; the int8 re-check on this CPU read from the verdicts file an init container writes
  (``smm validate --int8-verdicts``, ``SMM_INT8_VERDICTS``): the service's path in Kubernetes
* ``lean-int8-checked``  the same without a verdicts file: the load re-checks int8 on this CPU itself
  (8 reference texts when this CPU computes as the gate's did)
* ``lean-fp32``  ``load_runner(folder, backend="onnx-fp32")``
* ``ours-torch`` ``load_runner(folder, backend="torch")`` (context: our torch path)
* ``pipeline``   BASELINE: ``transformers.pipeline("text-classification", model=folder, top_k=None)``

Time = spawn -> first prediction returned (interpreter start, imports, model load, one text).
Peak RSS = the child's ru_maxrss from wait4. The page cache is warm (the files were just written or
read by an earlier round): this measures the software, not the disk.

Bytecode: before measuring, the package's modules are compiled to ``__pycache__`` as ``pip install``
does for a wheel (and the image's ``compileall`` step). transformers and torch in the baseline come
from a pip install and are compiled; an editable checkout under ``PYTHONDONTWRITEBYTECODE=1`` would
otherwise compile ~30 of our modules from source in every child (about 0.09 s on a 2-core AVX2 EPYC),
which no installed copy pays. The result records it as ``"bytecode"``.

    .venv/bin/python bench/bench_cold_start.py              # --rounds 5; ~2 min on 2 idle cores
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _bench_util import load_guard, machine, median, rotated, run_child, versions, write_result  # noqa: E402
from make_finbert_shaped import ensure  # noqa: E402

TEXT = "Stocks rally as inflation cools more than expected"
REPORT = """
import json, sys, time
t = time.time()
heavy = sorted(m for m in ("torch", "transformers", "onnxruntime") if m in sys.modules)
print(json.dumps({{"t_done": t, "backend": {backend}, "top": {top}, "heavy": heavy}}))
"""
OURS = """
from pathlib import Path
from smart_model_manager.loaders import load_runner
v = @VERDICTS@
r = load_runner(@FOLDER@, "sentiment", backend=@BACKEND@, int8_verdicts=Path(v) if v else None)
out = r([@TEXT@])
""" + REPORT.format(backend="r.backend", top="max(range(len(out[0])), key=out[0].__getitem__)")
PIPELINE = """
from transformers import pipeline
p = pipeline("text-classification", model=@FOLDER@, top_k=None, device="cpu")
out = p([@TEXT@])
""" + REPORT.format(backend='"pipeline"', top="out[0][0]['label']")

TARGETS = {"lean-int8": {"seconds": 0.08, "peak_rss_mb": 0.35}, "lean-fp32": {"seconds": 0.25}}


def write_verdict(folder: Path, path: Path) -> None:
    """What the init container's ``smm validate --int8-verdicts`` records, for this plain folder."""
    import json

    from smart_model_manager.loaders.int8_check import check_int8_runner, write_verdicts
    from smart_model_manager.loaders.onnx import load_onnx_runner

    runner = load_onnx_runner(folder, "sentiment", onnx_file=folder / "onnx" / "model.int8.onnx")
    result = check_int8_runner(runner, folder, "sentiment")
    digest = json.loads((folder / "onnx" / "quality.json").read_text())["files"]["onnx/model.int8.onnx"]["sha256"]
    write_verdicts(path, [{"int8_sha256": digest, **result.as_dict()}])
    print(f"int8 re-check on this CPU: {result.status} ({result.seconds:.3f}s in-process: {result.reason})",
          file=sys.stderr)


def compile_package() -> str:
    """Compile the installed package's modules as pip does at install (see the module docstring)."""
    import compileall

    import smart_model_manager

    pkg = Path(smart_model_manager.__file__).resolve().parent
    ok = compileall.compile_dir(str(pkg), quiet=1)
    return f"compiled ({pkg.name}/__pycache__)" if ok else "compile failed: modules compiled per child"


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--rounds", type=int, default=5)
    ap.add_argument("--no-torch", action="store_true", help="skip the ours-torch context variant")
    ap.add_argument("--force", action="store_true", help="write the result even if the machine is busy")
    args = ap.parse_args()
    folder = str(ensure())
    bytecode = compile_package()
    verdicts = Path(folder).parent / "finbert-shaped.int8-verdicts.json"
    write_verdict(Path(folder), verdicts)

    def fill(template: str, backend: str = "", verdicts_file: Path | None = None) -> str:
        return (template.replace("@FOLDER@", repr(folder)).replace("@BACKEND@", repr(backend))
                .replace("@TEXT@", repr(TEXT)).replace("@VERDICTS@", repr(str(verdicts_file)) if verdicts_file else "None"))

    codes = {
        "lean-int8": fill(OURS, "onnx-int8", verdicts),
        "lean-int8-checked": fill(OURS, "onnx-int8"),
        "lean-fp32": fill(OURS, "onnx-fp32"),
        "ours-torch": fill(OURS, "torch"),
        "pipeline": fill(PIPELINE),
    }
    if args.no_torch:
        del codes["ours-torch"]
    before = load_guard(args.force)
    runs: dict[str, list[dict]] = {name: [] for name in codes}
    run_child(codes["lean-int8"])  # warm the page cache for everyone
    run_child(codes["pipeline"])
    for rnd in range(args.rounds):
        for name in rotated(list(codes), rnd):
            r = run_child(codes[name])
            runs[name].append(r)
            print(f"round {rnd + 1}/{args.rounds} {name:<10} {r['seconds']:6.2f}s  "
                  f"{r['peak_rss_mb']:6.0f} MB  heavy={r['heavy']}", file=sys.stderr)
    summary = {}
    for name, rs in runs.items():
        summary[name] = {"seconds": median([r["seconds"] for r in rs]),
                         "peak_rss_mb": median([r["peak_rss_mb"] for r in rs]),
                         "cpu_seconds": median([r["cpu_seconds"] for r in rs]),
                         "backend": rs[0]["backend"], "imports": rs[0]["heavy"]}
    base = summary["pipeline"]
    ratios = {name: {"seconds": s["seconds"] / base["seconds"],
                     "peak_rss_mb": s["peak_rss_mb"] / base["peak_rss_mb"],
                     "cpu_seconds": s["cpu_seconds"] / base["cpu_seconds"]}
              for name, s in summary.items() if name != "pipeline"}
    verdicts = {f"{name} {metric} <= {limit}x": ratios[name][metric] <= limit
                for name, t in TARGETS.items() for metric, limit in t.items()}
    data = {
        "benchmark": "cold_start", "model": "finbert-shaped (BERT-base, 12x768, random weights)",
        "rounds": args.rounds, "baseline": "pipeline", "bytecode": bytecode, "medians": summary, "ratios": ratios,
        "targets": verdicts, "runs": runs, "machine_before": before, "machine_after": machine(),
        "versions": versions()}
    for name, s in summary.items():
        r = ratios.get(name)
        extra = f"  {r['seconds']:.3f}x time  {r['peak_rss_mb']:.3f}x RSS" if r else "  (baseline)"
        print(f"{name:<10} {s['seconds']:6.2f}s  {s['peak_rss_mb']:6.0f} MB{extra}")
    for k, ok in verdicts.items():
        print(f"target {k}: {'met' if ok else 'MISSED'}")
    path = write_result("cold_start", data, force=args.force)
    print(f"-> {path}")


if __name__ == "__main__":
    main()
