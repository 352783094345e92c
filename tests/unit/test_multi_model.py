"""Several models in one service, the pure parts: label -> polarity, the signed score, route configuration,
the market detector against the original keyword rule, and the optional ``polarity`` field of
models.yaml / models.lock (line-numbered errors)."""

from __future__ import annotations

import pytest

from smart_model_manager import polarity
from smart_model_manager.errors import ConfigurationError, LockfileError
from smart_model_manager.formats import lockfile, spec
from smart_model_manager.loaders.mock import MockSentimentRunner
from smart_model_manager.service import market
from smart_model_manager.service.config import ServiceConfig
from smart_model_manager.service.routes_config import RouteSpec, parse_routes, split_route

pytestmark = pytest.mark.unit

# ------------------------------------------------------------------------------------------------
# label -> polarity, and the one signed score


def test_three_label_model_maps_by_names_and_two_label_model_by_the_known_table():
    assert polarity.resolve("ProsusAI/finbert", ["positive", "negative", "neutral"]) == (
        ("positive", "positive"), ("negative", "negative"), ("neutral", "neutral"))
    # kk08/CryptoBERT is binary: LABEL_0 negative, LABEL_1 positive (its public model card)
    assert polarity.resolve("kk08/CryptoBERT", ["LABEL_0", "LABEL_1"]) == (
        ("LABEL_0", "negative"), ("LABEL_1", "positive"))
    assert polarity.resolve("ElKulako/cryptobert", ["Bearish", "Neutral", "Bullish"]) == (
        ("Bearish", "negative"), ("Neutral", "neutral"), ("Bullish", "positive"))


def test_signed_score_is_p_positive_minus_p_negative_for_2_and_3_labels():
    three = [p for _, p in polarity.resolve("ProsusAI/finbert", ["positive", "negative", "neutral"])]
    two = [p for _, p in polarity.resolve("kk08/CryptoBERT", ["LABEL_0", "LABEL_1"])]
    assert polarity.signed_score([0.7, 0.1, 0.2], three) == pytest.approx(0.6)
    assert polarity.signed_score([0.2, 0.8], two) == pytest.approx(0.6)  # LABEL_1 is positive, not "neutral"
    assert polarity.signed_score([0.9, 0.1], two) == pytest.approx(-0.8)
    assert polarity.top_polarity([0.2, 0.8], two) == "positive"
    with pytest.raises(ValueError, match="2 probabilities for 3 labels"):
        polarity.signed_score([0.5, 0.5], three)


def test_a_declared_map_wins_and_must_cover_every_label():
    pairs = polarity.resolve("acme/odd", ["A", "B", "C"], {"A": "positive", "B": "neutral", "C": "negative"})
    assert pairs == (("A", "positive"), ("B", "neutral"), ("C", "negative"))
    with pytest.raises(polarity.PolarityError, match=r"missing \['C'\]"):
        polarity.resolve("acme/odd", ["A", "B", "C"], {"A": "positive", "B": "negative"})


def test_unmappable_labels_are_refused_in_one_line_naming_them():
    with pytest.raises(polarity.PolarityError) as info:
        polarity.resolve("acme/mystery", ["LABEL_0", "LABEL_1"], name="crypto")
    msg = str(info.value)
    assert "\n" not in msg and "'crypto' (acme/mystery)" in msg and "['LABEL_0', 'LABEL_1']" in msg
    assert "polarity:" in msg  # says how to fix it
    with pytest.raises(polarity.PolarityError, match="at least one positive and one negative"):
        polarity.resolve("acme/onesided", ["positive", "neutral"])


def test_the_mock_follows_the_same_table():
    # a mocked kk08/CryptoBERT puts an obviously positive headline on LABEL_1 and a negative one on LABEL_0
    runner = MockSentimentRunner("kk08/CryptoBERT", ("LABEL_0", "LABEL_1"))
    pos, neg = runner(["Bitcoin rallies to a record high", "Exchange hacked, withdrawals halted"])
    assert pos[1] > pos[0] and neg[0] > neg[1]
    assert runner._polarity == polarity.guess("kk08/CryptoBERT", ("LABEL_0", "LABEL_1")) == ["negative", "positive"]


# ------------------------------------------------------------------------------------------------
# route configuration


def test_routes_parse_in_order_with_optional_marks():
    assert parse_routes("crypto=kk08/CryptoBERT, stock=finbert", "stock") == [
        RouteSpec("crypto", "kk08/CryptoBERT"), RouteSpec("stock", "finbert", optional=True)]
    assert split_route("finbert") == (None, "finbert")
    assert split_route("./models/a=b") == (None, "./models/a=b")  # a path with '=' is taken whole
    assert ServiceConfig(model="finbert").routes() == [RouteSpec("default", "finbert")]
    cfg = ServiceConfig.from_env({"SMM_SERVICE_MODELS": "crypto=kk08/CryptoBERT,stock=finbert",
                                  "SMM_SERVICE_OPTIONAL": "stock"})
    assert [r.name for r in cfg.routes()] == ["crypto", "stock"] and cfg.routes()[1].optional
    assert cfg.model_label == "crypto=kk08/CryptoBERT, stock=finbert (optional)"
    assert ServiceConfig.from_env(cfg.to_env()) == cfg  # workers rebuild the same routes


@pytest.mark.parametrize("models,optional,match", [
    ("kk08/CryptoBERT", "", "is not NAME=MODEL"),
    ("crypto=", "", "names no model"),
    ("crypto=a/b,crypto=c/d", "", "given twice"),
    ("Crypto=a/b", "", "is not NAME=MODEL"),
    ("crypto=a/b,stock=c/d", "bonds", r"\['bonds'\], which are not routes"),
    ("crypto=a/b,stock=c/d", "crypto,stock", "every route optional"),
])
def test_bad_route_configuration_is_one_clear_error(models, optional, match):
    with pytest.raises(ConfigurationError, match=match):
        ServiceConfig(models=models, optional=optional)


def test_model_and_models_together_are_refused():
    with pytest.raises(ConfigurationError, match="both SMM_SERVICE_MODEL"):
        ServiceConfig(model="finbert", models="crypto=kk08/CryptoBERT,stock=finbert")
    with pytest.raises(ConfigurationError, match="needs named routes"):
        ServiceConfig(model="finbert", optional="stock")


# ------------------------------------------------------------------------------------------------
# the market detector against the original keyword rule

# The original service's rule, written out independently of service.market: count the keywords of each
# list found in the lowercased text; crypto when the counts tie (0-0 included).
ORIGINAL_CRYPTO = ["bitcoin", "btc", "ethereum", "eth", "crypto", "blockchain", "defi", "nft", "altcoin",
                   "stablecoin", "token", "binance", "coinbase", "solana", "dogecoin", "xrp", "web3", "satoshi",
                   "halving", "mining"]
ORIGINAL_STOCK = ["stock", "nasdaq", "s&p", "dow jones", "nyse", "earnings", "fed", "interest rate", "inflation",
                  "shares", "equity", "ipo", "dividend", "wall street", "treasury", "recession", "revenue",
                  "quarterly"]


def original_market(text: str) -> str:
    t = text.lower()
    crypto_score = 0
    for k in ORIGINAL_CRYPTO:
        if k in t:
            crypto_score += 1
    stock_score = 0
    for k in ORIGINAL_STOCK:
        if k in t:
            stock_score += 1
    return "crypto" if crypto_score >= stock_score else "stock"


HEADLINES = [  # (headline, market by the original rule)
    ("Bitcoin ETF inflows hit a record", "crypto"),
    ("Ethereum developers schedule the next upgrade", "crypto"),
    ("DeFi lending protocol pauses deposits after oracle glitch", "crypto"),
    ("Hackers steal $80 million from DeFi protocol", "crypto"),
    ("Solana DeFi deposits hit a two-year high", "crypto"),
    ("Coinbase lists a new stablecoin", "crypto"),
    ("NFT trading volume collapses to a three-year low", "crypto"),
    ("Binance faces new probe over token listings", "crypto"),
    ("Dogecoin jumps after a celebrity tweet", "crypto"),
    ("XRP climbs as the court case winds down", "crypto"),
    ("Bitcoin miners sell holdings ahead of the halving", "crypto"),
    ("Web3 startup raises $40 million", "crypto"),
    ("Nasdaq closes higher as tech stocks rally", "stock"),
    ("Apple earnings beat estimates on strong iPhone sales", "stock"),
    ("Fed holds interest rates steady, signals cuts later", "stock"),
    ("S&P 500 hits an all-time high", "stock"),
    ("Dow Jones slips as inflation data surprises", "stock"),
    ("Tesla shares fall after quarterly deliveries miss", "stock"),
    ("Chipmaker prices IPO above range on NYSE", "stock"),
    ("Utility raises its dividend for the tenth year", "stock"),
    ("Wall Street braces for recession fears", "stock"),
    ("Treasury yields climb after strong jobs report", "stock"),
    ("Retailer cuts revenue guidance", "stock"),
    ("Private equity firm agrees to buy software maker", "stock"),
    # ties go to crypto, including no keyword at all
    ("Coinbase shares jump after earnings", "stock"),            # 1 crypto vs 2 stock
    ("Coinbase shares jump", "crypto"),                          # 1 - 1: crypto when tied
    ("Bitcoin falls as the Fed signals higher rates", "crypto"),  # 1 - 1
    ("Markets wait for the jobs report", "crypto"),              # 0 - 0: crypto
    ("Oil prices rise on supply worries", "crypto"),             # 0 - 0
    ("MicroStrategy stock tracks bitcoin again", "crypto"),      # 1 - 1
    ("Crypto stocks slide as Nasdaq drops", "stock"),            # crypto 1; stock 2 ("stock", "nasdaq")
    ("Ethereum and bitcoin rally together", "crypto"),           # "eth", "ethereum", "bitcoin": 3 - 0
    # the original's substring quirks, kept: "eth" in "Ethiopia", "fed" in "FedEx"
    ("Ethiopia's central bank raises rates", "crypto"),
    ("FedEx cuts forecast", "stock"),
]


def test_the_table_is_big_enough_and_matches_the_original_rule():
    assert len(HEADLINES) >= 30
    for text, expected in HEADLINES:
        assert original_market(text) == expected, text  # the table says what the original does
        assert market.keyword_market(text) == expected, text  # and the service's detector agrees


def test_the_detector_uses_the_documented_lists_and_is_replaceable():
    assert list(market.CRYPTO_KEYWORDS) == ORIGINAL_CRYPTO and list(market.STOCK_KEYWORDS) == ORIGINAL_STOCK
    fn, markets = market.load_detector("")
    assert fn is market.keyword_market and markets == ("crypto", "stock")
    fn, markets = market.load_detector("os.path:basename")  # any importable callable
    assert fn("a/b") == "b" and markets is None
    with pytest.raises(ConfigurationError, match="is not 'keywords' or 'package.module:function'"):
        market.load_detector("nonsense")
    with pytest.raises(ConfigurationError, match="cannot be imported"):
        market.load_detector("no_such_module_here:f")


# ------------------------------------------------------------------------------------------------
# the optional polarity field of models.yaml and models.lock

LOCK = """\
version: 1
models:
  cryptobert:
    repo_id: kk08/CryptoBERT
    revision: main
    commit: {commit}
    model_type: sentiment
    labels: [LABEL_0, LABEL_1]
{polarity}    files:
      config.json: {{size: 10, sha256: 'sha256:{sha}'}}
"""


def _lock(polarity_lines: str) -> str:
    return LOCK.format(commit="a" * 40, sha="b" * 64, polarity=polarity_lines)


def test_lock_reads_and_writes_the_polarity_map_and_stays_compatible_without_it():
    lock = lockfile.loads(_lock("    polarity: {LABEL_0: negative, LABEL_1: positive}\n"))
    entry = lock.models["cryptobert"]
    assert entry.polarity == {"LABEL_0": "negative", "LABEL_1": "positive"}
    assert lockfile.loads(lock.dumps()).models["cryptobert"].polarity == entry.polarity  # round trip
    old = lockfile.loads(_lock(""))  # a lock written before the field existed
    assert old.models["cryptobert"].polarity == {} and "polarity" not in old.dumps()


@pytest.mark.parametrize("line,match", [
    ("    polarity: {LABEL_0: negative}\n", r"missing \['LABEL_1'\]"),
    ("    polarity: {LABEL_0: negative, LABEL_1: bullish}\n", "expected one of positive, negative, neutral"),
    ("    polarity: [negative, positive]\n", "expected a mapping of label"),
    ("    polarity: {LABEL_0: negative, LABEL_1: positive, LABEL_2: neutral}\n", "not labels of this model"),
])
def test_a_bad_polarity_map_in_the_lock_names_file_line_and_field(line, match):
    with pytest.raises(LockfileError, match=match) as info:
        lockfile.loads(_lock(line), "models.lock")
    assert "models.lock:9" in str(info.value) and "models.cryptobert.polarity" in str(info.value)


def test_models_yaml_takes_a_polarity_map_with_line_numbered_errors():
    good = spec.loads("models:\n  crypto:\n    repo_id: kk08/CryptoBERT\n    model_type: sentiment\n"
                      "    polarity: {LABEL_0: negative, LABEL_1: positive}\n")
    assert dict(good.models["crypto"].polarity) == {"LABEL_0": "negative", "LABEL_1": "positive"}
    with pytest.raises(LockfileError, match=r"models.yaml:5: models.crypto.polarity.LABEL_1: expected one of"):
        spec.loads("models:\n  crypto:\n    repo_id: kk08/CryptoBERT\n    model_type: sentiment\n"
                   "    polarity: {LABEL_0: negative, LABEL_1: up}\n", "models.yaml")


def test_smm_lock_checks_the_declared_map_against_the_pinned_labels_and_the_manager_reads_it():
    from smart_model_manager.api import ModelManager
    from smart_model_manager.ops import lock as locking

    entry = spec.loads("models:\n  cryptobert:\n    repo_id: kk08/CryptoBERT\n    model_type: sentiment\n"
                       "    polarity: {LABEL_1: positive, LABEL_0: negative}\n", "models.yaml").models["cryptobert"]
    assert locking._polarity(entry, ("LABEL_0", "LABEL_1"), "models.yaml") == {"LABEL_0": "negative",
                                                                              "LABEL_1": "positive"}
    with pytest.raises(LockfileError, match=r"models.yaml:2: models.cryptobert.polarity: .*missing \['LABEL_2'\]"):
        locking._polarity(entry, ("LABEL_0", "LABEL_1", "LABEL_2"), "models.yaml")
    lock = lockfile.loads(_lock("    polarity: {LABEL_0: negative, LABEL_1: positive}\n"))
    manager = ModelManager("test", lock=lock)
    assert manager.declared_polarity("cryptobert", "kk08/CryptoBERT") == {"LABEL_0": "negative", "LABEL_1": "positive"}
    assert manager.declared_polarity(None, "kk08/CryptoBERT") == {"LABEL_0": "negative", "LABEL_1": "positive"}
    assert manager.declared_polarity("finbert", "ProsusAI/finbert") == {}


def test_the_cli_model_options_map_onto_the_service_config():
    import click

    from smart_model_manager.cli.serve import _model_options, sentiment

    assert _model_options((), ()) == {}
    assert _model_options(("finbert",), ()) == {"model": "finbert", "models": ""}
    got = _model_options(("crypto=kk08/CryptoBERT", "stock=finbert"), ("stock",))
    assert got == {"models": "crypto=kk08/CryptoBERT,stock=finbert", "optional": "stock", "model": ""}
    assert [r.optional for r in ServiceConfig(**got).routes()] == [False, True]
    with pytest.raises(click.UsageError, match="must each be NAME=MODEL"):
        _model_options(("crypto=kk08/CryptoBERT", "finbert"), ())
    with pytest.raises(click.UsageError, match="--optional needs named routes"):
        _model_options(("finbert",), ("stock",))
    names = {p.name for p in sentiment.params}
    assert {"models", "optional", "detector", "model_executor"} <= names
