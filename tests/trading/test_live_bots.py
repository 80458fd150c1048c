"""Live bots end to end against the fake Binance (signed endpoints on loopback): the exchange
account a live bot trades on, the runner stepping it through the one engine with the ccxt
broker, balance checks, backoff on 429s, reconciliation, and — on Postgres — a worker killed
after the exchange accepted an order, and two workers on one live bot (docs/live.md)."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import threading
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from unittest import mock

import pytest
from django.conf import settings as django_settings
from django.db import connection

from market7.timeframes import dt_to_ms
from tests.trading.conftest import counts
from tests.trading.test_recovery import LEASE_S, _read_line, _take_over
from trading.brokers import ccxt_live
from trading.models import Bot, BotEvent, Candle, Fill, Order, Trade
from trading.services import bots as svc
from trading.services.exchange_accounts import account_create, account_test
from trading.services.live_bots import NO_ACCOUNT
from trading.services.runner import bot_step

pytest_plugins = ["tests.fakes.fixtures"]

KEY, SECRET = "LiveBotKey0123456789abcdefABCD", "LiveBotSecret0123456789xyz"
START = datetime(2025, 7, 1, tzinfo=UTC)
PRICE = "107000.00"  # what the fake fills market orders at


@pytest.fixture
def exch(fake_binance_private):
    fake_binance_private.add_key(KEY, SECRET)
    fake_binance_private.prices["BTCUSDT"] = PRICE
    fake_binance_private.fake.now_ms = dt_to_ms(START + timedelta(hours=3))
    return fake_binance_private


@pytest.fixture
def waits(monkeypatch):
    """Backoff waits of the live broker, recorded instead of slept."""
    box: list[float] = []
    monkeypatch.setattr(ccxt_live, "backoff_sleep", box.append)
    return box


def checked_account(user, label="main", **kw):
    acc = account_create(user=user, exchange="binance", label=label, api_key=KEY, secret=SECRET, **kw)
    assert account_test(user=user, account_id=acc.pk).ok
    acc.refresh_from_db()
    return acc


def live_bot(user, account, start=True):
    from trading.services.markets import market_ensure

    market_ensure(exchange="binance", exchange_symbol="BTCUSDT")
    bot = svc.bot_create(
        user=user,
        name="live",
        strategy="smart_dca",
        markets=["BTC/USDT"],
        capital="1000",
        mode="live",
        exchange_account=account.pk if account else None,
    )
    if start:
        with mock.patch("django.utils.timezone.now", return_value=START + timedelta(minutes=10)):
            svc.bot_start(user=user, bot=bot)
    return bot


def order_posts(exch):
    return [r for r in exch.fake.requests if r.method == "POST" and r.path == "/api/v3/order"]


def assert_exchange_matches_rows(bot, exch):
    """One accepted POST per order at the exchange, and the exchange's orders are exactly the
    bot's placed (not rejected) order rows, by client id and exchange id."""
    accepted = [r.params["newClientOrderId"] for r in order_posts(exch) if r.status == 200]
    assert sorted(accepted) == sorted(exch.orders)
    rows = Order.objects.filter(bot=bot).exclude(status="rejected")
    assert {o.client_order_id.replace("-", "x"): o.exchange_order_id for o in rows} == {
        cid: str(o["orderId"]) for cid, o in exch.orders.items()
    }


# --- the account a live bot trades on ---------------------------------------------------------


def test_a_live_bot_takes_only_its_owners_checked_account_on_its_exchange(user, other_user, exch, no_kick):
    theirs = checked_account(other_user, label="bob")
    with pytest.raises(svc.BotValidationError) as err:
        live_bot(user, theirs, start=False)
    assert err.value.errors == {"exchange_account": f"you have no exchange account {theirs.pk}"}
    untested = account_create(user=user, exchange="binance", label="new", api_key=KEY, secret=SECRET)
    with pytest.raises(svc.BotValidationError) as err:
        live_bot(user, untested, start=False)
    assert err.value.errors == {
        "exchange_account": "account 'new' has not passed a connection test: press Test connection first"
    }
    okx = account_create(user=user, exchange="okx", label="okx", api_key=KEY, secret=SECRET)
    with pytest.raises(svc.BotValidationError) as err:
        live_bot(user, okx, start=False)
    assert err.value.errors == {"exchange_account": "account 'okx' is on okx, the bot's markets are on binance"}
    exch.add_key(KEY, SECRET, can_trade=False)
    read_only = account_create(user=user, exchange="binance", label="ro", api_key=KEY, secret=SECRET)
    assert account_test(user=user, account_id=read_only.pk).reason == "no_trade_permission"
    with pytest.raises(svc.BotValidationError) as err:
        live_bot(user, read_only, start=False)
    assert err.value.errors == {"exchange_account": "account 'ro' has no trade permission (its key can only read)"}
    assert Bot.objects.count() == 0


def test_a_live_bot_without_an_account_does_not_start(user, exch, no_kick):
    bot = live_bot(user, None, start=False)
    with pytest.raises(svc.LiveTradingDisabled) as err:
        svc.bot_start(user=user, bot=bot)
    assert str(err.value) == f"cannot start live: {NO_ACCOUNT}"
    bot.refresh_from_db()
    assert (bot.status, bot.exchange_account_id) == ("created", None)


# --- the step ---------------------------------------------------------------------------------


def test_a_live_step_places_at_the_exchange_and_the_next_adopts_its_fill(user, exch, no_kick, waits):
    bot = live_bot(user, checked_account(user))
    report = bot_step(bot_id=bot.pk, now=START + timedelta(hours=1, minutes=30))
    assert (report.outcome, report.candles, report.orders, report.fills) == ("stepped", 1, 1, 0)
    cid = f"m7b{bot.pk}x1"
    assert list(exch.orders) == [cid] and exch.orders[cid]["status"] == "FILLED"
    order = Order.objects.get(bot=bot)
    assert (order.client_order_id, order.status, order.tag, order.type) == (
        f"m7b{bot.pk}-1",
        "open",
        "base_order",
        "market",
    )
    assert order.exchange_order_id == str(exch.orders[cid]["orderId"])
    (post,) = order_posts(exch)
    assert post.params["newClientOrderId"] == cid and post.params["quantity"] == format(order.amount.normalize(), "f")

    exch.fake.now_ms = dt_to_ms(START + timedelta(hours=2, minutes=30))
    report = bot_step(bot_id=bot.pk, now=START + timedelta(hours=2, minutes=30))
    assert (report.outcome, report.candles, report.fills) == ("stepped", 1, 1)
    order.refresh_from_db()
    fill = Fill.objects.get(order=order)
    assert (order.status, order.average, fill.price, fill.amount) == (
        "closed",
        Decimal(PRICE),
        Decimal(PRICE),
        order.amount,
    )
    trade = Trade.objects.get(bot=bot)
    assert (trade.status, trade.avg_entry, trade.amount) == ("open", Decimal(PRICE), order.amount)
    assert_exchange_matches_rows(bot, exch)
    assert waits == [] and Order.objects.filter(bot=bot, tag="safety_order", status="open").count() >= 1
    bot.refresh_from_db()
    assert (bot.status, bot.status_message, bot.steps) == ("running", "", 2)


def test_insufficient_balance_is_a_rejection_reason_not_an_exception(user, exch, no_kick, waits):
    exch.balances = {"USDT": ("3.00000000", "0.00000000")}
    bot = live_bot(user, checked_account(user))
    report = bot_step(bot_id=bot.pk, now=START + timedelta(hours=1, minutes=30))
    assert report.outcome == "stepped"
    order = Order.objects.get(bot=bot)
    close = Candle.objects.get(market__symbol="BTC/USDT", timeframe="1h", open_time=START).close  # the ref price
    need = (order.amount * Decimal(str(close)).quantize(Decimal("0.01")) * Decimal("1.001")).quantize(Decimal("1e-8"))
    need = need.normalize()
    assert (order.status, order.reject_reason) == ("rejected", f"insufficient_balance: need {need:f} USDT, free 3 USDT")
    assert order_posts(exch) == [] and exch.orders == {}


def test_ten_rate_limit_replies_back_off_then_place_one_order(user, exch, no_kick, waits):
    bot = live_bot(user, checked_account(user))
    exch.fake.fail_route("POST", "/api/v3/order", 429, times=10)
    report = bot_step(bot_id=bot.pk, now=START + timedelta(hours=1, minutes=30))
    assert (report.outcome, report.orders) == ("stepped", 1)
    assert [r.status for r in order_posts(exch)] == [429] * 10 + [200]
    assert len(exch.orders) == 1 and Order.objects.get(bot=bot).status == "open"
    assert len(waits) == 10
    for n, w in enumerate(waits):  # exponential with jitter: between half and all of base * 2^n (capped)
        full = min(ccxt_live.BACKOFF_CAP_S, ccxt_live.BACKOFF_BASE_S * 2**n)
        assert full / 2 <= w <= full
    assert len(set(waits)) == 10


def test_an_exchange_that_keeps_refusing_puts_the_bot_in_error_with_nothing_written(user, exch, no_kick, waits):
    bot = live_bot(user, checked_account(user))
    exch.fake.fail_route("POST", "/api/v3/order", 429, times=ccxt_live.RETRIES)
    report = bot_step(bot_id=bot.pk, now=START + timedelta(hours=1, minutes=30))
    assert report.outcome == "error"
    bot.refresh_from_db()
    assert bot.status == "error"
    assert bot.status_message.startswith(
        f"live: order m7b{bot.pk}x1 not confirmed after {ccxt_live.RETRIES} tries (DDoSProtection: binance 429"
    )
    assert bot.status_message.endswith("the next start reconciles it with the exchange")
    assert (bot.steps, bot.state, exch.orders) == (0, {}, {})
    assert counts(bot)["orders"] == 0 and len(waits) == ccxt_live.RETRIES - 1
    assert KEY not in bot.status_message and SECRET not in bot.status_message


# --- reconciliation ---------------------------------------------------------------------------


def test_reconciliation_reports_foreign_orders_and_stops_on_an_unknown_one(user, exch, no_kick, waits):
    bot = live_bot(user, checked_account(user))
    assert bot_step(bot_id=bot.pk, now=START + timedelta(hours=1, minutes=30)).outcome == "stepped"
    exch.orders["manual1"] = {**exch.orders[f"m7b{bot.pk}x1"], "clientOrderId": "manual1", "orderId": 9001,
                              "status": "NEW", "type": "LIMIT", "price": "90000"}  # fmt: skip
    exch.fake.now_ms = dt_to_ms(START + timedelta(hours=2, minutes=30))
    assert bot_step(bot_id=bot.pk, now=START + timedelta(hours=2, minutes=30)).outcome == "stepped"
    (event,) = BotEvent.objects.filter(bot=bot, rule="reconcile")
    assert event.outcome == "unknown_order" and event.reason.startswith("order not placed by this bot: manual1 (buy")
    assert exch.orders["manual1"]["status"] == "NEW"  # not touched

    # an order with the bot's id that its records do not have, numbered below its counter
    ghost = f"m7b{bot.pk}x0"
    exch.orders[ghost] = {**exch.orders["manual1"], "clientOrderId": ghost, "orderId": 9002}
    exch.fake.now_ms = dt_to_ms(START + timedelta(hours=3, minutes=30))
    placed = len(order_posts(exch))
    report = bot_step(bot_id=bot.pk, now=START + timedelta(hours=3, minutes=30))
    bot.refresh_from_db()
    assert (report.outcome, bot.status, bot.steps) == ("error", "error", 2)
    assert bot.status_message == (
        "live: the exchange account disagrees with this bot (nothing was changed at the exchange): "
        f"{ghost} (buy {exch.orders[ghost]['origQty']} BTC/USDT, open, filled {float(exch.orders[ghost]['executedQty'])}) "
        "is unknown to this bot"
    )
    assert exch.orders[ghost]["status"] == "NEW" and len(order_posts(exch)) == placed  # nothing placed


# --- Postgres: a killed worker, two workers ---------------------------------------------------

needs_postgres = pytest.mark.skipif(
    not os.environ.get("DATABASE_URL", "").startswith("postgres"), reason="needs Postgres (DATABASE_URL)"
)


@needs_postgres
@pytest.mark.django_db(transaction=True)
@pytest.mark.timeout(120)
def test_a_worker_killed_after_the_exchange_accepted_leaves_one_order_whose_fill_is_adopted(
    make_user, exch, no_kick, settings
):
    settings.MARKET7_BOT_CLAIM_LEASE_S = LEASE_S
    user = make_user("killer", "trader")
    bot = live_bot(user, checked_account(user))
    feed_now = START + timedelta(hours=1, minutes=30)
    env = {
        **os.environ,
        "DJANGO_SETTINGS_MODULE": "market7.settings",
        "M7_TEST_DB_NAME": str(connection.settings_dict["NAME"]),
        "REDIS_URL": django_settings.REDIS_URL,
        "MARKET7_BOT_CLAIM_LEASE_S": str(LEASE_S),
        "MARKET7_BINANCE_URL": exch.fake.base_url,
        "MARKET7_SECRETS_KEY": ",".join(django_settings.MARKET7_SECRETS_KEYS),
    }
    proc = subprocess.Popen(
        [sys.executable, "-m", "tests.trading.recovery_worker", "kill", str(bot.pk), feed_now.isoformat()],
        cwd=django_settings.BASE_DIR,
        env=env,
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        assert _read_line(proc) == "inside"  # the exchange accepted and filled the order; no commit
        proc.send_signal(signal.SIGKILL)
        assert proc.wait(10) == -signal.SIGKILL
    finally:
        if proc.poll() is None:
            proc.kill()
    cid = f"m7b{bot.pk}x1"
    assert list(exch.orders) == [cid] and exch.orders[cid]["status"] == "FILLED"
    bot.refresh_from_db()
    assert (bot.steps, bot.state, counts(bot)["orders"]) == (0, {}, 0)

    report, _ = _take_over(bot, feed_now, deadline_s=LEASE_S + 5)  # the restart: reconcile, re-run, adopt
    assert (report.outcome, report.orders) == ("stepped", 1)
    assert len(order_posts(exch)) == 1 and list(exch.orders) == [cid]
    order = Order.objects.get(bot=bot)
    assert (order.status, order.exchange_order_id) == ("open", str(exch.orders[cid]["orderId"]))

    exch.fake.now_ms = dt_to_ms(START + timedelta(hours=2, minutes=30))
    report = bot_step(bot_id=bot.pk, now=START + timedelta(hours=2, minutes=30))
    assert (report.outcome, report.fills) == ("stepped", 1)
    order.refresh_from_db()
    assert (order.status, order.filled, order.average) == ("closed", order.amount, Decimal(PRICE))
    assert Fill.objects.filter(order__bot=bot).count() == 1
    assert Trade.objects.get(bot=bot).amount == order.amount
    assert_exchange_matches_rows(bot, exch)
    assert [r.params["newClientOrderId"] for r in order_posts(exch)].count(cid) == 1
    bot.refresh_from_db()
    assert (bot.status, bot.steps) == ("running", 2)


@needs_postgres
@pytest.mark.django_db(transaction=True)
@pytest.mark.timeout(60)
def test_two_workers_on_one_live_bot_make_one_step(make_user, exch, no_kick, waits):
    user = make_user("twin", "trader")
    bot = live_bot(user, checked_account(user))
    barrier = threading.Barrier(2)
    reports = []

    def worker():
        try:
            barrier.wait()
            reports.append(bot_step(bot_id=bot.pk, now=START + timedelta(hours=1, minutes=30)).outcome)
        finally:
            connection.close()

    threads = [threading.Thread(target=worker) for _ in range(2)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(30)
    assert sorted(reports) == ["skipped", "stepped"]
    assert len(order_posts(exch)) == 1 and len(exch.orders) == 1
    bot.refresh_from_db()
    assert (bot.steps, counts(bot)["orders"]) == (1, 1)


# --- API ----------------------------------------------------------------------------------------


def test_the_api_sets_a_live_bots_account_and_refuses_another_users(user, other_user, exch, no_kick):
    from rest_framework.test import APIClient

    from trading.services.markets import market_ensure

    market_ensure(exchange="binance", exchange_symbol="BTCUSDT")
    mine, theirs = checked_account(user), checked_account(other_user, label="bob")
    api = APIClient()
    api.force_authenticate(user)
    body = {"name": "live", "strategy": "smart_dca", "markets": ["BTC/USDT"], "capital": "1000", "mode": "live"}
    denied = api.post("/api/v1/bots/", {**body, "exchange_account": theirs.pk}, format="json")
    assert (denied.status_code, denied.json()) == (
        400,
        {"exchange_account": [f"you have no exchange account {theirs.pk}"]},
    )
    assert Bot.objects.count() == 0
    made = api.post("/api/v1/bots/", {**body, "exchange_account": mine.pk}, format="json")
    assert made.status_code == 201 and made.json()["exchange_account"] == mine.pk
    for text in (made.content.decode(), denied.content.decode()):
        assert KEY not in text and SECRET not in text
