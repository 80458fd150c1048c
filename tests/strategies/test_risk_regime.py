"""Market-regime circuit breaker: constructed series and the real 2024-08-05 crash (no DB)."""

from __future__ import annotations

import math
import os
from pathlib import Path

import numpy as np
import pytest

from strategies.engine.types import Outcome
from strategies.risk import EntryRequest, Regime, RiskConfig, RiskManager
from strategies.risk.regime import RegimeMetrics, classify, compute_metrics, next_regime
from strategies.risk.testing import ArrayMarketData, make_view

T0 = 1_709_251_200_000  # 2024-03-01 00:00 UTC
H = 3_600_000
M = 60_000


def series(s=0.005, tail_drift=0.0, tail_s=None, n=744, tail=24) -> np.ndarray:
    """Closes (n + 1) whose log returns alternate +-s; the last ``tail`` returns alternate
    +-tail_s and carry a constant drift (so the 24h return is exp(24 drift) - 1)."""
    r = np.array([s if i % 2 == 0 else -s for i in range(n)])
    ts = s if tail_s is None else tail_s
    r[-tail:] = np.array([ts if i % 2 == 0 else -ts for i in range(tail)]) + tail_drift
    return 100.0 * np.exp(np.concatenate(([0.0], np.cumsum(r))))


def md_of(closes_by_symbol, tf=H, end=T0) -> ArrayMarketData:
    n = len(next(iter(closes_by_symbol.values())))
    return ArrayMarketData.regular(closes_by_symbol, end - (n - 1) * tf, tf)


def vol_ratio(closes) -> float:
    r = np.diff(np.log(closes))
    return float(np.std(r[-24:]) / np.std(r[-720:]))


def first_step(md, **kw):
    rm = RiskManager(RiskConfig(correlation_action="off", **kw))
    return rm, rm.on_candle(T0, make_view(time_ms=T0, market=md))


def test_normal_market_records_nothing():
    c = series()
    rm, decs = first_step(md_of({"BTC/USDT": c}))
    assert decs == [] and rm.regime == Regime.NORMAL
    m = rm.regime_metrics
    assert m.btc_return_pct == pytest.approx(0.0, abs=1e-9)
    assert m.market_return_pct is None and m.market_symbols == 1  # fewer than 3 universe symbols
    assert m.vol_ratio == pytest.approx(vol_ratio(c), rel=1e-12)


def test_btc_drop_is_caution():
    c = series(tail_drift=math.log(0.95) / 24)
    rm, decs = first_step(md_of({"BTC/USDT": c}))
    vr = vol_ratio(c)
    assert rm.regime == Regime.CAUTION
    assert [(d.rule, d.outcome, d.reason) for d in decs] == [
        (
            "circuit_breaker",
            Outcome.INFO,
            f"regime NORMAL -> CAUTION (BTC/USDT 24h return -5.00%, market 24h return n/a over 1 symbols, "
            f"vol ratio {vr:.2f})",
        )
    ]
    assert decs[0].payload["btc_return_pct"] == pytest.approx(-5.0, abs=1e-9)
    # CAUTION halves a long and takes 0.75 of a short
    rd = rm.check_entry(EntryRequest(T0, "ETH/USDT", "long", 250.0, 100.0), make_view(market=md_of({"BTC/USDT": c})))
    assert rd.quote_amount == 125.0
    assert [(d.rule, d.outcome, d.reason) for d in rd.decisions] == [
        ("circuit_breaker", Outcome.RESIZE, "regime CAUTION, long: size x0.5, 250.00 -> 125.00 USDT")
    ]
    rd = rm.check_entry(EntryRequest(T0, "ETH/USDT", "short", 200.0, 100.0), make_view(market=md_of({"BTC/USDT": c})))
    assert rd.quote_amount == 150.0


def test_btc_crash_is_panic_and_blocks_longs_not_shorts():
    md = md_of({"BTC/USDT": series(tail_drift=math.log(0.90) / 24)})
    rm, decs = first_step(md)
    assert rm.regime == Regime.PANIC and decs[0].payload["to"] == "panic"
    rd = rm.check_entry(EntryRequest(T0, "ETH/USDT", "long", 250.0, 100.0), make_view(market=md))
    assert not rd.approved and rd.quote_amount == 0.0
    assert [(d.rule, d.outcome, d.reason) for d in rd.decisions] == [
        ("circuit_breaker", Outcome.BLOCK, "regime PANIC: new long entries blocked")
    ]
    rd = rm.check_entry(EntryRequest(T0, "ETH/USDT", "short", 250.0, 100.0), make_view(market=md))
    assert rd.approved and rd.quote_amount == 125.0
    assert rd.decisions[0].reason == "regime PANIC, short: size x0.5, 250.00 -> 125.00 USDT"
    # multipliers are configurable per side (a partial dict overrides the named regimes only)
    rm = RiskManager(RiskConfig.from_dict({"regime_short_multipliers": {"panic": 0.0}, "correlation_action": "off"}))
    rm.on_candle(T0, make_view(market=md))
    rd = rm.check_entry(EntryRequest(T0, "ETH/USDT", "short", 250.0, 100.0), make_view(market=md))
    assert rd.decisions[0].reason == "regime PANIC: new short entries blocked"


def test_btc_rally_is_euphoria():
    md = md_of({"BTC/USDT": series(tail_drift=math.log(1.10) / 24)})
    rm, _ = first_step(md)
    assert rm.regime == Regime.EUPHORIA
    rd = rm.check_entry(EntryRequest(T0, "ETH/USDT", "long", 200.0, 100.0), make_view(market=md))
    assert rd.quote_amount == 150.0
    assert rd.decisions[0].reason == "regime EUPHORIA, long: size x0.75, 200.00 -> 150.00 USDT"


def test_volatility_spike_alone_is_caution():
    c = series(tail_s=0.015)  # 3x the usual hourly moves, no net move
    rm, _ = first_step(md_of({"BTC/USDT": c}))
    # independent: short std 0.015, long std sqrt((696 x 0.005^2 + 24 x 0.015^2) / 720)
    expected = 0.015 / math.sqrt((696 * 0.005**2 + 24 * 0.015**2) / 720)
    assert rm.regime_metrics.vol_ratio == pytest.approx(expected, rel=1e-9)
    assert rm.regime_metrics.vol_ratio >= 1.75
    assert rm.regime == Regime.CAUTION


def test_market_wide_selloff_is_panic_even_when_btc_holds():
    btc = series(tail_drift=math.log(0.97) / 24)  # -3 %
    alt = series(tail_drift=math.log(0.84) / 24)  # -16 %
    md = md_of({"BTC/USDT": btc, "ETH/USDT": alt, "SOL/USDT": alt, "XRP/USDT": alt, "PEPE/USDT": alt})
    rm, decs = first_step(md)
    m = rm.regime_metrics
    assert m.market_symbols == 4  # PEPE is not in the default universe
    assert m.market_return_pct == pytest.approx((-3.0 - 16.0 * 3) / 4, abs=1e-9)  # -12.75 %
    assert rm.regime == Regime.PANIC
    assert "market 24h return -12.75% over 4 symbols" in decs[0].reason


def test_classify_rules():
    cfg = RiskConfig()
    assert classify(RegimeMetrics(), cfg) == Regime.NORMAL
    assert classify(RegimeMetrics(-8.0, None, 0, None), cfg) == Regime.PANIC
    assert classify(RegimeMetrics(-7.9, None, 0, None), cfg) == Regime.CAUTION
    assert classify(RegimeMetrics(-4.0, None, 0, 2.0), cfg) == Regime.PANIC  # falling and vol doubled
    assert classify(RegimeMetrics(-3.9, None, 0, 2.5), cfg) == Regime.CAUTION  # vol alone
    assert classify(RegimeMetrics(1.0, -12.0, 5, 1.0), cfg) == Regime.PANIC
    assert classify(RegimeMetrics(1.0, -6.0, 5, 1.0), cfg) == Regime.CAUTION
    assert classify(RegimeMetrics(8.0, None, 0, 3.0), cfg) == Regime.EUPHORIA  # a rally outranks its vol
    assert classify(RegimeMetrics(1.0, 12.0, 5, 1.0), cfg) == Regime.EUPHORIA
    assert classify(RegimeMetrics(3.0, 3.0, 5, 1.7), cfg) == Regime.NORMAL


def test_next_regime_hysteresis():
    assert next_regime("normal", None, "panic", 0, 3) == "panic"
    assert next_regime("caution", 0, "panic", H, 3) == "panic"  # more severe: at once
    assert next_regime("panic", 0, "normal", 2 * H, 3) == "panic"  # too early to relax
    assert next_regime("panic", 0, "normal", 3 * H, 3) == "normal"


def test_regime_relaxes_only_after_the_hold_time():
    # a 5 % drop spread over 4 hours, then calm: the 24h return shows it for 24 hours
    n = 800
    r = np.array([0.005 if i % 2 == 0 else -0.005 for i in range(n)])
    drop_at = 730
    r[drop_at : drop_at + 4] += math.log(0.95) / 4
    closes = 100.0 * np.exp(np.concatenate(([0.0], np.cumsum(r))))
    start = T0
    md = ArrayMarketData.regular({"BTC/USDT": closes}, start, H)
    rm = RiskManager(RiskConfig(correlation_action="off", regime_min_hold_hours=48.0))
    changes = []
    for i in range(721, n + 1):
        t = start + i * H
        for d in rm.on_candle(t, make_view(time_ms=t, market=md)):
            changes.append((i, d.payload["from"], d.payload["to"]))
    # the drop is complete at close index drop_at + 4 -> CAUTION; it leaves the 24h window 24
    # candles later, but NORMAL only returns 48 hours after CAUTION began
    assert changes == [(drop_at + 4, "normal", "caution"), (drop_at + 4 + 48, "caution", "normal")]


class CountingMarket(ArrayMarketData):
    def __init__(self, *a, **kw):
        super().__init__(*a, **kw)
        self.calls = 0

    def closes(self, symbol, until_ms, n):
        self.calls += 1
        return super().closes(symbol, until_ms, n)


def test_regime_is_recomputed_once_per_hour_on_1m_candles():
    n = 200
    md = CountingMarket.regular({"BTC/USDT": np.linspace(100.0, 101.0, n)}, T0, M)
    rm = RiskManager(RiskConfig(correlation_action="off"))
    rm.on_candle(T0, make_view(time_ms=T0, market=md))
    per_computation = md.calls
    assert per_computation > 0
    for i in range(1, 120):  # two hours of 1m candles
        rm.on_candle(T0 + i * M, make_view(time_ms=T0 + i * M, market=md))
    assert md.calls == 2 * per_computation


# -- real data: the 2024-08-05 crash ----------------------------------------------------------
UNIVERSE = ["BTC", "ETH", "SOL", "BNB", "XRP", "ADA", "AVAX", "DOGE", "LINK", "LTC"]
AUG5 = 1_722_816_000_000  # 2024-08-05 00:00 UTC


def shared_ohlcv() -> Path:
    root = Path(os.environ.get("MARKET7_SHARED_DATA") or Path(__file__).resolve().parents[3] / "shared" / "data")
    path = root / "ohlcv" / "spot"
    if not path.is_dir():
        if os.environ.get("MARKET7_REQUIRE_SERVICES") == "1":
            pytest.fail(f"required data missing: {path}")
        pytest.skip(f"../shared/data not present at {path}")
    return path


@pytest.fixture(scope="module")
def frames():
    pd = pytest.importorskip("pandas")
    spot = shared_ohlcv()
    return {s: pd.read_csv(spot / f"{s}USDT-1h.csv.gz") for s in UNIVERSE}


@pytest.mark.shared_data
def test_2024_08_05_crash_classifies_panic(frames):
    md = ArrayMarketData({f"{s}/USDT": (f.open_time.values, f.close.values) for s, f in frames.items()}, H)
    rm = RiskManager(RiskConfig())
    regimes = {}
    for t in range(AUG5 - 24 * H, AUG5 + 9 * H, H):
        rm.on_candle(t, make_view(time_ms=t, market=md))
        regimes[(t - AUG5) // H] = rm.regime
        if t == AUG5 + 3 * H:
            rd = rm.check_entry(EntryRequest(t, "ETH/USDT", "long", 100.0, 2300.0), make_view(market=md))
            assert not rd.approved
            assert rd.decisions[-1].reason == "regime PANIC: new long entries blocked"
            m = rm.regime_metrics
    # what the data says: calm on the evening of 08-04, CAUTION at 00:00, PANIC 01:00-08:00
    assert regimes[-4] == Regime.NORMAL
    assert regimes[0] == Regime.CAUTION
    assert all(regimes[h] == Regime.PANIC for h in range(1, 9))
    # the signals, checked independently with pandas at 03:00 UTC
    btc = frames["BTC"].set_index("open_time").close
    t = AUG5 + 3 * H
    assert m.btc_return_pct == pytest.approx((btc[t] / btc[t - 24 * H] - 1) * 100, rel=1e-12)
    rets = [
        (f.set_index("open_time").close[t] / f.set_index("open_time").close[t - 24 * H] - 1) * 100
        for f in frames.values()
    ]
    assert m.market_symbols == 10 and m.market_return_pct == pytest.approx(np.mean(rets), rel=1e-12)
    lr = np.diff(np.log(btc.loc[:t].values[-721:]))
    assert m.vol_ratio == pytest.approx(np.std(lr[-24:]) / np.std(lr), rel=1e-12)
    assert m.btc_return_pct < -8.0 and m.market_return_pct < -12.0


@pytest.mark.shared_data
def test_1m_stepping_samples_hourly(frames):
    pd = pytest.importorskip("pandas")
    m1 = pd.read_csv(shared_ohlcv() / "BTCUSDT-1m.csv.gz")
    md1 = ArrayMarketData({"BTC/USDT": (m1.open_time.values, m1.close.values)}, M)
    f = frames["BTC"]
    md60 = ArrayMarketData({"BTC/USDT": (f.open_time.values, f.close.values)}, H)
    cfg = RiskConfig()
    t = AUG5 + 3 * H
    # the 1m candle opening 03:59 closes with the 1h candle opening 03:00
    a = compute_metrics(md1, cfg, t + 59 * M)
    b = compute_metrics(md60, cfg, t)
    assert a.btc_return_pct == pytest.approx(b.btc_return_pct, rel=1e-12)
    assert a.vol_ratio is None  # the 1m sample holds 9 days, less than the 30-day baseline
