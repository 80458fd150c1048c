"""Structured logs: LOG_FORMAT=json, request ids through the middleware, bot ids in bot steps."""

from __future__ import annotations

import io
import json
import logging
import os
import subprocess
import sys
from pathlib import Path

import pytest

from market7.logs import ContextFilter, JsonFormatter, log_context
from tests.trading.conftest import load_bundled, make_replay_bot, step_at
from trading.models import Bot

ROOT = Path(__file__).resolve().parents[2]
BASE_KEYS = {"time", "level", "logger", "message", "process", "thread"}


@pytest.fixture
def json_lines():
    """Attach a JSON handler (as settings configure it) to a logger; returns a reader of its lines."""
    attached = []

    def attach(name: str):
        stream = io.StringIO()
        handler = logging.StreamHandler(stream)
        handler.addFilter(ContextFilter())
        handler.setFormatter(JsonFormatter())
        logger = logging.getLogger(name)
        logger.addHandler(handler)
        attached.append((logger, handler))
        return lambda: [json.loads(line) for line in stream.getvalue().splitlines()]

    yield attach
    for logger, handler in attached:
        logger.removeHandler(handler)


def test_json_lines_carry_request_and_bot_ids_only_when_known(json_lines):
    read = json_lines("m7.test.logs")
    log = logging.getLogger("m7.test.logs")
    log.warning("plain %s", "line")
    with log_context(bot_id=7, request_id="req-1"):
        log.warning("inside")
        with log_context(bot_id=8):
            log.warning("nested")
    try:
        raise ValueError("boom")
    except ValueError:
        log.exception("failed")
    first, inside, nested, failed = read()
    assert set(first) == BASE_KEYS
    assert (first["level"], first["logger"], first["message"]) == ("WARNING", "m7.test.logs", "plain line")
    assert first["time"].endswith("+00:00") and len(first["time"]) == len("2025-01-01T00:00:00.000+00:00")
    assert set(inside) == BASE_KEYS | {"request_id", "bot_id"}
    assert (inside["request_id"], inside["bot_id"]) == ("req-1", 7)
    assert (nested["request_id"], nested["bot_id"]) == ("req-1", 8)
    assert set(failed) == BASE_KEYS | {"exc_info"}
    assert failed["exc_info"].splitlines()[-1] == "ValueError: boom"


@pytest.mark.django_db
def test_requests_get_an_id_in_the_response_and_in_their_log_lines(client, settings, json_lines):
    read = json_lines("market7.health")
    response = client.get("/health", HTTP_X_REQUEST_ID="lb-42.a_b")
    assert response["X-Request-ID"] == "lb-42.a_b"
    for bad in ("has space", "x" * 65, "évil"):
        generated = client.get("/health", HTTP_X_REQUEST_ID=bad)["X-Request-ID"]
        assert len(generated) == 32 and int(generated, 16) >= 0
    assert client.get("/health")["X-Request-ID"] != client.get("/health")["X-Request-ID"]

    settings.REDIS_URL = "redis://127.0.0.1:9/0"  # nothing listens on the discard port: /ready logs the failure
    response = client.get("/ready", HTTP_X_REQUEST_ID="ready-1")
    assert response.status_code == 503
    lines = read()
    assert lines and {line["request_id"] for line in lines} == {"ready-1"}
    assert lines[0]["message"].startswith("ready: redis check failed")


@pytest.mark.django_db
def test_a_bot_steps_log_lines_carry_its_bot_id(user, json_lines):
    load_bundled("BTCUSDT-1h.csv.gz")
    read = json_lines("trading.services.runner")
    bot = make_replay_bot(user, markets=("BTC/USDT",))
    Bot.objects.filter(pk=bot.pk).update(state={"not": "an engine state"})
    assert step_at(bot, 5).outcome == "error"
    lines = read()
    assert [(line["bot_id"], line["level"]) for line in lines] == [(bot.pk, "WARNING")]
    assert lines[0]["message"].startswith(f"bot {bot.pk} step failed")
    assert "request_id" not in lines[0]


def _run(env_extra: dict[str, str]) -> subprocess.CompletedProcess:
    code = "import django, logging; django.setup(); logging.getLogger('m7.demo').warning('hello %s', 1)"
    env = {**os.environ, **env_extra}
    return subprocess.run([sys.executable, "-c", code], cwd=ROOT, env=env, capture_output=True, text=True)


def test_log_format_json_from_the_environment():
    proc = _run({"LOG_FORMAT": "json"})
    assert proc.returncode == 0, proc.stderr
    line = json.loads(proc.stderr.strip().splitlines()[-1])
    assert set(line) == BASE_KEYS
    assert (line["level"], line["logger"], line["message"]) == ("WARNING", "m7.demo", "hello 1")
    plain = _run({"LOG_FORMAT": "plain"})
    assert plain.stderr.strip().splitlines()[-1].endswith(" WARNING m7.demo: hello 1")
    bad = _run({"LOG_FORMAT": "xml"})
    assert bad.returncode == 1
    assert "ImproperlyConfigured: LOG_FORMAT='xml' is not one of plain, json" in bad.stderr
