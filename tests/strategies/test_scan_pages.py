"""Scan Review pages: the latest scan per strategy (own + system scans), sort, the component
bars, the signal detail with its chart data and links, Scan now, and access (another user's
scan or signal is a 404; anonymous users go to the login page)."""

from __future__ import annotations

import json
from datetime import UTC, datetime

import pytest

from strategies.models import MarketScan, ScanSignal
from strategies.signals import DETECTORS, register
from tests.strategies.test_scan_command import CandleDirection
from trading.models import Exchange, Market
from trading.services.candles import candles_import


def dt(*a) -> datetime:
    return datetime(*a, tzinfo=UTC)


@pytest.fixture
def world(db, make_user):
    alice, bob = make_user("alice"), make_user("bob")
    ex = Exchange.objects.create(code="binance", name="Binance")
    btc = Market.objects.create(exchange=ex, symbol="BTC/USDT", exchange_symbol="BTCUSDT", base="BTC", quote="USDT")
    eth = Market.objects.create(exchange=ex, symbol="ETH/USDT", exchange_symbol="ETHUSDT", base="ETH", quote="USDT")

    def scan(owner, at, strategies):
        return MarketScan.objects.create(owner=owner, at=at, timeframe="1h", strategies=strategies)

    def sig(s, market, strategy, score, **kw):
        fields = {
            "time": s.at.replace(hour=s.at.hour - 1), "side": "long", "entry": 100.0, "stop_loss": 95.0,
            "take_profit": 110.0, "rrr": 2.0, "reason": f"{strategy} {market.symbol}",
            "components": {"macd": {"value": 1.5, "points": 0.3}, "rsi": {"value": 28.0, "points": -0.15}},
        }  # fmt: skip
        return ScanSignal.objects.create(scan=s, market=market, strategy=strategy, score=score, **{**fields, **kw})

    old_system = scan(None, dt(2025, 6, 1, 10), ["fork_score", "swing"])
    s = {
        "old_fork": sig(old_system, btc, "fork_score", 0.90),  # superseded by alice's newer fork_score scan
        "swing_eth": sig(old_system, eth, "swing", 0.70),
    }
    mine = scan(alice, dt(2025, 6, 1, 12), ["fork_score"])
    s["fork_btc"] = sig(mine, btc, "fork_score", 0.55)
    s["fork_eth"] = sig(mine, eth, "fork_score", 0.80, side="short", entry=200.0, stop_loss=210.0, take_profit=180.0)
    bobs = scan(bob, dt(2025, 6, 1, 13), ["fork_score", "swing", "channel"])
    s["bob"] = sig(bobs, btc, "channel", 0.99)
    return {"alice": alice, "bob": bob, "btc": btc, "eth": eth, "s": s}


def row_ids(html: str) -> list[int]:
    return [int(x.split('"')[0]) for x in html.split('<tr data-signal="')[1:]]


def test_review_latest_scan_per_strategy_sorted(client, world):
    s = world["s"]
    client.force_login(world["alice"])
    r = client.get("/scans/")
    assert r.status_code == 200
    html = r.content.decode()
    assert row_ids(html) == [s["fork_eth"].pk, s["swing_eth"].pk, s["fork_btc"].pk]  # score 0.80, 0.70, 0.55
    assert '<td data-label="Score" class="num">0.80</td>' in html
    assert '<a href="/scans/" class="active" aria-current="page">Scans</a>' in html
    asc = client.get("/scans/?sort=score").content.decode()
    assert row_ids(asc) == [s["fork_btc"].pk, s["swing_eth"].pk, s["fork_eth"].pk]
    by_symbol = client.get("/scans/?sort=symbol").content.decode()
    assert row_ids(by_symbol) == [s["fork_btc"].pk, s["fork_eth"].pk, s["swing_eth"].pk]
    assert row_ids(client.get("/scans/?sort=bogus").content.decode()) == row_ids(html)


def test_review_component_bars(client, world):
    client.force_login(world["alice"])
    html = client.get("/scans/").content.decode()
    assert html.count('<span class="scan-bar" style="width: 100.0%"></span>') == 3  # macd 0.3 = the largest
    assert html.count('<span class="scan-bar neg" style="width: 50.0%"></span>') == 3  # rsi -0.15
    assert 'title="macd: value 1.5000, points 0.30"' in html


def test_review_bob_sees_only_his_and_system(client, world):
    s = world["s"]
    client.force_login(world["bob"])
    html = client.get("/scans/").content.decode()
    assert row_ids(html) == [s["bob"].pk]  # his scan is the newest for all three strategies


def test_review_anonymous(client, world):
    r = client.get("/scans/")
    assert r.status_code == 302 and "/accounts/login/" in r.url


def test_signal_detail(client, world):
    s, eth = world["s"], world["eth"]
    client.force_login(world["alice"])
    r = client.get(f"/scans/signals/{s['fork_eth'].pk}/")
    assert r.status_code == 200
    html = r.content.decode()
    data = json.loads(html.split('id="signal-chart-data" type="application/json">')[1].split("</script>")[0])
    assert data == {
        "url": "/markets/binance/ETH-USDT/candles.json",
        "timeframe": "1h",
        "candles": [],  # no candles stored in this world (the window: tests/strategies/test_scan_signal_chart.py)
        "signal_time": int(dt(2025, 6, 1, 11).timestamp()),
        "side": "short",
        "entry": 200.0,
        "stop_loss": 210.0,
        "take_profit": 180.0,
    }
    assert (
        'href="/backtests/new/?strategy=fork_score&amp;symbols=ETH%2FUSDT&amp;timeframe=1h'
        '&amp;start=2025-05-02&amp;end=2025-06-01"' in html
    )
    assert f'href="/bots/new/?strategy=fork_score&amp;markets={eth.pk}&amp;signal_strategies=fork_score"' in html
    assert 'src="/static/js/scans.js"' in html and "<script>" not in html


def test_signal_detail_system_scan_visible(client, world):
    client.force_login(world["bob"])
    assert client.get(f"/scans/signals/{world['s']['swing_eth'].pk}/").status_code == 200


def test_signal_detail_other_users_404(client, world):
    client.force_login(world["bob"])
    assert client.get(f"/scans/signals/{world['s']['fork_eth'].pk}/").status_code == 404
    client.force_login(world["alice"])
    assert client.get(f"/scans/signals/{world['s']['bob'].pk}/").status_code == 404
    assert client.get("/scans/signals/999999/").status_code == 404


def test_signal_detail_anonymous(client, world):
    r = client.get(f"/scans/signals/{world['s']['fork_eth'].pk}/")
    assert r.status_code == 302 and "/accounts/login/" in r.url


def test_backtest_and_bot_forms_prefilled(client, world):
    client.force_login(world["alice"])
    bt = client.get("/backtests/new/?strategy=smart_dca&symbols=ETH/USDT&timeframe=1h&start=2025-05-02&end=2025-06-01")
    form = bt.context["form"]
    assert (form.initial["symbols"], form.initial["start"], form.initial["end"]) == (
        ["ETH/USDT"], "2025-05-02", "2025-06-01",
    )  # fmt: skip
    bot = client.get(f"/bots/new/?strategy=smart_dca&markets={world['eth'].pk}")
    assert bot.context["form"].initial["markets"] == [world["eth"].pk]


@pytest.fixture
def stored_candles(db, bundled_data_dir):
    made = [register(CandleDirection("test_up", True)), register(CandleDirection("test_down", False))]
    for name in ("BTCUSDT-1h.csv.gz", "ETHUSDT-1h.csv.gz"):
        candles_import(path=bundled_data_dir / name, exchange="binance", market_type="spot")
    yield
    for d in made:
        DETECTORS.pop(d.name, None)


def test_scan_now(client, make_user, stored_candles):
    alice = make_user("alice")
    client.force_login(alice)
    r = client.post("/scans/run/", {"symbols": "btc/usdt, ETH/USDT", "strategies": ["test_up", "test_down"]})
    assert r.status_code == 302 and r.url == "/scans/"
    scan = MarketScan.objects.get()
    assert (scan.owner, scan.at, scan.timeframe, scan.strategies) == (
        alice, dt(2025, 9, 1), "1h", ["test_up", "test_down"],
    )  # fmt: skip
    # both newest candles (2025-08-31 23:00) closed below their open
    got = list(scan.signals.order_by("market__symbol").values_list("market__symbol", "strategy", "side", "entry"))
    assert got == [("BTC/USDT", "test_down", "short", 108246.35), ("ETH/USDT", "test_down", "short", 4391.83)]
    page = client.get("/scans/").content.decode()
    assert f"Scan #{scan.pk}: 2 signals." in page
    assert len(row_ids(page)) == 2


def test_scan_now_bad_input_writes_nothing(client, make_user, stored_candles):
    client.force_login(make_user("alice"))
    r = client.post("/scans/run/", {"symbols": "NOPE/USDT", "strategies": ["test_up"]}, follow=True)
    assert "Scan not run: unknown symbol(s) on binance: NOPE/USDT" in r.content.decode()
    assert MarketScan.objects.count() == 0


def test_scan_now_needs_login_and_post(client, db):
    assert client.post("/scans/run/", {"symbols": "BTC/USDT"}).status_code == 302
    assert MarketScan.objects.count() == 0


def test_review_marks_candidates_that_did_not_pass(client, world):
    s = world["s"]
    ScanSignal.objects.filter(pk=s["fork_btc"].pk).update(passed=False, reason="fork score 0.55 fails (needs 0.6)")
    client.force_login(world["alice"])
    html = client.get("/scans/").content.decode()
    assert f'<tr data-signal="{s["fork_btc"].pk}" class="not-passed">' in html
    assert '<td data-label="Passed" title="fork score 0.55 fails (needs 0.6)" data-passed="no">no</td>' in html
    assert html.count('data-passed="yes"') == 2
