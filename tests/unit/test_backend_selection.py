"""Which backend/file load_runner picks, and the errors when it cannot; no model is loaded here."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

import smart_model_manager.loaders as loaders
from smart_model_manager.errors import BackendError, ConfigurationError, FormatError, UnknownModelTypeError
from smart_model_manager.loaders import choose_onnx_file, int8_gate_passed, load_runner
from smart_model_manager.loaders.torch import check_weights, weights_format

pytestmark = pytest.mark.unit


def make_folder(tmp_path: Path, *, fp32: bool = False, int8: bool = False,
                accepted: bool | None = None, weights: str = "model.safetensors") -> Path:
    folder = tmp_path / "model"
    (folder / "onnx").mkdir(parents=True)
    (folder / "config.json").write_text(json.dumps({"id2label": {"0": "negative", "1": "positive"}}))
    (folder / "tokenizer.json").write_text("{}")
    (folder / weights).write_bytes(b"w")
    if fp32:
        (folder / "onnx" / "model.onnx").write_bytes(b"fp32")
    if int8:
        (folder / "onnx" / "model.int8.onnx").write_bytes(b"int8")
    if accepted is not None:
        (folder / "onnx" / "quality.json").write_text(json.dumps({"int8": {"accepted": accepted}}))
    return folder


class Recorder:
    """Stands in for a backend loader: records the call, returns a marker runner."""

    def __init__(self, backend: str):
        self.backend = backend
        self.calls: list[dict[str, Any]] = []

    def __call__(self, folder: Path, model_type: str, **kwargs: Any) -> Any:
        self.calls.append({"folder": folder, "model_type": model_type, **kwargs})
        return self


@pytest.fixture
def fakes(monkeypatch: pytest.MonkeyPatch) -> tuple[Recorder, Recorder]:
    import smart_model_manager.loaders.onnx as onnx_mod
    import smart_model_manager.loaders.torch as torch_mod

    onnx_fake, torch_fake = Recorder("onnx"), Recorder("torch")
    monkeypatch.setattr(onnx_mod, "load_onnx_runner", onnx_fake)
    monkeypatch.setattr(torch_mod, "load_torch_runner", torch_fake)
    monkeypatch.setattr(loaders, "onnx_available", lambda: True)
    monkeypatch.setattr(loaders, "torch_available", lambda: True)
    return onnx_fake, torch_fake


@pytest.mark.parametrize(("files", "backend", "expected"), [
    ({"fp32": True, "int8": True, "accepted": True}, "auto", "onnx/model.int8.onnx"),
    ({"fp32": True, "int8": True, "accepted": False}, "auto", "onnx/model.onnx"),
    ({"fp32": True, "int8": True}, "auto", "onnx/model.onnx"),             # no quality.json: not trusted
    ({"fp32": True}, "auto", "onnx/model.onnx"),
    ({}, "auto", None),
    ({"fp32": True, "int8": True, "accepted": True}, "onnx", "onnx/model.int8.onnx"),
    ({"fp32": True, "int8": True, "accepted": True}, "onnx-fp32", "onnx/model.onnx"),
    ({"fp32": True, "int8": True, "accepted": True}, "torch", None),
])
def test_choose_onnx_file(tmp_path: Path, files: dict[str, Any], backend: str, expected: str | None) -> None:
    folder = make_folder(tmp_path, **files)
    got = choose_onnx_file(folder, backend, "org/model")
    assert (got.relative_to(folder).as_posix() if got else None) == expected


def test_explicit_onnx_without_file_names_file_and_command(tmp_path: Path) -> None:
    folder = make_folder(tmp_path)
    with pytest.raises(BackendError) as info:
        choose_onnx_file(folder, "onnx", "ProsusAI/finbert")
    msg = str(info.value)
    assert str(folder / "onnx" / "model.onnx") in msg
    assert "smm export onnx ProsusAI/finbert" in msg


def test_onnx_int8_refused_when_gate_failed(tmp_path: Path) -> None:
    folder = make_folder(tmp_path, fp32=True, int8=True, accepted=False)
    assert not int8_gate_passed(folder)
    with pytest.raises(BackendError, match="quality gate"):
        choose_onnx_file(folder, "onnx-int8", "x")


def test_malformed_quality_json_names_file(tmp_path: Path) -> None:
    folder = make_folder(tmp_path, fp32=True, int8=True)
    (folder / "onnx" / "quality.json").write_text('{\n  "int8": {"accepted": true,,}\n}')
    with pytest.raises(FormatError, match=r"quality\.json:2:"):
        int8_gate_passed(folder)


def test_unknown_backend_lists_valid_values(tmp_path: Path) -> None:
    with pytest.raises(ConfigurationError) as info:
        load_runner(make_folder(tmp_path), "sentiment", backend="gpu")
    for name in loaders.BACKENDS:
        assert name in str(info.value)


def test_unknown_model_type(tmp_path: Path) -> None:
    with pytest.raises(UnknownModelTypeError, match="sentiment, embeddings"):
        load_runner(make_folder(tmp_path), "translation")


def test_auto_prefers_onnx_and_passes_threads_labels_verify(tmp_path: Path, fakes: tuple[Recorder, Recorder]) -> None:
    onnx_fake, torch_fake = fakes
    folder = make_folder(tmp_path, fp32=True, int8=True, accepted=True)
    hook = lambda p: None  # noqa: E731
    runner = load_runner(folder, "sentiment", threads=3, labels=["negative", "positive"], verify=hook)
    assert runner is onnx_fake and not torch_fake.calls
    call = onnx_fake.calls[0]
    assert call["onnx_file"] == folder / "onnx" / "model.int8.onnx"
    assert (call["threads"], call["labels"], call["verify"]) == (3, ["negative", "positive"], hook)


def test_auto_without_onnx_file_uses_torch(tmp_path: Path, fakes: tuple[Recorder, Recorder]) -> None:
    onnx_fake, torch_fake = fakes
    assert load_runner(make_folder(tmp_path), "sentiment", allow_pickle=True) is torch_fake
    assert torch_fake.calls[0]["allow_pickle"] is True and not onnx_fake.calls


def test_auto_without_tokenizer_json_uses_torch(tmp_path: Path, fakes: tuple[Recorder, Recorder]) -> None:
    onnx_fake, torch_fake = fakes
    folder = make_folder(tmp_path, fp32=True)
    (folder / "tokenizer.json").unlink()
    assert load_runner(folder, "sentiment") is torch_fake


def test_auto_without_onnxruntime_uses_torch_but_explicit_onnx_fails(
        tmp_path: Path, fakes: tuple[Recorder, Recorder], monkeypatch: pytest.MonkeyPatch) -> None:
    _, torch_fake = fakes
    monkeypatch.setattr(loaders, "onnx_available", lambda: False)
    folder = make_folder(tmp_path, fp32=True)
    assert load_runner(folder, "sentiment") is torch_fake
    with pytest.raises(BackendError, match=r"pip install 'smart-model-manager\[onnx\]'"):
        load_runner(folder, "sentiment", backend="onnx")


def test_explicit_onnx_never_falls_back_to_torch(tmp_path: Path, fakes: tuple[Recorder, Recorder]) -> None:
    _, torch_fake = fakes
    with pytest.raises(BackendError, match="smm export onnx"):
        load_runner(make_folder(tmp_path), "sentiment", backend="onnx")
    assert not torch_fake.calls


def test_missing_torch_extra(tmp_path: Path, fakes: tuple[Recorder, Recorder], monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(loaders, "torch_available", lambda: False)
    with pytest.raises(BackendError, match=r"pip install 'smart-model-manager\[torch\]'.*smm export onnx"):
        load_runner(make_folder(tmp_path), "sentiment", model_ref="org/m")


def test_threads_default_from_cpu_module(tmp_path: Path, fakes: tuple[Recorder, Recorder],
                                         monkeypatch: pytest.MonkeyPatch) -> None:
    import smart_model_manager.loaders.cpu as cpu

    _, torch_fake = fakes
    monkeypatch.setattr(cpu, "available_cpus", lambda **_: 5)
    load_runner(make_folder(tmp_path), "sentiment", backend="torch")
    assert torch_fake.calls[0]["threads"] == 5


def test_pickle_only_folder_refused_unless_opted_in(tmp_path: Path) -> None:
    folder = make_folder(tmp_path, weights="pytorch_model.bin")
    assert weights_format(folder) == "pickle"
    with pytest.raises(BackendError, match="SMM_ALLOW_PICKLE=1"):
        check_weights(folder, allow_pickle=False)
    assert check_weights(folder, allow_pickle=True) is False  # use_safetensors=False


def test_safetensors_preferred_even_with_allow_pickle(tmp_path: Path) -> None:
    folder = make_folder(tmp_path)
    (folder / "pytorch_model.bin").write_bytes(b"p")
    assert check_weights(folder, allow_pickle=True) is True


def test_no_weights(tmp_path: Path) -> None:
    folder = make_folder(tmp_path)
    (folder / "model.safetensors").unlink()
    with pytest.raises(BackendError, match="no model weights"):
        check_weights(folder, allow_pickle=True)
