#!/usr/bin/env python3
"""Charts of the benchmarks (read from bench/results/*.json):

* docs/img/backends.png: cold start, peak RSS, throughput, mock start, with their baselines;
* docs/img/ratios.png: every ratio against its same-run baseline on one log scale (cold start, RSS,
  throughput, int8 vs fp32 speed/size/agreement, mock start, validate, service vs naive, service
  efficiency), goals marked; and the service's p50/p95/p99 at 50 % and 90 % of its saturation.

    .venv/bin/python bench/chart.py
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _bench_util import REPO, RESULTS  # noqa: E402

OUT = REPO / "docs" / "img" / "backends.png"
OUT_RATIOS = REPO / "docs" / "img" / "ratios.png"
COLORS = {"lean-int8": "#1b9e77", "lean-int8-checked": "#66c2a5", "onnx-int8": "#1b9e77", "lean-fp32": "#66a61e", "onnx-fp32": "#66a61e",
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
        names = [n for n in mock["medians"] if not n.startswith("pytest-")]  # whole sessions: other scale
        bars(axes[3], names, [mock["medians"][n]["seconds"] * 1000 for n in names], "ms",
             "Test env: first mock prediction\nvs `import transformers`", mock["ratios"], fmt="{:.0f}")
    load_note = (cold or thr or mock)["machine_before"]
    fig.suptitle(f"BERT-base shaped like FinBERT; baseline (grey) measured in the same run; ratios vs baseline. "
                 f"{load_note['cpus_affinity']} CPUs, load avg {load_note['loadavg'][0]}", fontsize=10)
    fig.tight_layout()
    OUT.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(OUT, dpi=110)
    print(f"-> {OUT}")
    ratios_chart(plt)


def collect_ratios() -> list[tuple[str, float, float | None, str, bool]]:
    """(label, ratio, goal, 'lower'/'higher' is better, forced) for every result file that exists."""
    out: list[tuple[str, float, float | None, str, bool]] = []

    def forced(d: dict) -> bool:
        return bool(d.get("load_check", {}).get("forced"))

    if (d := load("cold_start")):
        out.append(("cold start, ONNX int8 vs pipeline", d["ratios"]["lean-int8"]["seconds"], 0.1, "lower", forced(d)))
        out.append(("peak RSS, ONNX int8 vs pipeline", d["ratios"]["lean-int8"]["peak_rss_mb"], 0.35, "lower", forced(d)))
    if (d := load("throughput")):
        out.append(("throughput, ONNX int8 vs pipeline", d["ratios"]["onnx-int8"], 2.5, "higher", forced(d)))
    if (d := load("int8_quality")):
        s = d["sentiment_demo"]
        rec = s["default_export"]["int8"].get("recipe") if s["default_export"]["published"] else None
        if rec in s["recipes"]:
            row = s["recipes"][rec]
            out.append((f"demo int8 ({rec}) speed vs fp32 (CPU)", row["speedup_cpu"], 1.5, "higher", forced(d)))
            out.append(("demo int8 file size vs fp32", row["mb"] / s["fp32"]["mb"], 1.0, "lower", forced(d)))
            out.append(("demo int8 label agreement with fp32", row["gate"]["value"], 0.99, "higher", forced(d)))
    if (d := load("mock")):
        out.append(("mock start vs import transformers", d["ratios"]["mock"], 0.05, "lower", forced(d)))
        if "in_pytest_marginal" in d["ratios"]:
            out.append(("mock start inside pytest (marginal)", d["ratios"]["in_pytest_marginal"], None, "lower",
                        forced(d)))
    if (d := load("bench_validate")):
        out.append(("validate --quick vs full re-hash", 1 / d["ratios"]["full_over_quick"], None, "lower", False))
    svc = sorted(RESULTS.glob("service_load-*.json"))
    for backend in ("auto", "torch"):
        runs = [json.loads(p.read_text()) for p in svc]
        runs = [r for r in runs if r.get("backend_requested") == backend and r.get("threads") is None]
        if runs:
            r = runs[-1]
            out.append((f"service ({backend}) vs naive, saturation", r["ratios"]["throughput"], 2.0, "higher", False))
            out.append((f"service ({backend}) vs naive, p95", r["ratios"]["p95_at_half_naive_saturation"], 0.5,
                        "lower", False))
    if (d := load("service_efficiency")):
        for name, m in d["models"].items():
            out.append((f"service efficiency, {name}", m["efficiency"], 0.8, "higher", forced(d)))
    if (d := load("service_memory")):
        s = d["summary"]
        out.append(("service worst-request peak RSS / idle", s["ours"]["peak_over_idle"], 1.5, "lower", False))
        out.append(("service throughput vs unbounded, 1 headline", s["throughput_ratio_headlines"], 0.9, "higher",
                    False))
        out.append(("service throughput vs unbounded, 64 headlines", s["throughput_ratio_batch64"], 0.9, "higher",
                    False))
    if (d := load("gpu-h200")):
        m = d["final"]["models"].get("finbert-shaped", {})
        for base, goal in (("pipeline-fp16", 1.5), ("lean-ref", 0.8)):
            ratio = m.get("ratios", {}).get(f"smm-default / {base}")
            if ratio is not None:
                out.append((f"GPU ({d['gpu']}) smm vs {base}", ratio, goal, "higher", False))
    return out


def ratios_chart(plt) -> None:  # noqa: ANN001
    rows = collect_ratios()
    eff = load("service_efficiency")
    ncols = 2 if eff else 1
    fig, axes = plt.subplots(1, ncols, figsize=(15 if eff else 10, 0.42 * len(rows) + 1.6), squeeze=False,
                             gridspec_kw={"width_ratios": [2, 1]} if eff else None)
    ax = axes[0][0]
    labels = [r[0] + (" *" if r[4] else "") for r in rows]
    ys = list(range(len(rows)))[::-1]
    colors = []
    for _, ratio, goal, better, _f in rows:
        met = goal is None or (ratio <= goal if better == "lower" else ratio >= goal)
        colors.append("#1b9e77" if met else "#d95f02")
    ax.barh(ys, [r[1] for r in rows], color=colors)
    for y, (_, ratio, goal, better, _f) in zip(ys, rows):
        goal_text = f" (goal {'<=' if better == 'lower' else '>='} {goal:g})" if goal is not None else ""
        ax.text(ratio, y, f" {ratio:.3g}x{goal_text}", va="center", fontsize=8)
        if goal is not None:
            ax.plot([goal, goal], [y - 0.4, y + 0.4], color="black", linewidth=1)
    ax.axvline(1.0, color="#999999", linewidth=0.8, linestyle="--")
    ax.set_xscale("log")
    ax.set_yticks(ys)
    ax.set_yticklabels(labels, fontsize=8)
    ax.set_xlabel("ratio to the baseline measured in the same run (log scale; black tick = goal)")
    ax.set_title("Every ratio: green = goal met, orange = missed; * = written with --force (machine busy)",
                 fontsize=10)
    ax.margins(x=0.35)
    if eff:
        ax2 = axes[0][1]
        width, x = 0.13, 0
        ticks, names = [], []
        for name, m in eff["models"].items():
            for level, lat in sorted(m.get("latency", {}).items()):
                for k, (pct, color) in enumerate((("p50_ms", "#66a61e"), ("p95_ms", "#e6ab02"),
                                                  ("p99_ms", "#d95f02"))):
                    ax2.bar(x + (k - 1) * width, lat[pct], width, color=color,
                            label=pct.replace("_ms", "") if x == 0 else None)
                    ax2.text(x + (k - 1) * width, lat[pct], f"{lat[pct]:.0f}", ha="center", va="bottom", fontsize=7)
                ticks.append(x)
                names.append(f"{name}\nat {level} of saturation")
                x += 1
        ax2.set_xticks(ticks)
        ax2.set_xticklabels(names, fontsize=7)
        ax2.set_ylabel("ms")
        ax2.set_title("Service latency, 1-text requests, open loop", fontsize=10)
        ax2.legend(fontsize=8)
    fig.tight_layout()
    fig.savefig(OUT_RATIOS, dpi=110)
    plt.close(fig)
    print(f"-> {OUT_RATIOS}")


if __name__ == "__main__":
    main()
