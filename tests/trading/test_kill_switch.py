"""The live kill switch against the fake Binance: open orders of the user's live bots cancelled
by client id (one failing at the exchange, one already gone, one stray found by its prefix),
deals closed by selling the free base at market, bots stopped, everything audited; paper bots
keep their emergency stop; another user's bots and orders are untouched."""

from __future__ import annotations

import logging

import pytest

from accounts.models import AuditLog
from tests.trading.conftest import make_bot
from tests.trading.kill_switch_world import KEY, SECRET, db_order
from trading.models import Bot, BotEvent, ExchangeAccount, Order, Trade
from trading.services.bot_validation import BotPermissionDenied
from trading.services.emergency import emergency_stop

pytest_plugins = ["tests.fakes.fixtures", "tests.trading.kill_switch_world"]


def statuses(exch) -> dict[str, str]:
    return {cid: o["status"] for cid, o in exch.orders.items()}


def test_kill_switch_cancels_closes_and_reports_every_order(user, world, caplog):
    live, paper, bobs, exch = world["live"], world["paper"], world["bobs"], world["exch"]
    p = live.order_prefix
    with caplog.at_level(logging.DEBUG):
        report = emergency_stop(user=user, close_positions=True)

    assert report.paper_bot_ids == [paper.pk] and report.live_bot_ids == [live.pk]
    rows = [(r["action"], r["client_order_id"], r["outcome"], r["reason"]) for r in report.results]
    assert rows == [
        ("cancel", f"{p}x1", "canceled", ""),
        (
            "cancel",
            f"{p}x2",
            "failed",
            'exchange_error: binance {"code":-1001,"msg":"Internal error; unable to process your request."}',
        ),
        ("cancel", f"{p}x3", "gone", "not open at the exchange (filled or cancelled before)"),
        ("cancel", f"{p}x4", "canceled", ""),
        ("close", f"{p}xk{world['trade'].pk}", "closed", "sell 0.0015 at 60000.0"),
    ]
    assert report.failed == 1
    assert statuses(exch) == {
        f"{p}x1": "CANCELED",
        f"{p}x2": "NEW",
        f"{p}x3": "FILLED",
        f"{p}x4": "CANCELED",
        "manual1": "NEW",
        f"{bobs.order_prefix}x1": "NEW",
        f"{p}xk{world['trade'].pk}": "FILLED",
    }
    sell = exch.orders[f"{p}xk{world['trade'].pk}"]
    assert (sell["side"], sell["type"], sell["origQty"]) == ("SELL", "MARKET", "0.0015")
    assert exch.balances["BTC"][0] == "0.00000000"
    assert exch.balances["USDT"][0] == "1089.91000000"  # 1000 + 90 - 0.09 fee

    # our books: confirmed cancels only; bots stopped; the log and the audit hold every result
    assert dict(Order.objects.filter(bot=live).values_list("client_order_id", "status")) == {
        f"{p}-1": "canceled",
        f"{p}-2": "open",
        f"{p}-3": "open",
    }
    assert Order.objects.get(bot=bobs).status == "open"
    assert {b.name: b.status for b in Bot.objects.all()} == {"live": "stopped", "paper": "stopped", "bobs": "running"}
    live.refresh_from_db()
    assert live.status_message == (
        "emergency stop: 2 cancel canceled, 1 cancel failed, 1 cancel gone, 1 close closed; deals closed at the "
        "exchange stay open here until the bot is reconciled; some failed — check the exchange and press "
        "emergency stop again"
    )
    assert list(
        BotEvent.objects.filter(bot=live, rule="emergency_stop").order_by("pk").values_list("outcome", flat=True)
    ) == ["canceled", "failed", "gone", "canceled", "closed"]
    audit = AuditLog.objects.get(action="emergency_stop_live")
    assert audit.user == user and audit.payload["bots"] == [live.pk] and audit.payload["close_positions"] is True
    assert [r["outcome"] for r in audit.payload["results"]] == ["canceled", "failed", "gone", "canceled", "closed"]
    assert all(r["account_id"] == ExchangeAccount.objects.get(owner=user).pk for r in audit.payload["results"])
    text = caplog.text + repr(report.as_dict()) + str(audit.payload) + audit.message + live.status_message
    assert KEY not in text and SECRET not in text


def test_second_press_does_not_sell_twice(user, world):
    emergency_stop(user=user, close_positions=True)
    world["exch"].fail_cancel(f"{world['live'].order_prefix}x2", 400, {"code": -2011, "msg": "Unknown order sent."})
    report = emergency_stop(user=user, close_positions=True)
    p = world["live"].order_prefix
    assert [(r["client_order_id"], r["outcome"], r["reason"]) for r in report.results] == [
        (f"{p}x2", "gone", "not open at the exchange (filled or cancelled before)"),
        (f"{p}x3", "gone", "not open at the exchange (filled or cancelled before)"),
        (f"{p}xk{world['trade'].pk}", "closed", "sent by an earlier emergency stop"),
    ]
    sells = [r for r in world["exch"].fake.requests if r.method == "POST" and r.params.get("side") == "SELL"]
    assert len(sells) == 1


def test_without_close_positions_orders_only(user, world):
    report = emergency_stop(user=user)
    assert [r["action"] for r in report.results] == ["cancel"] * 4
    assert world["exch"].balances["BTC"][0] == "0.00150000"
    assert Trade.objects.get(pk=world["trade"].pk).status == "open"


def test_an_unreachable_exchange_fails_every_order_and_still_stops(user, world):
    world["exch"].fake.stop()
    report = emergency_stop(user=user)
    assert {r["outcome"] for r in report.results} == {"failed"}
    assert {r["reason"] for r in report.results} == {"exchange_unreachable: NetworkError"}
    assert len(report.results) == 3
    assert Bot.objects.get(pk=world["live"].pk).status == "stopped"
    assert Order.objects.filter(bot=world["live"], status="open").count() == 3


def test_a_live_bot_without_an_account_is_reported(user, market, no_kick, exch):
    live = make_bot(user, market, name="orphan", mode="live", feed="live", status="paused")
    db_order(live, market, 1)
    report = emergency_stop(user=user)
    assert [(r["outcome"], r["reason"]) for r in report.results] == [
        ("failed", "no_account: no exchange account on binance")
    ]
    assert Bot.objects.get(pk=live.pk).status == "stopped"
    assert exch.fake.requests == []


def test_viewer_may_not_and_nothing_happens(viewer, world):
    with pytest.raises(BotPermissionDenied):
        emergency_stop(user=viewer, close_positions=True)
    assert statuses(world["exch"])[f"{world['live'].order_prefix}x1"] == "NEW"
    assert not AuditLog.objects.filter(action="emergency_stop_live").exists()


def test_a_bot_linked_to_one_of_two_accounts_is_stopped_on_that_account(user, market, no_kick, exch):
    from tests.trading.kill_switch_world import KEY, OTHER_KEY, OTHER_SECRET, SECRET, db_order, place
    from trading.services import exchange_accounts as accounts

    main = accounts.account_create(user=user, exchange="binance", label="main", api_key=KEY, secret=SECRET)
    spare = accounts.account_create(
        user=user, exchange="binance", label="spare", api_key=OTHER_KEY, secret=OTHER_SECRET
    )
    live = make_bot(user, market, name="linked", mode="live", feed="live", status="running")
    Bot.objects.filter(pk=live.pk).update(exchange_account=spare)
    db_order(live, market, 1)
    place(f"{live.order_prefix}x1", key=OTHER_KEY, secret=OTHER_SECRET)
    report = emergency_stop(user=user)
    assert [(r["action"], r["outcome"]) for r in report.results] == [("cancel", "canceled")]
    # the cancel went out signed with the linked (spare) account's key, not the main one
    assert [k for m, path, k in exch.signed if (m, path) == ("DELETE", "/api/v3/order")] == [OTHER_KEY]
    assert main.pk != spare.pk
