"""The bot runner: due bots, claim, idempotency, crash safety, errors, events, end of replay."""

from __future__ import annotations

import json
import threading
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from unittest import mock

import pytest
from django.db import connection

from market7.timeframes import dt_to_ms
from tests.conftest import require
from tests.trading.conftest import REPLAY_START, counts, make_replay_bot, step_at
from trading.models import Bot, BotEvent, EquitySnapshot, Fill, Order, PaperBalance, Trade
from trading.services import bots as svc
from trading.services import runner
from trading.services.runner import bot_claim, bot_step, bots_due

pytest_plugins = ["tests.fakes.fixtures"]

pytestmark = pytest.mark.django_db


def _order_rows(bot):
    """Orders without their bot-specific ids, in placement order."""
    return [
        (
            o.client_order_id.split("-", 1)[1],
            o.side,
            o.type,
            o.tag,
            o.price,
            o.amount,
            o.status,
            o.filled,
            o.average,
            o.placed_at,
        )
        for o in Order.objects.filter(bot=bot).order_by("placed_at", "id")
    ]


# --- scheduling -----------------------------------------------------------------------------


def test_bots_due_lists_running_bots_with_a_new_closed_candle(user, candles, no_kick):
    a = make_replay_bot(user, name="a")
    b = make_replay_bot(user, name="b")
    make_replay_bot(user, name="c", start=False)
    wall = Bot.objects.get(pk=a.pk).replay_clock_wall
    # 0.5 s at 3600x = 30 market minutes: the first candle (open 00:00) has not closed yet
    assert bots_due(now=wall + timedelta(seconds=0.5)) == []
    assert bots_due(now=wall + timedelta(seconds=1.5)) == [a.pk, b.pk]
    svc.bot_pause(user=user, bot=b)
    assert bots_due(now=wall + timedelta(seconds=1.5)) == [a.pk]
    # a fresh claim hides a bot; a stale one (its lease ran out) does not
    assert bot_claim(bot_id=a.pk, now=wall) is not None
    assert bots_due(now=wall + timedelta(seconds=1.5)) == []
    assert bots_due(now=wall + runner.claim_lease() + timedelta(seconds=1)) == [a.pk]


def test_bots_due_task_enqueues_steps_on_the_trading_queue(user, candles, no_kick):
    from trading import tasks

    bot = make_replay_bot(user)
    with (
        mock.patch.object(runner, "bots_due", return_value=[bot.pk]),
        mock.patch.object(tasks.bot_step, "apply_async") as apply,
    ):
        assert tasks.bots_due() == [bot.pk]
    apply.assert_called_once_with(args=[bot.pk], queue="trading", expires=tasks.STEP_EXPIRES_S)


def test_bot_step_task_reenqueues_a_replay_with_the_countdown(user, candles, no_kick):
    from trading import tasks

    report = runner.StepReport(7, "stepped", candles=1, next_due_s=1.25)
    with (
        mock.patch.object(runner, "bot_step", return_value=report),
        mock.patch.object(tasks.bot_step, "apply_async") as apply,
    ):
        assert tasks.bot_step(7)["outcome"] == "stepped"
    apply.assert_called_once_with(args=[7], queue="trading", countdown=1.25, expires=tasks.STEP_EXPIRES_S)
    idle = runner.StepReport(7, "idle")
    with (
        mock.patch.object(runner, "bot_step", return_value=idle),
        mock.patch.object(tasks.bot_step, "apply_async") as apply,
    ):
        tasks.bot_step(7)
    apply.assert_not_called()


def test_replay_step_reports_when_the_next_candle_closes(user, candles, no_kick):
    bot = make_replay_bot(user)
    report = step_at(bot, 5.25)  # market 05:15: candles 00:00..04:00 closed
    assert (report.outcome, report.candles) == ("stepped", 5)
    assert report.last_candle_ms == dt_to_ms(REPLAY_START + timedelta(hours=4))
    # the 05:00 candle closes at 06:00 market time = 0.75 wall seconds later at 3600x
    assert report.next_due_s == pytest.approx(1.0)  # REPLAY_MIN_COUNTDOWN_S floor
    slow = make_replay_bot(user, name="slow", speed=360.0)  # 0.1 market hour per wall second
    report = step_at(slow, 52.5)  # market 05:15 again
    assert (report.outcome, report.candles) == ("stepped", 5)
    assert report.next_due_s == pytest.approx(7.5)  # 45 market minutes / 360


# --- one step -------------------------------------------------------------------------------


def test_step_writes_orders_fills_trades_events_balances_and_state(user, candles, no_kick):
    bot = make_replay_bot(user)
    report = step_at(bot, 48.5)
    bot.refresh_from_db()
    assert report.outcome == "stepped" and report.candles == 48
    assert bot.last_candle_at == REPLAY_START + timedelta(hours=47)
    assert bot.state["last_time"] == dt_to_ms(bot.last_candle_at)
    assert bot.steps == 1 and bot.claimed_at is None and bot.claim_token == ""
    c = counts(bot)
    assert c["orders"] == report.orders and c["fills"] == report.fills > 0
    assert c["snapshots"] == 48
    assert c["balances"] == 3  # USDT, BTC, ETH
    assert c["trades"] == report.trades_opened
    # every client order id carries the bot's prefix and is unique
    ids = list(Order.objects.filter(bot=bot).values_list("client_order_id", flat=True))
    assert all(i.startswith(f"m7b{bot.pk}-") for i in ids) and len(set(ids)) == len(ids)
    # the money adds up: equity = capital + realized + unrealized, and the quote balance row
    closed = sum(Trade.objects.filter(bot=bot, status="closed").values_list("realized_pnl", flat=True), Decimal("0"))
    assert bot.realized_pnl == closed
    assert bot.equity == bot.capital + bot.realized_pnl + bot.unrealized_pnl
    usdt = PaperBalance.objects.get(bot=bot, asset="USDT")
    assert (usdt.equity, usdt.realized_pnl, usdt.unrealized_pnl) == (bot.equity, bot.realized_pnl, bot.unrealized_pnl)
    last = EquitySnapshot.objects.filter(bot=bot).order_by("-time").first()
    assert last.time == REPLAY_START + timedelta(hours=48)  # equity at the close of the last candle
    assert last.equity == bot.equity
    # fills are Decimal rows with the quote fee currency
    fill = Fill.objects.filter(order__bot=bot).order_by("time", "id").first()
    assert fill.fee_currency == "USDT" and fill.fee > 0
    assert fill.order.tag == "base_order"
    assert BotEvent.objects.filter(bot=bot, kind="fill").count() == c["fills"]


_TRADE_VALUES = (
    "status", "market_id", "side", "opened_at", "closed_at", "avg_entry", "amount", "cost", "fees",
    "realized_pnl", "exit_price", "exit_reason", "take_profit_price", "stop_loss_price",
    "safety_orders_filled", "safety_orders_max", "tags", "info",
)  # fmt: skip


def _trade_rows(bot) -> dict[str, tuple]:
    return {t["deal_id"]: t for t in Trade.objects.filter(bot=bot).values("deal_id", "updated_at", *_TRADE_VALUES)}


def test_a_trade_row_is_written_exactly_when_its_values_change(user, candles, no_kick):
    """Hour by hour, an open trade's row is saved (updated_at moves) on the steps that change
    one of its values and on no other; and the rows end equal to one whole-period step's."""
    hourly, whole = make_replay_bot(user, name="hourly"), make_replay_bot(user, name="whole")
    writes = skipped = 0
    before = {}
    for hour in range(1, 49):
        step_at(hourly, hour + 0.5)
        after = _trade_rows(hourly)
        for deal_id, row in after.items():
            old = before.get(deal_id)
            if old is None:
                continue
            values_changed = any(row[k] != old[k] for k in _TRADE_VALUES)
            assert (row["updated_at"] != old["updated_at"]) == values_changed, (hour, deal_id)
            writes += values_changed
            skipped += not values_changed
        before = after
    assert writes > 0 and skipped > 0
    step_at(whole, 48.5)
    # a closed deal's row keeps what it last showed while open (ladder, take profit): compare
    # closed rows on what closing writes, open rows on everything
    closed_keys = [
        k for k in _TRADE_VALUES if k not in ("take_profit_price", "stop_loss_price", "safety_orders_max", "info")
    ]

    def comparable(rows, prefix):
        return {
            deal_id.replace(prefix, "m7b-"): {
                k: r[k] for k in (_TRADE_VALUES if r["status"] == "open" else closed_keys)
            }
            for deal_id, r in rows.items()
        }

    assert comparable(before, f"m7b{hourly.pk}-") == comparable(_trade_rows(whole), f"m7b{whole.pk}-")


def test_step_twice_at_the_same_time_does_nothing_more(user, candles, no_kick):
    bot = make_replay_bot(user)
    step_at(bot, 30.5)
    first = counts(bot)
    state = Bot.objects.get(pk=bot.pk).state
    report = step_at(bot, 30.5)
    assert (report.outcome, report.candles) == ("idle", 0)
    assert counts(bot) == first
    assert Bot.objects.get(pk=bot.pk).state == state


def test_rerunning_a_step_from_the_same_state_duplicates_no_order(user, candles, no_kick):
    """Even if a step's rows were there but its state were not (impossible in one
    transaction, but it is what idempotency keys are for), re-running it upserts the same
    orders by client_order_id instead of adding new ones."""
    bot = make_replay_bot(user)
    step_at(bot, 10.5)
    before = (
        Bot.objects.filter(pk=bot.pk)
        .values("state", "last_candle_at", "equity", "realized_pnl", "unrealized_pnl", "steps")
        .get()
    )
    step_at(bot, 30.5)
    once = (counts(bot), _order_rows(bot))
    Bot.objects.filter(pk=bot.pk).update(**before)
    EquitySnapshot.objects.filter(bot=bot, time__gt=REPLAY_START + timedelta(hours=11)).delete()
    BotEvent.objects.filter(bot=bot, time__gt=REPLAY_START + timedelta(hours=10, minutes=59)).delete()
    Fill.objects.filter(order__bot=bot, time__gt=REPLAY_START + timedelta(hours=10, minutes=59)).delete()
    report = step_at(bot, 30.5)
    assert report.outcome == "stepped" and report.candles == 20
    assert _order_rows(bot) == once[1]
    assert counts(bot)["orders"] == once[0]["orders"]


def test_a_step_killed_midway_leaves_nothing_and_a_rerun_matches_a_clean_step(
    user, candles, no_kick, django_capture_on_commit_callbacks
):
    clean = make_replay_bot(user, name="clean")
    crashy = make_replay_bot(user, name="crashy")
    step_at(clean, 10.5)
    step_at(crashy, 10.5)
    crashy.refresh_from_db()
    state, before = crashy.state, counts(crashy)
    step_at(clean, 40.5)

    calls = []

    def boom(self):
        calls.append(Order.objects.filter(bot=self.bot).count())  # orders of this step are written...
        raise RuntimeError("worker killed")

    with (
        mock.patch.object(runner._Writer, "write_balances_and_equity", boom),
        mock.patch("market7.events.send_now") as send,
    ):
        with django_capture_on_commit_callbacks(execute=True):
            report = step_at(crashy, 40.5)
    assert report.outcome == "error" and report.message == "RuntimeError: worker killed"
    assert calls and calls[0] > before["orders"]  # ...then the step died
    crashy.refresh_from_db()
    assert counts(crashy) == {**before, "events": before["events"] + 1}  # + the error entry
    assert crashy.state == state and crashy.last_candle_at == REPLAY_START + timedelta(hours=9)
    assert (crashy.status, crashy.status_message) == ("error", "RuntimeError: worker killed")
    assert crashy.claimed_at is None
    # only the error's bot_status went out: nothing of the rolled-back step was published
    assert [c.args[1] for c in send.call_args_list] == ["bot_status"]
    assert send.call_args.args[2]["status"] == "error"

    svc.bot_restart(user=user, bot=crashy)
    # the clock froze at the error; give it the same market time as the clean bot had
    Bot.objects.filter(pk=crashy.pk).update(replay_clock=REPLAY_START + timedelta(hours=40, minutes=30))
    crashy.refresh_from_db()
    report = bot_step(bot_id=crashy.pk, now=crashy.replay_clock_wall)
    assert report.outcome == "stepped" and report.candles == 30
    assert _order_rows(crashy) == _order_rows(clean)
    clean_counts, crashy_counts = counts(clean), counts(crashy)
    assert crashy_counts == {**clean_counts, "events": clean_counts["events"] + 1}
    clean.refresh_from_db()
    crashy.refresh_from_db()
    assert json.dumps(crashy.state, sort_keys=True).replace(f"m7b{crashy.pk}-", "X-") == json.dumps(
        clean.state, sort_keys=True
    ).replace(f"m7b{clean.pk}-", "X-")
    assert (crashy.equity, crashy.realized_pnl) == (clean.equity, clean.realized_pnl)


def test_a_failing_step_puts_the_bot_in_error_and_other_bots_go_on(user, candles, no_kick):
    bad = make_replay_bot(user, name="bad")
    good = make_replay_bot(user, name="good")
    Bot.objects.filter(pk=bad.pk).update(params={**bad.params, "take_profit": "oops"})
    assert step_at(bad, 5.5).outcome == "error"
    assert step_at(good, 5.5).outcome == "stepped"
    bad.refresh_from_db()
    assert bad.status == "error"
    assert bad.status_message == "ParamError: take_profit: must be a number"
    assert bad.replay_clock_wall is None  # the replay clock froze
    assert BotEvent.objects.filter(bot=bad, kind="error").values_list("reason", flat=True).get() == bad.status_message
    assert Bot.objects.get(pk=good.pk).status == "running"


def test_step_of_a_bot_that_is_not_running_is_skipped(user, candles, no_kick):
    bot = make_replay_bot(user, start=False)
    assert bot_step(bot_id=bot.pk).outcome == "skipped"
    assert counts(bot)["orders"] == 0


def test_replay_at_the_end_of_the_data_stays_running_and_idle(user, candles, no_kick):
    bot = make_replay_bot(user)
    report = step_at(bot, 24 * 40)  # 40 days: past 2025-04-30 23:00, the last stored candle
    assert report.outcome == "stepped" and report.candles == 720
    assert report.next_due_s is None
    report = step_at(bot, 24 * 41)
    assert report.outcome == "idle"
    bot.refresh_from_db()
    assert bot.status == "running"
    assert bot.status_message == (
        "replay reached the end of the stored data (2025-04-30 23:00 UTC); import more candles to continue"
    )
    assert bot.last_candle_at == datetime(2025, 4, 30, 23, tzinfo=UTC)
    assert bots_due(now=bot.replay_clock_wall + timedelta(days=100)) == []


# --- claim ----------------------------------------------------------------------------------


def test_claim_is_exclusive_until_it_expires(user, candles, no_kick):
    bot = make_replay_bot(user)
    wall = bot.replay_clock_wall
    token = bot_claim(bot_id=bot.pk, now=wall)
    assert token
    assert bot_claim(bot_id=bot.pk, now=wall + timedelta(seconds=10)) is None
    assert step_at(bot, 10).outcome == "skipped"
    assert counts(bot)["orders"] == 0
    # a worker that died holding the claim: after its lease the next one takes over
    stale = bot_claim(bot_id=bot.pk, now=wall + runner.claim_lease() + timedelta(seconds=1))
    assert stale and stale != token


@pytest.mark.django_db(transaction=True)
def test_two_concurrent_workers_step_a_bot_once(make_user, candles, no_kick):
    require(connection.vendor == "postgresql", "concurrent claims need Postgres (DATABASE_URL)")
    user = make_user("conc", "trader")
    bot = make_replay_bot(user)
    wall = Bot.objects.get(pk=bot.pk).replay_clock_wall + timedelta(seconds=20.5)
    inside, release = threading.Event(), threading.Event()
    real = runner._step_locked
    reports = {}

    def slow(*args, **kwargs):
        inside.set()
        assert release.wait(10)
        return real(*args, **kwargs)

    def worker(name):
        try:
            reports[name] = bot_step(bot_id=bot.pk, now=wall)
        finally:
            connection.close()

    with mock.patch.object(runner, "_step_locked", slow):
        a = threading.Thread(target=worker, args=("a",))
        a.start()
        assert inside.wait(10)
        b = threading.Thread(target=worker, args=("b",))
        b.start()
        b.join(10)
        release.set()
        a.join(10)
    assert reports["a"].outcome == "stepped" and reports["a"].candles == 20
    assert reports["b"].outcome == "skipped"
    bot.refresh_from_db()
    assert bot.steps == 1
    assert counts(bot)["orders"] == reports["a"].orders
    assert counts(bot)["snapshots"] == 20


# --- feeds ----------------------------------------------------------------------------------


def test_live_feed_unreachable_exchange_puts_the_bot_in_error(user, candles, settings, no_kick):
    settings.MARKET7_EXCHANGE_URLS = {"binance": "http://127.0.0.1:9"}  # nothing listens there
    settings.MARKET7_EXCHANGE_TIMEOUT_MS = 500
    bot = svc.bot_create(user=user, name="live", strategy="smart_dca", markets=["BTC/USDT"], capital="1000")
    svc.bot_start(user=user, bot=bot)
    report = bot_step(bot_id=bot.pk)
    bot.refresh_from_db()
    assert report.outcome == "error"
    assert bot.status == "error"
    assert bot.status_message.startswith("cannot reach binance: ")
    assert counts(bot)["orders"] == 0


def test_live_feed_fetches_closed_candles_and_trades_them(user, fake_binance, no_kick):
    from trading.services.markets import market_ensure

    market_ensure(exchange="binance", exchange_symbol="BTCUSDT")
    bot = svc.bot_create(user=user, name="live", strategy="smart_dca", markets=["BTC/USDT"], capital="1000")
    start = datetime(2025, 7, 1, tzinfo=UTC)
    fake_binance.now_ms = dt_to_ms(start + timedelta(hours=5, minutes=30))
    with mock.patch("django.utils.timezone.now", return_value=start + timedelta(minutes=10)):
        svc.bot_start(user=user, bot=bot)
    bot.refresh_from_db()
    assert bot.last_candle_at == start - timedelta(hours=1)
    report = bot_step(bot_id=bot.pk, now=start + timedelta(hours=5, minutes=30))
    assert (report.outcome, report.candles) == ("stepped", 5)  # 00:00 .. 04:00 closed; 05:00 still open
    bot.refresh_from_db()
    assert bot.last_candle_at == start + timedelta(hours=4)
    assert Order.objects.filter(bot=bot, tag="base_order").count() == 1
    # the warm-up history came along: 500 candles before the start, plus the 5 new ones
    from trading.models import Candle

    assert Candle.objects.filter(market__symbol="BTC/USDT", timeframe="1h").count() == 505


# --- events ---------------------------------------------------------------------------------


def test_a_step_publishes_its_events_to_the_owner_after_commit(
    user, candles, no_kick, django_capture_on_commit_callbacks
):
    bot = make_replay_bot(user)
    with mock.patch("market7.events.send_now") as send:
        with django_capture_on_commit_callbacks(execute=True):
            report = step_at(bot, 30.5)
    bot.refresh_from_db()
    sent = [(c.args[0], c.args[1]) for c in send.call_args_list]
    assert {uid for uid, _ in sent} == {user.pk}
    names = [n for _, n in sent]
    assert names.count("order_filled") == report.fills
    assert names.count("trade_opened") == report.trades_opened
    assert names.count("trade_closed") == report.trades_closed
    assert names.count("price") == 2 and names.count("pnl") == 1
    by_name = {c.args[1]: c.args[2] for c in send.call_args_list}
    assert by_name["pnl"] == {
        "bot_id": bot.pk,
        "equity": format(bot.equity.normalize(), "f"),
        "realized": format(bot.realized_pnl.normalize(), "f"),
        "unrealized": format(bot.unrealized_pnl.normalize(), "f"),
        "today": by_name["pnl"]["today"],
        "capital": "1000",
        "currency": "USDT",
        "time": "2025-04-02T05:00:00+00:00",
        "time_ms": dt_to_ms(REPLAY_START + timedelta(hours=29)),
        "open_trades": Trade.objects.filter(bot=bot, status="open").count(),
    }
    assert set(by_name["order_filled"]) == {
        "bot_id", "order_id", "client_order_id", "symbol", "side", "type", "tag", "deal_id", "price", "amount", "fee",
        "fee_currency", "time",
    }  # fmt: skip
    assert by_name["price"]["bot_id"] == bot.pk and by_name["price"]["time"] == "2025-04-02T05:00:00+00:00"
