"""Paper bots on USDT-M perpetuals: one engine, so a replayed perpetual bot makes exactly the
trades of a swap backtest of the same window; its Trade rows carry leverage, margin,
liquidation price and funding; settings are validated with a reason per field.

Real data: the bundled BTCUSDT USDT-M subset (``trading/data/bundled/futures``, 2024-07-22 ..
08-18, with the 2024-08-05 crash): last-price candles, mark candles and funding rates.
"""

from __future__ import annotations

import random
from datetime import UTC, datetime, timedelta
from decimal import Decimal

import pytest

from strategies.models import BacktestRun
from strategies.services.backtests import backtest_create, backtest_execute
from tests.trading.conftest import no_enqueue, step_at
from trading.models import Bot, Exchange, Market, Trade
from trading.services import bots as svc
from trading.services.bot_validation import BotValidationError
from trading.services.candles import candles_import
from trading.services.perpetuals import perpetual_spec

S = "BTC/USDT:USDT"
FILES = ("BTCUSDT-1h.csv.gz", "BTCUSDT-1h-mark.csv.gz", "BTCUSDT-funding.csv.gz")
START = datetime(2024, 7, 23, tzinfo=UTC)
LAST = datetime(2024, 8, 17, 23, tzinfo=UTC)  # the last candle decided on
SHORT_DCA = {
    "direction": "short", "base_order_size": 200, "safety_order_size": 200, "max_safety_orders": 3,
    "price_deviation": 2,
}  # fmt: skip


@pytest.fixture
def futures(db, bundled_data_dir):
    for name in FILES:
        candles_import(path=bundled_data_dir / "futures" / name, exchange="binance", market_type="swap")
    return Market.objects.get(symbol=S)


def perp_bot(user, *, params=SHORT_DCA, perpetual=None, start=True, name="perp", replay_start=START) -> Bot:
    bot = svc.bot_create(
        user=user, name=name, strategy="smart_dca", markets=[S], capital="1000", params=params, feed="replay",
        replay_start=replay_start, replay_speed=3600.0,
        perpetual={"leverage": 5, "margin_mode": "isolated"} if perpetual is None else perpetual,
    )  # fmt: skip
    if start:
        with no_enqueue():
            bot = svc.bot_start(user=user, bot=bot)
    return Bot.objects.get(pk=bot.pk)


def replay_to_the_end(bot: Bot, seed: int) -> int:
    """Step the replay at irregular intervals until the candle of LAST is processed."""
    end_h = (LAST - START) / timedelta(hours=1) + 1  # LAST closes 600 market hours after START
    rng, hours, steps = random.Random(seed), 0.0, 0
    while hours < end_h:
        hours = min(hours + rng.choice([1, 1, 2, 5, 13, 30]) + rng.random() * 0.9, end_h)
        report = step_at(bot, hours)
        assert report.outcome == "stepped", report
        steps += 1
    bot.refresh_from_db()
    assert bot.last_candle_at == LAST
    return steps


def swap_backtest(user, bot: Bot) -> BacktestRun:
    """The swap backtest of the bot's window, with the paper broker's fees and slippage."""
    spec = perpetual_spec(bot.markets.get(), bot.perpetual)
    with no_enqueue():
        run = backtest_create(
            user=user, enqueue=False, strategy="smart_dca", symbols=[S], timeframe="1h", start=START, end=LAST,
            capital="1000", params=dict(SHORT_DCA), fee_bps=spec.taker_fee_bps, slippage_bps=5, market_type="swap",
            leverage=bot.leverage, margin_mode=bot.margin_mode, liquidation_buffer_pct=bot.liquidation_buffer_pct,
        )  # fmt: skip
    run = backtest_execute(run_id=run.pk)
    assert run.status == "done", run.error
    return run


@pytest.mark.parametrize("seed", [1, 2])
def test_replayed_short_bot_makes_exactly_the_swap_backtests_trades(user, futures, seed):
    bot = perp_bot(user)
    assert bot.perpetual == {"leverage": 5, "margin_mode": "isolated", "liquidation_buffer_pct": 0.0}
    steps = replay_to_the_end(bot, seed)
    assert steps > 40

    report = swap_backtest(user, bot).report
    m = report["metrics"]
    assert (m["trades"], m["liquidations"], m["open_deals"]) == (34, 1, 1)
    assert round(m["funding_paid"], 6) == -1.218215  # docs/perps.md's example

    closed = list(Trade.objects.filter(bot=bot, status="closed").order_by("closed_at", "opened_at"))
    rows = sorted(report["trades"], key=lambda r: (r["closed_at"], r["opened_at"]))
    assert len(closed) == len(rows) == 34
    for t, row in zip(closed, rows, strict=True):
        assert (t.side, t.exit_reason, t.safety_orders_filled) == (
            "short",
            row["exit_reason"],
            row["safety_orders_filled"],
        )
        assert t.opened_at.isoformat().replace("+00:00", "Z") == row["opened_at"]
        assert t.closed_at.isoformat().replace("+00:00", "Z") == row["closed_at"]
        assert float(t.avg_entry) == pytest.approx(row["entry_price"], abs=1e-6)
        assert float(t.exit_price) == pytest.approx(row["exit_price"], abs=1e-6)
        assert float(t.realized_pnl) == pytest.approx(row["pnl"], abs=1e-6)
        assert (t.leverage, float(t.margin)) == (5, pytest.approx(row["margin"], abs=1e-6))
        assert float(t.liquidation_price) == pytest.approx(row["liquidation_price"], abs=1e-6)
        assert float(t.funding_paid) == pytest.approx(row["funding_paid"], abs=1e-6)
        assert round(t.info["min_liquidation_distance_pct"], 4) == row["min_liquidation_distance_pct"]
    (liq,) = [t for t in closed if t.exit_reason == "liquidation"]
    assert (liq.closed_at, liq.safety_orders_filled) == (datetime(2024, 8, 8, 22, tzinfo=UTC), 3)
    assert liq.exit_price == Decimal("61645.43453096")  # = its liquidation price (tests/strategies)
    (open_row,) = Trade.objects.filter(bot=bot, status="open")
    (open_deal,) = report["open_deals"]
    assert open_row.opened_at.isoformat().replace("+00:00", "Z") == open_deal["opened_at"]
    assert float(open_row.funding_paid) == pytest.approx(open_deal["funding_paid"], abs=1e-6)
    assert float(open_row.liquidation_price) == pytest.approx(open_deal["liquidation_price"], abs=1e-6)
    total = sum(float(t.funding_paid) for t in Trade.objects.filter(bot=bot))
    assert total == pytest.approx(m["funding_paid"], abs=1e-6)
    assert round(float(bot.equity), 4) == m["final_equity"] == 943.4228


# --- validation: a reason per field, nothing saved --------------------------------------------


def swap_market(symbol: str) -> Market:
    ex, _ = Exchange.objects.get_or_create(code="binance", defaults={"name": "Binance"})
    base = symbol.split("/")[0]
    return Market.objects.create(
        exchange=ex, symbol=symbol, exchange_symbol=f"{base}USDT", base=base, quote="USDT", settle="USDT", type="swap"
    )


def create(user, markets, perpetual, feed="live"):
    extra = {"replay_start": START} if feed == "replay" else {}
    return svc.bot_create(
        user=user, name="p", strategy="smart_dca", markets=markets, capital="1000", params=SHORT_DCA, feed=feed,
        perpetual=perpetual, **extra,
    )  # fmt: skip


@pytest.mark.parametrize(
    "perpetual,errors",
    [
        ({"leverage": 0}, {"leverage": "leverage must be a whole number 1..125, got 0"}),
        ({"leverage": 126}, {"leverage": "leverage must be a whole number 1..125, got 126"}),
        ({"leverage": 2.5}, {"leverage": "leverage must be a whole number 1..125, got 2.5"}),
        ({"leverage": "ten"}, {"leverage": "leverage 'ten' is not a number"}),
        ({"leverage": 3, "margin_mode": "hedge"}, {"margin_mode": "margin mode must be isolated or cross, got 'hedge'"}),
        ({"leverage": 3, "liquidation_buffer_pct": 100}, {"liquidation_buffer_pct": "liquidation buffer must be 0..100 %, got 100"}),
        ({"leverage": 3, "position_mode": "hedge"}, {"position_mode": "unknown perpetual setting"}),
    ],
)  # fmt: skip
def test_bad_settings_are_refused_per_field(user, futures, perpetual, errors):
    with pytest.raises(BotValidationError) as exc:
        create(user, [S], perpetual)
    assert exc.value.errors == errors
    assert Bot.objects.count() == 0


def test_leverage_is_capped_by_the_first_tier_and_unbundled_markets_are_refused(user, futures):
    swap_market("APT/USDT:USDT")  # first tier: 50x (freqtrade's Binance snapshot)
    with pytest.raises(BotValidationError) as exc:
        create(user, ["APT/USDT:USDT"], {"leverage": 51})
    assert exc.value.errors == {"leverage": "APT/USDT:USDT: leverage 51 > 50, the maximum of its first tier"}
    assert create(user, ["APT/USDT:USDT"], {"leverage": 50}).perpetual["leverage"] == 50
    swap_market("SUI/USDT:USDT")
    with pytest.raises(BotValidationError) as exc:
        create(user, ["SUI/USDT:USDT"], {"leverage": 2})
    assert exc.value.errors == {
        "markets": "SUI/USDT:USDT: no leverage tier table is bundled (strategies/engine/data/leverage_tiers.json); "
        "refused rather than guessing maintenance margin rates"
    }
    assert Bot.objects.count() == 1


def test_spot_bot_refuses_leverage_and_mixed_markets_are_refused(user, futures, candles):
    with pytest.raises(BotValidationError) as exc:
        create(user, ["BTC/USDT"], {"leverage": 3, "margin_mode": "cross", "liquidation_buffer_pct": 5})
    assert exc.value.errors == {
        "leverage": "only a USDT-M perpetual bot takes leverage (markets named like BTC/USDT:USDT)",
        "margin_mode": "only a USDT-M perpetual bot takes margin mode (markets named like BTC/USDT:USDT)",
        "liquidation_buffer_pct": "only a USDT-M perpetual bot takes liquidation buffer pct (markets named like BTC/USDT:USDT)",
    }
    with pytest.raises(BotValidationError) as exc:
        create(user, ["BTC/USDT", S], {"leverage": 3})
    assert exc.value.errors == {"markets": "a bot trades spot or perpetual markets, not both (spot: BTC/USDT)"}
    assert Bot.objects.count() == 0
    # the form's defaults on a spot bot are no settings at all
    spot = create(user, ["BTC/USDT"], {"leverage": None, "margin_mode": "isolated", "liquidation_buffer_pct": "0"})
    assert (spot.perpetual, spot.leverage, spot.margin_mode) == (None, None, "")


def test_swap_bot_defaults_and_update_before_start(user, futures):
    bot = create(user, [S], None)
    assert bot.perpetual == {"leverage": 1, "margin_mode": "isolated", "liquidation_buffer_pct": 0.0}
    bot = svc.bot_update(
        user=user, bot=bot, perpetual={"leverage": 10, "margin_mode": "cross", "liquidation_buffer_pct": "7.5"}
    )
    bot.refresh_from_db()
    assert bot.perpetual == {"leverage": 10, "margin_mode": "cross", "liquidation_buffer_pct": 7.5}
    assert bot.liquidation_buffer_pct == Decimal("7.500")
    with no_enqueue():
        svc.bot_start(user=user, bot=bot)
    with pytest.raises(BotValidationError) as exc:
        svc.bot_update(user=user, bot=bot, perpetual={"leverage": 3})
    assert exc.value.errors == {"perpetual": "can only be changed before the bot first starts (bot is running)"}


def test_replay_without_stored_funding_is_refused(user, futures):
    from trading.models.market import FundingRate

    FundingRate.objects.filter(market=futures).delete()
    with pytest.raises(BotValidationError) as exc:
        create(user, [S], {"leverage": 3}, feed="replay")
    assert exc.value.errors == {"markets": "no funding rates stored for BTC/USDT:USDT: import BTCUSDT-funding.csv.gz"}
    assert Bot.objects.count() == 0


# --- pages and API: owner / other user / anonymous ----------------------------------------------


@pytest.fixture
def replayed(user, futures):
    """alice's 5x isolated short bot replayed to 2024-08-17 23:00 (34 closed deals, one
    liquidated on 2024-08-08 22:00, one open)."""
    bot = perp_bot(user, perpetual={"leverage": 5, "margin_mode": "isolated", "liquidation_buffer_pct": 0})
    replay_to_the_end(bot, seed=3)
    return bot


def test_deal_page_shows_the_liquidation_and_the_open_deals_distance_from_mark(client, user, replayed):
    from market7.templatetags.m7 import money, pct, price, signed_money
    from trading.models.market import MarkCandle

    client.force_login(user)
    liq = Trade.objects.get(bot=replayed, exit_reason="liquidation")
    page = client.get(f"/bots/{replayed.pk}/deals/{liq.pk}/").content.decode()
    assert "closed 2024-08-08 22:00 UTC (liquidation)" in page
    assert '5× <span class="unit">isolated</span>' in page
    assert "61,645.43" in page and "liquidated · closest" in page
    assert f"margin {money(liq.margin, 'USDT')} · funding {signed_money(liq.funding_paid, 'USDT')}" in page
    # the open deal: distance of the liquidation price from the mark close at 2024-08-17 23:00
    open_ = Trade.objects.get(bot=replayed, status="open")
    mark = Decimal(str(MarkCandle.objects.get(market=open_.market, timeframe="1h", open_time=LAST).close))
    distance = (open_.liquidation_price - mark) / mark * 100  # a short: LP above the mark
    page = client.get(f"/bots/{replayed.pk}/deals/{open_.pk}/").content.decode()
    assert f"{pct(distance)} from mark {price(mark)}" in page  # "16.01 % from mark 59,468.40"
    assert pct(distance) == "16.01 %"
    bot_page = client.get(f"/bots/{replayed.pk}/").content.decode()
    assert "data-bot-leverage>5× isolated</span>" in bot_page
    assert f"({pct(distance)} from mark)" in bot_page


def test_perpetual_pages_are_the_owners_only(client, user, other_user, replayed):
    liq = Trade.objects.get(bot=replayed, exit_reason="liquidation")
    urls = [f"/bots/{replayed.pk}/", f"/bots/{replayed.pk}/deals/{liq.pk}/"]
    for url in urls:
        anonymous = client.get(url)
        assert anonymous.status_code == 302 and "/login" in anonymous["Location"]
    client.force_login(other_user)
    for url in urls:
        response = client.get(url)
        assert response.status_code == 404 and b"liquidation" not in response.content


def test_api_creates_a_perpetual_bot_and_reports_trade_fields(client, user, other_user, futures):
    body = {
        "name": "api perp", "strategy": "smart_dca", "markets": [S], "capital": "1000", "params": SHORT_DCA,
        "feed": "replay", "replay_start": "2024-07-23T00:00:00Z", "leverage": 125, "margin_mode": "cross",
        "liquidation_buffer_pct": 12.5,
    }  # fmt: skip
    assert client.post("/api/v1/bots/", body, content_type="application/json").status_code in (401, 403)
    assert Bot.objects.count() == 0
    client.force_login(user)
    bad = client.post("/api/v1/bots/", {**body, "leverage": 126}, content_type="application/json")
    assert bad.status_code == 400 and bad.json() == {"leverage": ["leverage must be a whole number 1..125, got 126"]}
    created = client.post("/api/v1/bots/", body, content_type="application/json")
    assert created.status_code == 201, created.content
    data = created.json()
    assert (data["leverage"], data["margin_mode"], data["liquidation_buffer_pct"]) == (125, "cross", "12.500")
    bot = Bot.objects.get(pk=data["id"])
    patched = client.patch(f"/api/v1/bots/{bot.pk}/", {"leverage": 20}, content_type="application/json")
    assert patched.status_code == 200 and patched.json()["leverage"] == 20
    assert patched.json()["margin_mode"] == "cross"  # a PATCH of one setting keeps the others
    client.force_login(other_user)
    assert client.get(f"/api/v1/bots/{bot.pk}/").status_code == 404
    assert client.patch(f"/api/v1/bots/{bot.pk}/", {"leverage": 2}, content_type="application/json").status_code == 404
    bot.refresh_from_db()
    assert bot.leverage == 20


def test_api_trades_carry_leverage_margin_liquidation_and_funding(client, user, other_user, replayed):
    liq = Trade.objects.get(bot=replayed, exit_reason="liquidation")
    url = f"/api/v1/bot-trades/{liq.pk}/"
    assert client.get(url).status_code in (401, 403)
    client.force_login(user)
    row = client.get(url).json()
    assert (row["leverage"], row["exit_reason"]) == (5, "liquidation")
    assert Decimal(row["liquidation_price"]) == Decimal("61645.43453096")
    assert Decimal(row["margin"]) == liq.margin and Decimal(row["funding_paid"]) == liq.funding_paid
    assert row["info"]["min_liquidation_distance_pct"] == liq.info["min_liquidation_distance_pct"]
    client.force_login(other_user)
    assert client.get(url).status_code == 404


def form_data(market: Market, **kw) -> dict:
    return {
        "name": "Form perp", "strategy": "smart_dca", "markets": [market.pk], "timeframe": "1h", "mode": "paper",
        "capital": "1000", "feed": "replay", "replay_start": "2024-07-23T00:00", "replay_speed": "3600",
        "p_base_order_size": "200", "p_direction": "short",
    } | kw  # fmt: skip


def test_bot_form_creates_a_perpetual_bot_and_names_bad_fields(client, user, futures, candles):
    assert client.get("/bots/new/").status_code == 302  # anonymous: to the login page
    client.force_login(user)
    page = client.get("/bots/new/").content.decode()
    assert 'name="leverage"' in page and 'name="margin_mode"' in page and 'name="liquidation_buffer_pct"' in page
    bad = client.post("/bots/new/", form_data(futures, leverage="126"))
    assert bad.status_code == 200 and "Ensure this value is less than or equal to 125." in bad.content.decode()
    spot = client.post(
        "/bots/new/", form_data(Market.objects.get(symbol="BTC/USDT"), leverage="3", replay_start="2025-04-01T00:00")
    )
    assert "only a USDT-M perpetual bot takes leverage" in spot.content.decode()
    assert Bot.objects.count() == 0
    ok = client.post("/bots/new/", form_data(futures, leverage="10", margin_mode="cross", liquidation_buffer_pct="15"))
    bot = Bot.objects.get()
    assert ok.status_code == 302 and ok["Location"] == f"/bots/{bot.pk}/"
    assert bot.perpetual == {"leverage": 10, "margin_mode": "cross", "liquidation_buffer_pct": 15.0}
    page = client.get(f"/bots/{bot.pk}/").content.decode()
    assert "data-bot-leverage>10× cross · liquidation buffer 15%</span>" in page
    edit = client.post(
        f"/bots/{bot.pk}/edit/",
        form_data(futures, name="Form perp", leverage="4", margin_mode="cross", liquidation_buffer_pct="15"),
    )
    assert edit.status_code == 302
    bot.refresh_from_db()
    assert bot.leverage == 4
