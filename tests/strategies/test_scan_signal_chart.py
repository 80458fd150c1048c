"""The Scan Review signal chart shows the candles around the signal (200 before, the signal
candle, up to 50 after where stored): ``trading.selectors.markets.market_candles_around`` and the
page's chart JSON; owner / other user / anonymous."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta

import pytest

from strategies.models import MarketScan, ScanSignal
from trading.models import Candle, Exchange, Market
from trading.selectors.markets import market_candles_around

T0 = datetime(2025, 1, 1, tzinfo=UTC)
H = timedelta(hours=1)
N = 300


@pytest.fixture
def btc(db):
    ex = Exchange.objects.create(code="binance", name="Binance")
    m = Market.objects.create(exchange=ex, symbol="BTC/USDT", exchange_symbol="BTCUSDT", base="BTC", quote="USDT")
    Candle.objects.bulk_create(
        Candle(
            market=m,
            timeframe="1h",
            open_time=T0 + i * H,
            open=100 + i,
            high=101 + i,
            low=99 + i,
            close=100.5 + i,
            volume=float(i),
        )  # fmt: skip
        for i in range(N)
    )
    Candle.objects.create(market=m, timeframe="4h", open_time=T0, open=1, high=1, low=1, close=1, volume=1)
    return m


def _idx(rows):
    return [int((r["time"] - T0.timestamp()) // 3600) for r in rows]


@pytest.mark.parametrize(
    "at, expected",
    [
        (230, list(range(30, 281))),  # 200 before, the signal candle, 50 after
        (280, list(range(80, N))),  # only 19 after: the data ends
        (100, list(range(0, 151))),  # only 100 before: the data starts
        (N - 1, list(range(N - 201, N))),  # the newest candle: nothing after
    ],
)
def test_window(btc, at, expected):
    rows = market_candles_around(market=btc, timeframe="1h", at=T0 + at * H)
    assert _idx(rows) == expected
    first = rows[0]
    i = expected[0]
    assert first == {"time": int((T0 + i * H).timestamp()), "open": 100.0 + i, "high": 101.0 + i, "low": 99.0 + i,
                     "close": 100.5 + i, "volume": float(i)}  # fmt: skip


def test_window_without_the_signal_candle_and_small_sizes(btc):
    Candle.objects.filter(market=btc, timeframe="1h", open_time=T0 + 230 * H).delete()
    assert _idx(market_candles_around(market=btc, timeframe="1h", at=T0 + 230 * H)) == [
        *range(30, 230),
        *range(231, 281),
    ]
    assert _idx(market_candles_around(market=btc, timeframe="1h", at=T0 + 10 * H, before=2, after=3)) == [
        8, 9, 10, 11, 12, 13,
    ]  # fmt: skip
    assert _idx(market_candles_around(market=btc, timeframe="1h", at=T0 + 10 * H, before=0, after=0)) == [10]


def test_signal_page_embeds_the_window(client, btc, make_user):
    alice, bob = make_user("alice"), make_user("bob")
    scan = MarketScan.objects.create(owner=alice, at=T0 + 231 * H, timeframe="1h", strategies=["swing"])
    sig = ScanSignal.objects.create(
        scan=scan, market=btc, strategy="swing", time=T0 + 230 * H, side="long", score=0.7, entry=330.5,
        stop_loss=320.0, take_profit=350.0, rrr=1.9, reason="breakout",
    )  # fmt: skip
    client.force_login(alice)
    html = client.get(f"/scans/signals/{sig.pk}/").content.decode()
    data = json.loads(html.split('id="signal-chart-data" type="application/json">')[1].split("</script>")[0])
    assert _idx(data["candles"]) == list(range(30, 281))
    assert data["candles"] == market_candles_around(market=btc, timeframe="1h", at=sig.time)
    assert (data["signal_time"], data["entry"], data["stop_loss"], data["take_profit"]) == (
        int((T0 + 230 * H).timestamp()), 330.5, 320.0, 350.0,
    )  # fmt: skip
    client.force_login(bob)
    assert client.get(f"/scans/signals/{sig.pk}/").status_code == 404
    client.logout()
    r = client.get(f"/scans/signals/{sig.pk}/")
    assert r.status_code == 302 and "/accounts/login/" in r.url
