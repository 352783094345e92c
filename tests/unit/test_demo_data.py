"""The committed demo-model data (data/headlines, data/sample_headlines.txt) and its pure helpers."""

from __future__ import annotations

import json
import re
from collections import Counter
from pathlib import Path

import pytest

from smart_model_manager.demo.build import LABELS, classification_metrics, default_data_dir, read_examples
from smart_model_manager.errors import FormatError

pytestmark = pytest.mark.unit

REPO = Path(__file__).resolve().parents[2]
DATA = REPO / "data" / "headlines"


def _rows(split: str) -> list[dict]:
    path = DATA / f"{split}.jsonl"
    rows = []
    for lineno, line in enumerate(path.read_text(encoding="utf-8").splitlines(), start=1):
        row = json.loads(line)
        assert set(row) == {"text", "label"}, f"{path}:{lineno}: keys {sorted(row)}"
        rows.append(row)
    return rows


def _norm(text: str) -> str:
    return " ".join(re.findall(r"[a-z0-9]+", text.lower()))


def test_default_data_dir_is_the_packaged_copy_the_checkout_links_to() -> None:
    """The data ships inside the package (a wheel builds the demo like a checkout); data/headlines links to it."""
    assert default_data_dir().parent.parent.name == "smart_model_manager"
    assert default_data_dir() == DATA.resolve() and (default_data_dir() / "train.jsonl").is_file()


@pytest.mark.parametrize("split", ["train", "test"])
def test_rows_parse_with_valid_labels_and_text(split: str) -> None:
    rows = _rows(split)
    assert all(r["label"] in LABELS for r in rows)
    assert all(isinstance(r["text"], str) and r["text"].strip() == r["text"] != "" for r in rows)
    assert len(read_examples(DATA / f"{split}.jsonl")) == len(rows)


def test_enough_rows_and_a_twenty_percent_test_split() -> None:
    n_train, n_test = len(_rows("train")), len(_rows("test"))
    assert n_train + n_test >= 300
    assert 0.15 <= n_test / (n_train + n_test) <= 0.25


@pytest.mark.parametrize("split", ["train", "test", "all"])
def test_classes_are_balanced_within_ten_percent_of_the_mean(split: str) -> None:
    rows = _rows("train") + _rows("test") if split == "all" else _rows(split)
    counts = Counter(r["label"] for r in rows)
    assert set(counts) == set(LABELS)
    mean = len(rows) / len(LABELS)
    for label, n in counts.items():
        assert abs(n - mean) <= 0.1 * mean, f"{split}: {label} has {n}, mean {mean:.1f}"


def test_no_duplicates_within_or_across_splits() -> None:
    texts = [_norm(r["text"]) for r in _rows("train") + _rows("test")]
    dupes = [t for t, n in Counter(texts).items() if n > 1]
    assert dupes == []
    train = {_norm(r["text"]) for r in _rows("train")}
    assert train.isdisjoint(_norm(r["text"]) for r in _rows("test"))


def test_no_near_duplicates_across_splits() -> None:
    # Leakage guard stronger than exact equality: no test headline shares most of its words
    # with a training headline (the closest pair when the split was made was 0.40).
    train = [set(_norm(r["text"]).split()) for r in _rows("train")]
    for r in _rows("test"):
        words = set(_norm(r["text"]).split())
        worst = max(len(words & t) / len(words | t) for t in train)
        assert worst < 0.5, r["text"]


def test_sample_headlines_are_crypto_and_unseen() -> None:
    lines = (REPO / "data" / "sample_headlines.txt").read_text(encoding="utf-8").splitlines()
    assert 12 <= len(lines) <= 24 and all(line.strip() for line in lines)
    seen = {_norm(r["text"]) for r in _rows("train") + _rows("test")}
    assert not seen & {_norm(line) for line in lines}
    joined = " ".join(lines).lower()
    for asset in ("bitcoin", "ether", "solana", "xrp", "doge"):
        assert asset in joined, asset


def test_read_examples_names_file_and_line(tmp_path: Path) -> None:
    path = tmp_path / "bad.jsonl"
    path.write_text('{"text": "Fine headline", "label": "neutral"}\n'
                    '{"text": "Bitcoin up", "label": "bullish"}\n', encoding="utf-8")
    with pytest.raises(FormatError, match=r"bad\.jsonl:2: 'label' must be one of") as info:
        read_examples(path)
    assert info.value.line == 2
    path.write_text('{"text": "ok", "label": "positive"}\n\n{"text": "  ", "label": "positive"}\n',
                    encoding="utf-8")
    with pytest.raises(FormatError, match=r":3: 'text' must be a non-empty string"):
        read_examples(path)
    path.write_text('{"text": "ok", "label": "positive"\n', encoding="utf-8")
    with pytest.raises(FormatError, match=r":1: not valid JSON"):
        read_examples(path)


def test_read_examples_maps_labels_to_finbert_ids(tmp_path: Path) -> None:
    path = tmp_path / "ok.jsonl"
    path.write_text("".join(json.dumps({"text": f"headline {label}", "label": label}) + "\n"
                            for label in ("neutral", "positive", "negative")), encoding="utf-8")
    assert read_examples(path) == [("headline neutral", 2), ("headline positive", 0),
                                   ("headline negative", 1)]


def test_classification_metrics_by_hand() -> None:
    # truth: 2 positive, 2 negative, 1 neutral; one negative predicted as neutral.
    acc, macro, per = classification_metrics([0, 0, 1, 1, 2], [0, 0, 1, 2, 2])
    assert acc == 0.8
    assert per["positive"] == {"precision": 1.0, "recall": 1.0, "f1": 1.0, "support": 2}
    assert per["negative"] == {"precision": 1.0, "recall": 0.5, "f1": round(2 / 3, 6), "support": 2}
    assert per["neutral"] == {"precision": 0.5, "recall": 1.0, "f1": round(2 / 3, 6), "support": 1}
    assert macro == pytest.approx((1 + 2 / 3 + 2 / 3) / 3, abs=1e-6)
