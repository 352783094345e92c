"""`smm export onnx` on a cached model changes the snapshot only under the repo's writer lock.

The exporter itself (torch, the ONNX gate) is not what this specifies: it is replaced by one that writes
an fp32 file and publishes no int8, so the command must drop the older int8 file from the snapshot, and
it may do that only while it holds the lock every other snapshot writer (fetch, import, prune) holds.
"""

from __future__ import annotations

import threading
import time
from pathlib import Path
from typing import Any

import pytest
from tests._model_folders import make_model_folder

from smart_model_manager._layout import ONNX_FP32_FILE, ONNX_INT8_FILE
from smart_model_manager.cli.main import main
from smart_model_manager.onnx import export as export_mod
from smart_model_manager.store import cache as store
from smart_model_manager.store.locks import repo_lock

pytestmark = pytest.mark.unit

A = "org/tiny"


def _no_int8_export(folder: Path, model_type: str, *, out_dir: Path, **_: Any) -> export_mod.ExportReport:
    fp32 = Path(out_dir) / "model.onnx"
    fp32.write_bytes(b"an fp32 graph")
    return export_mod.ExportReport(folder=Path(folder), model_type=model_type, fp32_path=fp32, int8_path=None,
                                   quality_path=Path(out_dir) / "quality.json", exporter="test", fp32_max_abs_diff=0.0,
                                   gate=None, seconds=0.0)


def test_the_stale_int8_file_goes_only_under_the_repo_lock(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    root = tmp_path / "cache"
    res = store.import_folder(make_model_folder(tmp_path / "m"), root, A)
    stale = tmp_path / "old.int8.onnx"
    stale.write_bytes(b"an int8 graph from an earlier export")
    store.add_files(root, A, res.commit, {ONNX_INT8_FILE: stale})
    monkeypatch.setattr(export_mod, "export_onnx", _no_int8_export)

    # Between adding the new files and dropping the old one, another writer takes the repo lock.
    added, held = threading.Event(), threading.Event()
    real_add_files = store.add_files

    def add_then_let_another_writer_in(*args: Any, **kwargs: Any) -> Any:
        out = real_add_files(*args, **kwargs)
        added.set()
        held.wait(60)
        return out

    monkeypatch.setattr(store, "add_files", add_then_let_another_writer_in)
    rc: list[int] = []
    worker = threading.Thread(target=lambda: rc.append(main(
        ["export", "onnx", A, "--cache-dir", str(root), "--type", "sentiment", "--no-int8"])))
    worker.start()
    assert added.wait(60)
    with repo_lock(root, A):  # another writer (a pull relinking this snapshot, say) holds the repo now
        held.set()
        time.sleep(1.5)
        assert (res.snapshot / ONNX_INT8_FILE).is_file(), "the int8 file went while another writer held the lock"
        assert worker.is_alive()
    worker.join(60)
    assert rc == [0]
    assert not (res.snapshot / ONNX_INT8_FILE).exists()
    assert (res.snapshot / ONNX_FP32_FILE).read_bytes() == b"an fp32 graph"
