"""Schemas of well-known models, used by mocks when no config.json or lock entry is available.

Label order is each model's ``config.json`` ``id2label`` order, so a mock's ``raw()`` columns line up
with the real model's logits.
"""

from __future__ import annotations

from ..settings import Settings

DEMO_REPO_ID = "smart-model-manager/finbert-mini-demo"

KNOWN_LABELS: dict[str, tuple[str, ...]] = {
    "prosusai/finbert": ("positive", "negative", "neutral"),
    DEMO_REPO_ID: ("positive", "negative", "neutral"),
    "yiyanghkust/finbert-tone": ("Neutral", "Positive", "Negative"),
    "cardiffnlp/twitter-roberta-base-sentiment-latest": ("negative", "neutral", "positive"),
    "distilbert/distilbert-base-uncased-finetuned-sst-2-english": ("NEGATIVE", "POSITIVE"),
    "distilbert-base-uncased-finetuned-sst-2-english": ("NEGATIVE", "POSITIVE"),
    "mrm8488/distilroberta-finetuned-financial-news-sentiment-analysis": ("negative", "neutral", "positive"),
    "cardiffnlp/twitter-roberta-base-sentiment": ("LABEL_0", "LABEL_1", "LABEL_2"),
    "kk08/cryptobert": ("LABEL_0", "LABEL_1"),
    "elkulako/cryptobert": ("Bearish", "Neutral", "Bullish"),
}

#: What labels that say nothing (LABEL_0, ...) mean, per model, in label-id order (model cards).
KNOWN_POLARITY: dict[str, tuple[str, ...]] = {
    "cardiffnlp/twitter-roberta-base-sentiment": ("negative", "neutral", "positive"),
    "kk08/cryptobert": ("negative", "positive"),
}

KNOWN_DIMENSIONS: dict[str, int] = {
    "sentence-transformers/all-minilm-l6-v2": 384,
    "sentence-transformers/all-minilm-l12-v2": 384,
    "sentence-transformers/all-mpnet-base-v2": 768,
    "baai/bge-small-en-v1.5": 384,
    "baai/bge-base-en-v1.5": 768,
    "intfloat/e5-small-v2": 384,
}

ALIASES: dict[str, str] = {
    "finbert": "ProsusAI/finbert",
    "finbert-demo": DEMO_REPO_ID,
    "minilm": "sentence-transformers/all-MiniLM-L6-v2",
}


# The one default-model rule, shared by `smm analyze`, `smm serve sentiment` and
# `ModelManager.load_model()` with no name: SMM_MODEL if set, else "finbert". A name, not a repo id:
# a models.lock or volume manifest that maps "finbert" to a fine-tuned repo changes the default for
# every command alike; with neither, "finbert" is ProsusAI/finbert. Deliberately not "whatever is
# in the cache" (the offline demo model, say): a default that changes with the cache's contents
# would make the same command answer with different models on different machines.
DEFAULT_MODEL = "finbert"


def default_model(settings: Settings | None = None) -> str:
    """``SMM_MODEL``, else :data:`DEFAULT_MODEL`."""
    settings = settings if settings is not None else Settings.from_env()
    return settings.default_model or DEFAULT_MODEL


def resolve_alias(name: str) -> str:
    """The repo id a built-in alias stands for (case-insensitive: ``FinBERT`` works), else ``name`` itself.

    The one alias table: ``load_model``, ``smm export`` and every other name lookup go through here.
    """
    return ALIASES.get(name.strip().lower(), name)


def known_labels(repo_id: str) -> tuple[str, ...] | None:
    return KNOWN_LABELS.get(repo_id.lower())


def known_polarity(repo_id: str) -> tuple[str, ...] | None:
    return KNOWN_POLARITY.get(repo_id.lower())


def known_dimension(repo_id: str) -> int | None:
    return KNOWN_DIMENSIONS.get(repo_id.lower())
