"""Deterministic mock runners: no heavy imports, same output on every machine and process.

Determinism comes from sha256 (never Python's salted ``hash()``). Sentiment uses a small
financial/crypto lexicon so obvious headlines get the obvious label; embeddings use signed feature
hashing of words, so texts sharing words have a positive cosine similarity.
"""

from __future__ import annotations

import math
import re
from collections.abc import Sequence
from typing import Any

from ..model import RunnerDefaults
from ..polarity import guess as guess_polarity

WORD = re.compile(r"[a-z0-9]+(?:[-'][a-z0-9]+)*")

POSITIVE = frozenset("""
surge surges surged soar soars soared rally rallies rallied record high highs gain gains gained jump jumps
jumped rise rises rising rose climb climbs climbed boost boosts boosted inflow inflows approval approve approves
approved beat beats bullish upgrade upgrades upgraded partnership adoption profit profits growth grows strong
strength recovery recovers recovered breakout all-time outperform outperforms launch launches wins win tops
top milestone expands expansion optimism optimistic buyback dividend raises raised surpass surpasses
""".split())

NEGATIVE = frozenset("""
crash crashes crashed plunge plunges plunged hack hacked hacks exploit exploited lawsuit sues sued ban bans
banned outflow outflows bearish drop drops dropped fall falls fell slump slumps slumped bankrupt bankruptcy
fraud liquidation liquidations sell-off selloff loss losses miss misses missed fine fined fines probe
downgrade downgrades downgraded halt halts halted collapse collapses collapsed tumble tumbles tumbled sink
sinks sank warning warns weak weakness layoffs layoff decline declines declined stolen theft scam delist
delisted delisting insolvency investigation crackdown default defaults fears fear panic depeg depegs
""".split())

NEGATORS = frozenset({"not", "no", "never", "fails", "fail", "without"})

#: The mock's sequence limit, in mock tokens (words) including two special tokens, like BERT's 512.
MOCK_MAX_LENGTH = 512


def truncate_words(text: str, max_tokens: int | None) -> tuple[str, int]:
    """(the text the mock scores, its length in mock tokens). Words beyond ``max_tokens - 2`` are cut."""
    words = WORD.findall(text.lower())
    n = len(words) + 2
    if max_tokens is None or n <= max_tokens:
        return text, n
    return " ".join(words[:max(max_tokens - 2, 0)]), max_tokens


def _mock_inputs(texts: list[str], options: Any) -> list[str]:
    """Apply per-call truncation options (max_length, truncation) exactly as the real runners do."""
    if options is None:
        return [truncate_words(t, MOCK_MAX_LENGTH)[0] for t in texts]
    limit = MOCK_MAX_LENGTH
    if not options.truncation:
        lengths = [truncate_words(t, None)[1] for t in texts]
        for i, n in enumerate(lengths):
            if n > limit:
                raise ValueError(f"texts[{i}] is {n} tokens long but the model accepts at most {limit}; "
                                 "pass truncation=True (the default) to cut it, or shorten the text")
        return list(texts)
    max_len = min(options.max_length, limit) if options.max_length else limit
    return [truncate_words(t, max_len)[0] for t in texts]


try:  # the interpreter's built-in sha256: the same digests as hashlib's, without importing OpenSSL
    from _sha2 import sha256 as _sha256  # type: ignore[import-not-found,unused-ignore]  # Python >= 3.12
except ImportError:  # pragma: no cover - depends on the Python version
    try:
        from _sha256 import sha256 as _sha256  # type: ignore[import-not-found,no-redef,unused-ignore]  # 3.10-3.11
    except ImportError:
        from hashlib import sha256 as _sha256  # type: ignore[assignment,no-redef,unused-ignore]


def _unit(text: str, salt: str) -> float:
    """A stable pseudo-random number in [0, 1) from sha256."""
    d = _sha256(f"{salt}\0{text}".encode()).digest()
    return int.from_bytes(d[:8], "big") / 2**64


def lexicon_counts(text: str) -> tuple[int, int]:
    words = WORD.findall(text.lower())
    pos = neg = 0
    for i, w in enumerate(words):
        negated = i > 0 and words[i - 1] in NEGATORS
        if negated:  # "not crash" is not good news either: a negated cue counts for nothing
            continue
        if w in POSITIVE:
            pos += 1
        elif w in NEGATIVE:
            neg += 1
    return pos, neg


def _softmax(xs: Sequence[float]) -> list[float]:
    m = max(xs)
    e = [math.exp(x - m) for x in xs]
    s = sum(e)
    return [v / s for v in e]


class MockSentimentRunner(RunnerDefaults):
    backend = "mock"
    supports_options = True  # runner(texts, RunOptions): max_length/truncation in words, logits

    def __init__(self, repo_id: str, labels: Sequence[str]):
        if not labels:
            raise ValueError("a sentiment mock needs at least one label")
        self.repo_id = repo_id
        self.labels = tuple(labels)
        self.max_length = MOCK_MAX_LENGTH
        # what each label means: the known-model table, then the names (the service's rule too)
        self._polarity = guess_polarity(repo_id, self.labels)

    def logits(self, text: str) -> list[float]:
        pos, neg = lexicon_counts(text)
        logits = []
        for lab, pol in zip(self.labels, self._polarity):
            jitter = _unit(text, f"{self.repo_id}\0{lab}") * 0.3
            if pol == "positive":
                logits.append(1.6 * pos + jitter)
            elif pol == "negative":
                logits.append(1.6 * neg + jitter)
            elif pol == "neutral":
                logits.append(0.9 + jitter)
            else:  # labels with no known polarity (LABEL_0, ...): spread by content hash
                logits.append(_unit(text, lab) * 2.0)
        return logits

    def score(self, text: str) -> list[float]:
        return _softmax(self.logits(text))

    def __call__(self, texts: list[str], options: Any = None) -> list[list[float]]:
        inputs = _mock_inputs(texts, options)
        if options is not None and options.logits:
            return [self.logits(t) for t in inputs]
        return [self.score(t) for t in inputs]


class MockEmbeddingRunner(RunnerDefaults):
    backend = "mock"
    supports_options = True  # max_length/truncation in words

    def __init__(self, repo_id: str, dimension: int):
        if dimension < 1:
            raise ValueError("dimension must be >= 1")
        self.repo_id = repo_id
        self.dimension = dimension

    def embed(self, text: str) -> list[float]:
        vec = [0.0] * self.dimension
        words = WORD.findall(text.lower()) or [text]
        for w in words:
            d = _sha256(f"{self.repo_id}\0{w}".encode()).digest()
            for k in range(0, 16, 4):
                idx = int.from_bytes(d[k:k + 3], "big") % self.dimension
                vec[idx] += 1.0 if d[k + 3] & 1 else -1.0
        norm = math.sqrt(sum(v * v for v in vec)) or 1.0
        return [v / norm for v in vec]

    def __call__(self, texts: list[str], options: Any = None) -> list[list[float]]:
        return [self.embed(t) for t in _mock_inputs(texts, options)]


def mock_runner(repo_id: str, model_type: str, *, labels: Sequence[str] = (),
                dimension: int | None = None) -> MockSentimentRunner | MockEmbeddingRunner:
    """The mock runner for a model type: per-label scores for types with labels, a vector otherwise.

    ``labels``/``dimension`` come from the mock source's schema; the type's defaults fill the gaps.
    """
    from ..registry import get_model_type

    mt = get_model_type(model_type)
    if mt.has_labels:
        return MockSentimentRunner(repo_id, labels or mt.default_labels)
    return MockEmbeddingRunner(repo_id, dimension or mt.default_dimension or 384)
