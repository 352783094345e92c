"""Which device and precision a model runs on (layer 2). stdlib only at import time.

``choose_device(device, dtype)`` turns the settings (``SMM_DEVICE``, ``SMM_DTYPE``, or the
``load_model(..., device=, dtype=)`` arguments) into a :class:`DeviceChoice`: the device, the
precision and a one-line reason that ``smm env`` prints. The rules (docs/gpu.md):

============== =================================================================================
``cpu``        the CPU, fp32 (as before this setting existed). fp16/bf16 are refused.
``auto``       the first GPU when torch sees one, in fp16 (bf16 only when asked: it missed the
               0.01 probability bound on a real GPU, see docs/gpu.md); without torch, a GPU that
               onnxruntime-gpu may use (the ONNX backend falls back to the CPU provider if no GPU
               answers, and logs it); else the CPU, logged once. An explicit fp16/bf16 with no GPU is ignored (logged): the CPU runs fp32.
``cuda[:N]``   that GPU or a ``ConfigurationError``: never a silent CPU run. bf16 on a GPU without
               it is refused.
============== =================================================================================

torch (or onnxruntime) is imported only to *probe*, and only when the answer depends on it: the
``cpu`` setting probes nothing; a machine with no GPU driver at all (no ``/proc/driver/nvidia``,
``/dev/nvidiactl``, ``/dev/dxg``, ``/dev/kfd``) is answered without importing torch, so CPU users keep
their cold start (the ONNX path never imports torch); a machine without torch is told "torch not
installed" without importing anything heavy.
"""

from __future__ import annotations

import importlib.util
import logging
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

from ..errors import ConfigurationError
from ..settings import parse_device, parse_dtype

log = logging.getLogger(__name__)

GPU_INSTALL = "pip install 'smart-model-manager[gpu]'"
#: a GPU driver exposes one of these (NVIDIA, NVIDIA in containers, WSL2, ROCm); none -> no GPU possible
DRIVER_PATHS = ("/proc/driver/nvidia/version", "/dev/nvidiactl", "/dev/dxg", "/dev/kfd")
_logged: set[str] = set()


def _log_once(level: int, message: str) -> None:
    if message not in _logged:
        _logged.add(message)
        log.log(level, message)


@dataclass(frozen=True)
class Gpu:
    index: int
    name: str
    capability: tuple[int, int]
    memory_bytes: int | None = None

    @property
    def bf16(self) -> bool:
        """Native bf16 (Ampere, compute capability 8.0, and newer). torch's is_bf16_supported() also
        says yes for *emulated* bf16 on older GPUs, which is slower than fp16: we do not count that."""
        return tuple(self.capability) >= (8, 0)


@dataclass(frozen=True)
class Probe:
    """What the installed libraries can see. ``via``: who saw the GPUs ("torch", "onnxruntime", "")."""

    torch_installed: bool
    gpus: tuple[Gpu, ...]
    detail: str
    via: str = ""


def probe_torch() -> Probe:
    """Ask torch which CUDA GPUs it sees (imports torch only if it is installed)."""
    if importlib.util.find_spec("torch") is None:
        return Probe(False, (), "torch not installed")
    import torch

    try:
        available = bool(torch.cuda.is_available())
    except Exception as err:  # noqa: BLE001 - a broken driver must read as "no GPU", with the reason
        return Probe(True, (), f"torch.cuda.is_available() failed: {err}")
    if not available:
        build = "a CPU-only build" if getattr(torch.version, "cuda", None) is None else "no CUDA GPU visible"
        return Probe(True, (), f"torch {torch.__version__} sees no GPU ({build})")
    gpus = []
    for i in range(int(torch.cuda.device_count())):
        cap = tuple(int(x) for x in torch.cuda.get_device_capability(i))
        try:
            mem: int | None = int(torch.cuda.get_device_properties(i).total_memory)
        except Exception:  # noqa: BLE001 - informational only
            mem = None
        gpus.append(Gpu(i, str(torch.cuda.get_device_name(i)), (cap[0], cap[1]), mem))
    return Probe(True, tuple(gpus), f"torch {torch.__version__} sees {len(gpus)} CUDA GPU(s)", "torch")


def ort_providers() -> list[str]:
    """onnxruntime's available execution providers ([] when onnxruntime is not installed)."""
    if importlib.util.find_spec("onnxruntime") is None:
        return []
    import onnxruntime

    return list(onnxruntime.get_available_providers())


def gpu_driver_present() -> bool:
    """Cheap check (no imports): does this machine expose a GPU driver at all?"""
    return any(Path(p).exists() for p in DRIVER_PATHS)


def probe() -> Probe:
    """No driver: no GPU (nothing imported). Else torch first; without torch, onnxruntime-gpu's CUDA
    provider counts as a possible GPU (the ONNX session then checks that one really answers)."""
    if not gpu_driver_present():
        installed = importlib.util.find_spec("torch") is not None
        return Probe(installed, (), "no GPU driver on this machine (" + ", ".join(DRIVER_PATHS[:2]) + " absent)")
    p = probe_torch()
    if p.torch_installed:
        return p
    if "CUDAExecutionProvider" in ort_providers():
        return Probe(False, (Gpu(0, "unknown (seen by onnxruntime)", (0, 0)),),
                     "torch not installed; onnxruntime has CUDAExecutionProvider", "onnxruntime")
    return p


@dataclass(frozen=True)
class DeviceChoice:
    """Where and in which precision a model runs, and why."""

    device: str                 # "cpu" or "cuda:N"
    dtype: str                  # "fp32", "fp16", "bf16"
    requested_device: str = "auto"
    requested_dtype: str = "auto"
    reason: str = "default"
    gpu: str | None = None      # the GPU's name
    via: str = ""               # who saw the GPU: "torch", "onnxruntime", "" (cpu)

    @property
    def is_cuda(self) -> bool:
        return self.device.startswith("cuda")

    @property
    def index(self) -> int:
        return int(self.device.split(":")[1]) if ":" in self.device else 0

    @property
    def explicit(self) -> bool:
        """True when the user asked for this device (no silent fallback allowed)."""
        return self.requested_device != "auto"

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)


CPU = DeviceChoice("cpu", "fp32", "cpu", "auto", "default: cpu")


def choose_device(device: str | None = "auto", dtype: str | None = "auto", *,
                  probe_fn: Any = None) -> DeviceChoice:
    """Apply the rules of the module docstring. ``probe_fn`` (tests) replaces :func:`probe`."""
    dev = parse_device(device, "device (SMM_DEVICE)")
    dt = parse_dtype(dtype, "dtype (SMM_DTYPE)")
    if dev == "cpu":
        if dt in ("fp16", "bf16"):
            raise ConfigurationError(
                f"SMM_DTYPE={dt} with SMM_DEVICE=cpu: half precision is for CUDA GPUs and the CPU path "
                "runs fp32; use SMM_DTYPE=auto (or fp32), or SMM_DEVICE=cuda on a GPU node")
        return DeviceChoice("cpu", "fp32", dev, dt, "SMM_DEVICE=cpu")
    p: Probe = (probe_fn or probe)()
    if dev == "auto":
        if not p.gpus:
            reason = f"auto: {p.detail} -> cpu"
            _log_once(logging.INFO, f"device {reason}")
            if dt in ("fp16", "bf16"):
                _log_once(logging.WARNING, f"SMM_DTYPE={dt} ignored: no GPU, the CPU path runs fp32")
            return DeviceChoice("cpu", "fp32", dev, dt, reason)
        gpu = p.gpus[0]
        return _on_gpu(gpu, dt, dev, f"auto: {p.detail} -> cuda:0 ({gpu.name})", p.via)
    # explicit cuda / cuda:N
    index = int(dev.split(":")[1]) if ":" in dev else 0
    if not p.torch_installed and not p.gpus:
        raise ConfigurationError(
            f"SMM_DEVICE={dev} but torch is not installed and onnxruntime has no CUDAExecutionProvider; "
            f"install CUDA torch or onnxruntime-gpu ({GPU_INSTALL}), or use SMM_DEVICE=auto/cpu")
    if not p.gpus:
        raise ConfigurationError(
            f"SMM_DEVICE={dev} but there is no usable GPU: {p.detail}. We do not fall back to the CPU "
            "behind your back: use SMM_DEVICE=auto (GPU if present, else CPU) or SMM_DEVICE=cpu, or "
            "check the driver / CUDA_VISIBLE_DEVICES / the pod's nvidia.com/gpu limit")
    if p.via == "onnxruntime":  # no torch to count GPUs: the ONNX session checks the provider
        gpu = p.gpus[0]
        return _on_gpu(Gpu(index, gpu.name, gpu.capability), dt, dev,
                       f"SMM_DEVICE={dev}: {p.detail}", p.via)
    if index >= len(p.gpus):
        seen = ", ".join(f"cuda:{g.index} {g.name}" for g in p.gpus)
        raise ConfigurationError(f"SMM_DEVICE={dev} but torch sees {len(p.gpus)} GPU(s): {seen}")
    gpu = p.gpus[index]
    return _on_gpu(gpu, dt, dev, f"SMM_DEVICE={dev}: {gpu.name}", p.via)


def _on_gpu(gpu: Gpu, dt: str, requested: str, reason: str, via: str) -> DeviceChoice:
    name = f"cuda:{gpu.index}"
    if via == "onnxruntime":
        # only the ONNX backend can run here, and its files are fp32
        if dt in ("fp16", "bf16"):
            raise ConfigurationError(
                f"SMM_DTYPE={dt}: without torch only the ONNX backend runs on the GPU, and its exported "
                "file is fp32; use SMM_DTYPE=auto/fp32 or install CUDA torch")
        return DeviceChoice(name, "fp32", requested, dt, reason + ", fp32 (ONNX file precision)", gpu.name, via)
    cap = f"{gpu.capability[0]}.{gpu.capability[1]}"
    asked = dt
    if dt == "bf16" and not gpu.bf16:
        raise ConfigurationError(
            f"SMM_DTYPE=bf16 but {gpu.name} (compute capability {cap}) has no native bf16 (needs >= 8.0); "
            "use SMM_DTYPE=fp16 or auto")
    if dt == "auto":
        # fp16 on every GPU, bf16 only when asked: measured on an H200 (docs/gpu.md), bf16's 7-bit mantissa
        # moved the demo model's probabilities by up to 0.014 against CPU fp32 (the bound is 0.01), fp16 by
        # 0.002, at the same speed within noise. Tensor cores run both at the same rate.
        dt = "fp16"
        reason += f", fp16 (auto: closest to CPU fp32 at full tensor-core speed; compute capability {cap})"
    else:
        reason += f", {dt} (SMM_DTYPE)"
    return DeviceChoice(name, dt, requested, asked, reason, gpu.name, via)


def describe(device: str, dtype: str) -> dict[str, Any]:
    """What ``smm env`` prints: the choice and its reason, or the error it would raise."""
    try:
        c = choose_device(device, dtype)
    except ConfigurationError as err:
        return {"device": "error", "dtype": "error", "device_reason": str(err)}
    return {"device": c.device, "dtype": c.dtype, "device_reason": c.reason, "gpu": c.gpu}


__all__ = [
    "CPU",
    "GPU_INSTALL",
    "DeviceChoice",
    "Gpu",
    "Probe",
    "choose_device",
    "describe",
    "ort_providers",
    "probe",
    "probe_torch",
]
