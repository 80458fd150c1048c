"""Correlation limit of the risk layer: constructed series and real Binance 1h data (no DB)."""

from __future__ import annotations

import math
import os
from pathlib import Path

import numpy as np
import pytest

from strategies.engine.types import Outcome
from strategies.risk import EntryRequest, OpenPosition, RiskConfig, RiskManager
from strategies.risk.correlation import log_returns, pearson, rolling_correlation
from strategies.risk.testing import ArrayMarketData, make_view

T0 = 1_709_251_200_000  # 2024-03-01 00:00 UTC
H = 3_600_000


def closes_from_returns(r) -> np.ndarray:
    return 100.0 * np.exp(np.concatenate(([0.0], np.cumsum(np.asarray(r, dtype=float)))))


# a and b are orthogonal, zero-mean, equal-norm return vectors: corr(a, a + b) = 1/sqrt(2),
# corr(a, a + 2b) = 1/sqrt(5), corr(a, -a) = -1
A = np.array([1.0, -1.0, 1.0, -1.0]) * 0.01
B = np.array([1.0, 1.0, -1.0, -1.0]) * 0.01


def market() -> ArrayMarketData:
    return ArrayMarketData.regular(
        {
            "ETH/USDT": closes_from_returns(A),
            "BTC/USDT": closes_from_returns(A + B),
            "SOL/USDT": closes_from_returns(A + 2 * B),
            "INV/USDT": closes_from_returns(-A),
            "FLAT/USDT": np.full(5, 3.0),
        },
        T0 - 4 * H,
        H,
    )


def test_pearson_on_constructed_series():
    assert pearson(A, A + B) == pytest.approx(1 / math.sqrt(2), abs=1e-12)
    assert pearson(A, A + 2 * B) == pytest.approx(1 / math.sqrt(5), abs=1e-12)
    assert pearson(A, -A) == pytest.approx(-1.0, abs=1e-12)
    assert pearson(A, np.zeros(4)) is None
    assert pearson(A[:1], B[:1]) is None
    with pytest.raises(ValueError):
        pearson(A, B[:3])
    np.testing.assert_allclose(log_returns(closes_from_returns(A)), A, atol=1e-15)


def test_rolling_correlation_reads_the_latest_window():
    md = market()
    assert rolling_correlation(md, "BTC/USDT", "ETH/USDT", T0, 4) == pytest.approx(1 / math.sqrt(2), abs=1e-12)
    assert rolling_correlation(md, "BTC/USDT", "BTC/USDT", T0, 4) == 1.0
    assert rolling_correlation(md, "BTC/USDT", "ETH/USDT", T0, 5) is None  # not enough closes
    assert rolling_correlation(md, "BTC/USDT", "NOPE/USDT", T0, 4) is None  # unknown symbol
    assert rolling_correlation(md, "BTC/USDT", "FLAT/USDT", T0, 4) is None  # constant series
    # no look-ahead: one candle earlier the window is shorter than 4 returns
    assert rolling_correlation(md, "BTC/USDT", "ETH/USDT", T0 - H, 4) is None


def manager(**kw) -> RiskManager:
    kw.setdefault("regime_enabled", False)
    kw.setdefault("correlation_window", 4)
    return RiskManager(RiskConfig(**kw))


def entry(symbol="BTC/USDT", side="long", amount=250.0):
    return EntryRequest(T0, symbol, side, amount, 100.0)


ETH_LONG = OpenPosition("ETH/USDT", "long", 1000.0, 100.0)


def test_correlated_entry_is_shrunk_by_default():
    rd = manager().check_entry(entry(), make_view(positions=[ETH_LONG], market=market()))
    assert rd.approved and rd.quote_amount == 125.0
    assert [(d.rule, d.outcome, d.reason) for d in rd.decisions] == [
        (
            "correlation_limit",
            Outcome.RESIZE,
            "correlation 0.71 with open long ETH/USDT (4 candles) > max 0.70: size x0.5, 250.00 -> 125.00 USDT",
        )
    ]
    assert rd.decisions[0].payload["correlation"] == pytest.approx(1 / math.sqrt(2), abs=1e-12)


def test_correlated_entry_is_refused_when_configured():
    rd = manager(correlation_action="block").check_entry(entry(), make_view(positions=[ETH_LONG], market=market()))
    assert not rd.approved and rd.quote_amount == 0.0
    assert [(d.rule, d.outcome, d.reason) for d in rd.decisions] == [
        ("correlation_limit", Outcome.BLOCK, "correlation 0.71 with open long ETH/USDT (4 candles) > max 0.70")
    ]


def test_uncorrelated_hedged_or_disabled_entries_pass():
    md = market()
    # 0.45 < 0.7
    assert manager().check_entry(entry("SOL/USDT"), make_view(positions=[ETH_LONG], market=md)).decisions == []
    # a short against an open long of a correlated symbol hedges it (effective -0.71)
    rd = manager().check_entry(entry(side="short"), make_view(positions=[ETH_LONG], market=md))
    assert rd.approved and rd.quote_amount == 250.0 and rd.decisions == []
    # perfectly anti-correlated symbol on the same side: -1, fine
    assert manager().check_entry(entry("INV/USDT"), make_view(positions=[ETH_LONG], market=md)).decisions == []
    # threshold above the correlation, or the rule off
    assert (
        manager(correlation_max=0.75).check_entry(entry(), make_view(positions=[ETH_LONG], market=md)).decisions == []
    )
    assert (
        manager(correlation_action="off").check_entry(entry(), make_view(positions=[ETH_LONG], market=md)).decisions
        == []
    )


def test_the_most_correlated_open_position_decides():
    md = market()
    positions = [OpenPosition("SOL/USDT", "long", 1.0, 1.0), OpenPosition("BTC/USDT", "long", 1.0, 1.0)]
    rd = manager().check_entry(entry("BTC/USDT"), make_view(positions=positions, market=md))
    # the same symbol already open counts as correlation 1
    assert rd.decisions[0].reason.startswith("correlation 1.00 with open long BTC/USDT (4 candles) > max 0.70")


# -- real data --------------------------------------------------------------------------------
def shared_ohlcv() -> Path:
    root = Path(os.environ.get("MARKET7_SHARED_DATA") or Path(__file__).resolve().parents[3] / "shared" / "data")
    path = root / "ohlcv" / "spot"
    if not path.is_dir():
        if os.environ.get("MARKET7_REQUIRE_SERVICES") == "1":
            pytest.fail(f"required data missing: {path}")
        pytest.skip(f"../shared/data not present at {path}")
    return path


@pytest.mark.shared_data
def test_btc_eth_1h_are_highly_correlated_on_real_data():
    pd = pytest.importorskip("pandas")
    spot = shared_ohlcv()
    btc = pd.read_csv(spot / "BTCUSDT-1h.csv.gz")
    eth = pd.read_csv(spot / "ETHUSDT-1h.csv.gz")
    md = ArrayMarketData(
        {"BTC/USDT": (btc.open_time.values, btc.close.values), "ETH/USDT": (eth.open_time.values, eth.close.values)},
        H,
    )
    t = 1_725_148_800_000  # 2024-09-01 00:00 UTC
    window = 720
    ours = rolling_correlation(md, "ETH/USDT", "BTC/USDT", t, window)
    # independent computation: join on time, log returns, numpy's Pearson
    j = btc.merge(eth, on="open_time", suffixes=("_btc", "_eth"))
    j = j[j.open_time <= t].tail(window + 1)
    expected = np.corrcoef(np.diff(np.log(j.close_btc.values)), np.diff(np.log(j.close_eth.values)))[0, 1]
    assert ours == pytest.approx(expected, abs=1e-12)
    assert ours > 0.7
    rm = RiskManager(RiskConfig(regime_enabled=False, correlation_window=window))
    rd = rm.check_entry(
        EntryRequest(t, "ETH/USDT", "long", 1000.0, 2500.0),
        make_view(positions=[OpenPosition("BTC/USDT", "long", 1000.0, 58_000.0)], market=md),
    )
    assert rd.quote_amount == 500.0
    assert rd.decisions[0].reason == (
        f"correlation {expected:.2f} with open long BTC/USDT (720 candles) > max 0.70: size x0.5, 1000.00 -> 500.00 USDT"
    )
