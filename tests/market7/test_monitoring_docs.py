"""docs/monitoring/: the Grafana dashboard and the alert rules use only metric names Market7
exports, and every market7_* metric is documented."""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest
import yaml
from prometheus_client.parser import text_string_to_metric_families

DOCS = Path(__file__).resolve().parents[2] / "docs" / "monitoring"
PROMETHEUS_OWN = {"up"}  # set by Prometheus itself for every target
# PromQL words that look like identifiers: aggregations, functions, keywords, grouping clauses
_STRINGS = re.compile(r'"(?:[^"\\]|\\.)*"|\'(?:[^\'\\]|\\.)*\'')
_MATCHERS = re.compile(r"\{[^}]*\}")
_RANGES = re.compile(r"\[[^\]]*\]")
_GROUPING = re.compile(r"\b(?:by|without|on|ignoring|group_left|group_right)\s*\([^)]*\)")
_IDENT = re.compile(r"(?<![\w.])([a-zA-Z_:][a-zA-Z0-9_:]*)\b(?!\s*\()")
_KEYWORDS = {"and", "or", "unless", "bool", "offset", "inf", "nan"}


def promql_metric_names(expr: str) -> set[str]:
    """Metric names an expression selects (functions, keywords, labels and numbers left out)."""
    text = _STRINGS.sub(" ", expr)
    text = _MATCHERS.sub(" ", text)
    text = _RANGES.sub(" ", text)
    text = _GROUPING.sub(" ", text)
    return {name for name in _IDENT.findall(text) if name.lower() not in _KEYWORDS}


def test_promql_name_extraction():
    expr = (
        "histogram_quantile(0.95, sum by (le, view) (rate(django_http_requests_latency_seconds_by_view_method_bucket"
        '{status=~"5..", view!="x"}[5m]))) > 2 and on (job) up == 0 or time() - market7_beat_last_tick_timestamp_seconds'
    )
    assert promql_metric_names(expr) == {
        "django_http_requests_latency_seconds_by_view_method_bucket",
        "up",
        "market7_beat_last_tick_timestamp_seconds",
    }


def _dashboard_exprs() -> list[str]:
    dash = json.loads((DOCS / "grafana-dashboard.json").read_text())
    return [t["expr"] for panel in dash["panels"] for t in panel["targets"]]


def _alert_exprs() -> list[str]:
    rules = yaml.safe_load((DOCS / "alerts.yml").read_text())
    return [rule["expr"] for group in rules["groups"] for rule in group["rules"]]


@pytest.fixture
def exported(db, client, user, monkeypatch) -> set[str]:
    """Every sample name /metrics can serve: those of a real scrape after a request with a
    running bot and a beat tick (series that exist only then), plus every series of the django_*
    and market7_* event metrics registered (labelled ones have no sample until something happens)."""
    import prometheus_client

    from market7 import (
        health,
        metrics,  # noqa: F401 (registers the event metrics)
    )
    from tests.trading.conftest import load_bundled, make_replay_bot
    from trading.models import Bot

    load_bundled("BTCUSDT-1h.csv.gz")
    bot = make_replay_bot(user, markets=("BTC/USDT",))
    Bot.objects.filter(pk=bot.pk).update(equity="1000")
    monkeypatch.setattr(health, "BEAT_KEY", "m7:test:docs:beat")
    health.beat_heartbeat()
    client.get("/health")
    text = client.get("/metrics", REMOTE_ADDR="127.0.0.1").content.decode()
    names = {s.name for family in text_string_to_metric_families(text) for s in family.samples}
    registered = {
        n
        for n in prometheus_client.REGISTRY._names_to_collectors
        if n.startswith(("django_", "market7_")) and not n.endswith("_created") and "migrations" not in n
    }
    with health.redis_client() as r:
        r.delete(health.BEAT_KEY)
    return names | registered


def test_dashboard_queries_use_only_exported_metrics(exported):
    exprs = _dashboard_exprs()
    assert len(exprs) >= 20
    used = set().union(*(promql_metric_names(e) for e in exprs))
    assert used - exported - PROMETHEUS_OWN == set()
    # the dashboard shows each of our metric families
    for family in (
        "market7_bot_steps_total",
        "market7_bot_step_seconds_bucket",
        "market7_orders_total",
        "market7_fills_total",
        "market7_open_deals",
        "market7_bot_equity",
        "market7_websocket_connections",
        "market7_celery_queue_length",
        "market7_exchange_request_seconds_bucket",
        "market7_exchange_errors_total",
        "market7_model_inference_seconds_bucket",
        "django_http_responses_total_by_status_view_method_total",
        "django_db_execute_total",
    ):
        assert family in used, family


def test_alert_rules_use_only_exported_metrics(exported):
    rules = yaml.safe_load((DOCS / "alerts.yml").read_text())
    names = [rule["alert"] for group in rules["groups"] for rule in group["rules"]]
    assert {"Market7Down", "Market7HighErrorRate", "Market7BotErrors", "Market7BeatStale"} <= set(names)
    assert "Market7StepLatencyHigh" in names
    used = set().union(*(promql_metric_names(e) for e in _alert_exprs()))
    assert used - exported - PROMETHEUS_OWN == set()


def test_every_market7_metric_is_documented(exported):
    readme = (DOCS / "README.md").read_text()
    families = {re.sub(r"_(total|bucket|count|sum)$", "", n) for n in exported if n.startswith("market7_")}
    assert families, "no market7 metric found"
    assert sorted(f for f in families if f"`{f}" not in readme) == []
