"""BTC Risk Panel on the bundled Binance 1h data (BTC, ETH, SOL, BNB; 2025-03-05 .. 2025-04-30
23:00): the regime, its inputs and its history, the BTC filter, and the page.

The inputs are recomputed here from the CSV files, independently of the database and of
strategies.risk.regime (24 h return = close / close 24 candles earlier - 1; EMA200 by TA-Lib).
"""

from __future__ import annotations

from datetime import UTC, datetime

import numpy as np
import pandas as pd
import pytest
import talib
from django.conf import settings

from strategies.services.btc_risk import btc_risk_panel
from tests.trading.conftest import DATA_END, load_bundled

FILES = ("BTCUSDT-1h.csv.gz", "ETHUSDT-1h.csv.gz", "SOLUSDT-1h.csv.gz", "BNBUSDT-1h.csv.gz")


def frame(name: str) -> pd.DataFrame:
    df = pd.read_csv(settings.MARKET7_BUNDLED_DATA / name)
    return df[df.open_time < int(DATA_END.timestamp() * 1000)].reset_index(drop=True)


def ret24(df: pd.DataFrame, at: datetime) -> float:
    t = int(at.timestamp() * 1000)
    i = int(df.index[df.open_time == t][0])
    return (df.close[i] / df.close[i - 24] - 1) * 100


@pytest.fixture
def stored(db):
    for f in FILES:
        load_bundled(f)


def dt(*a) -> datetime:
    return datetime(*a, tzinfo=UTC)


def test_panel_regime_filter_and_history(stored):
    p = btc_risk_panel()
    btc = frame("BTCUSDT-1h.csv.gz")
    assert p.candles == len(btc) == 1368
    assert p.as_of == dt(2025, 4, 30, 23)
    assert p.universe == ["BNB/USDT", "BTC/USDT", "ETH/USDT", "SOL/USDT"]
    assert (p.regime, p.since) == ("normal", dt(2025, 4, 11, 1))
    last = dt(2025, 4, 30, 23)
    assert p.metrics["btc_return_pct"] == pytest.approx(ret24(btc, last), rel=1e-12)
    assert p.metrics["btc_return_pct"] == pytest.approx(-0.08998818334843284, rel=1e-12)
    market = np.mean([ret24(frame(f), last) for f in FILES])
    assert p.metrics["market_return_pct"] == pytest.approx(market, rel=1e-12)
    assert p.metrics["market_symbols"] == 4
    assert p.metrics["vol_ratio"] == pytest.approx(0.7782398188588676, rel=1e-12)

    ema = talib.EMA(btc.close.to_numpy(dtype=float), 200)[-1]
    assert p.filter == {
        "blocked": False,
        "close": 94172.0,
        "ema": pytest.approx(ema, rel=1e-12),
        "ema_period": 200,
        "reason": "BTC not bearish: BTC close 94,172.00 >= EMA200 93,100.31",
    }

    assert len(p.changes) == 38
    times = [c["time"] for c in p.changes]
    assert times == sorted(times, reverse=True)  # newest first
    assert [(c["time"], c["from"], c["to"]) for c in p.changes[:3]] == [
        (dt(2025, 4, 11, 1), "caution", "normal"),
        (dt(2025, 4, 10, 21), "normal", "caution"),
        (dt(2025, 4, 10, 17), "caution", "normal"),
    ]
    assert p.changes[-1]["time"] == dt(2025, 3, 7, 0) and p.changes[-1]["to"] == "caution"
    panics = [c for c in p.changes if c["to"] == "panic"]
    # the 2025-04-07 crash: BTC 24 h -9.99 % <= -8 % at 06:00 (independently recomputed)
    assert [c["time"] for c in panics] == [dt(2025, 4, 7, 16), dt(2025, 4, 7, 11), dt(2025, 4, 7, 6)]
    assert panics[-1]["btc_return_pct"] == pytest.approx(ret24(btc, dt(2025, 4, 7, 6)), rel=1e-12)
    assert panics[-1]["btc_return_pct"] <= -8.0
    # every change alternates from the previous regime
    for newer, older in zip(p.changes, p.changes[1:], strict=False):
        assert newer["from"] == older["to"]

    assert len(p.chart) == 1368
    assert p.chart[-1] == {"time": 1746054000, "value": 94172.0, "regime": "normal"}
    at_panic = next(r for r in p.chart if r["time"] == int(dt(2025, 4, 7, 6).timestamp()))
    assert at_panic["regime"] == "panic"


def test_panel_without_btc_candles(db):
    p = btc_risk_panel()
    assert (p.regime, p.candles, p.changes, p.chart) == (None, 0, [], [])


def test_page(stored, client, make_user):
    client.force_login(make_user("alice"))
    r = client.get("/scans/btc-risk/")
    assert r.status_code == 200
    html = r.content.decode()
    assert '<span class="regime regime-normal" id="regime">NORMAL</span>' in html
    assert "BTC not bearish: BTC close 94,172.00 &gt;= EMA200 93,100.31" in html
    assert html.count('<tr><td class="cell-title">2025-') == 38
    assert '<tr><td class="cell-title">2025-04-07 06:00</td><td data-label="From">CAUTION</td>' in html
    assert 'id="regime-chart-data"' in html


def test_page_anonymous_redirects(client, db):
    r = client.get("/scans/btc-risk/")
    assert r.status_code == 302 and "/accounts/login/" in r.url


def test_page_empty(client, make_user):
    client.force_login(make_user("bob"))
    r = client.get("/scans/btc-risk/")
    assert r.status_code == 200 and "no BTC/USDT 1h candles stored" in r.content.decode()
