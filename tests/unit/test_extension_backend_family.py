"""Adding a backend family is additive: one ``BackendSpec`` in backends.py and one ``Family`` in
loaders/families.py (plus the runner's own module). Here a test-only ``table`` runtime: its "model" is a file
of per-word scores in ``table/scores.json``. Nothing in api.py, settings.py or loaders/__init__.py knows it,
yet ``SMM_BACKEND`` and ``load_model(backend=)`` accept it, locks keep its file, and the GPU path says it has
no GPU runner instead of sending it down another runtime's path.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path

import pytest

from smart_model_manager import backends
from smart_model_manager.api import ModelManager
from smart_model_manager.errors import BackendError
from smart_model_manager.formats import spec
from smart_model_manager.loaders import families, load_runner
from smart_model_manager.loaders.device import DeviceChoice
from smart_model_manager.model import RunnerDefaults
from smart_model_manager.settings import Settings

pytestmark = pytest.mark.unit
LABELS = ("negative", "positive")


class TableRunner(RunnerDefaults):
    """Scores each text by summing its words' rows of the table, then normalising."""

    backend = "table"

    def __init__(self, table: dict[str, list[float]]):
        self.table = table

    def __call__(self, texts: list[str], options: object = None) -> list[list[float]]:
        rows = []
        for text in texts:
            acc = [1.0, 1.0]
            for word in text.lower().split():
                acc = [a + b for a, b in zip(acc, self.table.get(word, [0.0, 0.0]))]
            rows.append([a / sum(acc) for a in acc])
        return rows


def load_table(req: families.LoadRequest) -> TableRunner | None:
    path = req.folder / "table" / "scores.json"
    if not path.is_file():
        return None  # auto would try the next backend; an explicit one falls through to "no backend could load"
    if req.verify is not None:
        req.verify(path)  # the pinned sha256, as every runtime checks its files before reading them
    return TableRunner(json.loads(path.read_text()))


@pytest.fixture()
def registered(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    monkeypatch.setattr(backends, "BACKENDS", backends.BACKENDS)  # restored afterwards
    monkeypatch.setattr(families, "FAMILIES", dict(families.FAMILIES))
    backends.register_backend(backends.BackendSpec("table", "table", files=("table/scores.json",)))
    families.register_family(families.Family("table", load_table))
    yield


@pytest.fixture()
def folder(tmp_path: Path) -> Path:
    out = tmp_path / "table-model"
    (out / "table").mkdir(parents=True)
    (out / "config.json").write_text(json.dumps({"architectures": ["BertForSequenceClassification"],
                                                 "id2label": {"0": "negative", "1": "positive"}}))
    (out / "table" / "scores.json").write_text(json.dumps({"rally": [0.0, 3.0], "crash": [3.0, 0.0]}))
    return out


def test_the_new_backend_is_accepted_everywhere_and_runs(registered: None, folder: Path, tmp_path: Path) -> None:
    assert "table" in backends.choices()
    assert Settings.from_env({"SMM_BACKEND": "table"}).backend == "table"
    manager = ModelManager("dev", settings=Settings(cache_dir=tmp_path / "cache"), backend="table")
    model = manager.load_model(str(folder), "sentiment")
    assert model.info.backend == "table" and model.labels == LABELS
    assert model("BTC rally")[0]["label"] == "positive" and model("BTC crash")[0]["label"] == "negative"
    assert model.info.device == "cpu" and model.info.dtype == "fp32"  # the Runner contract's defaults


def test_locks_keep_the_files_it_reads(registered: None) -> None:
    assert "table/scores.json" in spec.select_files(["config.json", "table/scores.json", "table/notes.txt"])


def test_a_folder_without_its_file_is_refused_not_run_by_another_runtime(registered: None, folder: Path) -> None:
    (folder / "table" / "scores.json").unlink()
    with pytest.raises(BackendError, match="no backend could load .* \\(tried 'table'\\)"):
        load_runner(folder, "sentiment", backend="table")


def test_it_has_no_gpu_runner_and_says_so(registered: None, folder: Path) -> None:
    cuda = DeviceChoice("cuda:0", "fp32", requested_device="cuda", reason="SMM_DEVICE=cuda", via="torch")
    with pytest.raises(BackendError, match="cuda:0: table: the table runtime has no GPU runner"):
        load_runner(folder, "sentiment", backend="table", device=cuda)


def test_a_backend_whose_family_has_no_loader_is_an_error_naming_the_known_ones(
        registered: None, folder: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    backends.register_backend(backends.BackendSpec("openvino", "openvino", files=("openvino/*.xml",)))
    with pytest.raises(BackendError, match="family 'openvino', which has no loader; known families: onnx, table, "
                                           "torch"):
        load_runner(folder, "sentiment", backend="openvino")


def test_docs_design_states_the_count_this_test_proves() -> None:
    design = Path(__file__).resolve().parents[2] / "docs" / "design.md"
    assert '**A backend family** (OpenVINO, say): **3 files**' in design.read_text()
