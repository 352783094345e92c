"""Production with the lean runtime: the volume's exported ONNX file is verified before onnxruntime sees it."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest
from _volumes import make_volume

from smart_model_manager import IntegrityError, ModelManager

pytestmark = [pytest.mark.integration, pytest.mark.ml_models]


@pytest.fixture(scope="module")
def exported_tiny(tiny_bert_dir: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    from smart_model_manager.onnx.export import export_onnx

    folder = tmp_path_factory.mktemp("tiny-onnx") / "model"
    shutil.copytree(tiny_bert_dir, folder)
    export_onnx(folder, "sentiment", int8=False)
    return folder


def test_auto_backend_uses_the_verified_onnx_file_from_the_volume(exported_tiny: Path, tmp_path: Path, monkeypatch):
    vol = make_volume(tmp_path / "vol", {"org/tiny": exported_tiny})
    assert "onnx/model.onnx" in vol.models["org/tiny"].latest().files
    monkeypatch.setenv("SMM_VOLUME_DIR", str(tmp_path / "vol"))
    m = ModelManager(environment="production").load_model("org/tiny")
    assert m.info.backend.startswith("onnx") and m.info.source == "volume"
    ref = ModelManager(environment="production", backend="torch").load_model("org/tiny")
    for a, b in zip(m.raw(["BTC up", "ETH crashes after exploit"]), ref.raw(["BTC up", "ETH crashes after exploit"])):
        assert a == pytest.approx(b, abs=1e-4)


def test_same_size_corruption_of_the_onnx_file_is_refused_even_in_quick_mode(exported_tiny: Path, tmp_path: Path,
                                                                            monkeypatch):
    make_volume(tmp_path / "vol", {"org/tiny": exported_tiny})
    onnx_file = next((tmp_path / "vol").glob("models--org--tiny/snapshots/*/onnx/model.onnx")).resolve()
    data = bytearray(onnx_file.read_bytes())
    data[-10] ^= 0xFF  # same size: quick verification (sizes) cannot see it, the pre-runtime hash does
    onnx_file.write_bytes(bytes(data))
    monkeypatch.setenv("SMM_VOLUME_DIR", str(tmp_path / "vol"))
    with pytest.raises(IntegrityError, match=r"onnx/model.onnx.*expected sha256:.*actual sha256:"):
        ModelManager(environment="production", backend="onnx").load_model("org/tiny")
