"""The backend table is the one list: settings validate against it and locks keep every file it names."""

from __future__ import annotations

import pytest

from smart_model_manager import backends
from smart_model_manager.errors import ConfigurationError
from smart_model_manager.formats import spec
from smart_model_manager.settings import Settings

pytestmark = pytest.mark.unit

REPO_FILES = ["config.json", "model.safetensors", "tokenizer.json", "onnx/model.onnx", "onnx/model_O4.onnx",
              "openvino/openvino_model.xml", "openvino/openvino_model.bin", "tf_model.h5"]


def test_settings_api_and_loaders_accept_exactly_the_table_with_one_message(tmp_path) -> None:
    from smart_model_manager.api import ModelManager
    from smart_model_manager.loaders import load_runner

    choices = backends.choices()
    assert choices[0] == "auto" and set(choices[1:]) == {b.name for b in backends.BACKENDS}
    for name in choices:
        assert Settings.from_env({"SMM_BACKEND": name}).backend == name
        assert backends.check_backend(f" {name.upper()} ") == name
    assert backends.check_backend(None) == backends.check_backend("") == "auto"
    valid = "valid values: " + ", ".join(choices)
    manager = ModelManager("test", settings=Settings(cache_dir=tmp_path))
    callers = {"SMM_BACKEND": lambda: Settings.from_env({"SMM_BACKEND": "openvino"}),
               "backend": lambda: ModelManager("test", backend="openvino", settings=Settings(cache_dir=tmp_path)),
               "backend ": lambda: manager.load_model("finbert", backend="openvino"),
               "backend  ": lambda: load_runner(tmp_path, "sentiment", backend="openvino")}
    for where, call in callers.items():
        with pytest.raises(ConfigurationError) as exc:
            call()
        assert str(exc.value) == f"{where.strip()}='openvino' is not valid; {valid}"


def test_every_backend_names_what_it_needs_in_one_hint() -> None:
    assert backends.needs("torch") == ("the torch backend needs torch and transformers; install them with: "
                                       + backends.TORCH_INSTALL)
    assert backends.needs("onnx-int8").endswith(backends.ONNX_INSTALL)


def test_auto_prefers_onnx_then_torch() -> None:
    assert [b.name for b in backends.auto_order()] == ["onnx", "torch"]


def test_a_lock_keeps_the_files_of_every_backend_and_only_those() -> None:
    chosen = spec.select_files(REPO_FILES)
    assert "onnx/model.onnx" in chosen and "onnx/model_O4.onnx" not in chosen  # no backend reads O4
    assert not any(p.startswith("openvino/") for p in chosen) and "tf_model.h5" not in chosen


def test_a_new_backend_brings_its_files_into_locks(monkeypatch: pytest.MonkeyPatch) -> None:
    """Without the table, openvino/** stayed in DEFAULT_EXCLUDE and a new backend's files were dropped."""
    openvino = backends.BackendSpec("openvino", "openvino", ("openvino/openvino_model.*",), ("openvino",),
                                    "pip install openvino")
    monkeypatch.setattr(backends, "BACKENDS", (*backends.BACKENDS, openvino))
    chosen = spec.select_files(REPO_FILES)
    assert {"openvino/openvino_model.xml", "openvino/openvino_model.bin"} <= set(chosen)
    assert "tf_model.h5" not in chosen
