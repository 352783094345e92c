"""Which nodes of an fp32 graph int8 hurts most: measured end to end, one node at a time (the
``sensitive-fp32`` recipe of :mod:`.quantize` keeps the worst in float).

Layer 5: onnx, onnxruntime and numpy are imported inside functions only.
"""

from __future__ import annotations

import contextlib
import logging
import warnings
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any

# sensitive-fp32: keep the top nodes that make up this share of the summed single-node error ...
SENSITIVE_MASS = 0.8
# ... but never more than this share of the candidate nodes (beyond that int8 buys little speed)
SENSITIVE_MAX = 0.25


@contextlib.contextmanager
def quiet(*logger_names: str) -> Iterator[None]:
    """Silence third-party chatter (torch.onnx registration notes, onnxruntime's pre-processing advice,
    which it logs on the *root* logger) for the duration of one export step; levels are restored after."""
    loggers = [logging.getLogger(n) if n else logging.getLogger() for n in logger_names]
    saved = [lg.level for lg in loggers]
    try:
        for lg in loggers:
            lg.setLevel(logging.ERROR)
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            yield
    finally:
        for lg, level in zip(loggers, saved):
            lg.setLevel(level)


def candidate_nodes(model: Any) -> list[tuple[str, str, str]]:
    """(node name, op, weight initializer) of every node dynamic quantization turns int8: MatMuls
    whose second input is a 2-D initializer, Gathers whose table is one."""
    inits = {i.name: i for i in model.graph.initializer}
    out = []
    for node in model.graph.node:
        if node.op_type == "MatMul" and len(node.input) == 2 and node.input[1] in inits \
                and len(inits[node.input[1]].dims) == 2:
            out.append((node.name, "MatMul", node.input[1]))
        elif node.op_type == "Gather" and node.input and node.input[0] in inits \
                and len(inits[node.input[0]].dims) == 2:
            out.append((node.name, "Gather", node.input[0]))
    return out


def _fake_quant_weight(w: Any, op: str) -> Any:
    """The float values int8 dynamic quantization stores: MatMul weights symmetric int8 per output
    channel; a Gather table uint8 per tensor (asymmetric, range including 0)."""
    import numpy as np

    w = w.astype(np.float32)
    if op == "MatMul":
        scale = np.abs(w).max(axis=0, keepdims=True) / 127.0
        scale[scale == 0] = 1.0
        return (np.clip(np.round(w / scale), -127, 127) * scale).astype(np.float32)
    lo, hi = min(float(w.min()), 0.0), max(float(w.max()), 0.0)
    scale = (hi - lo) / 255.0 or 1.0
    zero = np.round(-lo / scale)
    return ((np.clip(np.round(w / scale) + zero, 0, 255) - zero) * scale).astype(np.float32)


def _switch_model(fp32_path: Path) -> tuple[Any, list[tuple[str, str, str]]]:
    """The fp32 graph where input ``smm_q<i>`` (bool) switches candidate node i to simulated int8:
    its weight to the fake-quantized copy and (MatMul) its activation through
    DynamicQuantizeLinear/DequantizeLinear, the arithmetic ONNX Runtime's dynamic int8 kernels do."""
    import onnx
    from onnx import TensorProto, helper, numpy_helper

    model = onnx.load(str(fp32_path))
    inits = {i.name: i for i in model.graph.initializer}
    cands = candidate_nodes(model)
    by_name = {n.name: n for n in model.graph.node}
    new_nodes: dict[str, list[Any]] = {}
    for i, (name, op, wname) in enumerate(cands):
        node, sw = by_name[name], f"smm_q{i}"
        model.graph.input.append(helper.make_tensor_value_info(sw, TensorProto.BOOL, []))
        fq = numpy_helper.from_array(_fake_quant_weight(numpy_helper.to_array(inits[wname]), op),
                                     f"{wname}.smm_fq{i}")
        model.graph.initializer.append(fq)
        pre = [helper.make_node("Where", [sw, fq.name, wname], [f"{wname}.smm_w{i}"])]
        if op == "MatMul":
            act = node.input[0]
            pre += [helper.make_node("DynamicQuantizeLinear", [act],
                                     [f"{act}.q{i}", f"{act}.s{i}", f"{act}.z{i}"]),
                    helper.make_node("DequantizeLinear", [f"{act}.q{i}", f"{act}.s{i}", f"{act}.z{i}"],
                                     [f"{act}.dq{i}"]),
                    helper.make_node("Where", [sw, f"{act}.dq{i}", act], [f"{act}.sel{i}"])]
            node.input[0] = f"{act}.sel{i}"
            node.input[1] = f"{wname}.smm_w{i}"
        else:
            node.input[0] = f"{wname}.smm_w{i}"
        new_nodes[name] = pre
    ordered = []
    for node in model.graph.node:
        ordered += new_nodes.get(node.name, [])
        ordered.append(node)
    del model.graph.node[:]
    model.graph.node.extend(ordered)
    return model, cands


def node_sensitivity(fp32_path: Path, runner: Any, texts: Sequence[str]) -> list[tuple[str, float]]:
    """``[(node, score)]``, most sensitive first: score = mean squared difference of the raw outputs
    (over real tokens) between the fp32 graph and the same graph with only that node in int8."""
    import numpy as np
    import onnxruntime as ort

    from ..loaders.onnx import session_options

    model, cands = _switch_model(fp32_path)
    so = session_options(1)  # one thread: the scores, and so the chosen nodes, must not vary by machine
    with quiet("", "onnxruntime"):
        sess = ort.InferenceSession(model.SerializeToString(), so, providers=["CPUExecutionProvider"])
    del model
    encs = runner.encode(list(texts))
    order = sorted(range(len(encs)), key=lambda i: len(encs[i].ids))
    batches = [runner._feed([encs[j] for j in order[k:k + 32]],
                            max(len(encs[j].ids) for j in order[k:k + 32]))
               for k in range(0, len(order), 32)]
    off = {f"smm_q{i}": np.array(False) for i in range(len(cands))}
    refs = [sess.run(None, {**feed, **off})[0] for feed in batches]
    scores = []
    for i, (name, _, _) in enumerate(cands):
        sw = {**off, f"smm_q{i}": np.array(True)}
        total, count = 0.0, 0
        for feed, ref in zip(batches, refs):
            got = sess.run(None, {**feed, **sw})[0]
            sq = (got.astype(np.float64) - ref) ** 2
            if sq.ndim == 3:  # last_hidden_state: real tokens only
                sq = sq[feed["attention_mask"].astype(bool)]
            total += float(sq.sum())
            count += sq.size
        scores.append((name, total / max(count, 1)))
    return sorted(scores, key=lambda s: (-s[1], s[0]))


def most_sensitive(scores: Sequence[tuple[str, float]], mass: float = SENSITIVE_MASS,
                   max_share: float = SENSITIVE_MAX) -> list[str]:
    """The top nodes whose scores add up to ``mass`` of the total, at most ``max_share`` of them."""
    total = sum(s for _, s in scores)
    cap = max(1, int(len(scores) * max_share))
    kept: list[str] = []
    acc = 0.0
    for name, score in scores:
        if acc >= mass * total or len(kept) >= cap:
            break
        kept.append(name)
        acc += score
    return kept


__all__ = ["SENSITIVE_MASS", "SENSITIVE_MAX", "candidate_nodes", "most_sensitive", "node_sensitivity", "quiet"]
