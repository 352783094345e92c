"""int8 copies of an exported ONNX model, and the quality gate that decides whether one is published.

:func:`build_int8` tries a ladder of recipes on ``onnx/model.onnx`` and publishes the first whose
outputs pass the **gate** against fp32 on the gate sample (:mod:`.int8_gate`: the lower 95 % bound of
the label agreement / mean cosine must clear the threshold, 0.99). Every attempt is returned for
``quality.json``.

The recipes (:data:`INT8_RECIPES`; the export's default ladder is ``export.DEFAULT_INT8_RECIPES``):

``all``
    ONNX Runtime dynamic quantization of every weight MatMul and embedding Gather: int8 weights,
    per-channel, uint8 activations quantized per tensor at run time (U8S8).
``all-reduce-range``
    ``all`` with 7-bit weights (``reduce_range``): what ONNX Runtime advises against u8s8 saturation on
    x86 CPUs without VNNI.
``all-u8u8``
    ``all`` with uint8 weights (U8U8).
``all-pre``, ``all-reduce-range-pre``
    the same after ONNX Runtime's recommended pre-processing (``quant_pre_process``: shape inference
    and graph optimisation).
``static-qdq``, ``static-qdq-s8s8``
    Static QDQ quantization, per-channel int8 weights, activations whose ranges are calibrated (MinMax)
    on unlabeled in-domain text (:func:`calibration_texts`): uint8 (U8S8) or symmetric int8 (S8S8).
``sensitive-fp32``
    ``all``, except the few nodes that measurably hurt most stay in float (:mod:`.int8_sensitivity`):
    a node's score is the mean squared difference of the raw outputs with only that node in simulated
    int8; the top nodes making up ``SENSITIVE_MASS`` of the summed scores are kept (at most
    ``SENSITIVE_MAX`` of them). A kept embedding table is stored fp16 (a Gather plus a Cast).

Every recipe's numbers on the demo model, per CPU: docs/benchmarks.md (``bench/bench_int8_quality.py``).

Layer 5: onnx, onnxruntime and numpy are imported inside functions only.
"""

from __future__ import annotations

import logging
import os
import uuid
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from .gate import Sample, score as score_outputs
from .samples import calibration_texts
from .sensitivity import candidate_nodes, most_sensitive, node_sensitivity, quiet

log = logging.getLogger(__name__)

GATE_THRESHOLDS = {"sentiment": 0.99, "embeddings": 0.99}
GATE_METRICS = {"sentiment": "label_agreement", "embeddings": "mean_cosine"}
INT8_RECIPES = ("all", "all-reduce-range", "all-u8u8", "all-pre", "all-reduce-range-pre", "static-qdq",
                "static-qdq-s8s8", "sensitive-fp32")
# texts used to measure sensitivity and calibrate static ranges (every k-th calibration text)
CALIBRATION_MAX = 128



@dataclass(frozen=True)
class GateResult:
    """The int8 quality gate (:mod:`.int8_gate`): ``metric`` (label_agreement / mean_cosine) of int8
    against fp32, its lower 95 % bound, and whether that bound clears ``threshold``."""

    metric: str
    value: float
    threshold: float
    samples: int
    accepted: bool
    worst: float | None = None  # lowest per-text cosine (embeddings)
    recipe: str = "all"         # which INT8_RECIPES entry was measured
    bound: float | None = None  # the lower 95 % bound the decision used
    details: dict[str, Any] | None = None  # int8_gate.Score.as_dict(): counts, flips, per source, accuracy

    def as_dict(self) -> dict[str, Any]:
        d: dict[str, Any] = {**(self.details or {}), "metric": self.metric, "value": round(self.value, 6),
                             "threshold": self.threshold, "samples": self.samples,
                             "accepted": self.accepted, "recipe": self.recipe,
                             "decision": "lower 95% bound >= threshold"}
        if self.worst is not None:
            d["worst"] = round(self.worst, 6)
        if self.bound is not None:
            d["bound"] = round(self.bound, 6)
        return d


def gate(model_type: str, fp32: Sequence[Sequence[float]], int8: Sequence[Sequence[float]],
         threshold: float, recipe: str = "all", samples: Sequence[Sample] | None = None,
         labels: Sequence[str] = ()) -> GateResult:
    """Compare int8 outputs with fp32 outputs text by text; accepted when the lower 95 % bound of the
    agreement (Wilson) / mean cosine clears ``threshold``."""
    s = score_outputs(model_type, fp32, int8, samples, labels)
    return GateResult(s.metric, s.value, threshold, s.samples, s.bound >= threshold, worst=s.worst,
                      recipe=recipe, bound=s.bound, details=s.as_dict())


def _subsample(texts: Sequence[str], n: int) -> list[str]:
    """Every k-th text (deterministic), at most ``n``."""
    step = max(1, -(-len(texts) // n))
    return list(texts[::step])[:n]


# -- recipes ----------------------------------------------------------------------------------------

def _embeddings_to_fp16(path: Path, gathers: Sequence[str]) -> None:
    """Store the tables of the named (float) Gathers as fp16 followed by a Cast to float."""
    import numpy as np
    import onnx
    from onnx import TensorProto, helper, numpy_helper

    model = onnx.load(str(path))
    inits = {i.name: i for i in model.graph.initializer}
    changed = False
    for node in model.graph.node:
        if node.name not in gathers or node.op_type != "Gather" or node.input[0] not in inits:
            continue
        table = inits[node.input[0]]
        if table.data_type != TensorProto.FLOAT:
            continue
        half = numpy_helper.from_array(numpy_helper.to_array(table).astype(np.float16), table.name)
        table.CopyFrom(half)
        out = node.output[0]
        node.output[0] = f"{out}.fp16"
        model.graph.node.append(helper.make_node("Cast", [f"{out}.fp16"], [out], to=TensorProto.FLOAT,
                                                 name=f"{node.name}.cast"))
        changed = True
    if changed:
        onnx.save(_toposort(model), str(path))


def _toposort(model: Any) -> Any:
    """Nodes in dependency order (appended Cast nodes must come before their consumers)."""
    produced = {i.name for i in model.graph.input} | {i.name for i in model.graph.initializer}
    pending, ordered = list(model.graph.node), []
    while pending:
        rest = []
        for node in pending:
            if all(not i or i in produced for i in node.input):
                ordered.append(node)
                produced.update(node.output)
            else:
                rest.append(node)
        if len(rest) == len(pending):
            raise ValueError("graph has a cycle or a missing input")
        pending = rest
    del model.graph.node[:]
    model.graph.node.extend(ordered)
    return model


class _Reader:
    """onnxruntime CalibrationDataReader over padded batches of tokenized texts."""

    def __init__(self, batches: list[dict[str, Any]]):
        self.batches = batches
        self.it = iter(batches)

    def get_next(self) -> dict[str, Any] | None:
        return next(self.it, None)

    def rewind(self) -> None:
        self.it = iter(self.batches)


def _preprocessed(src: Path, dst: Path) -> Path:
    """ONNX Runtime's recommended pre-processing (shape inference + graph optimisation), written next to
    ``dst``; the caller removes it."""
    from onnxruntime.quantization.shape_inference import quant_pre_process

    pre = dst.with_name(dst.name + ".pre.onnx")
    quant_pre_process(str(src), str(pre), skip_symbolic_shape=True)
    return pre


def _static(src: Path, dst: Path, runner: Any, calibration: Sequence[str], activation: str) -> None:
    from onnxruntime.quantization import CalibrationMethod, QuantFormat, QuantType, quantize_static

    encs = runner.encode(list(calibration))
    feeds = [runner._feed(encs[k:k + 32], max(len(e.ids) for e in encs[k:k + 32]))
             for k in range(0, len(encs), 32)]
    quantize_static(src, dst, _Reader(feeds), quant_format=QuantFormat.QDQ, per_channel=True,
                    activation_type=QuantType.QUInt8 if activation == "u8" else QuantType.QInt8,
                    weight_type=QuantType.QInt8, calibrate_method=CalibrationMethod.MinMax,
                    op_types_to_quantize=["MatMul", "Gather"],
                    extra_options={"ActivationSymmetric": activation == "s8"})


def quantize_recipe(src: Path, dst: Path, recipe: str, *, runner: Any,
                    calibration: Sequence[str]) -> dict[str, Any]:
    """Write the int8 model of ``recipe`` to ``dst``; returns what the recipe chose (for quality.json)."""
    from onnxruntime.quantization import QuantType, quantize_dynamic

    if recipe not in INT8_RECIPES:
        raise ValueError(f"unknown int8 recipe {recipe!r}; known: {', '.join(INT8_RECIPES)}")
    info: dict[str, Any] = {}
    pre: Path | None = None
    with quiet("", "onnxruntime"):
        try:
            if recipe.endswith("-pre"):
                pre = _preprocessed(src, dst)
                src, recipe = pre, recipe[:-len("-pre")]
                info["pre_process"] = "quant_pre_process"
            if recipe in ("all", "all-reduce-range", "all-u8u8"):
                quantize_dynamic(src, dst, per_channel=True, reduce_range=recipe == "all-reduce-range",
                                 weight_type=QuantType.QUInt8 if recipe == "all-u8u8" else QuantType.QInt8)
                info.update(activations="u8", weights="u8" if recipe == "all-u8u8" else "s8",
                            reduce_range=recipe == "all-reduce-range")
            elif recipe in ("static-qdq", "static-qdq-s8s8"):
                act = "s8" if recipe.endswith("s8s8") else "u8"
                _static(src, dst, runner, calibration, act)
                info.update(calibration_texts=len(calibration), activations=act, weights="s8")
            elif recipe == "sensitive-fp32":
                scores = node_sensitivity(src, runner, calibration)
                kept = most_sensitive(scores)
                quantize_dynamic(src, dst, per_channel=True, weight_type=QuantType.QInt8,
                                 nodes_to_exclude=kept)
                _embeddings_to_fp16(dst, kept)
                info.update(kept_float=kept, candidates=len(scores), calibration_texts=len(calibration),
                            sensitivity={n: float(f"{s:.3e}") for n, s in scores[:max(8, len(kept))]})
        finally:
            _unlink(pre)
    return info


# -- the ladder -------------------------------------------------------------------------------------

def _tmp_name(out_dir: Path, name: str) -> Path:
    return out_dir / f".{name}.tmp-{uuid.uuid4().hex[:12]}"


def _unlink(path: Path | None) -> None:
    if path is not None:
        try:
            path.unlink()
        except FileNotFoundError:
            pass


@dataclass(frozen=True)
class Int8Outcome:
    gate: GateResult                 # the accepted attempt, or the last one tried
    attempts: list[dict[str, Any]]   # every attempt, in order, for quality.json
    path: Path | None                # the published file, None when no recipe passed
    int8_out: list[list[float]] | None = None  # the published file's outputs on the gate sample


def build_int8(folder: Path, model_type: str, fp32_path: Path, int8_path: Path, *,
               samples: Sequence[Sample], fp32_out: list[list[float]], threshold: float,
               recipes: Sequence[str], threads: int | None = None, labels: Sequence[str] = (),
               calibration: Sequence[str] | None = None,
               progress: Callable[[str], None] | None = None) -> Int8Outcome:
    """Try ``recipes`` in order; rename the first that passes the gate to ``int8_path``.

    When none passes, a stale ``int8_path`` from an earlier export is removed so nothing loads it.
    The gate sample includes the calibration texts (the gate scores every text the package has);
    ``quality.json`` keeps each source's own agreement, so the held-out texts can be read on their own.
    """
    import time

    from ..loaders.onnx import load_onnx_runner

    calib = _subsample(calibration if calibration is not None else calibration_texts(), CALIBRATION_MAX)
    texts = [s.text for s in samples]
    fp32_runner = load_onnx_runner(folder, model_type, onnx_file=fp32_path, threads=threads)
    attempts: list[dict[str, Any]] = []
    result: GateResult | None = None
    published: Path | None = None
    int8_out: list[list[float]] | None = None
    for recipe in recipes:
        started = time.perf_counter()
        tmp = _tmp_name(int8_path.parent, int8_path.name)
        if progress is not None:
            progress(f"quantizing to int8 (recipe {recipe!r}) and measuring it on {len(texts)} texts")
        try:
            info = quantize_recipe(fp32_path, tmp, recipe, runner=fp32_runner, calibration=calib)
            int8_runner = load_onnx_runner(folder, model_type, onnx_file=tmp, threads=threads)
            out = int8_runner(list(texts))
            result = gate(model_type, fp32_out, out, threshold, recipe, samples, labels)
            del int8_runner
            # no timings: quality.json is part of the model folder, whose bytes must be reproducible
            attempts.append({**result.as_dict(), **info, "size": tmp.stat().st_size})
            log.debug("int8 recipe %r took %.1fs", recipe, time.perf_counter() - started)
            if result.accepted:
                os.replace(tmp, int8_path)
                published, int8_out = int8_path, out
                break
            log.info("int8 recipe %r failed the gate for %s: %s %.4f, lower 95%% bound %.4f < %s", recipe,
                     folder, result.metric, result.value, result.bound, result.threshold)
        finally:
            _unlink(tmp)
    if published is None:
        log.info("int8 quality gate refused every recipe for %s (%s); publishing fp32 only",
                 folder, ", ".join(recipes))
        _unlink(int8_path)  # a stale int8 file from an earlier export must not survive
    assert result is not None
    return Int8Outcome(gate=result, attempts=attempts, path=published, int8_out=int8_out)


__all__ = [
    "GATE_METRICS",
    "GATE_THRESHOLDS",
    "INT8_RECIPES",
    "GateResult",
    "Int8Outcome",
    "build_int8",
    "calibration_texts",
    "candidate_nodes",
    "gate",
    "most_sensitive",
    "node_sensitivity",
    "quantize_recipe",
    "quiet",
]
