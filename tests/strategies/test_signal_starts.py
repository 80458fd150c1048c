"""Signal starts: a scheduled scan's passing signals queue ``start_deal`` on the owner's bots
(strategies.services.signal_starts), idempotent, recorded on the signal, shown on Scan Review.

Hand-made scan rows give exact scores and thresholds; one test runs the real scheduled scan on
the bundled 1h candles (2025-08-30 02:00 candle: BTC/USDT fork_score, scalping and channel pass).
"""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from strategies.models import MarketScan, ScanSignal, SignalStart
from strategies.services.signal_starts import scan_signals_dispatch
from strategies.tasks import scan_watchlists
from tests.trading.conftest import make_bot, no_enqueue
from trading.models import Bot, BotEvent, Exchange, Market
from trading.services.candles import candles_import
from trading.services.watchlist import watchlist_enable

T = datetime(2025, 8, 30, 2, tzinfo=UTC)
T_MS = 1756519200000


@pytest.fixture
def mkts(db):
    ex, _ = Exchange.objects.get_or_create(code="binance", defaults={"name": "Binance"})
    return {
        s: Market.objects.create(exchange=ex, symbol=s, exchange_symbol=s.replace("/", ""), base=s[:3], quote="USDT")
        for s in ("BTC/USDT", "ETH/USDT")
    }


def _scan(owner, mkts, rows, timeframe="1h"):
    scan = MarketScan.objects.create(owner=owner, at=T, timeframe=timeframe, strategies=["fork_score", "swing"])
    for symbol, strategy, side, score, passed in rows:
        ScanSignal.objects.create(
            scan=scan, market=mkts[symbol], strategy=strategy, time=T, side=side, score=score, entry=100.0,
            stop_loss=95.0, take_profit=110.0, rrr=2.0, reason=f"{strategy} {side} setup {score}", passed=passed,
        )  # fmt: skip
    return scan


def _bot(owner, market, **kw):
    fields = {"status": Bot.Status.RUNNING, "signal_strategies": ["fork_score"], "signal_min_score": 0.7} | kw
    return make_bot(owner, market, **fields)


ROWS = [
    ("BTC/USDT", "fork_score", "long", 0.72, True),
    ("BTC/USDT", "swing", "long", 0.9, True),  # a strategy the bot did not choose
    ("BTC/USDT", "fork_score", "short", 0.69, True),  # below the bot's 0.70
    ("ETH/USDT", "fork_score", "short", 0.95, False),  # did not pass its strategy's thresholds
]


def test_passing_signal_above_threshold_queues_exact_command_once(user, mkts, django_capture_on_commit_callbacks):
    bot = _bot(user, mkts["BTC/USDT"], commands=[{"cmd": "close", "deal_id": "d1", "symbol": "BTC/USDT"}])
    scan = _scan(user, mkts, ROWS)
    with no_enqueue() as kick, django_capture_on_commit_callbacks(execute=True):
        starts = scan_signals_dispatch(scan=scan)
    expected = {
        "cmd": "start_deal",
        "symbol": "BTC/USDT",
        "side": "long",
        "source": "scan",
        "score": 0.72,
        "reason": "fork_score long setup 0.72",
        "signal_time": T_MS,
    }
    bot.refresh_from_db()
    assert bot.commands == [{"cmd": "close", "deal_id": "d1", "symbol": "BTC/USDT"}, expected]
    assert [(s.bot_id, s.signal.strategy, s.signal.score, s.command) for s in starts] == [
        (bot.pk, "fork_score", 0.72, expected)
    ]
    ev = BotEvent.objects.get(bot=bot)
    assert (ev.kind, ev.rule, ev.outcome, ev.symbol) == ("status", "signal_start", "requested", "BTC/USDT")
    assert ev.reason == (
        f"start long BTC/USDT deal: fork_score signal score 0.72 >= 0.70 (scan #{scan.pk}, candle 2025-08-30 02:00 UTC)"
    )
    assert kick.call_count == 1  # the scheduler kicked after commit

    # the next scan of the same candle finds the same signal: nothing queues again
    Bot.objects.filter(pk=bot.pk).update(commands=[])  # the bot stepped meanwhile
    again = _scan(user, mkts, ROWS)
    with no_enqueue() as kick, django_capture_on_commit_callbacks(execute=True):
        assert scan_signals_dispatch(scan=again) == []
        assert scan_signals_dispatch(scan=scan) == []
    bot.refresh_from_db()
    assert bot.commands == [] and SignalStart.objects.count() == 1 and BotEvent.objects.filter(bot=bot).count() == 1
    assert kick.call_count == 0


def test_threshold_is_inclusive_and_both_sides_go(user, mkts):
    bot = _bot(user, mkts["BTC/USDT"], signal_min_score=0.69, signal_strategies=["fork_score", "swing"])
    with no_enqueue():
        starts = scan_signals_dispatch(scan=_scan(user, mkts, ROWS))
    bot.refresh_from_db()
    # score order: swing 0.9, fork_score 0.72, fork_score short 0.69 (= the threshold)
    assert [(c["side"], c["score"], c["reason"]) for c in bot.commands] == [
        ("long", 0.9, "swing long setup 0.9"),
        ("long", 0.72, "fork_score long setup 0.72"),
        ("short", 0.69, "fork_score short setup 0.69"),
    ]
    assert len(starts) == 3


def test_nothing_for_other_users_stopped_bots_other_symbols_timeframes_strategies(
    user, other_user, mkts, django_capture_on_commit_callbacks
):
    others = [
        _bot(other_user, mkts["BTC/USDT"]),  # another user's bot
        _bot(user, mkts["BTC/USDT"], status=Bot.Status.STOPPED),
        _bot(user, mkts["BTC/USDT"], status=Bot.Status.PAUSED),
        _bot(user, mkts["ETH/USDT"]),  # trades another symbol
        _bot(user, mkts["BTC/USDT"], timeframe="4h"),
        _bot(user, mkts["BTC/USDT"], signal_strategies=["channel"]),
        _bot(user, mkts["BTC/USDT"], signal_strategies=[]),  # signal starts off
        _bot(user, mkts["BTC/USDT"], signal_min_score=0.73),  # above the best fork_score signal
    ]
    with no_enqueue() as kick, django_capture_on_commit_callbacks(execute=True):
        assert scan_signals_dispatch(scan=_scan(user, mkts, ROWS)) == []
        assert scan_signals_dispatch(scan=_scan(None, mkts, ROWS)) == []  # a system scan: no owner
    assert [Bot.objects.get(pk=b.pk).commands for b in others] == [[]] * len(others)
    assert SignalStart.objects.count() == 0 and BotEvent.objects.count() == 0 and kick.call_count == 0


@pytest.fixture
def real(db, bundled_data_dir):
    for name in ("BTC", "ETH"):
        candles_import(path=bundled_data_dir / f"{name}USDT-1h.csv.gz", exchange="binance", market_type="spot")
    return {m.symbol: m for m in Market.objects.all()}


def test_scheduled_scan_sends_real_signals_once_and_review_shows_them(client, user, other_user, real):
    watchlist_enable(user=user, market=real["BTC/USDT"])
    watchlist_enable(user=other_user, market=real["BTC/USDT"])
    bot = _bot(user, real["BTC/USDT"], name="Fork bot", signal_strategies=["fork_score", "channel"], signal_min_score=0)
    theirs = _bot(other_user, real["BTC/USDT"], signal_strategies=["fork_score", "channel"], signal_min_score=0)
    with no_enqueue():
        report = scan_watchlists("2025-08-30T03:00")
    assert report["starts"] == 4  # alice's bot: fork_score + channel; bob's bot: the same from his own scan
    scan = MarketScan.objects.get(owner=user)
    sent = {s.strategy: s for s in scan.signals.filter(strategy__in=["fork_score", "channel"])}
    bot.refresh_from_db()
    assert bot.commands == [
        {
            "cmd": "start_deal",
            "symbol": "BTC/USDT",
            "side": s.side,
            "source": "scan",
            "score": s.score,
            "reason": s.reason,
            "signal_time": T_MS,
        }  # fmt: skip
        for s in sorted(sent.values(), key=lambda s: (-s.score, s.pk))
    ]
    assert {(st.bot_id, st.signal.scan_id) for st in SignalStart.objects.filter(bot=bot)} == {(bot.pk, scan.pk)}
    assert SignalStart.objects.filter(bot=theirs, signal__scan__owner=other_user).count() == 2

    with no_enqueue():  # five minutes later: the same candle, the same signals
        assert scan_watchlists("2025-08-30T03:05")["starts"] == 0
    assert SignalStart.objects.count() == 4

    client.force_login(user)
    html = client.get("/scans/").content.decode()
    assert html.count(f'data-sent-to="{bot.pk}"') == 2 and f'data-sent-to="{theirs.pk}"' not in html
    detail = client.get(f"/scans/signals/{sent['fork_score'].pk}/").content.decode()
    assert 'id="signal-starts"' in detail and "Fork bot" in detail
