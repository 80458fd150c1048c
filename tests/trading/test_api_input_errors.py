"""Bad input to the bots API and the bot / backtest services is a 4xx (or a one-line error)
with a reason, never a 500 — and what should be refused is refused (issue 10 §2).

Real data: the bundled Binance 1h candles of BTC/USDT and ETH/USDT, 2025-03-05 00:00 ..
2025-04-30 23:00 (``tests.trading.conftest.candles``).
"""

from __future__ import annotations

from datetime import UTC, datetime
from io import StringIO
from unittest import mock

import pytest
from django.core.management import CommandError, call_command
from rest_framework.test import APIClient

from strategies.models import BacktestRun
from tests.trading.conftest import make_replay_bot, step_at
from trading.models import Bot, BotEvent, Trade
from trading.services import bots as svc

pytestmark = pytest.mark.django_db

SYMBOL_HINT = "give ccxt symbols such as BTC/USDT (BTC/USDT:USDT for a USDT-M perpetual)"


def _client(user=None):
    c = APIClient()
    if user is not None:
        c.force_authenticate(user)
    return c


def _snapshot(bot: Bot):
    bot.refresh_from_db()
    return (bot.status, bot.commands, Bot.objects.count(), BotEvent.objects.filter(kind="status").count())


# --- format suffix: ownership first, then the action ----------------------------------------


def test_format_suffix_on_every_action_is_404_for_another_user_and_works_for_the_owner(
    user, other_user, candles, no_kick
):
    bot = make_replay_bot(user)
    step_at(bot, 30.5)
    deal = Trade.objects.filter(bot=bot, status="open").order_by("pk").first()
    owner, other, anon = _client(user), _client(other_user), _client()
    gets = ["performance", "active_trades", "events", "equity"]
    posts = [
        "start", "pause", "resume", "stop", "restart", "resume_trading", "clone", "close_all", "close_position",
        "add_funds", "set_exits",
    ]  # fmt: skip
    before = _snapshot(bot)
    for name in gets:
        assert other.get(f"/api/v1/bots/{bot.pk}/{name}.json").status_code == 404, name
        assert anon.get(f"/api/v1/bots/{bot.pk}/{name}.json").status_code in (401, 403), name
    for name in posts:
        body = {"trade": deal.pk, "quote": "10", "take_profit": "2"}
        r = other.post(f"/api/v1/bots/{bot.pk}/{name}.json", body, format="json")
        assert (r.status_code, r.json()) == (404, {"detail": "No Bot matches the given query."}), name
        assert anon.post(f"/api/v1/bots/{bot.pk}/{name}.json").status_code in (401, 403), name
    assert other.get(f"/api/v1/bots/{bot.pk}.json").status_code == 404
    assert other.patch(f"/api/v1/bots/{bot.pk}.json", {"name": "x"}, format="json").status_code == 404
    assert other.delete(f"/api/v1/bots/{bot.pk}.json").status_code == 404
    assert _snapshot(bot) == before  # nothing happened

    # the owner gets the action, with the JSON renderer the suffix asks for
    for name in gets:
        r = owner.get(f"/api/v1/bots/{bot.pk}/{name}.json")
        assert (r.status_code, r["Content-Type"]) == (200, "application/json"), name
        assert r.json() == owner.get(f"/api/v1/bots/{bot.pk}/{name}/").json(), name
    assert owner.get(f"/api/v1/bots/{bot.pk}/performance.json").json()["trades"] == 6
    assert len(owner.get(f"/api/v1/bots/{bot.pk}/active_trades.json").json()) == 2
    r = owner.post(f"/api/v1/bots/{bot.pk}/close_position.json", {"trade": deal.pk}, format="json")
    assert (r.status_code, r.json()["deal_id"]) == (202, deal.deal_id)
    r = owner.post(f"/api/v1/bots/{bot.pk}/close_all.json", {"stop": "false"}, format="json")
    assert (r.status_code, r.json()) == (202, {"open_deals": 2})
    bot.refresh_from_db()
    assert bot.commands == [
        {"cmd": "close", "deal_id": deal.deal_id, "symbol": deal.market.symbol},
        {"cmd": "close_all", "stop": False},  # "false" is false (it was bool("false") == True)
    ]
    expected = [("pause", "paused"), ("resume", "running"), ("stop", "stopped"), ("restart", "running")]
    for name, status in expected:
        r = owner.post(f"/api/v1/bots/{bot.pk}/{name}.json")
        assert (r.status_code, r.json()["status"]) == (200, status), name
    r = owner.post(f"/api/v1/bots/{bot.pk}/start.json")
    assert r.status_code == 409
    assert r.json() == {"detail": "cannot start a bot that is running (allowed from: created)"}
    r = owner.post(f"/api/v1/bots/{bot.pk}/resume_trading.json")
    assert r.json() == {"detail": "trading is not paused: no portfolio risk rule blocks new entries"}
    r = owner.post(f"/api/v1/bots/{bot.pk}/clone.json")
    assert (r.status_code, r.json()["name"], r.json()["status"]) == (201, "replay (copy)", "created")
    r = owner.patch(f"/api/v1/bots/{bot.pk}.json", {"name": "renamed"}, format="json")
    assert (r.status_code, r.json()["name"]) == (200, "renamed")


# --- bodies that are not a JSON object ------------------------------------------------------


NOT_AN_OBJECT = {"non_field_errors": ["Invalid data. Expected a dictionary, but got str."]}


@pytest.mark.parametrize("action", ["close_all", "close_position", "add_funds", "set_exits"])
def test_action_with_a_json_string_body_is_400_and_changes_nothing(user, candles, no_kick, action):
    bot = make_replay_bot(user)
    step_at(bot, 30.5)
    before = _snapshot(bot)
    r = _client(user).post(f"/api/v1/bots/{bot.pk}/{action}/", '"abc"', content_type="application/json")
    assert (r.status_code, r.json()) == (400, NOT_AN_OBJECT)
    r = _client(user).post(f"/api/v1/bots/{bot.pk}/{action}/", "[1, 2]", content_type="application/json")
    assert (r.status_code, r.json()) == (
        400,
        {"non_field_errors": ["Invalid data. Expected a dictionary, but got list."]},
    )
    assert _snapshot(bot) == before


def test_action_fields_of_the_wrong_type_are_400_naming_the_field(user, candles, no_kick):
    bot = make_replay_bot(user)
    step_at(bot, 30.5)
    deal = Trade.objects.filter(bot=bot, status="open").order_by("pk").first()
    url = f"/api/v1/bots/{bot.pk}/"
    c = _client(user)
    before = _snapshot(bot)
    r = c.post(url + "close_all/", {"stop": "maybe"}, format="json")
    assert (r.status_code, r.json()) == (400, {"stop": ["Must be a valid boolean."]})
    for trade in ("abc", None, [deal.pk], 2**63, -1):
        r = c.post(url + "close_position/", {"trade": trade}, format="json")
        assert (r.status_code, r.json()) == (400, {"trade": ["give the open trade's id"]}), trade
    r = c.post(url + "add_funds/", {"trade": deal.pk, "quote": {"x": 1}}, format="json")
    assert (r.status_code, r.json()) == (400, {"quote": ["Not a valid string."]})
    r = c.post(url + "set_exits/", {"trade": deal.pk, "take_profit": [2]}, format="json")
    assert (r.status_code, r.json()) == (400, {"take_profit": ["Not a valid string."]})
    assert _snapshot(bot) == before


# --- markets: ccxt symbols only ---------------------------------------------------------------


def _create(client, **kw):
    body = {"name": "api", "strategy": "smart_dca", "markets": ["BTC/USDT"], "capital": "1000"} | kw
    return client.post("/api/v1/bots/", body, format="json")


@pytest.mark.parametrize(
    ("markets", "message"),
    [
        (["¹"], f"not a market symbol: ¹; {SYMBOL_HINT} (market ids are not accepted)"),
        (["²³"], f"not a market symbol: ²³; {SYMBOL_HINT} (market ids are not accepted)"),
        (["1"], f"not a market symbol: 1; {SYMBOL_HINT} (market ids are not accepted)"),
        ([1], f"not a market symbol: 1; {SYMBOL_HINT} (market ids are not accepted)"),
        (["BTCUSDT"], f"not a market symbol: BTCUSDT; {SYMBOL_HINT} (market ids are not accepted)"),
        (["BTC/USDT", "DOGE/USDT"], "unknown market(s) on binance: DOGE/USDT"),
    ],
)
def test_create_refuses_anything_but_known_ccxt_symbols(user, candles, markets, message):
    r = _create(_client(user), markets=markets)
    assert (r.status_code, r.json()) == (400, {"markets": [message]})
    assert Bot.objects.count() == 0


def test_patch_markets_refuses_ids_and_accepts_symbols(user, candles):
    c = _client(user)
    bot_id = _create(c).json()["id"]
    eth = candles["ETH/USDT"]
    r = c.patch(f"/api/v1/bots/{bot_id}/", {"markets": [str(eth.pk)]}, format="json")
    assert (r.status_code, r.json()) == (
        400,
        {"markets": [f"not a market symbol: {eth.pk}; {SYMBOL_HINT} (market ids are not accepted)"]},
    )
    assert [m.symbol for m in Bot.objects.get().markets.all()] == ["BTC/USDT"]
    r = c.patch(f"/api/v1/bots/{bot_id}/", {"markets": ["ETH/USDT"]}, format="json")
    assert (r.status_code, r.json()["markets"]) == (200, ["ETH/USDT"])


def test_python_callers_may_still_pass_rows_and_integer_ids(user, candles):
    btc, eth = candles["BTC/USDT"], candles["ETH/USDT"]
    bot = svc.bot_create(user=user, name="rows", strategy="smart_dca", markets=[btc, eth.pk], capital="1000")
    assert sorted(m.symbol for m in bot.markets.all()) == ["BTC/USDT", "ETH/USDT"]


# --- PATCH racing a DELETE --------------------------------------------------------------------


def test_patch_racing_a_delete_is_404(user, candles):
    c = _client(user)
    bot_id = _create(c).json()["id"]
    real_update = svc.bot_update

    def delete_first(**kwargs):
        # The concurrent DELETE commits after the view loaded the bot, before the service
        # re-reads it under the row lock.
        Bot.objects.filter(pk=bot_id).delete()
        return real_update(**kwargs)

    with mock.patch.object(svc, "bot_update", side_effect=delete_first):
        r = c.patch(f"/api/v1/bots/{bot_id}/", {"name": "late"}, format="json")
    assert (r.status_code, r.json()) == (404, {"detail": "no such bot (it may just have been deleted)"})
    assert Bot.objects.count() == 0


def test_operating_a_bot_deleted_meanwhile_is_404(user, candles, no_kick):
    bot = make_replay_bot(user, start=False)
    real_start = svc.bot_start

    def delete_first(**kwargs):
        Bot.objects.filter(pk=bot.pk).delete()
        return real_start(**kwargs)

    with mock.patch.dict(svc.BOT_ACTIONS, {"start": delete_first}):
        r = _client(user).post(f"/api/v1/bots/{bot.pk}/start/")
    assert (r.status_code, r.json()) == (404, {"detail": "no such bot (it may just have been deleted)"})


# --- btc_symbol names a stored market -----------------------------------------------------------


def test_unknown_btc_symbol_is_refused(user, candles):
    c = _client(user)
    message = f"unknown market 'NOPE/USDT' on binance; {SYMBOL_HINT}"
    for params in (
        {"btc_market_filter_enabled": True, "btc_symbol": "NOPE/USDT"},
        {"btc_market_filter_enabled": False, "btc_symbol": "NOPE/USDT"},  # given: checked too
    ):
        r = _create(c, params=params)
        assert (r.status_code, r.json()) == (400, {"params.btc_symbol": [message]}), params
    assert Bot.objects.count() == 0
    r = _create(c, markets=["ETH/USDT"], params={"btc_market_filter_enabled": True, "btc_symbol": "BTC/USDT"})
    assert r.status_code == 201 and r.json()["params"]["btc_symbol"] == "BTC/USDT"
    r = c.patch(f"/api/v1/bots/{r.json()['id']}/", {"params": {"btc_symbol": "NOPE/USDT"}}, format="json")
    assert (r.status_code, r.json()) == (400, {"params.btc_symbol": [message]})
    assert Bot.objects.get().params["btc_symbol"] == "BTC/USDT"


def test_unknown_btc_symbol_is_refused_by_the_backtest(user, candles):
    from strategies.services.backtests import BacktestError, backtest_create

    with pytest.raises(BacktestError) as exc:
        backtest_create(
            user=user, strategy="smart_dca", symbols=["ETH/USDT"], timeframe="1h",
            start=datetime(2025, 4, 1, tzinfo=UTC), end=datetime(2025, 4, 10, tzinfo=UTC), capital=1000,
            params={"btc_market_filter_enabled": True, "btc_symbol": "NOPE/USDT"}, enqueue=False,
        )  # fmt: skip
    assert str(exc.value) == f"invalid params: btc_symbol: unknown market 'NOPE/USDT' on binance; {SYMBOL_HINT}"
    assert BacktestRun.objects.count() == 0


# --- replay start before the data -----------------------------------------------------------------


def test_replay_starting_before_the_first_candle_is_refused_with_the_range(user, candles):
    r = _create(_client(user), feed="replay", replay_start="1900-01-01T00:00:00Z", markets=["BTC/USDT", "ETH/USDT"])
    assert (r.status_code, r.json()) == (
        400,
        {
            "replay_start": [
                "1900-01-01 00:00 UTC is before the first stored BTC/USDT 1h candle; "
                "stored: 2025-03-05 00:00 .. 2025-04-30 23:00 UTC"
            ]
        },
    )
    with pytest.raises(svc.BotValidationError) as exc:
        svc.bot_create(
            user=user, name="y1", strategy="smart_dca", markets=["BTC/USDT"], capital="1000", feed="replay",
            replay_start=datetime(1, 1, 1, tzinfo=UTC),
        )  # fmt: skip
    assert exc.value.errors == {
        "replay_start": "0001-01-01 00:00 UTC is before the first stored BTC/USDT 1h candle; "
        "stored: 2025-03-05 00:00 .. 2025-04-30 23:00 UTC"
    }
    assert Bot.objects.count() == 0
    r = _create(_client(user), feed="replay", replay_start="2025-03-05T00:00:00Z")
    assert (r.status_code, r.json()["replay_start"]) == (201, "2025-03-05T00:00:00Z")


# --- backtest window against the stored data --------------------------------------------------------


def test_backtest_from_year_1_to_9999_is_refused_at_submit(user, candles):
    from strategies.services.backtests import BacktestError, backtest_create, parse_day_range

    message = (
        "the window 0001-01-01 00:00 .. 9999-12-31 23:59 UTC reaches outside the stored 1h candles of "
        "BTC/USDT, ETH/USDT: 2025-03-05 00:00 .. 2025-04-30 23:00 UTC"
    )
    start, end = parse_day_range("0001-01-01", "9999-12-31")
    assert end == datetime.max.replace(tzinfo=UTC)
    with pytest.raises(BacktestError) as exc:
        backtest_create(
            user=user, strategy="smart_dca", symbols=["BTC/USDT", "ETH/USDT"], timeframe="1h", start=start, end=end,
            capital=1000, enqueue=False,
        )  # fmt: skip
    assert str(exc.value) == message
    with pytest.raises(CommandError) as cmd:
        call_command(
            "backtest", "--strategy", "smart_dca", "--symbols", "BTC/USDT,ETH/USDT", "--start", "0001-01-01",
            "--end", "9999-12-31", stdout=StringIO(),
        )  # fmt: skip
    assert str(cmd.value).startswith(message)
    # one day past either end of the data is outside too; the data's own days are inside
    for s, e in (("2025-03-04", "2025-04-30"), ("2025-03-05", "2025-05-01")):
        with pytest.raises(BacktestError, match="reaches outside the stored 1h candles"):
            backtest_create(
                user=user, strategy="smart_dca", symbols=["BTC/USDT"], timeframe="1h", capital=1000, enqueue=False,
                start=parse_day_range(s, e)[0], end=parse_day_range(s, e)[1],
            )  # fmt: skip
    assert BacktestRun.objects.count() == 0
    run = backtest_create(
        user=user, strategy="smart_dca", symbols=["BTC/USDT"], timeframe="1h", capital=1000, enqueue=False,
        start=parse_day_range("2025-03-05", "2025-04-30")[0], end=parse_day_range("2025-03-05", "2025-04-30")[1],
    )  # fmt: skip
    assert run.status == "queued"


def test_backtest_form_from_year_1_to_9999_shows_the_range_and_saves_nothing(client, user, candles):
    from django.urls import reverse

    client.force_login(user)
    form = {
        "name": "", "strategy": "smart_dca", "symbols": ["BTC/USDT"], "timeframe": "1h", "start": "0001-01-01",
        "end": "9999-12-31", "capital": "10000", "fee_bps": "10", "slippage_bps": "5", "params_json": "",
    }  # fmt: skip
    r = client.post(reverse("backtests:new"), form)
    assert r.status_code == 200
    assert list(r.context["form"].non_field_errors()) == [
        "the window 0001-01-01 00:00 .. 9999-12-31 23:59 UTC reaches outside the stored 1h candles of "
        "BTC/USDT: 2025-03-05 00:00 .. 2025-04-30 23:00 UTC"
    ]
    assert BacktestRun.objects.count() == 0
