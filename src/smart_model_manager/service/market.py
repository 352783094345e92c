"""Which market a headline is about: the default detector of a multi-model service, and how to replace it.

The default is the original design's keyword rule, kept as it was so that a team moving its
two-pipeline service here sees the same routing:

* lowercase the text;
* count the crypto keywords that occur in it as substrings, and the stock keywords likewise
  (each keyword counts once, however often it occurs; a text with "eth" and "ethereum" counts two);
* ``crypto`` if the crypto count is at least the stock count (**crypto when tied**, including
  0 - 0: a text with no keyword at all goes to the crypto model), else ``stock``.

Substring matching is the original's, quirks included: "eth" is found in "Ethiopia" and "fed" in
"FedEx". A service that wants better must say so by replacing the detector, not get it silently.

Replacing it: ``SMM_SERVICE_DETECTOR=package.module:function`` (or ``smm serve sentiment --detector``),
a callable ``function(text) -> market``. The markets it may return are ``function.markets`` if set
(checked at startup against the route names), else the route names themselves. A market it returns
that no route serves is a 503 naming it, never a guess.
"""

from __future__ import annotations

import importlib
from collections.abc import Callable
from typing import Any

from ..errors import ConfigurationError

CRYPTO, STOCK = "crypto", "stock"

#: The original's crypto keywords (substrings of the lowercased text).
CRYPTO_KEYWORDS: tuple[str, ...] = (
    "bitcoin", "btc", "ethereum", "eth", "crypto", "blockchain", "defi", "nft", "altcoin", "stablecoin",
    "token", "binance", "coinbase", "solana", "dogecoin", "xrp", "web3", "satoshi", "halving", "mining",
)
#: The original's stock keywords (substrings of the lowercased text).
STOCK_KEYWORDS: tuple[str, ...] = (
    "stock", "nasdaq", "s&p", "dow jones", "nyse", "earnings", "fed", "interest rate", "inflation",
    "shares", "equity", "ipo", "dividend", "wall street", "treasury", "recession", "revenue", "quarterly",
)


def keyword_counts(text: str) -> tuple[int, int]:
    """(crypto keywords found, stock keywords found) in ``text``, by the original's substring rule."""
    low = text.lower()
    return sum(kw in low for kw in CRYPTO_KEYWORDS), sum(kw in low for kw in STOCK_KEYWORDS)


def keyword_market(text: str) -> str:
    """``crypto`` or ``stock`` by the keyword rule above; crypto when tied."""
    crypto, stock = keyword_counts(text)
    return CRYPTO if crypto >= stock else STOCK


keyword_market.markets = (CRYPTO, STOCK)  # type: ignore[attr-defined]

Detector = Callable[[str], str]
DEFAULT = "keywords"


def load_detector(spec: str) -> tuple[Detector, tuple[str, ...] | None]:
    """``(detector, the markets it may return or None)`` for ``spec``: "" or ``keywords`` = the keyword
    rule; ``module:function`` = that callable. Raises ConfigurationError naming what went wrong."""
    spec = spec.strip()
    if spec in ("", DEFAULT):
        return keyword_market, (CRYPTO, STOCK)
    module_name, sep, attr = spec.partition(":")
    if not sep or not module_name or not attr:
        raise ConfigurationError(f"detector {spec!r} is not 'keywords' or 'package.module:function' "
                                 "(variable SMM_SERVICE_DETECTOR)")
    try:
        fn: Any = getattr(importlib.import_module(module_name), attr)
    except (ImportError, AttributeError) as err:
        raise ConfigurationError(f"detector {spec!r} cannot be imported: {err} (variable "
                                 "SMM_SERVICE_DETECTOR)") from None
    if not callable(fn):
        raise ConfigurationError(f"detector {spec!r} is a {type(fn).__name__}, not a function of the text")
    markets = getattr(fn, "markets", None)
    return fn, (tuple(markets) if markets else None)


__all__ = ["CRYPTO", "CRYPTO_KEYWORDS", "STOCK", "STOCK_KEYWORDS", "keyword_counts", "keyword_market",
           "load_detector"]
