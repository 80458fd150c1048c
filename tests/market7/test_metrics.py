"""/metrics: exact increments after bot steps, exchange calls and inference; scrape-time gauges
from the database and Redis; django-prometheus HTTP and database metrics; who may scrape."""

from __future__ import annotations

import socket
from decimal import Decimal

import ccxt
import numpy as np
import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext
from prometheus_client.parser import text_string_to_metric_families

from market7 import metrics
from market7.celery import TaskQueue
from tests.trading.conftest import counts, load_bundled, make_replay_bot, step_at
from trading.models import Bot, Trade

pytestmark = pytest.mark.django_db

LOOPBACK = {"REMOTE_ADDR": "127.0.0.1"}


@pytest.fixture
def replay_candles(db):
    """BTC/USDT and ETH/USDT 1h real Binance candles, as the runner tests use."""
    return [load_bundled("BTCUSDT-1h.csv.gz"), load_bundled("ETHUSDT-1h.csv.gz")]


def parse(text: str) -> dict[tuple[str, tuple], float]:
    """``{(sample name, sorted label pairs): value}`` of an exposition text."""
    return {
        (s.name, tuple(sorted(s.labels.items()))): s.value
        for family in text_string_to_metric_families(text)
        for s in family.samples
    }


def scrape(client, **extra) -> dict[tuple[str, tuple], float]:
    response = client.get("/metrics", **{**LOOPBACK, **extra})
    assert response.status_code == 200, response.content
    assert response["Content-Type"] == "text/plain; version=1.0.0; charset=utf-8"
    return parse(response.content.decode())


def value(samples, name: str, **labels) -> float:
    return samples.get((name, tuple(sorted(labels.items()))), 0.0)


def delta(after, before, name: str, **labels) -> float:
    return value(after, name, **labels) - value(before, name, **labels)


# --- bot steps --------------------------------------------------------------------------------


def test_scrape_after_bot_steps_shows_exact_increments_and_database_gauges(
    user,
    replay_candles,
    client,
    django_capture_on_commit_callbacks,
):
    assert metrics.MULTIPROCESS  # settings set PROMETHEUS_MULTIPROC_DIR before prometheus_client loaded
    bot = make_replay_bot(user)
    rows_before = counts(bot)
    before = scrape(client)
    with django_capture_on_commit_callbacks(execute=True):
        report = step_at(bot, 72)  # three market days at 3600x
    rows = counts(bot)
    assert report.outcome == "stepped"
    assert report.orders > 0 and report.fills > 0
    after = scrape(client)

    assert delta(after, before, "market7_bot_steps_total", outcome="stepped") == 1
    for outcome in ("idle", "skipped", "error", "exception"):
        assert delta(after, before, "market7_bot_steps_total", outcome=outcome) == 0
    assert delta(after, before, "market7_bot_step_seconds_count") == 1
    new_orders = rows["orders"] - rows_before["orders"]
    new_fills = rows["fills"] - rows_before["fills"]
    assert new_orders > 0 and new_fills > 0
    assert delta(after, before, "market7_orders_total", mode="paper", exchange="binance") == new_orders
    assert delta(after, before, "market7_fills_total", mode="paper", exchange="binance") == new_fills

    bot.refresh_from_db()
    open_deals = Trade.objects.filter(bot=bot, status="open").count()
    assert value(after, "market7_bots", status="running") == 1
    assert value(after, "market7_bots", status="stopped") == 0
    assert value(after, "market7_open_deals", mode="paper") == open_deals
    assert value(after, "market7_open_deals", mode="live") == 0
    assert value(after, "market7_bot_equity", bot=str(bot.pk)) == float(bot.equity)
    assert value(after, "market7_bot_equity_omitted") == 0
    assert value(after, "market7_scrape_error", source="database") == 0

    # the same wall time again: nothing new, an idle step, no order counted
    with django_capture_on_commit_callbacks(execute=True):
        assert step_at(bot, 72).outcome == "idle"
    again = scrape(client)
    assert delta(again, after, "market7_bot_steps_total", outcome="idle") == 1
    assert delta(again, after, "market7_bot_steps_total", outcome="stepped") == 0
    assert delta(again, after, "market7_orders_total", mode="paper", exchange="binance") == 0
    assert delta(again, after, "market7_bot_step_seconds_count") == 1


def test_a_failing_step_counts_as_error_and_orders_of_a_rolled_back_step_are_not_counted(
    user,
    replay_candles,
    client,
    django_capture_on_commit_callbacks,
):
    bot = make_replay_bot(user)
    Bot.objects.filter(pk=bot.pk).update(state={"not": "an engine state"})
    before = scrape(client)
    with django_capture_on_commit_callbacks(execute=True):
        report = step_at(bot, 72)
    after = scrape(client)
    assert report.outcome == "error"
    assert delta(after, before, "market7_bot_steps_total", outcome="error") == 1
    assert delta(after, before, "market7_bot_steps_total", outcome="stepped") == 0
    assert delta(after, before, "market7_orders_total", mode="paper", exchange="binance") == 0
    assert value(after, "market7_bots", status="error") == 1


def test_equity_per_bot_is_bounded_by_max_bots(user, replay_candles, client, settings):
    settings.MARKET7_METRICS_MAX_BOTS = 2
    bots = [make_replay_bot(user, name=f"b{i}") for i in range(3)]
    for i, bot in enumerate(bots):
        Bot.objects.filter(pk=bot.pk).update(equity=Decimal("1000.5") + i)
    stopped = make_replay_bot(user, name="off", start=False)
    Bot.objects.filter(pk=stopped.pk).update(equity=Decimal("7"))
    samples = scrape(client)
    equity = {dict(labels)["bot"]: v for (name, labels), v in samples.items() if name == "market7_bot_equity"}
    assert equity == {str(bots[0].pk): 1000.5, str(bots[1].pk): 1001.5}
    assert value(samples, "market7_bot_equity_omitted") == 1
    assert value(samples, "market7_bots", status="running") == 3
    assert value(samples, "market7_bots", status="created") == 1


# --- Celery queues ----------------------------------------------------------------------------


def test_celery_queues_are_the_apps_queues():
    assert set(metrics.CELERY_QUEUES) == {q.value for q in TaskQueue}


def test_queue_depth_counts_real_celery_messages_of_every_priority(client, monkeypatch):
    from market7.celery import app
    from market7.health import redis_client

    queue = "m7-test-metrics-queue"
    monkeypatch.setattr(metrics, "CELERY_QUEUES", (queue,))
    with redis_client() as r:
        r.delete(*[queue] + [f"{queue}\x06\x16{p}" for p in (3, 6, 9)])
        try:
            assert value(scrape(client), "market7_celery_queue_length", queue=queue) == 0
            app.send_task("market7.ping", queue=queue)
            app.send_task("market7.ping", queue=queue)
            app.send_task("market7.ping", queue=queue, priority=9)
            assert r.llen(f"{queue}\x06\x169") == 1  # kombu kept the priority message apart
            samples = scrape(client)
            assert value(samples, "market7_celery_queue_length", queue=queue) == 3
            assert value(samples, "market7_scrape_error", source="redis") == 0
        finally:
            r.delete(*[queue] + [f"{queue}\x06\x16{p}" for p in (3, 6, 9)])


def _closed_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def test_redis_down_leaves_out_queue_depth_but_the_scrape_answers(client, settings):
    settings.REDIS_URL = f"redis://127.0.0.1:{_closed_port()}/0"
    samples = scrape(client)
    assert value(samples, "market7_scrape_error", source="redis") == 1
    assert [k for k in samples if k[0] == "market7_celery_queue_length"] == []
    assert value(samples, "market7_scrape_error", source="database") == 0


# --- exchange calls and inference -------------------------------------------------------------


def test_exchange_calls_are_timed_and_errors_counted_by_class(client):
    from trading.exchanges import ExchangeRequestError, ExchangeUnavailable, exchange_call

    def fetch_ticker(symbol):
        return {"symbol": symbol}

    def create_order(*_args):
        raise ccxt.NetworkError("connection refused")

    def cancel_order(*_args):
        raise ccxt.BadRequest("unknown order")

    before = scrape(client)
    assert exchange_call("binance", fetch_ticker, "BTC/USDT") == {"symbol": "BTC/USDT"}
    with pytest.raises(ExchangeUnavailable):
        exchange_call("binance", create_order)
    with pytest.raises(ExchangeRequestError):
        exchange_call("binance", cancel_order)
    after = scrape(client)
    seconds = "market7_exchange_request_seconds_count"
    assert delta(after, before, seconds, exchange="binance", method="fetch_ticker") == 1
    assert delta(after, before, seconds, exchange="binance", method="create_order") == 1
    assert delta(after, before, seconds, exchange="binance", method="cancel_order") == 1
    errors = "market7_exchange_errors_total"
    assert delta(after, before, errors, exchange="binance", method="fetch_ticker", error="ExchangeUnavailable") == 0
    assert delta(after, before, errors, exchange="binance", method="create_order", error="ExchangeUnavailable") == 1
    assert delta(after, before, errors, exchange="binance", method="cancel_order", error="ExchangeRequestError") == 1


def test_model_inference_is_timed_by_kind(client, tmp_path):
    import xgboost as xgb

    from mlops.core.artifacts import save_booster
    from mlops.core.predict import Predictor

    rng = np.random.default_rng(7)
    X = rng.normal(size=(200, 2)).astype(np.float32)
    y = (X[:, 0] > 0).astype(int)
    model = xgb.XGBClassifier(n_estimators=3, max_depth=2).fit(X, y)
    path, sha = save_booster(model, tmp_path, "m")
    inner = Predictor(path, sha, ("a", "b"), "success")
    timed = metrics.TimedPredictor(inner)
    before = scrape(client)
    assert timed.predict(X[:5]).tolist() == inner.predict(X[:5]).tolist()
    assert timed.feature_names == ("a", "b") and timed.is_classifier
    after = scrape(client)
    assert delta(after, before, "market7_model_inference_seconds_count", kind="success") == 1


def test_served_models_are_timed(db, tmp_path, settings):
    """The serving cache hands out timed predictors."""
    import xgboost as xgb

    from mlops.core.artifacts import save_booster
    from mlops.services.serving import predictor_cached

    X = np.array([[0.0, 1.0], [1.0, 0.0]] * 10, dtype=np.float32)
    model = xgb.XGBClassifier(n_estimators=2, max_depth=1).fit(X, [0, 1] * 10)
    settings.MARKET7_MODELS_DIR = tmp_path
    path, sha = save_booster(model, tmp_path, "served")

    class Version:  # the three fields predictor_cached reads of a ModelVersion
        artifact_path, artifact_sha256, features, kind = path.name, sha, ["a", "b"], "success"

    assert isinstance(predictor_cached(Version), metrics.TimedPredictor)


# --- django-prometheus ------------------------------------------------------------------------


def test_http_and_database_metrics_of_django_prometheus(client):
    vendor = connection.vendor
    with CaptureQueriesContext(connection) as collector:  # the queries of the scrape's database gauges
        list(metrics.DatabaseCollector().collect())
    assert len(collector.captured_queries) == 3
    before = scrape(client)
    client.get("/health", **LOOPBACK)
    with connection.cursor() as cursor:
        for _ in range(3):
            cursor.execute("SELECT 1")
    after = scrape(client)
    # the scrape's own database gauges run after it read the counters: they show in the next one
    executed = delta(after, before, "django_db_execute_total", alias="default", vendor=vendor)
    assert executed == 3 + 3
    assert delta(after, before, "django_http_requests_total_by_method_total", method="GET") == 2  # /health + scrape
    assert (
        delta(after, before, "django_http_responses_total_by_status_view_method_total", status="200", view="health", method="GET")
        == 1
    )  # fmt: skip
    assert value(after, "django_http_requests_latency_seconds_by_view_method_count", view="health", method="GET") >= 1


# --- access -----------------------------------------------------------------------------------


def test_without_a_token_only_unproxied_loopback_may_scrape(client, settings):
    settings.MARKET7_METRICS_TOKEN = None
    assert client.get("/metrics", REMOTE_ADDR="127.0.0.1").status_code == 200
    assert client.get("/metrics", REMOTE_ADDR="::1").status_code == 200
    for extra in (
        {"REMOTE_ADDR": "10.0.0.5"},
        {"REMOTE_ADDR": "192.168.1.20", "HTTP_AUTHORIZATION": "Bearer anything"},
        {"REMOTE_ADDR": "127.0.0.1", "HTTP_X_FORWARDED_FOR": "203.0.113.9"},  # nginx on the same host
        {"REMOTE_ADDR": "127.0.0.1", "HTTP_X_REAL_IP": "203.0.113.9"},
    ):
        response = client.get("/metrics", **extra)
        assert response.status_code == 403, extra
        assert b"market7_" not in response.content
    assert client.post("/metrics", **LOOPBACK).status_code == 405


def test_with_a_token_a_bearer_header_is_required_from_everywhere(client, settings):
    settings.MARKET7_METRICS_TOKEN = "s3cret-token"
    for extra in (
        {"REMOTE_ADDR": "127.0.0.1"},
        {"REMOTE_ADDR": "10.0.0.5"},
        {"REMOTE_ADDR": "10.0.0.5", "HTTP_AUTHORIZATION": "Bearer wrong"},
        {"REMOTE_ADDR": "10.0.0.5", "HTTP_AUTHORIZATION": "Token s3cret-token"},
        {"REMOTE_ADDR": "10.0.0.5", "HTTP_AUTHORIZATION": "Bearer s3cret-token-and-more"},
    ):
        response = client.get("/metrics", **extra)
        assert response.status_code == 401, extra
        assert response["WWW-Authenticate"] == "Bearer"
        assert b"market7_" not in response.content
    ok = client.get("/metrics", REMOTE_ADDR="10.0.0.5", HTTP_AUTHORIZATION="Bearer s3cret-token")
    assert ok.status_code == 200
    assert b"market7_bot_steps_total" in ok.content


# --- websockets -------------------------------------------------------------------------------


@pytest.mark.django_db(transaction=True)
async def test_websocket_connections_gauge_follows_open_live_sockets(make_user):
    from asgiref.sync import sync_to_async
    from django.db import connections

    from tests.conftest import ws_connect

    def gauge() -> float:
        try:
            return value(parse(metrics.render().decode()), "market7_websocket_connections")
        finally:
            connections.close_all()

    def login(client, u):
        def run():
            try:
                client.force_login(u)
            finally:
                connections.close_all()

        return sync_to_async(run)()

    user = await sync_to_async(make_user)("ws-metrics")
    start = await sync_to_async(gauge)()
    first = await ws_connect(user, login=login)
    second = await ws_connect(user, login=login)
    assert await sync_to_async(gauge)() == start + 2
    await first.disconnect()
    assert await sync_to_async(gauge)() == start + 1
    await second.disconnect()
    assert await sync_to_async(gauge)() == start


def test_counters_of_another_process_show_in_this_process_scrape(client):
    """A Celery worker or gunicorn worker is another process: its counts reach the scrape
    through the multiprocess files (same PROMETHEUS_MULTIPROC_DIR)."""
    import os
    import subprocess
    import sys
    from pathlib import Path

    code = (
        "import django; django.setup()\n"
        "from trading.exchanges import exchange_call\n"
        "def fetch_status():\n    return 'ok'\n"
        "for _ in range(3):\n    exchange_call('kraken', fetch_status)\n"
    )
    before = scrape(client)
    proc = subprocess.run(
        [sys.executable, "-c", code],
        cwd=Path(__file__).resolve().parents[2],
        env={**os.environ, "DJANGO_SETTINGS_MODULE": "market7.settings"},
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert proc.returncode == 0, proc.stderr
    after = scrape(client)
    name = "market7_exchange_request_seconds_count"
    assert delta(after, before, name, exchange="kraken", method="fetch_status") == 3
