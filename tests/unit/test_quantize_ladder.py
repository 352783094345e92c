"""The int8 ladder's pure parts: gate arithmetic, which nodes stay float, and that calibration text
never overlaps the gate's held-out sample."""

from __future__ import annotations

import pytest

from smart_model_manager.onnx.quantize import GATE_THRESHOLDS, INT8_RECIPES, gate, most_sensitive
from smart_model_manager.onnx.samples import (
    BUILTIN_SAMPLES,
    CALIBRATION_HEADLINES,
    calibration_texts,
    default_sample_texts,
)

pytestmark = pytest.mark.unit


def test_the_gate_sample_keeps_held_out_text_apart_from_calibration_text() -> None:
    from smart_model_manager.onnx.gate import builtin_samples

    gate_texts, calib = set(default_sample_texts()), set(calibration_texts())
    assert len(gate_texts) > 100 and len(calib) > 100  # checkout: held-out split + built-ins / train split
    assert not gate_texts & calib
    assert not set(BUILTIN_SAMPLES) & set(CALIBRATION_HEADLINES)
    # the gate scores every text the package has, calibration texts included; each keeps its source so
    # quality.json can report the held-out agreement on its own
    by_source: dict[str, set[str]] = {}
    for s in builtin_samples():
        by_source.setdefault(s.source, set()).add(s.text)
    assert by_source["heldout"] | by_source["builtin"] == gate_texts
    assert not (by_source["heldout"] | by_source["builtin"]) & calib


def test_most_sensitive_takes_the_top_mass_and_respects_the_cap() -> None:
    scores = [("a", 50.0), ("b", 30.0), ("c", 10.0), ("d", 5.0), ("e", 3.0), ("f", 2.0), ("g", 0.0), ("h", 0.0)]
    assert most_sensitive(scores, mass=0.8, max_share=1.0) == ["a", "b"]    # 50 + 30 = 80 %
    assert most_sensitive(scores, mass=0.85, max_share=1.0) == ["a", "b", "c"]
    assert most_sensitive(scores, mass=0.99, max_share=0.25) == ["a", "b"]  # 8 candidates -> at most 2
    assert most_sensitive([("only", 1.0)], mass=0.5, max_share=0.01) == ["only"]  # at least one


def test_gate_counts_label_agreement_and_cosine() -> None:
    fp32 = [[0.7, 0.2, 0.1], [0.1, 0.8, 0.1], [0.3, 0.3, 0.4]]
    int8 = [[0.6, 0.3, 0.1], [0.5, 0.4, 0.1], [0.3, 0.3, 0.4]]
    res = gate("sentiment", fp32, int8, GATE_THRESHOLDS["sentiment"], "all")
    assert (res.metric, res.samples, res.accepted) == ("label_agreement", 3, False)
    assert res.bound is not None and res.bound < res.value
    assert res.value == pytest.approx(2 / 3)
    vecs = [[1.0, 0.0], [0.0, 1.0]]
    res = gate("embeddings", vecs, vecs, 0.99, "sensitive-fp32")
    assert res.accepted and res.value == pytest.approx(1.0) and res.worst == pytest.approx(1.0)
    assert res.as_dict()["recipe"] == "sensitive-fp32"


def test_recipes_are_named_in_ladder_order() -> None:
    from smart_model_manager.onnx.export import DEFAULT_INT8_RECIPES

    assert INT8_RECIPES[0] == "all" and set(DEFAULT_INT8_RECIPES) <= set(INT8_RECIPES)
    assert {"all-reduce-range", "all-u8u8", "all-pre", "static-qdq", "static-qdq-s8s8", "sensitive-fp32"} \
        <= set(INT8_RECIPES)
