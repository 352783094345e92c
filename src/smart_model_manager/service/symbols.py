"""Crypto symbols: a small table, detection in free text, per-symbol sentiment aggregation.

Plain functions, stdlib only (``smm analyze`` uses them without FastAPI).

Detection rules
---------------
* **Tickers are matched uppercase only** (``BTC``, ``$BTC``, ``#ETH``): lowercase "sol", "ada" or
  "dot" are ordinary words in several languages.
* **Names are matched case-insensitively** (``Bitcoin``, ``bitcoin``, ``BITCOIN``).
* Both need a word boundary on each side: a letter, digit or underscore next to the match rejects
  it, so ``BTCUSD`` and ``Bitcoins`` do not match but ``Bitcoin's``, ``$BTC`` and ``BTC/USD`` do.
* Each symbol is reported once, in order of its first appearance in the text.

Known false positives (names that are also words) are kept short on purpose: "ripple" and "ether"
can appear in ordinary prose. "Avalanche" and "Polygon" are too common, so AVAX and POL match by
ticker only.

Aggregation (per symbol, over the items that mention it)
--------------------------------------------------------
For an item with probabilities ``p`` over ``labels``:

* signed score ``s = p[positive] - p[negative]``, in [-1, 1];
* confidence ``c = max(p)``, the probability of the top label, in [1/len(labels), 1];
* ``mean_signed_score = sum(s) / n``;
* ``confidence_weighted_score = sum(c * s) / sum(c)`` - confident items count more; ``c > 0``
  always, so the denominator is never zero;
* ``label_counts``: how many items had each polarity on top (the service: positive, negative,
  neutral, whichever model answered; ``smm analyze``: each label), zeros included; ties go to the
  label that comes first in the model's labels;
* ``model_counts``: how many items each model (route) answered.

Items from several models combine by polarity only: the signed score is
``smart_model_manager.polarity.signed_score`` (P(positive) - P(negative) over each model's own
label -> polarity map), never by label names, which differ between models.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Sequence
from typing import Any

from ..pipeline_call import top_index
from ..polarity import signed_score as _signed

# ticker -> names (matched case-insensitively). Extend here; tests read this table.
SYMBOLS: dict[str, tuple[str, ...]] = {
    "BTC": ("Bitcoin",),
    "ETH": ("Ether", "Ethereum"),
    "SOL": ("Solana",),
    "XRP": ("Ripple",),
    "DOGE": ("Dogecoin",),
    "ADA": ("Cardano",),
    "BNB": ("Binance Coin",),
    "DOT": ("Polkadot",),
    "LTC": ("Litecoin",),
    "AVAX": (),
    "POL": (),
    "TRX": ("Tron",),
    "LINK": ("Chainlink",),
    "USDT": ("Tether",),
    "USDC": (),
}

_BOUNDARY_L = r"(?<![A-Za-z0-9_])"
_BOUNDARY_R = r"(?![A-Za-z0-9_])"
SYMBOL_RE = re.compile(r"^[A-Z0-9]{1,15}$")


def _build() -> tuple[re.Pattern[str], re.Pattern[str], dict[str, str]]:
    tickers = sorted(SYMBOLS, key=len, reverse=True)
    name_to_ticker = {name.lower(): t for t, names in SYMBOLS.items() for name in names}
    names = sorted(name_to_ticker, key=len, reverse=True)  # "Ethereum" before "Ether"
    ticker_re = re.compile(_BOUNDARY_L + "(" + "|".join(map(re.escape, tickers)) + ")" + _BOUNDARY_R)
    name_re = re.compile(_BOUNDARY_L + "(" + "|".join(re.escape(n).replace(r"\ ", r"\s+") for n in names)
                         + ")" + _BOUNDARY_R, re.IGNORECASE)
    return ticker_re, name_re, name_to_ticker


_TICKER_RE, _NAME_RE, _NAME_TO_TICKER = _build()


def detect_symbols(text: str) -> list[str]:
    """Tickers mentioned in ``text`` (by ticker or name), once each, in order of first mention."""
    hits: list[tuple[int, str]] = [(m.start(), m.group(1)) for m in _TICKER_RE.finditer(text)]
    for m in _NAME_RE.finditer(text):
        hits.append((m.start(), _NAME_TO_TICKER[" ".join(m.group(1).lower().split())]))
    seen: dict[str, None] = {}
    for _, ticker in sorted(hits):
        seen.setdefault(ticker, None)
    return list(seen)


def normalise_symbols(symbols: Iterable[str]) -> list[str]:
    """Caller-given symbols: strip, uppercase, drop a leading ``$``, dedupe keeping order.

    Raises ValueError naming the element when one is not 1-15 letters/digits.
    """
    out: dict[str, None] = {}
    for i, raw in enumerate(symbols):
        s = raw.strip().upper().removeprefix("$") if isinstance(raw, str) else raw
        if not isinstance(s, str) or not SYMBOL_RE.match(s):
            raise ValueError(f"symbols[{i}]={raw!r:.40} is not a ticker (1-15 letters or digits, e.g. BTC)")
        out.setdefault(s, None)
    return list(out)


def _label_index(labels: Sequence[str], wanted: str) -> int:
    lowered = [lab.lower() for lab in labels]
    if wanted not in lowered:
        raise ValueError(f"labels {list(labels)} have no {wanted!r} label; per-symbol scores need "
                         "a model with positive and negative labels")
    return lowered.index(wanted)


def _by_names(labels: Sequence[str]) -> list[str]:
    """Polarity per label from the names alone (one model, no lock: ``smm analyze``)."""
    _label_index(labels, "positive"), _label_index(labels, "negative")  # the error names what is missing
    return [lab.lower() for lab in labels]


def signed_score(probs: Sequence[float], labels: Sequence[str]) -> float:
    """P(positive) - P(negative), for labels named positive/negative (see ``smart_model_manager.polarity``
    for the general rule with declared maps; this is that definition applied to the names)."""
    return _signed(probs, _by_names(labels))


Scored = tuple[Sequence[str], float, float, str, str]  # (symbols, signed score, confidence, count key, model)


def aggregate_scored(entries: Iterable[Scored], keys: Sequence[str]) -> dict[str, dict[str, Any]]:
    """Per-symbol aggregates of items already scored: ``(symbols, signed score, confidence, key, model)``.
    ``key`` is what ``label_counts`` counts (the service: the top label's polarity, so items from models
    with different label names add up; ``smm analyze``: the top label); ``keys`` are all of them (zeros
    shown). ``model_counts`` counts items per answering model. Items without symbols are skipped."""
    acc: dict[str, dict[str, Any]] = {}
    for symbols, s, c, key, model in entries:
        for sym in dict.fromkeys(symbols):  # an item mentioning BTC twice counts once
            a = acc.setdefault(sym, {"count": 0, "sum_s": 0.0, "sum_cs": 0.0, "sum_c": 0.0,
                                     "label_counts": dict.fromkeys(keys, 0), "model_counts": {}})
            a["count"] += 1
            a["sum_s"] += s
            a["sum_cs"] += c * s
            a["sum_c"] += c
            a["label_counts"][key] += 1
            a["model_counts"][model] = a["model_counts"].get(model, 0) + 1
    return {
        sym: {
            "count": a["count"],
            "mean_signed_score": a["sum_s"] / a["count"],
            "confidence_weighted_score": a["sum_cs"] / a["sum_c"],
            "label_counts": a["label_counts"],
            "model_counts": a["model_counts"],
        }
        for sym, a in sorted(acc.items())
    }


def aggregate_symbols(items_with_scores: Iterable[tuple[Sequence[str], Sequence[float]]],
                      labels: Sequence[str], model: str = "default") -> dict[str, dict[str, Any]]:
    """Per-symbol aggregates of ``(symbols, probabilities)`` pairs from one model; probabilities in
    ``labels`` order, labels named positive/negative(/neutral). Sorted by symbol; the formulas are in
    this module's docstring."""
    pols = _by_names(labels)
    entries: list[Scored] = []
    for n, (symbols, probs) in enumerate(items_with_scores):
        if len(probs) != len(labels):
            raise ValueError(f"item {n}: {len(probs)} probabilities for {len(labels)} labels {list(labels)}")
        top = top_index(probs)
        entries.append((symbols, _signed(probs, pols), float(probs[top]), labels[top], model))
    return aggregate_scored(entries, labels)
