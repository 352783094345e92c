"""The calling patterns of the original design's service and tests, run against this package.

Everything goes through ``smart_model_manager.compat`` (or a one-line ``shared/smart_model_manager.py``
shim onto it), the way a team that had the original module would call it: a collector that logs
``manager.environment.value`` in ``__init__``, loads its models and turns
``model(text, truncation=True, max_length=512)`` into a score in [-1, 1], ``except ModelLoadingError``
in production, the manager's bookkeeping (``models``, ``loading_history``, ``get_model_info()``,
``clear_cache()``, ``warmup_models()``) and environment detection from the original's signals.
"""

from __future__ import annotations

import json
import logging
import os
import subprocess
import sys
import textwrap
from pathlib import Path
from typing import Any

import pytest

from smart_model_manager.compat import (
    COMMON_MODELS,
    ModelLoadingError,
    ModelSource,
    SmartModelManager,
    get_model_manager,
)
from smart_model_manager.demo.build import DEMO_REPO_ID
from smart_model_manager.ops.pull import provision_from_folder

pytestmark = pytest.mark.integration

POSITIVE = ["Bitcoin surges to a record high as ETF inflows jump", "Ethereum rallies after upgrade wins approval"]
NEGATIVE = ["Exchange hacked: token crashes as withdrawals halt", "Crypto lender files for bankruptcy amid fraud probe"]


def score_from_results(results: Any) -> tuple[float, float]:
    """A sentiment score in [-1, 1] and a confidence, parsed the way the original service parsed pipeline output:
    a list of {label, score} (or a list holding one), P(positive) - P(negative)."""
    rows = results[0] if isinstance(results, list) and results and isinstance(results[0], list) else results
    probs = {str(r["label"]).lower(): float(r["score"]) for r in rows}
    pos = probs.get("positive", probs.get("label_2", 0.0))
    neg = probs.get("negative", probs.get("label_0", 0.0))
    return max(-1.0, min(1.0, pos - neg)), max(pos, neg)


class HeadlineCollector:
    """A service in the original's style: one manager, two models, a catch-all around each article."""

    def __init__(self) -> None:
        self.log = logging.getLogger("collector")
        self.model_manager = get_model_manager()
        self.crypto_model: Any = None
        self.stock_model: Any = None
        self.log.info("sentiment collector for environment %s", self.model_manager.environment.value)

    def ensure_models_loaded(self) -> None:
        try:
            self.crypto_model = self.model_manager.load_model(COMMON_MODELS["cryptobert"], "sentiment")
            self.stock_model = self.model_manager.load_model("ProsusAI/finbert", "sentiment")
        except ModelLoadingError:
            if self.model_manager.environment == ModelSource.PERSISTENT_VOLUME:
                raise  # production alerts and stops
            raise

    def analyze(self, text: str) -> tuple[float, float]:
        results = self.stock_model(text, truncation=True, max_length=512)
        return score_from_results(results)


def test_collector_runs_unchanged_in_tests_with_plausible_scores() -> None:
    collector = HeadlineCollector()
    assert collector.model_manager.environment.value == "mock_models"
    collector.ensure_models_loaded()
    for text in POSITIVE:
        score, confidence = collector.analyze(text)
        assert score > 0.3 and confidence > 0.5, (text, score)
    for text in NEGATIVE:
        score, confidence = collector.analyze(text)
        assert score < -0.3 and confidence > 0.5, (text, score)
    neutral, _ = collector.analyze("The central bank publishes its minutes on Wednesday")
    assert abs(neutral) < 0.3
    crypto = collector.crypto_model("Bitcoin surges to a record high", truncation=True, max_length=512)
    assert max(crypto[0], key=lambda d: d["score"])["label"] == "LABEL_1"  # kk08/CryptoBERT: 1 = positive


def test_load_twice_gives_the_same_object_and_the_models_dict() -> None:
    manager = get_model_manager()
    a = manager.load_model("ProsusAI/finbert", "sentiment")
    assert manager.load_model("ProsusAI/finbert", "sentiment") is a
    assert manager.models == {"sentiment_ProsusAI_finbert": a}
    manager.warmup_models([{"name": COMMON_MODELS["twitter_roberta"], "type": "sentiment"}])
    info = manager.get_model_info()
    assert info["environment"] == "mock_models" and len(info["loaded_models"]) == 2
    assert all(h["success"] for h in info["loading_history"])
    manager.clear_cache()
    assert manager.models == {} and manager.get_model_info()["loaded_models"] == []


def _empty_volume(root: Path) -> Path:
    root.mkdir(parents=True)
    (root / "model-metadata.yaml").write_text("format: 1\ngenerated_by: test\nverified_at: '2026-11-27T00:00:00Z'\n"
                                              "models: {}\n")
    return root


def test_production_with_an_empty_volume_raises_model_loading_error(tmp_path: Path,
                                                                    monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("SMM_VOLUME_DIR", str(_empty_volume(tmp_path / "volume")))
    manager = SmartModelManager("production")
    assert manager.environment == ModelSource.PERSISTENT_VOLUME
    assert manager.config["cache_dir"] == str(tmp_path / "volume") and manager.config["local"] is True
    caught = None
    try:
        manager.load_model("ProsusAI/finbert", "sentiment")
    except ModelLoadingError as err:  # the original service's except clause
        caught = err
    assert caught is not None and "ProsusAI/finbert" in str(caught)
    assert manager.models == {} and manager.loading_history[-1]["success"] is False


@pytest.mark.ml_models
def test_production_volume_with_the_real_demo_model_gives_non_neutral_scores(
        demo_model_dir: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    volume = tmp_path / "volume"
    provision_from_folder(demo_model_dir, volume, DEMO_REPO_ID, model_type="sentiment", alias="finbert-demo",
                          write_manifest=True)
    monkeypatch.setenv("SMM_VOLUME_DIR", str(volume))
    monkeypatch.setenv("SMM_BACKEND", "torch")
    manager = SmartModelManager("production")
    model = manager.load_model(DEMO_REPO_ID, "sentiment")
    assert model.info.source == "volume" and model.info.backend == "torch"
    for text, sign in [*((t, 1) for t in POSITIVE), *((t, -1) for t in NEGATIVE)]:
        score, confidence = score_from_results(model(text, truncation=True, max_length=512))
        assert score * sign > 0.2 and confidence > 0.4, (text, score)


DETECT = textwrap.dedent("""
    import json
    from shared.smart_model_manager import get_model_manager, ModelSource
    m = get_model_manager()
    print(json.dumps({"environment": m.environment.value, "is_enum": isinstance(m.environment, ModelSource)}))
""")


def _run_with_shim(tmp_path: Path, code: str, **env: str) -> dict[str, Any]:
    """Run ``code`` in a fresh process whose ``shared/smart_model_manager.py`` is the one-line shim."""
    shared = tmp_path / "app" / "shared"
    shared.mkdir(parents=True, exist_ok=True)
    (shared / "__init__.py").write_text("")
    (shared / "smart_model_manager.py").write_text("from smart_model_manager.compat import *  # noqa: F403\n")
    base = {k: v for k, v in os.environ.items()
            if not k.startswith(("SMM_", "PYTEST_", "MODEL_CACHE_DIR", "CI", "GITHUB_", "TESTING", "GITLAB",
                                 "BUILDKITE", "JENKINS", "TF_BUILD"))}
    base.update(HOME=str(tmp_path / "home"), HF_HOME=str(tmp_path / "hf"), SMM_VOLUME_DIR=str(tmp_path / "no-volume"),
                MODEL_CACHE_DIR=str(tmp_path / "empty-cache"), PYTHONPATH=str(tmp_path / "app"))
    base.update(env)
    r = subprocess.run([sys.executable, "-c", code], cwd=tmp_path / "app", env=base, capture_output=True, text=True,
                       timeout=120)
    assert r.returncode == 0, r.stderr
    return json.loads(r.stdout.strip().splitlines()[-1])  # type: ignore[no-any-return]


def _hf_cache_with_a_model(root: Path) -> Path:
    (root / "models--org--m" / "snapshots" / ("a" * 40)).mkdir(parents=True)
    return root


@pytest.mark.parametrize("case,expected", [
    ("TESTING", "mock_models"), ("PYTEST_CURRENT_TEST", "mock_models"), ("volume", "persistent_volume"),
    ("GITHUB_ACTIONS", "download_on_demand"), ("MODEL_CACHE_DIR", "local_cache"), ("nothing", "huggingface_hub")])
def test_each_environment_is_detected_from_the_originals_signals(tmp_path: Path, case: str, expected: str) -> None:
    env = {
        "TESTING": {"TESTING": "true"},
        "PYTEST_CURRENT_TEST": {"PYTEST_CURRENT_TEST": "tests/test_x.py::test_y (call)"},
        "volume": {"SMM_VOLUME_DIR": str(_empty_volume(tmp_path / "volume"))},
        "GITHUB_ACTIONS": {"GITHUB_ACTIONS": "true"},
        "MODEL_CACHE_DIR": {"MODEL_CACHE_DIR": str(_hf_cache_with_a_model(tmp_path / "cache"))},
        "nothing": {},
    }[case]
    assert _run_with_shim(tmp_path, DETECT, **env) == {"environment": expected, "is_enum": True}


def test_code_importing_the_shim_runs_unchanged(tmp_path: Path) -> None:
    code = textwrap.dedent("""
        import json
        from shared.smart_model_manager import (get_model_manager, ModelSource, ModelLoadingError, SmartModelManager,
                                                COMMON_MODELS, TRANSFORMERS_AVAILABLE, TORCH_AVAILABLE)
        manager = get_model_manager()
        model = manager.load_model(COMMON_MODELS["finbert"], "sentiment")
        out = model("Bitcoin crashes after exchange hack", truncation=True, max_length=512)
        print(json.dumps({"env": manager.environment.value, "mock": manager.environment == ModelSource.MOCK_MODELS,
                          "best": max(out[0], key=lambda d: d["score"])["label"], "keys": list(manager.models),
                          "flags": [TRANSFORMERS_AVAILABLE, TORCH_AVAILABLE]}))
    """)
    got = _run_with_shim(tmp_path, code, TESTING="true")
    assert got == {"env": "mock_models", "mock": True, "best": "negative", "keys": ["sentiment_ProsusAI_finbert"],
                   "flags": [True, True]}
