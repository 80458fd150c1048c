"""Backtest results as the run page reads them: chart helpers (axis precision, curves, trade
markers) and the stored report of a real run on the bundled candles (pairs, open deals,
decision log)."""

from __future__ import annotations

import math
from datetime import UTC, datetime
from pathlib import Path

import pytest
from django.conf import settings
from django.urls import reverse

from strategies.charts import axis_precision, curves, trade_markers


def epoch_ms(iso: str) -> int:
    return int(datetime.fromisoformat(iso.replace("Z", "+00:00")).timestamp() * 1000)


class TestAxisPrecision:
    @pytest.mark.parametrize(
        "values,kw,expected",
        [
            ([0.0, -1.6], {}, 1),  # ticks 0.32 apart: one decimal
            ([0.0, -0.2], {}, 2),  # ticks 0.04 apart
            ([0.0, -0.2, -1.6], {}, 1),
            ([0.0, -0.012], {}, 3),
            ([0.0, -25.0], {}, 0),
            ([10_000.0, 10_400.0], {}, 0),
            ([10_000.0, 10_400.0], {"min_decimals": 2}, 2),
            ([0.0, 0.0], {}, 1),  # flat at zero: the range is taken as 1
            ([0.25, 0.25], {}, 2),  # flat: its magnitude is the range
            ([], {}, 2),
            ([0.0, -1e-12], {"max_decimals": 6}, 6),
            ([float("nan"), 0.0, -1.6], {}, 1),
        ],
    )
    def test_fits_the_range(self, values, kw, expected):
        assert axis_precision(values, **kw) == expected


def test_curves_drawdown_and_last_point_wins():
    equity, drawdown = curves(
        [
            {"time": "2025-04-01T00:00:00Z", "equity": 100.0},
            {"time": "2025-04-01T01:00:00Z", "equity": 110.0},
            {"time": "2025-04-01T01:00:00Z", "equity": 120.0},
            {"time": "2025-04-01T02:00:00Z", "equity": 108.0},
            {"time": "2025-04-01T03:00:00Z", "equity": float("nan")},
        ]
    )
    assert equity == [
        {"time": 1743465600, "value": 100.0},
        {"time": 1743469200, "value": 120.0},
        {"time": 1743472800, "value": 108.0},
    ]
    assert [p["value"] for p in drawdown] == [0.0, 0.0, -10.0]


def test_trade_markers_entry_safety_exit_on_their_bars():
    trade = {
        "side": "long",
        "orders": [
            {"time": "2025-04-01T00:00:00Z", "side": "buy", "tag": "base", "price": 100.0},
            {"time": "2025-04-01T02:30:00Z", "side": "buy", "tag": "so1", "price": 98.0},
            {"time": "2025-04-01T05:10:00Z", "side": "sell", "tag": "take_profit", "price": 101.0},
        ],
    }
    still_open = {
        "side": "long",
        "orders": [{"time": "2025-04-01T06:00:00Z", "side": "buy", "tag": "base", "price": 99.0}],
    }
    t0 = 1743465600
    assert trade_markers([trade], [still_open], bar_s=3600) == [
        {"shape": "arrowUp", "color": "#16c784", "text": "entry", "position": "belowBar", "time": t0, "price": 100.0},
        {"shape": "circle", "color": "#f0b90b", "text": "SO", "position": "aboveBar", "time": t0 + 7200, "price": 98.0},
        {
            "shape": "arrowDown",
            "color": "#ea3943",
            "text": "take_profit",
            "position": "aboveBar",
            "time": t0 + 5 * 3600,
            "price": 101.0,
        },
        {
            "shape": "arrowUp",
            "color": "#16c784",
            "text": "entry",
            "position": "belowBar",
            "time": t0 + 6 * 3600,
            "price": 99.0,
        },
    ]


# -- a real run on the bundled candles -----------------------------------------------------------
# smart_dca defaults on BTC/USDT + ETH/USDT 1h, 2025-07-01 → 2025-08-31, 1000 USDT: 17 deals, all
# closed at take profit (100 % win rate), and one BTC deal still open at the end under water.

JULY_1 = int(datetime(2025, 7, 1, tzinfo=UTC).timestamp())


GUARDED = {"max_active_deals": 2, "stop_loss": 4, "spend_guard_enabled": True, "spend_guard_max_pct": 60}


def execute(user, name: str, params: dict | None = None):
    from strategies.services.backtests import backtest_create, backtest_execute
    from trading.services.candles import candles_import

    for file in ("BTCUSDT-1h.csv.gz", "ETHUSDT-1h.csv.gz"):
        candles_import(path=Path(settings.MARKET7_BUNDLED_DATA) / file)
    run = backtest_create(
        user=user,
        enqueue=False,
        name=name,
        strategy="smart_dca",
        symbols=["BTC/USDT", "ETH/USDT"],
        timeframe="1h",
        start=datetime(2025, 7, 1, tzinfo=UTC),
        end=datetime(2025, 8, 31, 23, tzinfo=UTC),
        capital=1000,
        params=params or {},
    )
    run = backtest_execute(run_id=run.pk)
    assert run.status == "done", run.error
    return run


@pytest.fixture
def real_run(db, user):
    """Defaults: 17 BTC deals all closed at take profit, one BTC deal open under water."""
    return execute(user, "summer")


@pytest.fixture
def guarded_run(db, user):
    """Two deals at a time, 4 % stop loss, spend guard at 60 %: 150 deals on both markets,
    281 spend_guard blocks."""
    return execute(user, "guarded", GUARDED)


class TestChartJson:
    def test_candles_and_markers_of_each_market(self, client, user, real_run):
        client.force_login(user)
        url = reverse("backtests:chart", args=[real_run.pk])
        body = client.get(url).json()
        assert (body["symbol"], body["symbols"], body["timeframe"]) == ("BTC/USDT", ["BTC/USDT", "ETH/USDT"], "1h")
        assert len(body["candles"]) == 62 * 24
        assert body["candles"][0]["time"] == JULY_1 and body["candles"][-1]["time"] == JULY_1 + (62 * 24 - 1) * 3600
        assert body["precision"] == 2
        report = real_run.report
        btc_fills = sum(len(t["orders"]) for t in report["trades"] if t["symbol"] == "BTC/USDT")
        btc_fills += sum(len(d.get("orders", [])) for d in report["open_deals"] if d["symbol"] == "BTC/USDT")
        assert len(body["markers"]) == btc_fills
        first = report["trades"][0]
        assert body["markers"][0] == {
            "shape": "arrowUp",
            "color": "#16c784",
            "text": "entry",
            "position": "belowBar",
            "time": JULY_1 + 3600 * ((epoch_ms(first["orders"][0]["time"]) // 1000 - JULY_1) // 3600),
            "price": first["orders"][0]["price"],
        }
        exits = [m for m in body["markers"] if m["position"] == "aboveBar" and m["shape"] == "arrowDown"]
        assert len(exits) == sum(1 for t in report["trades"] if t["symbol"] == "BTC/USDT")
        assert {m["text"] for m in exits} == {"take_profit"}
        candle_times = {c["time"] for c in body["candles"]}
        assert all(m["time"] in candle_times for m in body["markers"])

        eth = client.get(url, {"symbol": "ETH/USDT"}).json()
        assert eth["symbol"] == "ETH/USDT" and len(eth["candles"]) == 62 * 24 and eth["precision"] == 2
        assert len(eth["markers"]) == sum(len(t["orders"]) for t in report["trades"] if t["symbol"] == "ETH/USDT")

    def test_unknown_symbol_is_400(self, client, user, real_run):
        client.force_login(user)
        r = client.get(reverse("backtests:chart", args=[real_run.pk]), {"symbol": "SOL/USDT"})
        assert r.status_code == 400
        assert r.json() == {"error": f"'SOL/USDT' is not a market of backtest #{real_run.pk} (BTC/USDT, ETH/USDT)"}

    def test_access(self, client, user, other_user, real_run):
        url = reverse("backtests:chart", args=[real_run.pk])
        r = client.get(url)
        assert r.status_code == 302 and r["Location"].startswith("/accounts/login/")
        client.force_login(other_user)
        assert client.get(url).status_code == 404


class TestPairs:
    def test_per_market_breakdown(self, guarded_run):
        pairs = guarded_run.report["pairs"]
        assert pairs == {
            "BTC/USDT": {
                "trades": 25,
                "wins": 21,
                "win_rate_pct": 84.0,
                "pnl": -2.8997672793,
                "fees": 2.9204679624,
                "profit_factor": 0.826,
                "avg_pnl_pct": 0.4241,
            },
            "ETH/USDT": {
                "trades": 125,
                "wins": 110,
                "win_rate_pct": 88.0,
                "pnl": 8.2247295984,
                "fees": 13.9014005845,
                "profit_factor": 1.1303,
                "avg_pnl_pct": 0.6639,
            },
        }
        # the same figures from the stored trade rows, independently
        for symbol, row in pairs.items():
            rows = list(guarded_run.trades.filter(symbol=symbol))
            assert len(rows) == row["trades"] and sum(1 for t in rows if t.pnl > 0) == row["wins"]
            assert round(math.fsum(float(t.pnl) for t in rows), 6) == round(row["pnl"], 6)
        assert sum(p["trades"] for p in pairs.values()) == guarded_run.metrics["trades"] == 150

    def test_untraded_market_and_page(self, client, user, real_run):
        assert real_run.report["pairs"]["ETH/USDT"] == {
            "trades": 0,
            "wins": 0,
            "win_rate_pct": None,
            "pnl": 0.0,
            "fees": 0.0,
            "profit_factor": None,
            "avg_pnl_pct": None,
        }
        client.force_login(user)
        body = client.get(reverse("backtests:detail", args=[real_run.pk])).content.decode()
        assert (
            '<tr data-pair="BTC/USDT"><td>BTC/USDT</td><td class="num">17</td><td class="num">100.00 %</td>'
            '<td class="num up">+19.48 USDT</td><td class="num">—</td><td class="num">+1.30 %</td>'
            '<td class="num">3.02 USDT</td></tr>'
        ) in body
        assert '<tr data-pair="ETH/USDT"><td>ETH/USDT</td><td class="num">0</td><td class="num">—</td>' in body

    def test_runs_saved_before_pairs_get_them_from_their_trades(self, guarded_run):
        from strategies.selectors import pair_rows

        expected = pair_rows(guarded_run)
        del guarded_run.report["pairs"]
        assert pair_rows(guarded_run) == expected


REASON = "deal spend 63.6% > cap 56.37% (drawdown 1.82%); safety order 3 not placed"


class TestDecisionLog:
    def test_stored_with_reasons(self, guarded_run):
        report = guarded_run.report
        log = report["decision_log"]
        assert report["decisions"] == {"spend_guard:block": 281}
        assert len(log) == 281 and report["decision_log_dropped"] == 0
        assert log[0] == {
            "time": "2025-07-01T01:00:00Z",
            "rule": "spend_guard",
            "outcome": "block",
            "reason": REASON,
            "symbol": "BTC/USDT",
        }
        assert [d["time"] for d in log] == sorted(d["time"] for d in log)
        assert sum(1 for d in log if d["symbol"] == "ETH/USDT") == 229

    def test_cap_keeps_the_first_and_counts_the_rest(self, guarded_run):
        from strategies.backtest import BacktestConfig, run_backtest
        from strategies.services.backtests import _feed, _inputs_of
        from trading.brokers import market_spec

        inputs = _inputs_of(guarded_run)
        config = BacktestConfig(
            strategy="smart_dca",
            params=inputs.params,
            symbols=("BTC/USDT", "ETH/USDT"),
            timeframe="1h",
            start_ms=int(inputs.start.timestamp() * 1000),
            end_ms=int(inputs.end.timestamp() * 1000),
            capital=1000.0,
        )
        _, report = run_backtest(config, _feed(inputs), [market_spec(m) for m in inputs.markets], decision_log_cap=100)
        assert report["decision_log"] == guarded_run.report["decision_log"][:100]
        assert report["decision_log_dropped"] == 181
        assert report["decisions"] == {"spend_guard:block": 281}  # counts keep every decision
        with pytest.raises(ValueError, match="decision_log_cap must be >= 0, got -1"):
            run_backtest(config, _feed(inputs), [market_spec(m) for m in inputs.markets], decision_log_cap=-1)

    def test_run_page_filters_and_pages(self, client, user, guarded_run):
        client.force_login(user)
        url = reverse("backtests:detail", args=[guarded_run.pk])
        body = client.get(url).content.decode()
        assert body.count("<tr data-decision>") == 50 and "Page 1 of 6" in body
        assert f'<td class="reason">{REASON}</td>' in body.replace("&gt;", ">")
        assert "<code>spend_guard:block</code> 281" in body
        hx = {"HTTP_HX_REQUEST": "true", "HTTP_HX_TARGET": "bt-decisions"}
        frag = client.get(url, {"dsymbol": "BTC/USDT", "dpage": 2}, **hx).content.decode()
        assert "<html" not in frag and 'Decisions <span class="muted">(52)</span>' in frag
        assert frag.count("<tr data-decision>") == 2 and "Page 2 of 2" in frag and "ETH/USDT</td>" not in frag
        none = client.get(url, {"outcome": "allow"}, **hx).content.decode()
        assert "No decisions match these filters." in none

    def test_dropped_decisions_are_said(self, client, user, guarded_run):
        guarded_run.report["decision_log_dropped"] = 1234
        guarded_run.save(update_fields=["report"])
        client.force_login(user)
        body = client.get(reverse("backtests:detail", args=[guarded_run.pk])).content.decode()
        assert "1,234 later decisions were not kept with the run" in body


class TestOpenDeals:
    def test_marked_at_the_last_close(self, real_run):
        report = real_run.report
        (deal,) = report["open_deals"]
        orders = deal.pop("orders")
        assert deal == {
            "symbol": "BTC/USDT",
            "side": "long",
            "opened_at": "2025-08-13T20:00:00Z",
            "entry_price": 119424.1869975336,
            "amount": 0.00184223,
            "cost": 220.0068200125,
            "fees": 0.22000682,
            "safety_orders_filled": 5,
            "mark_price": 108246.35,  # BTC/USDT close of 2025-08-31 23:00, the last candle
            "unrealized_pnl": -20.812153472,
            "unrealized_pnl_pct": -9.4598,
        }
        # 0.00184223 BTC at the last close, less what the deal cost and its entry fees
        assert deal["unrealized_pnl"] == pytest.approx(0.00184223 * 108246.35 - 220.0068200125 - 0.22000682, abs=1e-9)
        assert [o["tag"] for o in orders] == ["base_order"] + ["safety_order"] * 5
        assert round(math.fsum(o["amount"] for o in orders), 10) == deal["amount"]
        m = report["metrics"]
        assert (m["trades"], m["win_rate_pct"], m["open_deals"], m["open_pnl"]) == (17, 100.0, 1, -20.8122)
        # equity at the end = capital + closed P&L + open P&L
        closed = math.fsum(t["pnl"] for t in report["trades"])
        assert m["final_equity"] == pytest.approx(1000 + closed + deal["unrealized_pnl"], abs=1e-4)

    def test_run_page_warns_about_the_open_loss(self, client, user, real_run):
        client.force_login(user)
        body = client.get(reverse("backtests:detail", args=[real_run.pk])).content.decode()
        assert (
            "1 deal still open at the end with an unrealized loss of -20.81 USDT (marked at the last close). "
            "Win rate and profit factor count closed deals only."
        ) in body
        assert (
            '<td class="num">119,424.19</td><td class="num">108,246.35</td><td class="num">0.001842</td>'
            '<td class="num">220.01 USDT</td><td class="num">0.22 USDT</td><td>5</td>'
            '<td class="num down">-20.81 USDT</td><td class="num">-9.46 %</td>'
        ) in body.replace("\n    ", "")
        assert 'data-metric="open_pnl"><dt>Open P&amp;L</dt><dd class="down">-20.81 USDT</dd>' in body
        assert 'data-metric="open_deals"><dt>Open deals</dt><dd class="">1</dd>' in body

    def test_no_warning_without_open_loss(self, client, user, real_run):
        real_run.report["open_deals"][0]["unrealized_pnl"] = 3.5
        real_run.metrics["open_pnl"] = 3.5
        real_run.save()
        client.force_login(user)
        body = client.get(reverse("backtests:detail", args=[real_run.pk])).content.decode()
        assert "data-open-loss" not in body and "<tr data-open-deal>" in body and "+3.50 USDT" in body
