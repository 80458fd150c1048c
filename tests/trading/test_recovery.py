"""Recovery: a worker killed or frozen mid-step, the claim's lease and heartbeat, a restarted
worker's kick, and enqueueing from a request while the broker is down (docs/bots.md, "Recovery").

The kill and freeze tests run a real second process (``tests/trading/recovery_worker.py``) on
the test database and SIGKILL / SIGSTOP it at a known point of the step; they run on SQLite and
on Postgres (``DATABASE_URL``).
"""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import threading
import time
from contextlib import contextmanager
from datetime import timedelta
from unittest import mock

import pytest
from django.conf import settings as django_settings
from django.db import connection
from django.utils import timezone

from tests.trading.conftest import REPLAY_START, counts, make_replay_bot
from trading.models import Bot, BotEvent
from trading.services import runner
from trading.services.claims import ClaimHeartbeat
from trading.services.runner import CLAIM_LOST, bot_step, bots_due

LEASE_S = 2  # a short lease so the tests wait seconds, not the default 15


@pytest.fixture
def short_lease(settings):
    settings.MARKET7_BOT_CLAIM_LEASE_S = LEASE_S
    return timedelta(seconds=LEASE_S)


def _worker(mode: str, bot: Bot, feed_now) -> subprocess.Popen:
    """Start ``tests/trading/recovery_worker.py`` on the test database (see its docstring)."""
    env = {
        **os.environ,
        "DJANGO_SETTINGS_MODULE": "market7.settings",
        "M7_TEST_DB_NAME": str(connection.settings_dict["NAME"]),
        "REDIS_URL": django_settings.REDIS_URL,  # the test's Redis, not a second embedded one
        "MARKET7_BOT_CLAIM_LEASE_S": str(LEASE_S),
    }
    return subprocess.Popen(
        [sys.executable, "-m", "tests.trading.recovery_worker", mode, str(bot.pk), feed_now.isoformat()],
        cwd=django_settings.BASE_DIR,
        env=env,
        stdout=subprocess.PIPE,
        text=True,
    )


def _read_line(proc: subprocess.Popen, timeout: float = 60.0) -> str:
    """The next line the worker prints (fails after ``timeout`` seconds or at its exit)."""
    box: list[str] = []
    reader = threading.Thread(target=lambda: box.append(proc.stdout.readline()), daemon=True)
    reader.start()
    reader.join(timeout)
    assert box and box[0], f"worker printed nothing (exit code {proc.poll()})"
    return box[0].strip()


def _take_over(bot: Bot, feed_now, deadline_s: float):
    """Another worker: step the bot every 0.1 s until it is not skipped; returns (report, the
    wall time it got the bot)."""
    end = time.monotonic() + deadline_s
    while True:
        report = bot_step(bot_id=bot.pk, now=feed_now)
        if report.outcome != "skipped" or time.monotonic() > end:
            return report, timezone.now()
        time.sleep(0.1)


@pytest.mark.django_db(transaction=True)
@pytest.mark.timeout(120)
def test_a_worker_killed_inside_its_step_leaves_nothing_and_its_bot_is_taken_over_after_the_lease(
    make_user, candles, no_kick, short_lease
):
    user = make_user("kill", "trader")
    clean = make_replay_bot(user, name="clean")
    bot = make_replay_bot(user, name="killed")
    feed_now = Bot.objects.get(pk=bot.pk).replay_clock_wall + timedelta(seconds=20.5)  # 20 candles
    clean_wall = Bot.objects.get(pk=clean.pk).replay_clock_wall
    assert bot_step(bot_id=clean.pk, now=clean_wall + timedelta(seconds=20.5)).outcome == "stepped"

    proc = _worker("kill", bot, feed_now)
    try:
        assert _read_line(proc) == "inside"  # trades, orders, fills and decisions written, not committed
        killed = Bot.objects.get(pk=bot.pk)
        proc.send_signal(signal.SIGKILL)
        assert proc.wait(10) == -signal.SIGKILL
    finally:
        if proc.poll() is None:
            proc.kill()
    killed_at = timezone.now()

    # the claim is left set, the half-written step is not there
    bot.refresh_from_db()
    assert bot.status == "running" and bot.steps == 0 and bot.state == {}
    assert len(bot.claim_token) == 16 and bot.claim_token == killed.claim_token
    assert bot.claimed_at == killed.claimed_at is not None
    assert counts(bot) == {"orders": 0, "fills": 0, "trades": 0, "events": 0, "balances": 0, "snapshots": 0}
    # while the lease lives nobody else steps it, and the scheduler does not list it
    assert bot_step(bot_id=bot.pk, now=feed_now).outcome == "skipped"
    assert bot.pk not in bots_due()

    report, took_over_at = _take_over(bot, feed_now, deadline_s=LEASE_S + 5)
    lease_end = bot.claimed_at + short_lease  # the dead worker's last renewal + the lease
    assert report.outcome == "stepped" and report.candles == 20
    assert lease_end <= took_over_at <= lease_end + timedelta(seconds=1)
    assert took_over_at - killed_at <= short_lease + timedelta(seconds=1)

    bot.refresh_from_db()
    clean.refresh_from_db()
    assert (bot.steps, bot.claim_token, bot.claimed_at) == (1, "", None)
    assert bot.last_candle_at == REPLAY_START + timedelta(hours=19)
    assert counts(bot) == counts(clean)
    assert (bot.equity, bot.realized_pnl) == (clean.equity, clean.realized_pnl)


@pytest.mark.django_db(transaction=True)
@pytest.mark.timeout(120)
def test_a_worker_that_stalled_past_its_lease_writes_nothing_after_another_took_over(
    make_user, candles, no_kick, short_lease
):
    user = make_user("stall", "trader")
    bot = make_replay_bot(user)
    wall = Bot.objects.get(pk=bot.pk).replay_clock_wall
    # A's feed clock is ahead of B's, so anything A wrote after B would show (more candles)
    proc = _worker("stall", bot, wall + timedelta(seconds=30.5))
    try:
        assert _read_line(proc) == "claimed"
        proc.send_signal(signal.SIGSTOP)  # frozen, heartbeat thread included, before its transaction
        report_b, _ = _take_over(bot, wall + timedelta(seconds=20.5), deadline_s=LEASE_S + 5)
        assert report_b.outcome == "stepped" and report_b.candles == 20
        proc.send_signal(signal.SIGCONT)
        report_a = json.loads(_read_line(proc))
        assert proc.wait(30) == 0
    finally:
        if proc.poll() is None:
            proc.send_signal(signal.SIGCONT)
            proc.kill()
    assert (report_a["outcome"], report_a["message"], report_a["candles"]) == ("skipped", CLAIM_LOST, 0)
    bot.refresh_from_db()
    assert (bot.steps, bot.status, bot.claim_token, bot.claimed_at) == (1, "running", "", None)
    assert bot.last_candle_at == REPLAY_START + timedelta(hours=19)  # B's 20 candles, not A's 30
    assert counts(bot)["orders"] == report_b.orders
    assert counts(bot)["snapshots"] == 20


@pytest.mark.django_db(transaction=True)
@pytest.mark.timeout(60)
def test_the_heartbeat_keeps_a_step_longer_than_the_lease_claimed(make_user, candles, no_kick, short_lease):
    user = make_user("beat", "trader")
    bot = make_replay_bot(user)
    feed_now = Bot.objects.get(pk=bot.pk).replay_clock_wall + timedelta(seconds=5.5)
    real = runner._step_prepare
    beats = []

    claimed, prepared = threading.Event(), threading.Event()

    def slow_prepare(*args, **kwargs):  # e.g. a slow exchange poll: 1.5 leases outside the transaction
        claimed.set()
        time.sleep(LEASE_S * 1.5)
        prepared.set()
        return real(*args, **kwargs)

    real_start = ClaimHeartbeat.start

    def start(self):
        beats.append(self)
        return real_start(self)

    reports = {}

    def worker_a():
        try:
            reports["a"] = bot_step(bot_id=bot.pk, now=feed_now)
        finally:
            connection.close()

    with (
        mock.patch.object(runner, "_step_prepare", slow_prepare),
        mock.patch.object(ClaimHeartbeat, "start", start),
    ):
        a = threading.Thread(target=worker_a)
        a.start()
        assert claimed.wait(10)
        others = []
        while not prepared.is_set():  # other workers, all through A's 3 s outside its transaction
            others.append(bot_step(bot_id=bot.pk, now=feed_now).outcome)
            time.sleep(0.2)
        a.join()
    assert reports["a"].outcome == "stepped" and reports["a"].candles == 5
    assert len(others) >= 10 and set(others) == {"skipped"}  # past the lease, still A's
    assert beats[0].renewals >= 3 and beats[0].lost is False
    assert Bot.objects.get(pk=bot.pk).steps == 1


def test_a_started_worker_kicks_due_bots_now_and_after_one_lease(settings):
    from celery.signals import worker_ready

    from market7.celery import app

    settings.MARKET7_BOT_CLAIM_LEASE_S = 15
    with mock.patch.object(app, "send_task") as send:
        worker_ready.send(sender=None)
    kicks = [(c.args, c.kwargs.get("countdown"), c.kwargs.get("queue")) for c in send.call_args_list]
    assert kicks == [(("trading.tasks.bots_due",), 0.0, "trading"), (("trading.tasks.bots_due",), 16.0, "trading")]


def test_a_step_whose_worker_process_died_is_resent_after_the_lease():
    from trading import tasks

    task = tasks.bot_step
    assert (task.retry_on_worker_lost, task.max_retries, task.default_retry_delay) == (
        True,
        tasks.STEP_LOST_RETRIES,
        django_settings.MARKET7_BOT_CLAIM_LEASE_S + 1,
    )


# --- enqueueing from a request while the broker is down -------------------------------------

CLOSED_BROKER = "redis://127.0.0.1:1/0"  # nothing listens on port 1: connection refused
REFUSED = "Error 111 connecting to 127.0.0.1:1. Connection refused."


def _not_queued(error: str) -> str:
    return (
        f"not queued: the next step could not be queued (task broker unreachable: {error}); "
        "the scheduler runs it when the broker is back"
    )


@contextmanager
def _broker(url: str):
    """Point the Celery app's broker at ``url`` for the block."""
    from market7.celery import app

    before = app.conf.broker_url
    app.conf.broker_url = url
    try:
        yield
    finally:
        app.conf.broker_url = before


@contextmanager
def _hung_broker():
    """A loopback port whose connections are accepted by the kernel (listen backlog) and never
    answered, like a Redis that hangs: only the socket timeouts end a request to it."""
    with socket.socket() as server:
        server.bind(("127.0.0.1", 0))
        server.listen(16)
        yield f"redis://127.0.0.1:{server.getsockname()[1]}/0"


def _paused_bot(user):
    from trading.services import bots as svc

    bot = make_replay_bot(user, start=False)
    with mock.patch("trading.services.runner.bots_kick"), mock.patch("market7.celery.app.send_task"):
        svc.bot_start(user=user, bot=bot)
        svc.bot_pause(user=user, bot=bot)
    return bot


@pytest.mark.django_db(transaction=True)
def test_resume_with_the_broker_down_answers_within_a_second_and_the_bot_says_its_step_was_not_queued(
    make_user, candles
):
    from rest_framework.test import APIClient

    user = make_user("resume", "trader")
    bot = _paused_bot(user)
    api = APIClient()
    api.force_authenticate(user)
    with _broker(CLOSED_BROKER):
        t0 = time.monotonic()
        r = api.post(f"/api/v1/bots/{bot.pk}/resume/")
        elapsed = time.monotonic() - t0
    assert elapsed <= 1.0, f"resume took {elapsed:.2f} s"
    assert r.status_code == 200
    assert (r.json()["status"], r.json()["status_message"]) == ("running", _not_queued(REFUSED))
    bot.refresh_from_db()
    assert (bot.status, bot.status_message) == ("running", _not_queued(REFUSED))
    assert list(BotEvent.objects.filter(bot=bot, kind="error").values_list("rule", "outcome", "reason")) == [
        ("enqueue", "not_queued", _not_queued(REFUSED))
    ]
    # the scheduler still lists it, and its next step clears the message
    wall = bot.replay_clock_wall
    assert bots_due(now=wall + timedelta(seconds=3.5)) == [bot.pk]
    assert bot_step(bot_id=bot.pk, now=wall + timedelta(seconds=3.5)).outcome == "stepped"
    bot.refresh_from_db()
    assert (bot.status, bot.status_message) == ("running", "")


@pytest.mark.django_db(transaction=True)
def test_start_close_and_restart_with_a_hung_broker_answer_within_a_second(make_user, candles):
    from trading.services import bot_closing
    from trading.services import bots as svc

    user = make_user("hung", "trader")
    bot = make_replay_bot(user, start=False)
    with _hung_broker() as url, _broker(url):
        timings = {}
        t0 = time.monotonic()
        svc.bot_start(user=user, bot=bot)
        timings["start"] = time.monotonic() - t0
        t0 = time.monotonic()
        bot_closing.bot_close_all(user=user, bot=bot)
        timings["close_all"] = time.monotonic() - t0
        svc.bot_stop(user=user, bot=bot)
        t0 = time.monotonic()
        svc.bot_restart(user=user, bot=bot)
        timings["restart"] = time.monotonic() - t0
    assert max(timings.values()) <= 1.0, timings
    bot.refresh_from_db()
    assert bot.status == "running"
    reasons = list(BotEvent.objects.filter(bot=bot, kind="error").order_by("pk").values_list("rule", "reason"))
    assert len(reasons) == 3 and {rule for rule, _ in reasons} == {"enqueue"}
    assert all(
        reason.startswith("not queued: the next step could not be queued (task broker unreachable: ")
        for _, reason in reasons
    )
    assert bot.status_message == reasons[-1][1]  # restart cleared the old one, its own failure says so


@pytest.mark.django_db(transaction=True)
def test_a_broker_that_is_up_queues_the_kick_and_leaves_the_bot_alone(make_user, candles):
    from trading.services import bots as svc

    user = make_user("up", "trader")
    bot = _paused_bot(user)
    with mock.patch("market7.celery.app.send_task") as send:
        svc.bot_resume(user=user, bot=bot)
    assert [(c.args[0], c.kwargs["queue"], c.kwargs["retry"]) for c in send.call_args_list] == [
        ("trading.tasks.bots_due", "trading", False)
    ]
    bot.refresh_from_db()
    assert (bot.status, bot.status_message) == ("running", "")
    assert not BotEvent.objects.filter(bot=bot, kind="error").exists()
