"""``manage.py bots``: create, list --json, start/pause/stop, close-all; errors exit non-zero."""

from __future__ import annotations

import json

import pytest
from django.core.management import call_command
from django.core.management.base import CommandError

from accounts.models import AuditLog
from tests.trading.conftest import step_at
from trading.models import Bot

pytestmark = pytest.mark.django_db

CREATE = [
    "bots", "create", "--owner", "alice", "--name", "CLI DCA", "--strategy", "smart_dca", "--markets", "BTC/USDT,ETH/USDT",
    "--timeframe", "1h", "--mode", "paper", "--capital", "1000", "--feed", "replay", "--replay-start", "2025-04-01",
    "--replay-speed", "3600",
]  # fmt: skip


def _json(capsys, *args):
    capsys.readouterr()
    call_command(*args)
    return json.loads(capsys.readouterr().out)


def test_create_start_list_stop(user, candles, no_kick, capsys, tmp_path):
    params = tmp_path / "params.json"
    params.write_text(json.dumps({"take_profit": 1.0, "max_active_deals": 2}))
    call_command(*CREATE, "--params", str(params))
    bot = Bot.objects.get()
    assert capsys.readouterr().out == f"created bot #{bot.pk} CLI DCA (created)\n"
    assert (bot.owner, bot.params["take_profit"], bot.feed, bot.replay_speed) == (user, 1.0, "replay", 3600.0)

    call_command("bots", "start", str(bot.pk))
    assert capsys.readouterr().out == f"bot #{bot.pk} CLI DCA: running\n"
    step_at(bot, 30.5)
    bot.refresh_from_db()

    rows = _json(capsys, "bots", "list", "--json")
    assert rows == [
        {
            "id": bot.pk,
            "name": "CLI DCA",
            "owner": "alice",
            "status": "running",
            "strategy": "smart_dca",
            "markets": ["BTC/USDT", "ETH/USDT"],
            "timeframe": "1h",
            "mode": "paper",
            "feed": "replay",
            "capital": "1000",
            "equity": format(bot.equity.normalize(), "f"),
            "realized_pnl": format(bot.realized_pnl.normalize(), "f"),
            "unrealized_pnl": format(bot.unrealized_pnl.normalize(), "f"),
            "open_trades": bot.trades.filter(status="open").count(),
            "closed_trades": bot.trades.filter(status="closed").count(),
            "last_candle_at": "2025-04-02T05:00:00+00:00",
        }
    ]
    assert rows[0]["open_trades"] == 2
    call_command("bots", "list")
    table = capsys.readouterr().out.splitlines()
    assert table[0].split() == [
        "ID",
        "NAME",
        "OWNER",
        "STATUS",
        "STRATEGY",
        "MARKETS",
        "EQUITY",
        "REALIZED",
        "UNREALIZED",
        "OPEN",
        "CLOSED",
    ]
    assert table[1].split()[:6] == [str(bot.pk), "CLI", "DCA", "alice", "running", "smart_dca"]

    call_command("bots", "close-all", str(bot.pk))
    assert capsys.readouterr().out == f"bot #{bot.pk}: closing 2 open deal(s) on its next step\n"
    call_command("bots", "pause", str(bot.pk))
    call_command("bots", "stop", str(bot.pk))
    assert Bot.objects.get(pk=bot.pk).status == "stopped"
    assert list(AuditLog.objects.order_by("id").values_list("action", "user")) == [
        ("bot_create", None), ("bot_start", None), ("bot_close_all", None), ("bot_pause", None), ("bot_stop", None),
    ]  # fmt: skip


@pytest.mark.parametrize(
    ("extra", "message"),
    [
        (["--params", '{"take_profit": -1}'], "invalid bot: params.take_profit: must be >= 0.01%"),
        (["--params", '{"nope": 1}'], "invalid bot: params.nope: unknown parameter"),
        (["--params", "[1]"], "--params: must be a JSON object"),
        (
            ["--params", "{oops"],
            "--params: not valid JSON (Expecting property name enclosed in double quotes: line 1 column 2 (char 1))",
        ),
        (["--params", "/nonexistent/params.json"], "--params: no such file /nonexistent/params.json"),
        (["--capital", "abc"], "invalid bot: capital: 'abc' is not a number"),
        (
            ["--replay-start", "2030-01-01"],
            "invalid bot: replay_start: no stored BTC/USDT 1h candles at or after 2030-01-01 00:00 UTC",
        ),
    ],
)
def test_invalid_input_exits_with_one_line_and_saves_nothing(user, candles, extra, message):
    with pytest.raises(CommandError) as info:
        call_command(*CREATE, *extra)
    assert str(info.value) == message
    assert "\n" not in str(info.value)
    assert Bot.objects.count() == 0
    assert AuditLog.objects.count() == 0


def test_errors_exit_non_zero_from_the_command_line(user, candles, capsys):
    from unittest import mock

    from django.core.management import ManagementUtility

    # run_from_argv closes the DB connections when it ends; keep the test's one open
    closer = mock.patch("django.core.management.base.connections.close_all")
    closer.start()
    with pytest.raises(SystemExit) as info:
        ManagementUtility(["manage.py", *CREATE, "--params", '{"take_profit": -1}']).execute()
    assert info.value.code == 1
    assert capsys.readouterr().err.strip() == "CommandError: invalid bot: params.take_profit: must be >= 0.01%"
    with pytest.raises(SystemExit) as info:
        ManagementUtility(["manage.py", "bots", "start", "999"]).execute()
    assert info.value.code == 1
    assert capsys.readouterr().err.strip() == "CommandError: no bot with id 999"
    closer.stop()
    assert Bot.objects.count() == 0


def test_invalid_transition_and_live_mode_are_one_line_errors(user, candles, no_kick):
    call_command(*CREATE[:-6], "--mode", "live")
    bot = Bot.objects.get()
    with pytest.raises(
        CommandError,
        match="^cannot start live: a live bot needs an exchange account: add one under Exchange accounts, "
        "test it, and choose it$",
    ):
        call_command("bots", "start", str(bot.pk))
    with pytest.raises(CommandError, match=r"^cannot pause a bot that is created \(allowed from: running\)$"):
        call_command("bots", "pause", str(bot.pk))
    assert Bot.objects.get().status == "created"
