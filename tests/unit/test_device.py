"""SMM_DEVICE / SMM_DTYPE: parsing, the choice rules and their errors, on CPU machines with a faked GPU.

Nothing here needs a GPU: the probes are replaced (a ``Probe`` value, or torch.cuda's functions
monkeypatched) and the rules are checked against what they must answer on a real node.
"""

from __future__ import annotations

import json
import logging
import subprocess
import sys

import pytest

from smart_model_manager import ConfigurationError, Settings
from smart_model_manager.loaders import device as dev
from smart_model_manager.loaders.device import DeviceChoice, Gpu, Probe, choose_device

pytestmark = pytest.mark.unit

H200 = Gpu(0, "NVIDIA H200", (9, 0), 141 * 2**30)
T4 = Gpu(1, "Tesla T4", (7, 5))
NO_GPU = Probe(True, (), "torch 2.13.0 sees no GPU (a CPU-only build)")


def fake(*gpus: Gpu, via: str = "torch"):
    return lambda: Probe(True, tuple(gpus), f"torch sees {len(gpus)} CUDA GPU(s)", via)


@pytest.fixture(autouse=True)
def _fresh_log_once(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(dev, "_logged", set())


# -- settings ---------------------------------------------------------------------------------------
@pytest.mark.parametrize(("raw", "device"), [
    (None, "auto"), ("", "auto"), ("auto", "auto"), ("CPU", "cpu"), ("cuda", "cuda"), (" cuda:1 ", "cuda:1"),
    ("cuda:01", "cuda:1"),
])
def test_device_setting_is_normalised(raw, device):
    env = {} if raw is None else {"SMM_DEVICE": raw}
    assert Settings.from_env(env).device == device


@pytest.mark.parametrize(("var", "value", "msg"), [
    ("SMM_DEVICE", "gpu", r"SMM_DEVICE='gpu' is not valid; valid values: auto, cpu, cuda, cuda:N"),
    ("SMM_DEVICE", "cuda:x", "cuda:N"),
    ("SMM_DEVICE", "cuda:-1", "cuda:N"),
    ("SMM_DEVICE", "mps", "valid values"),
    ("SMM_DTYPE", "fp8", r"SMM_DTYPE='fp8' is not valid; valid values: auto, fp32, fp16, bf16"),
    ("SMM_DTYPE", "float16", "valid values"),
    ("SMM_TOKEN_BUDGET", "0", "must be >= 1"),
    ("SMM_TOKEN_BUDGET", "lots", "not an integer"),
])
def test_bad_device_settings_name_the_variable(var, value, msg):
    with pytest.raises(ConfigurationError, match=msg):
        Settings.from_env({var: value})


def test_dtype_and_budget_settings():
    s = Settings.from_env({"SMM_DTYPE": "BF16", "SMM_TOKEN_BUDGET": "8192"})
    assert (s.dtype, s.token_budget, s.device) == ("bf16", 8192, "auto")
    assert Settings.from_env({}).dtype == "auto" and Settings.from_env({}).token_budget is None


# -- the rules ----------------------------------------------------------------------------------------
def test_cpu_probes_nothing_and_runs_fp32():
    def boom() -> Probe:
        raise AssertionError("SMM_DEVICE=cpu must not probe for a GPU")

    c = choose_device("cpu", "auto", probe_fn=boom)
    assert (c.device, c.dtype, c.is_cuda, c.explicit) == ("cpu", "fp32", False, True)
    assert choose_device("cpu", "fp32", probe_fn=boom).dtype == "fp32"


@pytest.mark.parametrize("dtype", ["fp16", "bf16"])
def test_cpu_with_half_precision_is_refused(dtype):
    with pytest.raises(ConfigurationError, match=f"SMM_DTYPE={dtype} with SMM_DEVICE=cpu: half precision is for CUDA"):
        choose_device("cpu", dtype, probe_fn=fake(H200))


def test_auto_without_gpu_is_the_cpu_path_and_logs_it_once(caplog):
    caplog.set_level(logging.INFO, logger="smart_model_manager.loaders.device")
    for _ in range(3):
        c = choose_device("auto", "auto", probe_fn=lambda: NO_GPU)
        assert (c.device, c.dtype) == ("cpu", "fp32")
    assert c.reason == "auto: torch 2.13.0 sees no GPU (a CPU-only build) -> cpu"
    msgs = [r.getMessage() for r in caplog.records if "-> cpu" in r.getMessage()]
    assert msgs == ["device auto: torch 2.13.0 sees no GPU (a CPU-only build) -> cpu"]


def test_auto_without_gpu_ignores_a_half_dtype_with_a_warning(caplog):
    caplog.set_level(logging.INFO, logger="smart_model_manager.loaders.device")
    c = choose_device("auto", "fp16", probe_fn=lambda: NO_GPU)
    assert (c.device, c.dtype, c.requested_dtype) == ("cpu", "fp32", "fp16")
    assert any(r.levelno == logging.WARNING and "SMM_DTYPE=fp16 ignored" in r.getMessage() for r in caplog.records)


def test_auto_on_a_bf16_capable_gpu_is_cuda0_fp16():
    # fp16, not bf16, even where bf16 is native: bf16 missed the 0.01 probability bound on a real H200
    c = choose_device("auto", "auto", probe_fn=fake(H200, T4))
    assert (c.device, c.dtype, c.gpu, c.via, c.explicit) == ("cuda:0", "fp16", "NVIDIA H200", "torch", False)
    assert "fp16 (auto: closest to CPU fp32" in c.reason and "compute capability 9.0" in c.reason
    assert choose_device("auto", "bf16", probe_fn=fake(H200)).dtype == "bf16"  # still there when asked


def test_auto_with_an_older_gpu_is_fp16():
    older = Gpu(0, "Tesla T4", (7, 5))
    c = choose_device("auto", "auto", probe_fn=fake(older))
    assert (c.device, c.dtype) == ("cuda:0", "fp16")
    assert "compute capability 7.5" in c.reason


def test_explicit_dtypes_on_a_gpu():
    assert choose_device("cuda", "fp32", probe_fn=fake(H200)).dtype == "fp32"
    assert choose_device("cuda", "fp16", probe_fn=fake(H200)).dtype == "fp16"
    with pytest.raises(ConfigurationError, match=r"Tesla T4 \(compute capability 7.5\) has no native bf16"):
        choose_device("cuda", "bf16", probe_fn=fake(Gpu(0, "Tesla T4", (7, 5))))


def test_explicit_cuda_without_gpu_is_an_error_never_a_cpu_run():
    with pytest.raises(ConfigurationError) as info:
        choose_device("cuda", "auto", probe_fn=lambda: NO_GPU)
    msg = str(info.value)
    assert "SMM_DEVICE=cuda but there is no usable GPU: torch 2.13.0 sees no GPU" in msg
    assert "do not fall back to the CPU" in msg and "SMM_DEVICE=auto" in msg


def test_explicit_cuda_without_torch_or_ort_gpu_says_what_to_install():
    with pytest.raises(ConfigurationError, match=r"torch is not installed and onnxruntime has no CUDAExecutionProvider.*\[gpu\]"):
        choose_device("cuda:0", "auto", probe_fn=lambda: Probe(False, (), "torch not installed"))


def test_cuda_index_is_checked_against_the_gpus_torch_sees():
    second = Gpu(1, "Tesla T4", (7, 5))
    c = choose_device("cuda:1", "auto", probe_fn=fake(H200, second))
    assert (c.device, c.dtype, c.index, c.gpu) == ("cuda:1", "fp16", 1, "Tesla T4")
    with pytest.raises(ConfigurationError, match=r"SMM_DEVICE=cuda:2 but torch sees 2 GPU\(s\): cuda:0 NVIDIA H200, cuda:1 Tesla T4"):
        choose_device("cuda:2", "auto", probe_fn=fake(H200, second))


def test_gpu_seen_only_by_onnxruntime_runs_fp32():
    ort_only = fake(Gpu(0, "unknown (seen by onnxruntime)", (0, 0)), via="onnxruntime")
    c = choose_device("auto", "auto", probe_fn=ort_only)
    assert (c.device, c.dtype, c.via) == ("cuda:0", "fp32", "onnxruntime")
    assert choose_device("cuda:1", "fp32", probe_fn=ort_only).device == "cuda:1"
    with pytest.raises(ConfigurationError, match="exported file is fp32"):
        choose_device("auto", "bf16", probe_fn=ort_only)


def test_bad_argument_values_are_refused_before_probing():
    with pytest.raises(ConfigurationError, match="valid values: auto, cpu, cuda, cuda:N"):
        choose_device("gpu0", "auto", probe_fn=fake(H200))
    with pytest.raises(ConfigurationError, match="valid values: auto, fp32, fp16, bf16"):
        choose_device("auto", "half", probe_fn=fake(H200))


# -- the probes ---------------------------------------------------------------------------------------
def test_probe_without_a_driver_answers_without_importing_torch():
    if dev.gpu_driver_present():
        pytest.skip("this machine has a GPU driver")
    code = ("import sys, json\nfrom smart_model_manager.loaders.device import choose_device\n"
            "c = choose_device('auto', 'auto')\nprint(json.dumps([c.device, c.reason, 'torch' in sys.modules]))")
    r = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120, check=True)
    device, reason, torch_loaded = json.loads(r.stdout.strip().splitlines()[-1])
    assert device == "cpu" and "no GPU driver on this machine" in reason and torch_loaded is False


def test_probe_torch_reads_torch_cuda(monkeypatch: pytest.MonkeyPatch):
    import torch

    caps = {0: (9, 0), 1: (7, 5)}
    names = {0: "NVIDIA H200", 1: "Tesla T4"}
    monkeypatch.setattr(dev, "gpu_driver_present", lambda: True)
    monkeypatch.setattr(torch.cuda, "is_available", lambda: True)
    monkeypatch.setattr(torch.cuda, "device_count", lambda: 2)
    monkeypatch.setattr(torch.cuda, "get_device_capability", lambda i=0: caps[i])
    monkeypatch.setattr(torch.cuda, "get_device_name", lambda i=0: names[i])
    # emulated bf16 counts as "supported" for torch; it must not for us (T4 stays fp16)
    monkeypatch.setattr(torch.cuda, "is_bf16_supported", lambda *a, **k: True)
    p = dev.probe()
    assert [(g.index, g.name, g.capability, g.bf16) for g in p.gpus] == [
        (0, "NVIDIA H200", (9, 0), True), (1, "Tesla T4", (7, 5), False)]
    assert p.via == "torch" and p.torch_installed
    assert (choose_device("auto", "auto").device, choose_device("auto", "auto").dtype) == ("cuda:0", "fp16")
    assert choose_device("auto", "bf16").dtype == "bf16"
    assert choose_device("cuda:1", "auto").dtype == "fp16"


def test_probe_torch_with_a_broken_driver_reads_as_no_gpu(monkeypatch: pytest.MonkeyPatch):
    import torch

    def broken() -> bool:
        raise RuntimeError("CUDA driver version is insufficient")

    monkeypatch.setattr(dev, "gpu_driver_present", lambda: True)
    monkeypatch.setattr(torch.cuda, "is_available", broken)
    assert choose_device("auto", "auto").device == "cpu"
    with pytest.raises(ConfigurationError, match="CUDA driver version is insufficient"):
        choose_device("cuda", "auto")


def test_probe_without_torch_asks_onnxruntime(monkeypatch: pytest.MonkeyPatch):
    monkeypatch.setattr(dev, "gpu_driver_present", lambda: True)
    monkeypatch.setattr(dev, "probe_torch", lambda: Probe(False, (), "torch not installed"))
    monkeypatch.setattr(dev, "ort_providers", lambda: ["CUDAExecutionProvider", "CPUExecutionProvider"])
    p = dev.probe()
    assert p.via == "onnxruntime" and len(p.gpus) == 1
    monkeypatch.setattr(dev, "ort_providers", lambda: ["CPUExecutionProvider"])
    p = dev.probe()
    assert p.gpus == () and p.detail == "torch not installed"
    assert choose_device("auto", "auto").reason == "auto: torch not installed -> cpu"


def test_describe_reports_the_error_instead_of_raising():
    d = dev.describe("cpu", "bf16")
    assert d["device"] == "error" and "half precision is for CUDA" in d["device_reason"]
    assert dev.describe("cpu", "auto") == {"device": "cpu", "dtype": "fp32", "device_reason": "SMM_DEVICE=cpu",
                                           "gpu": None}


def test_smm_env_shows_device_dtype_and_why(capsys, monkeypatch: pytest.MonkeyPatch):
    from smart_model_manager.cli.main import main

    monkeypatch.setenv("SMM_DEVICE", "cuda:1")
    monkeypatch.setenv("SMM_DTYPE", "fp16")
    monkeypatch.setattr(dev, "probe", fake(H200, T4))
    assert main(["env", "--json"]) == 0
    rep = json.loads(capsys.readouterr().out)
    assert (rep["device_setting"], rep["dtype_setting"], rep["device"], rep["dtype"], rep["gpu"]) == (
        "cuda:1", "fp16", "cuda:1", "fp16", "Tesla T4")
    assert rep["device_reason"] == "SMM_DEVICE=cuda:1: Tesla T4, fp16 (SMM_DTYPE)"
    monkeypatch.setattr(dev, "probe", lambda: NO_GPU)
    assert main(["env"]) == 0
    out = capsys.readouterr().out
    assert "device" in out and "error" in out and "no usable GPU" in out


def test_choice_dict_round_trip():
    c = DeviceChoice("cuda:0", "bf16", "auto", "auto", "why", "NVIDIA H200", "torch")
    assert c.as_dict()["device"] == "cuda:0" and c.index == 0 and not c.explicit
