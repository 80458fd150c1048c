"""Real services: the embedded Redis launcher, a Celery round-trip through the real broker,
and a websocket round-trip through the real Redis channel layer."""

import os
import signal
import subprocess
import sys
import time

import pytest
import redis
from asgiref.sync import sync_to_async
from channels.testing import WebsocketCommunicator
from django.conf import settings

from market7 import embedded_redis
from market7.events import send_now
from tests.conftest import require, ws_connect


def test_embedded_redis_starts_answers_and_stops(tmp_path):
    server = embedded_redis.start(tmp_path)
    try:
        client = redis.Redis.from_url(server.url)
        assert client.ping() is True
        client.set("m7:probe", "42")
        assert client.get("m7:probe") == b"42"
        assert embedded_redis.running(tmp_path) == server
        assert (tmp_path / "redis.url").read_text() == server.url
    finally:
        server.stop()
    assert not embedded_redis._pid_alive(server.pid)
    assert embedded_redis.running(tmp_path) is None
    assert not (tmp_path / "redis.url").exists()


def test_run_with_redis_exports_url_and_stops_the_server(tmp_path):
    env = {k: v for k, v in os.environ.items() if k != "REDIS_URL"}
    code = "import os, redis, sys; url = os.environ['REDIS_URL']; assert redis.Redis.from_url(url).ping(); print(url)"
    script = (
        "import sys; from market7 import embedded_redis; "
        f"sys.exit(embedded_redis.run_with_redis([sys.executable, '-c', {code!r}], directory={str(tmp_path)!r}))"
    )
    result = subprocess.run([sys.executable, "-c", script], env=env, capture_output=True, text=True, timeout=60)
    assert result.returncode == 0, result.stderr
    url = [line for line in result.stdout.splitlines() if line.startswith("redis://127.0.0.1:")]
    assert len(url) == 1
    port = int(url[0].rsplit(":", 1)[1].split("/")[0])
    assert "embedded redis-server stopped" in result.stdout
    assert embedded_redis._ping(port) is False


def test_run_with_redis_stops_server_on_sigterm(tmp_path):
    env = {k: v for k, v in os.environ.items() if k != "REDIS_URL"}
    script = (
        "import sys; from market7 import embedded_redis; "
        f"sys.exit(embedded_redis.run_with_redis([sys.executable, '-c', 'import time; time.sleep(60)'], directory={str(tmp_path)!r}))"
    )
    proc = subprocess.Popen([sys.executable, "-c", script], env=env, stdout=subprocess.PIPE, text=True)
    deadline = time.monotonic() + 20
    while not (tmp_path / "redis.pid").exists() and time.monotonic() < deadline:
        time.sleep(0.05)
    pid = int((tmp_path / "redis.pid").read_text())
    proc.send_signal(signal.SIGTERM)
    proc.wait(timeout=15)
    assert not embedded_redis._pid_alive(pid)


def test_settings_use_one_redis_for_broker_channels_and_cache():
    assert settings.CELERY_BROKER_URL == settings.REDIS_URL
    assert settings.CELERY_RESULT_BACKEND == settings.REDIS_URL
    assert settings.CHANNEL_LAYERS["default"]["BACKEND"] == "channels_redis.pubsub.RedisPubSubChannelLayer"
    (host,) = settings.CHANNEL_LAYERS["default"]["CONFIG"]["hosts"]
    assert host == {"address": settings.REDIS_URL, "max_connections": 1000}
    assert settings.CACHES["default"]["LOCATION"] == settings.REDIS_URL
    require(redis.Redis.from_url(settings.REDIS_URL).ping(), f"Redis at {settings.REDIS_URL}")


def test_cache_round_trip_on_real_redis():
    from django.core.cache import cache

    cache.set("probe", {"a": 1}, 30)
    assert cache.get("probe") == {"a": 1}


@pytest.mark.django_db
def test_celery_task_round_trip_through_real_broker(celery_session_worker_real):
    from market7.celery import ping

    result = ping.apply_async(args=["hello-broker"], queue="research")
    assert result.get(timeout=30) == "hello-broker"
    assert result.status == "SUCCESS"


@pytest.mark.django_db(transaction=True)
async def test_websocket_round_trip_through_redis_channel_layer(make_user):
    user = await sync_to_async(make_user)("wsuser", "trader")
    other = await sync_to_async(make_user)("wsother", "trader")
    ws = await ws_connect(user)  # a real session cookie, as a browser
    await sync_to_async(send_now)(other.pk, "pnl", {"equity": "1.00"})
    await sync_to_async(send_now)(user.pk, "pnl", {"equity": "1001.50"})
    message = await ws.receive_json_from(timeout=5)
    assert message == {"event": "pnl", "data": {"equity": "1001.50"}}
    assert await ws.receive_nothing(timeout=0.3)
    await ws.disconnect()


@pytest.mark.django_db(transaction=True)
async def test_websocket_refuses_anonymous():
    from market7.asgi import application

    ws = WebsocketCommunicator(application, "/ws/live/", headers=[(b"origin", b"http://127.0.0.1")])
    connected, _ = await ws.connect()
    # accepted, then closed with the documented code so that the browser sees it (docs/bots.md)
    assert connected is True
    message = await ws.receive_output(timeout=5)
    assert (message["type"], message["code"]) == ("websocket.close", 4401)
