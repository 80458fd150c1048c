"""``manage.py demo_setup`` is idempotent (``make run`` calls it on every start)."""

from __future__ import annotations

import pytest
from django.contrib.auth import get_user_model
from django.core.management import call_command

from tests.trading.conftest import no_enqueue
from trading.models import Bot, Candle

pytestmark = pytest.mark.django_db


@pytest.fixture(autouse=True)
def _var(settings, tmp_path, monkeypatch):
    settings.VAR_DIR = tmp_path
    monkeypatch.delenv("MARKET7_DEMO_PASSWORD", raising=False)
    with no_enqueue():
        yield


def test_demo_setup_twice_creates_one_user_two_running_bots(capsys, tmp_path):
    call_command("demo_setup")
    out = capsys.readouterr().out
    password = (tmp_path / "demo_password").read_text().strip()
    assert f"demo: created user 'demo' with password {password}" in out
    assert oct((tmp_path / "demo_password").stat().st_mode & 0o777) == "0o600"
    demo = get_user_model().objects.get(username="demo")
    assert demo.check_password(password) and demo.role == "trader"
    bots = list(Bot.objects.filter(owner=demo).order_by("pk"))
    assert [(b.name, b.status, b.mode, b.feed, b.replay_speed) for b in bots] == [
        ("Demo · Smart DCA BTC+ETH", "running", "paper", "replay", 3600.0),
        ("Demo · Smart DCA SOL+XRP tight", "running", "paper", "replay", 3600.0),
    ]
    assert [sorted(b.markets.values_list("symbol", flat=True)) for b in bots] == [
        ["BTC/USDT", "ETH/USDT"],
        ["SOL/USDT", "XRP/USDT"],
    ]
    assert {b.replay_start.isoformat() for b in bots} == {"2025-03-26T00:00:00+00:00"}
    assert bots[1].params["btc_market_filter_enabled"] is True
    candles = Candle.objects.count()
    assert candles == 4 * 4320

    call_command("demo_setup")
    out = capsys.readouterr().out
    assert out.splitlines() == [
        f"demo: user 'demo' exists (password {password})",
        f"demo: bot #{bots[0].pk} Demo · Smart DCA BTC+ETH exists (running)",
        f"demo: bot #{bots[1].pk} Demo · Smart DCA SOL+XRP tight exists (running)",
    ]
    assert get_user_model().objects.filter(username="demo").count() == 1
    assert list(Bot.objects.order_by("pk").values_list("pk", "status")) == [(b.pk, "running") for b in bots]
    assert Candle.objects.count() == candles
    assert get_user_model().objects.get(username="demo").check_password(password)


def test_password_from_the_environment_and_kept_otherwise(monkeypatch, tmp_path, capsys):
    monkeypatch.setenv("MARKET7_DEMO_PASSWORD", "Demo-Pass-123")
    call_command("demo_setup")
    assert not (tmp_path / "demo_password").exists()
    demo = get_user_model().objects.get(username="demo")
    assert demo.check_password("Demo-Pass-123")
    monkeypatch.delenv("MARKET7_DEMO_PASSWORD")
    call_command("demo_setup")
    assert get_user_model().objects.get(username="demo").check_password("Demo-Pass-123")
    monkeypatch.setenv("MARKET7_DEMO_PASSWORD", "Other-Pass-456")
    call_command("demo_setup")
    assert get_user_model().objects.get(username="demo").check_password("Other-Pass-456")
    assert Bot.objects.count() == 2


def test_demo_bots_trade_within_a_minute(capsys):
    from datetime import timedelta

    from trading.services.runner import bot_step

    call_command("demo_setup")
    for bot in Bot.objects.order_by("pk"):
        report = bot_step(bot_id=bot.pk, now=bot.replay_clock_wall + timedelta(seconds=60))
        assert report.outcome == "stepped" and report.candles == 60
        assert report.trades_opened >= 1 and report.fills >= 2
    assert sum(b.trades.filter(status="closed").count() for b in Bot.objects.all()) >= 1


def test_reset_recreates_the_bots(capsys):
    call_command("demo_setup")
    old = set(Bot.objects.values_list("pk", flat=True))
    call_command("demo_setup", "--reset")
    assert "demo: deleted 2 bot(s)" in capsys.readouterr().out
    new = set(Bot.objects.values_list("pk", flat=True))
    assert len(new) == 2 and not (old & new)
