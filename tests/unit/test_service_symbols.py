"""Symbol table, detection rules and per-symbol aggregation (numbers checked by hand)."""

from __future__ import annotations

import ast
import inspect

import pytest

from smart_model_manager.service import symbols as symbols_module
from smart_model_manager.service.symbols import (
    SYMBOLS,
    aggregate_symbols,
    detect_symbols,
    normalise_symbols,
    signed_score,
)

pytestmark = pytest.mark.unit


@pytest.mark.parametrize(("text", "want"), [
    ("BTC breaks $100k", ["BTC"]),
    ("$ETH and #SOL lead; BTC/USD flat", ["ETH", "SOL", "BTC"]),
    ("bitcoin, then ETHEREUM, then Solana", ["BTC", "ETH", "SOL"]),
    ("Ether slips while Ethereum devs ship", ["ETH"]),           # two names, one ticker, once
    ("Bitcoin's rally and BTC's volume", ["BTC"]),               # apostrophe is a boundary
    ("Ripple wins in court; XRP jumps", ["XRP"]),
    ("Dogecoin and Cardano: DOGE, ADA", ["DOGE", "ADA"]),
    ("Binance   Coin (BNB) listed", ["BNB"]),                    # multi-word name, any spacing
    ("ADA first, then Bitcoin", ["ADA", "BTC"]),                 # order of first mention
])
def test_detects_tickers_and_names(text, want):
    assert detect_symbols(text) == want


@pytest.mark.parametrize("text", [
    "btc eth sol ada dot",          # tickers are uppercase-only
    "BTCUSD and ETH2 and XBTC",     # no word boundary
    "Bitcoins are scarce",          # plural is not the name (documented)
    "an AVALANCHE of sell orders",  # AVAX is ticker-only on purpose
    "",
])
def test_rejects_non_matches(text):
    assert detect_symbols(text) == []


def test_every_table_entry_is_detectable_by_ticker_and_names():
    for ticker, names in SYMBOLS.items():
        assert detect_symbols(f"news about {ticker} today") == [ticker]
        for name in names:
            assert detect_symbols(f"news about {name.lower()} today") == [ticker], name
            assert detect_symbols(f"news about {name.upper()} today") == [ticker], name


def test_normalise_symbols():
    assert normalise_symbols([" btc", "$ETH", "BTC", "sol"]) == ["BTC", "ETH", "SOL"]
    with pytest.raises(ValueError, match=r"symbols\[1\]"):
        normalise_symbols(["BTC", "not a ticker"])
    with pytest.raises(ValueError, match=r"symbols\[0\]"):
        normalise_symbols([""])


LABELS = ["positive", "negative", "neutral"]  # FinBERT's id order


def test_aggregate_hand_checked_example():
    items = [
        (["BTC"], [0.7, 0.1, 0.2]),          # s = 0.6,  c = 0.7, top positive
        (["BTC", "ETH"], [0.2, 0.5, 0.3]),   # s = -0.3, c = 0.5, top negative
        (["ETH"], [0.1, 0.1, 0.8]),          # s = 0.0,  c = 0.8, top neutral
        ([], [0.9, 0.05, 0.05]),             # no symbol: ignored
    ]
    agg = aggregate_symbols(items, LABELS)
    assert list(agg) == ["BTC", "ETH"]
    btc, eth = agg["BTC"], agg["ETH"]
    assert btc["count"] == 2 and eth["count"] == 2
    assert btc["mean_signed_score"] == pytest.approx((0.6 - 0.3) / 2)                 # 0.15
    assert btc["confidence_weighted_score"] == pytest.approx((0.42 - 0.15) / 1.2)     # 0.225
    assert btc["label_counts"] == {"positive": 1, "negative": 1, "neutral": 0}
    assert eth["mean_signed_score"] == pytest.approx(-0.15)
    assert eth["confidence_weighted_score"] == pytest.approx(-0.15 / 1.3)             # -0.11538
    assert eth["label_counts"] == {"positive": 0, "negative": 1, "neutral": 1}


def test_aggregate_uses_label_names_not_positions():
    # the demo model orders labels differently; same item, same numbers
    labels = ["negative", "neutral", "positive"]
    agg = aggregate_symbols([(["SOL"], [0.1, 0.2, 0.7])], labels)
    assert agg["SOL"]["mean_signed_score"] == pytest.approx(0.6)
    assert agg["SOL"]["label_counts"] == {"negative": 0, "neutral": 0, "positive": 1}
    assert signed_score([0.1, 0.2, 0.7], labels) == pytest.approx(0.6)


def test_aggregate_counts_an_item_once_per_symbol_and_breaks_ties_by_label_order():
    agg = aggregate_symbols([(["BTC", "BTC"], [0.4, 0.4, 0.2])], LABELS)
    assert agg["BTC"]["count"] == 1
    assert agg["BTC"]["label_counts"]["positive"] == 1  # tie -> first label


def test_aggregate_rejects_bad_input():
    with pytest.raises(ValueError, match="no 'positive' label"):
        aggregate_symbols([(["BTC"], [0.5, 0.5])], ["LABEL_0", "LABEL_1"])
    with pytest.raises(ValueError, match="item 0: 2 probabilities for 3 labels"):
        aggregate_symbols([(["BTC"], [0.5, 0.5])], LABELS)


def test_symbols_module_is_stdlib_only():
    tree = ast.parse(inspect.getsource(symbols_module))
    imported = {alias.name.split(".")[0] for node in ast.walk(tree) if isinstance(node, ast.Import)
                for alias in node.names}
    imported |= {node.module.split(".")[0] for node in ast.walk(tree)
                 if isinstance(node, ast.ImportFrom) and node.module and node.level == 0}
    assert imported <= {"__future__", "re", "collections", "typing"}, imported
