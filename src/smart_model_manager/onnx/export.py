"""Export a model folder to ONNX, with an int8 copy that is published only if it passes a quality gate.

``export_onnx(folder, "sentiment")`` writes, next to the model (``<folder>/onnx/``):

- ``model.onnx``: fp32, dynamic batch and sequence axes; checked against torch on sample texts
  (max |difference| of the raw outputs must stay below ``FP32_TOLERANCE``, else nothing is
  published: a wrong export is worse than none; :mod:`smart_model_manager.onnx.fp32`);
- ``model.int8.onnx``: int8 weights, kept only if the **quality gate** passes on the gate sample
  (:mod:`smart_model_manager.onnx.gate`: 3,000 texts by default): the lower 95 % bound of the label
  agreement (sentiment) / mean cosine (embeddings) with fp32 must be >= 0.99. The recipes
  (:mod:`smart_model_manager.onnx.quantize`) are tried in order and the first that passes is published. If none passes, nothing is published (and a stale int8 file from an earlier export is
  removed) so nothing can load it;
- ``quality.json``: the gate result (counts, bound, flips per class and per source, the gate's CPU), the
  fp32 references other CPUs re-check int8 against, the fp32-vs-torch difference, sizes and sha256 of
  the files (canonical JSON, sorted keys). The loaders read it: ``auto`` uses int8 only if ``accepted``.

Every file is written to a temporary name in ``onnx/`` and renamed into place when complete.
torch, transformers, onnx and onnxruntime are imported inside functions only (layer 5).
"""

from __future__ import annotations

import json
import os
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from ..errors import BackendError, UnknownModelTypeError
from ..progress import ProgressFn
from ..store.hashing import sha256_file, with_prefix
from .fp32 import FP32_TOLERANCE, export_graph, fp32_difference, load_for_export
from .gate import MIN_SAMPLES, Sample, gate_samples, read_golden_file, references
from .quantize import GATE_THRESHOLDS, INT8_RECIPES, GateResult, _tmp_name, _unlink, build_int8
from .samples import BUILTIN_SAMPLES, default_sample_texts

# Tried in order until one passes the gate (see quantize.py); ``static-qdq`` is measured in
# bench/bench_int8_quality.py but left out by default: it never passed on our models and costs
# a calibration run per export.
DEFAULT_INT8_RECIPES = ("all", "sensitive-fp32")

MODEL_TYPES = ("sentiment", "embeddings")
QUALITY_FORMAT = 2  # 2: the gate decides on a 95 % bound and records fp32 references for re-checks
EXPORT_INSTALL = "pip install 'smart-model-manager[export]'"


@dataclass(frozen=True)
class ExportReport:
    folder: Path
    model_type: str
    fp32_path: Path
    int8_path: Path | None            # None: not requested, or the gate refused it
    quality_path: Path
    exporter: str                     # "dynamo" or "torchscript"
    fp32_max_abs_diff: float          # raw outputs, ONNX fp32 vs torch, on the sample texts
    gate: GateResult | None           # None when int8 was not requested
    seconds: float
    files: dict[str, dict[str, Any]] = field(default_factory=dict)

    def as_dict(self) -> dict[str, Any]:
        return {"folder": str(self.folder), "model_type": self.model_type,
                "fp32_path": str(self.fp32_path),
                "int8_path": str(self.int8_path) if self.int8_path else None,
                "quality_path": str(self.quality_path), "exporter": self.exporter,
                "fp32_max_abs_diff": self.fp32_max_abs_diff,
                "gate": self.gate.as_dict() if self.gate else None,
                "seconds": round(self.seconds, 2), "files": self.files}

    @property
    def int8_accepted(self) -> bool:
        return self.gate is not None and self.gate.accepted

    def lines(self) -> list[str]:
        """Human summary for the CLI."""
        out = [f"wrote {self.fp32_path} ({_mb(self.fp32_path)}; exporter {self.exporter}; "
               f"max |onnx - torch| = {self.fp32_max_abs_diff:.2e})"]
        if self.gate is None:
            out.append("int8: not requested (--no-int8)")
        elif self.gate.accepted and self.int8_path is not None:
            out.append(f"wrote {self.int8_path} ({_mb(self.int8_path)}; int8 recipe "
                       f"{self.gate.recipe!r}); quality gate PASSED: {self.gate.metric} "
                       f"{self.gate.value:.4f}, lower 95% bound {(self.gate.bound or 0.0):.4f} >= "
                       f"{self.gate.threshold} on {self.gate.samples} texts")
            out.append("the int8 model is published and used by the default backend (auto): smaller and "
                       "faster than fp32 (1.7-2.5x less CPU time on the demo model, docs/benchmarks.md), "
                       "its answers checked against fp32 by the gate above")
        else:
            # A designed outcome, not an error: say what was published, why, and
            # what it costs, in words a first-time user of the main job can act on.
            what = ("labels agreed with fp32 on" if self.gate.metric == "label_agreement"
                    else "mean cosine similarity with fp32 was")
            out.append(f"int8 not published (by design, not an error): on {self.gate.samples} "
                       f"check texts its {what} {self.gate.value:.2%}, lower 95% bound "
                       f"{(self.gate.bound or 0.0):.2%}; the quality gate asks the bound for "
                       f"{self.gate.threshold:.0%}")
            out.append("the fp32 ONNX model is published and used: the same answers as torch, "
                       "at fp32 speed. Re-running the same export gives the same answer; what can change "
                       "it: smm export onnx MODEL with --recipe R (another recipe: the measured table is in "
                       "docs/onnx.md and docs/benchmarks.md), --samples FILE (your production texts as the gate "
                       "sample), --min-samples N (more texts, a tighter bound) or --threshold T (a lower bar)")
        out.append(f"wrote {self.quality_path}")
        return out


def _mb(path: Path) -> str:
    return f"{path.stat().st_size / 1e6:.1f} MB"


def infer_model_type(folder: Path) -> str:
    """sentiment for ``*ForSequenceClassification`` checkpoints, embeddings for bare encoders."""
    from ..loaders._common import read_json

    archs = read_json(Path(folder) / "config.json").get("architectures") or []
    if any(str(a).endswith("ForSequenceClassification") for a in archs):
        return "sentiment"
    if not archs or any(str(a).endswith("Model") for a in archs):
        return "embeddings"
    raise UnknownModelTypeError(f"{folder}/config.json: cannot tell the model type from architectures "
                                f"{archs}; pass it explicitly (--type sentiment|embeddings)")


def _file_entry(path: Path) -> dict[str, Any]:
    return {"size": path.stat().st_size, "sha256": with_prefix(sha256_file(path))}


def _write_json_atomic(path: Path, data: dict[str, Any]) -> None:
    tmp = _tmp_name(path.parent, path.name)
    try:
        tmp.write_text(json.dumps(data, sort_keys=True, indent=2) + "\n", encoding="utf-8")
        os.replace(tmp, path)
    finally:
        _unlink(tmp)


def check_golden_file(folder: Path, model_type: str, golden_file: str | Path) -> list[Sample]:
    """The user's golden set, checked against the model's labels (``config.json`` ``id2label``): one
    :class:`~.errors.FormatError` naming file and line for an empty file, a duplicate row, an unknown label."""
    from ..loaders._common import read_json

    labels: list[str] = []
    if model_type == "sentiment":
        id2label = read_json(Path(folder) / "config.json").get("id2label") or {}
        labels = [str(v) for v in id2label.values()]
    return read_golden_file(Path(golden_file), labels)


def _gate_samples(folder: Path, model_type: str, sample_texts: Sequence[str] | None,
                  golden_file: str | Path | None, minimum: int) -> list[Sample]:
    """The user's golden file or texts (checked), then the package's texts up to ``minimum``."""
    user: list[Sample] = []
    if golden_file is not None:
        user = check_golden_file(folder, model_type, golden_file)
    elif sample_texts is not None:
        user = [Sample(t, "user") for t in dict.fromkeys(sample_texts) if isinstance(t, str) and t.strip()]
        if not user:
            raise ValueError("sample_texts is empty; the export check and the int8 gate need texts")
    return gate_samples(user, minimum)


def _sample_summary(samples: Sequence[Sample], golden_file: str | Path | None, minimum: int) -> dict[str, Any]:
    counts: dict[str, int] = {}
    for s in samples:
        counts[s.source] = counts.get(s.source, 0) + 1
    out: dict[str, Any] = {"sources": counts, "min_samples": minimum}
    if golden_file is not None:
        out["golden_file"] = Path(golden_file).name  # the name only: paths differ between machines
    return out


def _import_export_stack() -> tuple[Any, Any]:
    """(torch, onnxruntime), or one BackendError that says what to install."""
    try:
        import onnxruntime
        import onnxruntime.quantization  # noqa: F401
        import torch
        import transformers  # noqa: F401
    except ImportError as err:
        raise BackendError(f"ONNX export needs torch, transformers, onnx, onnxscript and "
                           f"onnxruntime ({err}); install them with: {EXPORT_INSTALL}") from err
    return torch, onnxruntime


def _check_recipes(int8: bool, int8_recipes: Sequence[str]) -> list[str]:
    recipes = list(int8_recipes)
    unknown = [r for r in recipes if r not in INT8_RECIPES]
    if unknown or (int8 and not recipes):
        raise ValueError(f"int8_recipes must be a non-empty subset of {list(INT8_RECIPES)}, got {recipes}")
    return recipes


def _int8_step(folder: Path, model_type: str, fp32_path: Path, int8_path: Path, fp32_runner: Any,
               fp32_out: Any, samples: list[Sample], *, threshold: float, recipes: list[str],
               threads: int | None, say: ProgressFn, golden_file: str | Path | None, min_samples: int,
               files: dict[str, dict[str, Any]]) -> tuple[GateResult, Path | None, dict[str, Any]]:
    """Build and gate the int8 copy: (gate result, the published int8 file or None, quality.json's "int8").
    Adds the published file to ``files``."""
    from ..loaders.cpu import cpu_features, isa_name

    labels = fp32_runner.labels
    outcome = build_int8(folder, model_type, fp32_path, int8_path, samples=samples, fp32_out=fp32_out,
                         threshold=threshold, recipes=recipes, threads=threads, progress=say,
                         labels=labels)
    cpu = cpu_features()  # where the gate ran: its kernels decided the numbers above
    record = {**outcome.gate.as_dict(), "attempts": outcome.attempts, "per_channel": True,
              "sample": _sample_summary(samples, golden_file, min_samples),
              "cpu": {**cpu, "isa": isa_name(cpu)}}
    if outcome.path is not None and outcome.int8_out is not None:
        files["onnx/model.int8.onnx"] = _file_entry(outcome.path)
        record["references"] = references(
            model_type, samples, fp32_out, outcome.int8_out, labels=labels, cpu=cpu,
            fp32_sha256=files["onnx/model.onnx"]["sha256"])
    return outcome.gate, outcome.path, record


def export_onnx(folder: str | Path, model_type: str, *, out_dir: str | Path | None = None,
                int8: bool = True, sample_texts: Sequence[str] | None = None,
                int8_threshold: float | None = None, threads: int | None = None,
                int8_recipes: Sequence[str] = DEFAULT_INT8_RECIPES,
                golden_file: str | Path | None = None, min_samples: int = MIN_SAMPLES,
                progress: ProgressFn | None = None) -> ExportReport:
    """Export ``folder`` to ``<out_dir or folder/onnx>/model.onnx`` (+ gated ``model.int8.onnx``).

    The gate sample (:func:`.int8_gate.gate_samples`): ``golden_file`` (checked: one clear error for an
    empty file, a duplicate row or an unknown label) or ``sample_texts`` first, then the package's texts
    until there are ``min_samples``. ``progress`` (optional) gets one status line as each step starts.
    """
    say = progress or (lambda _msg: None)
    started = time.perf_counter()
    folder = Path(folder)
    if model_type not in MODEL_TYPES:
        raise UnknownModelTypeError(f"cannot export model type {model_type!r} to ONNX; supported: "
                                    f"{', '.join(MODEL_TYPES)}")
    say("importing torch, transformers and onnxruntime")
    torch, onnxruntime = _import_export_stack()
    from ..loaders.onnx import load_onnx_runner

    samples = _gate_samples(folder, model_type, sample_texts, golden_file, min_samples)
    texts = [s.text for s in samples]
    threshold = GATE_THRESHOLDS[model_type] if int8_threshold is None else float(int8_threshold)
    recipes = _check_recipes(int8, int8_recipes)
    out = Path(out_dir) if out_dir is not None else folder / "onnx"
    out.mkdir(parents=True, exist_ok=True)
    fp32_path, int8_path, quality_path = out / "model.onnx", out / "model.int8.onnx", out / "quality.json"

    model, tokenizer, input_names = load_for_export(folder, model_type, say)
    tmp_fp32 = _tmp_name(out, "model.onnx")
    try:
        say("exporting the ONNX graph (torch.onnx)")
        exporter, output = export_graph(model, tokenizer, input_names, model_type, tmp_fp32)
        check = texts[:16]
        say(f"checking ONNX fp32 against torch on {len(check)} texts")
        fp32_runner = load_onnx_runner(folder, model_type, onnx_file=tmp_fp32, threads=threads)
        diff = fp32_difference(model, tokenizer, input_names, output, fp32_runner, check, fp32_path)
        fp32_out = fp32_runner(texts)
        os.replace(tmp_fp32, fp32_path)
        # keys are where the files live in the model folder, even when written elsewhere first
        # (the CLI exports to a temp dir and adds the files to a cache snapshot)
        files = {"onnx/model.onnx": _file_entry(fp32_path)}
        quality: dict[str, Any] = {
            "format": QUALITY_FORMAT, "model_type": model_type, "exporter": exporter,
            "fp32": {"max_abs_diff_vs_torch": float(f"{diff:.3e}"), "samples": len(check),
                     "tolerance": FP32_TOLERANCE},
            "versions": {"torch": torch.__version__, "onnxruntime": onnxruntime.__version__},
        }

        gate: GateResult | None = None
        published_int8: Path | None = None
        if int8:
            gate, published_int8, quality["int8"] = _int8_step(
                folder, model_type, fp32_path, int8_path, fp32_runner, fp32_out, samples,
                threshold=threshold, recipes=recipes, threads=threads, say=say, golden_file=golden_file,
                min_samples=min_samples, files=files)
        else:
            quality["int8"] = {"accepted": False, "reason": "not requested"}
            _unlink(int8_path)
        quality["files"] = files
        _write_json_atomic(quality_path, quality)
    finally:
        _unlink(tmp_fp32)

    return ExportReport(folder=folder, model_type=model_type, fp32_path=fp32_path,
                        int8_path=published_int8, quality_path=quality_path, exporter=exporter,
                        fp32_max_abs_diff=diff, gate=gate, seconds=time.perf_counter() - started,
                        files=files)


__all__ = [
    "BUILTIN_SAMPLES",
    "DEFAULT_INT8_RECIPES",
    "GATE_THRESHOLDS",
    "INT8_RECIPES",
    "ExportReport",
    "GateResult",
    "check_golden_file",
    "default_sample_texts",
    "export_onnx",
    "infer_model_type",
]
