#!/usr/bin/env python3
"""Chart of the backend benchmarks -> docs/img/backends.png (reads bench/results/*.json).

    .venv/bin/python bench/chart.py
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _bench_util import REPO, RESULTS  # noqa: E402

OUT = REPO / "docs" / "img" / "backends.png"
COLORS = {"lean-int8": "#1b9e77", "onnx-int8": "#1b9e77", "lean-fp32": "#66a61e", "onnx-fp32": "#66a61e",
          "ours-torch": "#7570b3", "pipeline": "#999999", "mock": "#1b9e77", "import-transformers": "#999999",
          "python": "#cccccc"}


def load(name: str) -> dict | None:
    path = RESULTS / f"{name}.json"
    return json.loads(path.read_text()) if path.is_file() else None


def bars(ax, names, values, unit, title, ratios=None, fmt="{:.2f}"):  # noqa: ANN001, ANN201
    ax.bar(names, values, color=[COLORS.get(n, "#444444") for n in names])
    for i, (n, v) in enumerate(zip(names, values)):
        label = fmt.format(v)
        if ratios and n in ratios:
            label += f"\n{ratios[n]:.2f}x"
        ax.text(i, v, label, ha="center", va="bottom", fontsize=8)
    ax.set_title(title, fontsize=10)
    ax.set_ylabel(unit)
    ax.tick_params(axis="x", labelrotation=20, labelsize=8)
    ax.margins(y=0.25)


def main() -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    cold, thr, mock = load("cold_start"), load("throughput"), load("mock")
    panels = [p for p in (cold, cold, thr, mock) if p is not None]
    if not panels:
        raise SystemExit("no results in bench/results; run the benchmarks first")
    fig, axes = plt.subplots(1, 4, figsize=(16, 4.2))
    if cold:
        names = list(cold["medians"])
        bars(axes[0], names, [cold["medians"][n]["seconds"] for n in names], "seconds",
             "Cold start to first prediction\n(fresh process, lower is better)",
             {n: r["seconds"] for n, r in cold["ratios"].items()})
        bars(axes[1], names, [cold["medians"][n]["peak_rss_mb"] for n in names], "MB",
             "Peak RSS of that process\n(lower is better)",
             {n: r["peak_rss_mb"] for n, r in cold["ratios"].items()}, fmt="{:.0f}")
    if thr:
        names = list(thr["medians"])
        bars(axes[2], names, [thr["medians"][n]["texts_per_s"] for n in names], "texts / s",
             f"Throughput, {thr['texts']} headlines\n(higher is better)", thr["ratios"], fmt="{:.1f}")
    if mock:
        names = list(mock["medians"])
        bars(axes[3], names, [mock["medians"][n]["seconds"] * 1000 for n in names], "ms",
             "Test env: first mock prediction\nvs `import transformers`", mock["ratios"], fmt="{:.0f}")
    load_note = (cold or thr or mock)["machine_before"]
    fig.suptitle(f"BERT-base shaped like FinBERT; baseline (grey) measured in the same run; ratios vs baseline. "
                 f"{load_note['cpus_affinity']} CPUs, load avg {load_note['loadavg'][0]}", fontsize=10)
    fig.tight_layout()
    OUT.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(OUT, dpi=110)
    print(f"-> {OUT}")


if __name__ == "__main__":
    main()
