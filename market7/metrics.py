"""Prometheus metrics of Market7, and the ``/metrics`` endpoint.

Names, labels, sources and cardinality are documented in ``docs/monitoring/README.md``; the
Grafana dashboard and the alert rules beside it use only the names defined here and those of
django-prometheus (``tests/market7/test_monitoring_docs.py`` checks it).

Two kinds of metric, because gunicorn workers, the Celery worker's pool processes, daphne and
beat are separate processes and a scrape reaches only one gunicorn worker:

- **event metrics** (counters, histograms, the websocket gauge) are counted in the process where
  the event happens and written to prometheus_client's **multiprocess** files under
  ``PROMETHEUS_MULTIPROC_DIR`` (``var/prometheus`` by default, set by settings before
  prometheus_client is imported); the scrape sums every process's file. Bot steps, orders,
  fills, exchange calls and model inference are counted in the Celery worker; HTTP and database
  metrics (django-prometheus) in every process; websocket connections in daphne (``livesum``:
  the files of dead processes are dropped by ``mark_process_dead``).
- **state metrics** are computed at scrape time, so they are right whatever process scrapes:
  bots by status, open deals, equity per bot (from the database) and Celery queue depth (from
  Redis). A source that fails during a scrape sets ``market7_scrape_error{source}`` to 1 and
  its metrics are left out; the scrape itself still answers.

Access (:func:`metrics_view`): loopback requests without proxy headers, unless
``MARKET7_METRICS_TOKEN`` is set, in which case ``Authorization: Bearer <token>`` from anywhere
(401 otherwise). A non-loopback request without a token configured: 403.
"""

from __future__ import annotations

import functools
import hmac
import ipaddress
import logging
import os
import time
from collections.abc import Callable, Iterator
from typing import Any, TypeVar

import prometheus_client
from prometheus_client import CONTENT_TYPE_LATEST, CollectorRegistry, Counter, Gauge, Histogram, generate_latest
from prometheus_client.core import GaugeMetricFamily
from prometheus_client.registry import Collector

log = logging.getLogger(__name__)
T = TypeVar("T")

# Multiprocess mode is chosen by prometheus_client when it is first imported (settings set the
# variable before that); a process that imported it earlier serves its own metrics only.
MULTIPROCESS = prometheus_client.values.ValueClass.__name__ == "MmapedValue"
if os.environ.get("PROMETHEUS_MULTIPROC_DIR") and not MULTIPROCESS:
    log.warning("prometheus_client was imported before PROMETHEUS_MULTIPROC_DIR was set: per-process metrics only")
prometheus_client.disable_created_metrics()  # no *_created series: fewer series, same information

# --- event metrics (multiprocess files) -------------------------------------------------------

BOT_STEP_OUTCOMES = ("stepped", "idle", "skipped", "error", "exception")
BOT_STEPS = Counter(
    "market7_bot_steps", "Bot steps by outcome (stepped, idle, skipped, error; exception: the step raised)", ["outcome"]
)
BOT_STEP_SECONDS = Histogram(
    "market7_bot_step_seconds",
    "Wall time of one bot step (claim, engine, save), seconds",
    buckets=(0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0),
)
ORDERS = Counter("market7_orders", "Orders placed by bots (committed), by mode and exchange", ["mode", "exchange"])
FILLS = Counter(
    "market7_fills", "Fills recorded for bots' orders (committed), by mode and exchange", ["mode", "exchange"]
)
EXCHANGE_SECONDS = Histogram(
    "market7_exchange_request_seconds",
    "Wall time of one exchange API call through trading.exchanges.exchange_call (retries included), seconds",
    ["exchange", "method"],
    buckets=(0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0),
)
EXCHANGE_ERRORS = Counter(
    "market7_exchange_errors",
    "Exchange API calls that failed, by the error raised (ExchangeUnavailable, ExchangeRequestError, ...)",
    ["exchange", "method", "error"],
)
INFERENCE_SECONDS = Histogram(
    "market7_model_inference_seconds",
    "Wall time of one model prediction (a batch of rows), seconds, by model kind",
    ["kind"],
    buckets=(0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 1.0),
)
WEBSOCKETS = Gauge(
    "market7_websocket_connections", "Open live websockets (all daphne processes)", multiprocess_mode="livesum"
)
for _outcome in BOT_STEP_OUTCOMES:  # every outcome is exported from the start, at 0
    BOT_STEPS.labels(_outcome)


def observe_bot_step(func: Callable[..., T]) -> Callable[..., T]:
    """Decorator of ``trading.services.runner.bot_step``: counts the step by its report's
    ``outcome`` (``exception`` when it raised), times it, and tags the log lines written meanwhile
    with the bot id (:func:`market7.logs.log_context`)."""
    from market7.logs import log_context

    @functools.wraps(func)
    def wrapper(*args: Any, **kwargs: Any) -> T:
        started = time.perf_counter()
        outcome = "exception"
        try:
            with log_context(bot_id=kwargs.get("bot_id")):
                report = func(*args, **kwargs)
            outcome = getattr(report, "outcome", "exception")
            return report
        finally:
            BOT_STEP_SECONDS.observe(time.perf_counter() - started)
            BOT_STEPS.labels(outcome if outcome in BOT_STEP_OUTCOMES else "exception").inc()

    return wrapper


def step_trading_observed(*, mode: str, exchange: str, orders: int, fills: int) -> None:
    """Count a committed step's new orders and fills (call it from ``transaction.on_commit``)."""
    if orders:
        ORDERS.labels(mode, exchange).inc(orders)
    if fills:
        FILLS.labels(mode, exchange).inc(fills)


def observe_exchange_call(func: Callable[..., T]) -> Callable[..., T]:
    """Decorator of ``trading.exchanges.exchange_call(code, method, ...)``: its latency by
    exchange and ccxt method name, and its errors by exception class."""

    @functools.wraps(func)
    def wrapper(code: str, method: Callable[..., Any], *args: Any, **kwargs: Any) -> T:
        name = getattr(method, "__name__", "call")
        started = time.perf_counter()
        try:
            return func(code, method, *args, **kwargs)
        except Exception as exc:
            EXCHANGE_ERRORS.labels(code, name, type(exc).__name__).inc()
            raise
        finally:
            EXCHANGE_SECONDS.labels(code, name).observe(time.perf_counter() - started)

    return wrapper


class TimedPredictor:
    """A predictor (``mlops.core.predict.Predictor``) whose ``predict`` is timed into
    ``market7_model_inference_seconds{kind}``; every other attribute is the predictor's."""

    def __init__(self, predictor: Any) -> None:
        self._predictor = predictor

    def predict(self, X: Any) -> Any:
        started = time.perf_counter()
        try:
            return self._predictor.predict(X)
        finally:
            INFERENCE_SECONDS.labels(str(getattr(self._predictor, "kind", "unknown"))).observe(
                time.perf_counter() - started
            )

    def __getattr__(self, name: str) -> Any:
        return getattr(self._predictor, name)


def websocket_opened() -> None:
    WEBSOCKETS.inc()


def websocket_closed() -> None:
    WEBSOCKETS.dec()


def mark_process_dead(pid: int) -> None:
    """Drop the live gauges of a dead process (gunicorn ``child_exit``, Celery pool exit)."""
    if MULTIPROCESS:
        from prometheus_client import multiprocess

        multiprocess.mark_process_dead(pid)


# --- state metrics (computed at scrape time) --------------------------------------------------

CELERY_QUEUES = ("trading", "research", "default")
_KOMBU_PRIORITY_SEP = "\x06\x16"  # kombu's redis transport keeps priority p>0 in "<queue>\x06\x16<p>"
_KOMBU_PRIORITY_STEPS = (0, 3, 6, 9)


def _scrape_error(source: str, failed: bool) -> GaugeMetricFamily:
    g = GaugeMetricFamily("market7_scrape_error", "1 when a scrape-time source failed", labels=["source"])
    g.add_metric([source], 1.0 if failed else 0.0)
    return g


class DatabaseCollector(Collector):
    """Bots by status, open deals by mode, equity per bot (at most ``MARKET7_METRICS_MAX_BOTS``
    running or paused bots, lowest ids first; the rest are counted in
    ``market7_bot_equity_omitted``). Three queries per scrape."""

    def collect(self) -> Iterator[GaugeMetricFamily]:
        from django.conf import settings
        from django.db.models import Count

        from trading.models import Bot, Trade

        try:
            by_status = dict(Bot.objects.order_by().values_list("status").annotate(n=Count("id")))
            deals = dict(
                Trade.objects.filter(status=Trade.Status.OPEN)
                .order_by()
                .values_list("bot__mode")
                .annotate(n=Count("id"))
            )
            active = Bot.objects.filter(status__in=[Bot.Status.RUNNING, Bot.Status.PAUSED], equity__isnull=False)
            limit = settings.MARKET7_METRICS_MAX_BOTS
            equity = list(active.order_by("pk").values_list("pk", "equity")[:limit])
            omitted = max(0, active.count() - len(equity)) if len(equity) == limit else 0
        except Exception as exc:  # a scrape must answer even when the database does not
            log.warning("metrics: database collector failed: %s", exc)
            yield _scrape_error("database", True)
            return
        yield _scrape_error("database", False)
        bots = GaugeMetricFamily("market7_bots", "Bots by status", labels=["status"])
        for status in Bot.Status.values:
            bots.add_metric([status], float(by_status.get(status, 0)))
        yield bots
        open_deals = GaugeMetricFamily("market7_open_deals", "Open deals (trades) by bot mode", labels=["mode"])
        for mode in Bot.Mode.values:
            open_deals.add_metric([mode], float(deals.get(mode, 0)))
        yield open_deals
        eq = GaugeMetricFamily(
            "market7_bot_equity", "Equity of a running or paused bot, quote currency (bounded set)", labels=["bot"]
        )
        for pk, value in equity:
            eq.add_metric([str(pk)], float(value))
        yield eq
        yield GaugeMetricFamily(
            "market7_bot_equity_omitted",
            "Running or paused bots left out of market7_bot_equity by MARKET7_METRICS_MAX_BOTS",
            value=float(omitted),
        )


class RedisCollector(Collector):
    """From Redis in one round trip: messages waiting in each Celery queue (all priority lists;
    tasks a worker has already reserved, including those with a countdown, are not counted),
    Celery workers with a fresh heartbeat, and the time of beat's last tick (``market7.health``)."""

    def collect(self) -> Iterator[GaugeMetricFamily]:
        from django.conf import settings

        from market7 import health

        keys = [
            (queue, queue if pri == 0 else f"{queue}{_KOMBU_PRIORITY_SEP}{pri}")
            for queue in CELERY_QUEUES
            for pri in _KOMBU_PRIORITY_STEPS
        ]
        now = time.time()
        try:
            with health.redis_client() as r:
                pipe = r.pipeline(transaction=False)
                for _queue, key in keys:
                    pipe.llen(key)
                pipe.zcount(health.WORKERS_KEY, now - settings.MARKET7_READY_WORKER_MAX_AGE_S, "+inf")
                pipe.get(health.BEAT_KEY)
                *lengths, workers, beat = pipe.execute()
        except Exception as exc:
            log.warning("metrics: Redis collector failed: %s", exc)
            yield _scrape_error("redis", True)
            return
        yield _scrape_error("redis", False)
        depth = dict.fromkeys(CELERY_QUEUES, 0)
        for (queue, _key), n in zip(keys, lengths, strict=True):
            depth[queue] += int(n)
        g = GaugeMetricFamily("market7_celery_queue_length", "Messages waiting in a Celery queue", labels=["queue"])
        for queue in CELERY_QUEUES:
            g.add_metric([queue], float(depth[queue]))
        yield g
        yield GaugeMetricFamily(
            "market7_celery_workers",
            "Celery workers whose heartbeat is younger than MARKET7_READY_WORKER_MAX_AGE_S",
            value=float(workers),
        )
        if beat is not None:
            yield GaugeMetricFamily(
                "market7_beat_last_tick_timestamp_seconds", "Unix time of beat's last tick", value=float(beat)
            )


class _DefaultRegistry(Collector):
    """This process's own metrics (when not in multiprocess mode)."""

    def collect(self):
        yield from prometheus_client.REGISTRY.collect()


def render() -> bytes:
    """The exposition text of every metric: all processes' event metrics plus the state metrics."""
    registry = CollectorRegistry(auto_describe=False)
    if MULTIPROCESS:
        from prometheus_client import multiprocess

        multiprocess.MultiProcessCollector(registry)
    else:
        registry.register(_DefaultRegistry())
    registry.register(DatabaseCollector())
    registry.register(RedisCollector())
    return generate_latest(registry)


# --- the endpoint ----------------------------------------------------------------------------

_PROXY_HEADERS = ("HTTP_X_FORWARDED_FOR", "HTTP_X_REAL_IP", "HTTP_FORWARDED")


def _is_loopback(request) -> bool:
    """A request from this host that no proxy forwarded (nginx on the same host connects from
    127.0.0.1 for every client, but adds X-Forwarded-For)."""
    if any(request.META.get(h) for h in _PROXY_HEADERS):
        return False
    try:
        return ipaddress.ip_address(request.META.get("REMOTE_ADDR", "")).is_loopback
    except ValueError:
        return False


def metrics_access(request) -> int | None:
    """None when ``request`` may read the metrics, else the HTTP status to answer (401/403)."""
    from django.conf import settings

    token = settings.MARKET7_METRICS_TOKEN
    if token:
        header = request.META.get("HTTP_AUTHORIZATION", "")
        scheme, _, given = header.partition(" ")
        if scheme.lower() == "bearer" and hmac.compare_digest(given.strip().encode(), token.encode()):
            return None
        return 401
    return None if _is_loopback(request) else 403


def metrics_view(request):
    """``GET /metrics``: Prometheus text format (see the module doc for who may read it)."""
    from django.http import HttpResponse

    if request.method not in ("GET", "HEAD"):
        return HttpResponse(status=405, headers={"Allow": "GET, HEAD"})
    denied = metrics_access(request)
    if denied == 401:
        return HttpResponse(
            "a bearer token is required\n",
            status=401,
            content_type="text/plain",
            headers={"WWW-Authenticate": "Bearer"},
        )
    if denied == 403:
        return HttpResponse(
            "metrics are served to loopback only; set MARKET7_METRICS_TOKEN\n", status=403, content_type="text/plain"
        )
    return HttpResponse(render(), content_type=CONTENT_TYPE_LATEST)
