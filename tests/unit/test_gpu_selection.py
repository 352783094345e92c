"""Which backend/file/provider load_runner picks on a (faked) CUDA device, and the errors and fallbacks.

No model is loaded: the backend loaders are replaced by recorders (as in test_backend_selection).
"""

from __future__ import annotations

import logging
from pathlib import Path

import pytest
from test_backend_selection import Recorder, make_folder

import smart_model_manager.loaders as loaders
from smart_model_manager.errors import BackendError
from smart_model_manager.loaders import load_runner
from smart_model_manager.loaders._common import token_budget_batches
from smart_model_manager.loaders.device import DeviceChoice
from smart_model_manager.loaders.onnx import providers_for

pytestmark = pytest.mark.unit

TORCH_GPU = DeviceChoice("cuda:0", "bf16", "auto", "auto", "auto: fake -> cuda:0", "NVIDIA H200", "torch")
ORT_GPU = DeviceChoice("cuda:0", "fp32", "auto", "auto", "auto: fake ort", "unknown", "onnxruntime")
EXPLICIT_ORT_GPU = DeviceChoice("cuda:0", "fp32", "cuda", "auto", "SMM_DEVICE=cuda", "unknown", "onnxruntime")


@pytest.fixture
def fakes(monkeypatch: pytest.MonkeyPatch) -> dict[str, Recorder]:
    import smart_model_manager.loaders.onnx as onnx_mod
    import smart_model_manager.loaders.torch as torch_mod
    import smart_model_manager.loaders.torch_cuda as cuda_mod

    rec = {"onnx": Recorder("onnx"), "torch": Recorder("torch"), "cuda": Recorder("torch")}
    monkeypatch.setattr(onnx_mod, "load_onnx_runner", rec["onnx"])
    monkeypatch.setattr(torch_mod, "load_torch_runner", rec["torch"])
    monkeypatch.setattr(cuda_mod, "load_cuda_runner", rec["cuda"])
    monkeypatch.setattr(loaders, "onnx_available", lambda: True)
    monkeypatch.setattr(loaders, "torch_available", lambda: True)
    return rec


def calls(rec: dict[str, Recorder]) -> dict[str, int]:
    return {k: len(v.calls) for k, v in rec.items()}


def test_auto_on_a_torch_gpu_prefers_torch_even_with_an_int8_export(tmp_path: Path, fakes) -> None:
    folder = make_folder(tmp_path, fp32=True, int8=True, accepted=True)
    load_runner(folder, "sentiment", backend="auto", device=TORCH_GPU, token_budget=4096)
    assert calls(fakes) == {"onnx": 0, "torch": 0, "cuda": 1}
    call = fakes["cuda"].calls[0]
    assert call["choice"] is TORCH_GPU and call["token_budget"] == 4096


def test_cpu_choice_keeps_the_cpu_rules(tmp_path: Path, fakes) -> None:
    folder = make_folder(tmp_path, fp32=True, int8=True, accepted=True)
    cpu = DeviceChoice("cpu", "fp32", "auto", "auto", "auto: no GPU -> cpu")
    load_runner(folder, "sentiment", backend="auto", device=cpu)
    # the int8 file first; this quality.json has no fp32 references (not gated), so fp32 is loaded after it
    assert calls(fakes) == {"onnx": 2, "torch": 0, "cuda": 0}
    assert [c["onnx_file"].name for c in fakes["onnx"].calls] == ["model.int8.onnx", "model.onnx"]


def test_auto_on_a_gpu_without_transformers_uses_onnx_fp32_on_cuda(tmp_path: Path, fakes, monkeypatch) -> None:
    monkeypatch.setattr(loaders, "torch_available", lambda: False)
    folder = make_folder(tmp_path, fp32=True, int8=True, accepted=True)
    load_runner(folder, "sentiment", backend="auto", device=TORCH_GPU)
    assert calls(fakes) == {"onnx": 1, "torch": 0, "cuda": 0}
    call = fakes["onnx"].calls[0]
    assert call["onnx_file"].name == "model.onnx"           # never the CPU int8 file on a GPU
    assert (call["device"].device, call["device"].dtype) == ("cuda:0", "fp32")


@pytest.mark.parametrize("backend", ["onnx", "onnx-fp32"])
def test_explicit_onnx_on_a_gpu_runs_the_fp32_file_on_cuda(tmp_path: Path, fakes, backend: str) -> None:
    folder = make_folder(tmp_path, fp32=True, int8=True, accepted=True)
    load_runner(folder, "sentiment", backend=backend, device=TORCH_GPU)
    assert calls(fakes) == {"onnx": 1, "torch": 0, "cuda": 0}
    assert fakes["onnx"].calls[0]["onnx_file"].name == "model.onnx"


def test_int8_on_a_gpu_is_refused(tmp_path: Path, fakes) -> None:
    folder = make_folder(tmp_path, fp32=True, int8=True, accepted=True)
    with pytest.raises(BackendError, match="the int8 file is made for the CPU"):
        load_runner(folder, "sentiment", backend="onnx-int8", device=TORCH_GPU)


def test_half_dtype_with_the_onnx_backend_is_refused(tmp_path: Path, fakes) -> None:
    folder = make_folder(tmp_path, fp32=True)
    fp16 = DeviceChoice("cuda:0", "fp16", "cuda", "fp16", "SMM_DEVICE=cuda", "H200", "torch")
    with pytest.raises(BackendError, match="SMM_DTYPE=fp16 needs the torch backend"):
        load_runner(folder, "sentiment", backend="onnx", device=fp16)


def test_auto_device_with_nothing_for_the_gpu_falls_back_to_cpu_and_logs(tmp_path: Path, fakes, monkeypatch,
                                                                         caplog) -> None:
    caplog.set_level(logging.WARNING, logger="smart_model_manager.loaders.gpu")
    folder = make_folder(tmp_path)  # no onnx export, and the GPU was seen by onnxruntime only
    load_runner(folder, "sentiment", backend="auto", device=ORT_GPU)
    assert calls(fakes) == {"onnx": 0, "torch": 1, "cuda": 0}
    msgs = [r.getMessage() for r in caplog.records]
    assert any("device auto chose cuda:0, but nothing can run this model there" in m
               and "the ONNX backend on a GPU needs" in m and "running on the CPU" in m for m in msgs), msgs


def test_explicit_cuda_with_nothing_for_the_gpu_is_an_error(tmp_path: Path, fakes) -> None:
    folder = make_folder(tmp_path)
    with pytest.raises(BackendError, match=r"cuda:0: .*onnx: the ONNX backend on a GPU needs .*model.onnx.*smm export onnx"):
        load_runner(folder, "sentiment", backend="auto", device=EXPLICIT_ORT_GPU, model_ref="org/m")
    assert calls(fakes) == {"onnx": 0, "torch": 0, "cuda": 0}


def test_torch_backend_on_a_gpu_seen_only_by_onnxruntime_is_an_error(tmp_path: Path, fakes, monkeypatch) -> None:
    monkeypatch.setattr(loaders, "torch_available", lambda: False)
    folder = make_folder(tmp_path, fp32=True)
    with pytest.raises(BackendError, match="cuda:0: torch: the torch backend needs torch and transformers"):
        load_runner(folder, "sentiment", backend="torch", device=ORT_GPU)


# -- ONNX Runtime providers --------------------------------------------------------------------------
def test_the_gpu_order_comes_from_the_backend_table() -> None:
    from smart_model_manager.backends import auto_order, gpu_auto_order

    assert [b.name for b in gpu_auto_order()] == ["torch", "onnx"]     # GPU: torch half precision first
    assert [b.name for b in auto_order()] == ["onnx", "torch"]         # CPU: unchanged


def test_providers_for_cpu_and_gpu() -> None:
    assert providers_for(None, ["CUDAExecutionProvider", "CPUExecutionProvider"]) == ["CPUExecutionProvider"]
    cuda1 = DeviceChoice("cuda:1", "fp32", "cuda:1", "auto", "x", "H200", "torch")
    assert providers_for(cuda1, ["CUDAExecutionProvider", "CPUExecutionProvider"]) == [
        ("CUDAExecutionProvider", {"device_id": 1}), "CPUExecutionProvider"]


def test_no_cuda_provider_falls_back_only_under_auto(caplog) -> None:
    caplog.set_level(logging.WARNING, logger="smart_model_manager.loaders.onnx")
    assert providers_for(TORCH_GPU, ["CPUExecutionProvider"]) == ["CPUExecutionProvider"]
    assert any("onnxruntime has no CUDAExecutionProvider" in r.getMessage() and "runs on the CPU" in r.getMessage()
               for r in caplog.records)
    with pytest.raises(BackendError, match=r"SMM_DEVICE=cuda: onnxruntime has no CUDAExecutionProvider.*\[gpu\]"):
        providers_for(EXPLICIT_ORT_GPU, ["CPUExecutionProvider"])


# -- token-budget batching ---------------------------------------------------------------------------
def test_token_budget_batches_bound_the_padded_size() -> None:
    lengths = [5, 30, 12, 30, 7, 100, 8, 9]
    batches = token_budget_batches(lengths, budget=64, max_rows=3)
    assert sorted(i for b in batches for i in b) == list(range(len(lengths)))
    for b in batches:
        width = max(lengths[i] for i in b)
        assert len(b) <= 3 and (len(b) * width <= 64 or len(b) == 1)
        assert [lengths[i] for i in b] == sorted((lengths[i] for i in b), reverse=True)
    assert batches[0] == [5]                        # 100 tokens > budget: a batch of its own
    assert batches[1] == [1, 3]                     # 2 x 30 = 60 <= 64; a third would be 90
    # many short texts: the row cap applies, not the budget
    assert [len(b) for b in token_budget_batches([4] * 10, budget=10_000, max_rows=4)] == [4, 4, 2]
    with pytest.raises(ValueError):
        token_budget_batches([1], budget=0, max_rows=1)


def test_model_manager_validates_device_and_dtype_arguments() -> None:
    from smart_model_manager import ConfigurationError, ModelManager

    with pytest.raises(ConfigurationError, match="device='gpu' is not valid"):
        ModelManager("test", device="gpu")
    m = ModelManager("test", device="cuda:0", dtype="bf16")
    assert (m.device, m.dtype) == ("cuda:0", "bf16")
    with pytest.raises(ConfigurationError, match="dtype='half' is not valid"):
        m.load_model("ProsusAI/finbert", dtype="half")
    # mocks compute nothing on a device: the test environment never probes for a GPU
    model = m.load_model("ProsusAI/finbert")
    assert (model.info.device, model.info.dtype) == ("cpu", "fp32")
    assert m.info()["device"] == "cuda:0"


def test_an_impossible_device_fails_before_any_download(monkeypatch: pytest.MonkeyPatch) -> None:
    from smart_model_manager import ConfigurationError, ModelManager
    from smart_model_manager.loaders import device as dev
    from smart_model_manager.loaders.device import Probe

    monkeypatch.setattr(dev, "probe", lambda: Probe(True, (), "torch sees no GPU (faked)"))
    m = ModelManager("dev", device="cuda")

    def no_resolve(*a, **k):
        raise AssertionError("resolved (and maybe downloaded) before checking the device")

    monkeypatch.setattr(m, "resolve", no_resolve)
    with pytest.raises(ConfigurationError, match="SMM_DEVICE=cuda but there is no usable GPU"):
        m.load_model("org/not-downloaded-yet")
