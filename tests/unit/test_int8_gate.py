"""The int8 gate's arithmetic, its sample, the golden-file checks, and the re-check against fp32 references."""

from __future__ import annotations

from pathlib import Path

import pytest

from smart_model_manager.errors import FormatError
from smart_model_manager.loaders.cpu import cpu_features, isa_name
from smart_model_manager.onnx.gate import (
    GOLDEN_SIZE,
    MIN_SAMPLES,
    Sample,
    builtin_samples,
    gate_samples,
    read_golden_file,
    recheck,
    references,
    wilson_interval,
)
from smart_model_manager.onnx.quantize import gate

pytestmark = pytest.mark.unit

AVX2 = {"machine": "x86_64", "model": "test cpu", "flags": ["sse4_2", "avx", "avx2", "fma"]}
VNNI = {"machine": "x86_64", "model": "test cpu", "flags": ["avx2", "avx512f", "avx512bw", "avx512_vnni"]}


def test_wilson_bound_matches_the_closed_form_and_is_what_decides() -> None:
    lo, hi = wilson_interval(1000, 1000)
    z2 = 1.959964 ** 2
    assert hi == 1.0 and lo == pytest.approx(1 - z2 / (1000 + z2), abs=1e-9)  # 0.99617
    lo5, _ = wilson_interval(995, 1000)
    assert 0.988 < lo5 < 0.989  # 5 flips in 1,000 cannot prove 99 %
    lo5b, _ = wilson_interval(2985, 3000)
    assert lo5b > 0.99           # the same rate on 3,000 texts can
    # the point value clears 0.99 but the bound does not: refused
    fp32 = [[0.9, 0.05, 0.05]] * 995 + [[0.6, 0.3, 0.1]] * 5
    int8 = [[0.9, 0.05, 0.05]] * 995 + [[0.3, 0.6, 0.1]] * 5
    res = gate("sentiment", fp32, int8, 0.99, "all", labels=["positive", "negative", "neutral"])
    assert res.value == pytest.approx(0.995) and not res.accepted and res.bound == pytest.approx(lo5)
    assert res.as_dict()["flips"] == {"positive -> negative": 5}
    assert gate("sentiment", fp32, fp32, 0.99).accepted


def test_a_small_sample_never_passes_even_with_no_flip() -> None:
    rows = [[0.8, 0.1, 0.1]] * 169
    assert not gate("sentiment", rows, rows, 0.99).accepted  # the old 169-text gate: bound 0.978


def test_gate_records_sources_and_accuracy() -> None:
    samples = [Sample("a", "heldout", "positive"), Sample("b", "heldout", "negative"), Sample("c", "user")]
    fp32 = [[0.9, 0.1], [0.2, 0.8], [0.6, 0.4]]
    int8 = [[0.9, 0.1], [0.6, 0.4], [0.6, 0.4]]
    d = gate("sentiment", fp32, int8, 0.5, samples=samples, labels=["positive", "negative"]).as_dict()
    assert d["per_source"] == {"heldout": {"samples": 2, "agree": 1}, "user": {"samples": 1, "agree": 1}}
    assert d["accuracy"] == {"samples": 2, "fp32": 1.0, "int8": 0.5}
    assert d["agree"] == 2 and d["decision"] == "lower 95% bound >= threshold"


def test_builtin_sample_reaches_the_minimum_with_distinct_texts() -> None:
    samples = builtin_samples()
    texts = [s.text for s in samples]
    assert len(samples) == MIN_SAMPLES and len(set(texts)) == len(texts)
    sources = {s.source for s in samples}
    assert {"heldout", "builtin", "train", "calibration", "variant-framed"} <= sources
    assert len(builtin_samples(1000)) == 1000
    user = [Sample("my own text", "user")]
    mixed = gate_samples(user, 1200)
    assert mixed[0] == user[0] and len(mixed) == 1200


def test_golden_file_errors_are_one_clear_line(tmp_path: Path) -> None:
    empty = tmp_path / "empty.jsonl"
    empty.write_text("\n\n")
    with pytest.raises(FormatError, match="holds no texts"):
        read_golden_file(empty, ["positive"])
    dup = tmp_path / "dup.txt"
    dup.write_text("Stocks rally\nBonds fall\nStocks rally\n")
    with pytest.raises(FormatError, match=r"dup.txt:3: duplicate row: the same text as line 1"):
        read_golden_file(dup)
    bad = tmp_path / "labels.jsonl"
    bad.write_text('{"text": "a", "label": "positive"}\n{"text": "b", "label": "bullish"}\n')
    with pytest.raises(FormatError, match=r"labels.jsonl:2: label 'bullish' is not one of the model's labels"):
        read_golden_file(bad, ["positive", "negative", "neutral"])
    good = tmp_path / "good.jsonl"
    good.write_text('{"text": "a", "label": "Positive"}\n{"text": "b"}\n')
    assert read_golden_file(good, ["positive"]) == [Sample("a", "user", "positive"), Sample("b", "user")]


def _quality(n: int = 200) -> tuple[dict, list[list[float]], list[str]]:
    samples = [Sample(f"text {i}", "builtin") for i in range(n)]
    fp32 = [[0.7, 0.2, 0.1] if i % 2 else [0.1, 0.2, 0.7] for i in range(n)]
    refs = references("sentiment", samples, fp32, fp32, fp32_sha256="sha256:" + "a" * 64, cpu=AVX2,
                      labels=["positive", "negative", "neutral"])
    quality = {"files": {"onnx/model.onnx": {"sha256": "sha256:" + "a" * 64}},
               "int8": {"accepted": True, "threshold": 0.99, "references": refs}}
    return quality, fp32, [s.text for s in samples]


def test_references_are_a_fixed_golden_subset_with_the_gate_cpu() -> None:
    quality, _, _ = _quality()
    refs = quality["int8"]["references"]
    assert len(refs["samples"]) == GOLDEN_SIZE and refs["cpu"]["isa"] == "avx2"
    assert refs["samples"][1] == {"text": "text 3", "fp32": [0.7, 0.2, 0.1], "label": "positive",
                                  "int8": [0.7, 0.2, 0.1]}  # the first 8 keep the gate CPU's int8 outputs
    assert "int8" not in refs["samples"][8]
    assert refs["at_export"] == {"value": 1.0, "agree": GOLDEN_SIZE}


def test_recheck_passes_on_agreeing_cpu_and_falls_back_on_a_disagreeing_one() -> None:
    quality, _, _ = _quality()
    by_text = {r["text"]: r["fp32"] for r in quality["int8"]["references"]["samples"]}

    def same(texts: list[str]) -> list[list[float]]:
        return [by_text[t] for t in texts]

    ok = recheck(quality, "sentiment", same, cpu=VNNI)  # same arithmetic: 8 texts decide
    assert ok.status == "passed" and ok.samples == 8 and ok.gate_cpu["isa"] == "avx2"
    assert "as the gate's CPU did" in ok.reason

    def noisy(texts: list[str]) -> list[list[float]]:  # other kernels, same labels: all 64 are checked
        return [[v + 0.01 * (k == 0) - 0.01 * (k == 1) for k, v in enumerate(by_text[t])] for t in texts]

    other = recheck(quality, "sentiment", noisy, cpu=VNNI)
    assert other.status == "passed" and other.samples == GOLDEN_SIZE and other.value == 1.0

    def perturbed(texts: list[str]) -> list[list[float]]:  # a CPU whose kernels flip 3 of 64 labels
        return [list(reversed(by_text[t])) if i < 3 else by_text[t] for i, t in enumerate(texts)]

    bad = recheck(quality, "sentiment", perturbed, cpu=VNNI)
    assert bad.status == "fallback" and "avx512-vnni" in bad.reason and "avx512_vnni" in bad.reason
    assert bad.value == pytest.approx(61 / 64) and bad.upper < 0.99


def test_missing_or_foreign_references_are_not_gated() -> None:
    quality, _, _ = _quality()

    def never(texts: list[str]) -> list[list[float]]:
        raise AssertionError("no reference, nothing to run")

    del quality["int8"]["references"]
    assert recheck(quality, "sentiment", never, cpu=AVX2).status == "not-gated"
    quality, _, _ = _quality()
    quality["files"]["onnx/model.onnx"]["sha256"] = "sha256:" + "b" * 64
    res = recheck(quality, "sentiment", never, cpu=AVX2)
    assert res.status == "not-gated" and "another fp32 model" in res.reason


def test_cpu_features_reads_the_int8_flags(tmp_path: Path) -> None:
    info = tmp_path / "cpuinfo"
    info.write_text("processor\t: 0\nmodel name\t: Fancy CPU\nflags\t\t: fpu sse4_2 avx2 avx512f avx512bw "
                    "avx512_vnni amx_int8 xsave\n\nprocessor\t: 1\nflags\t\t: fpu\n")
    f = cpu_features(info)
    assert f["model"] == "Fancy CPU" and f["flags"] == ["sse4_2", "avx2", "avx512f", "avx512bw", "avx512_vnni",
                                                        "amx_int8"]
    assert isa_name(f) == "amx" and isa_name(AVX2) == "avx2" and isa_name({"flags": []}) == "baseline"
    assert cpu_features(tmp_path / "absent")["flags"] == []
