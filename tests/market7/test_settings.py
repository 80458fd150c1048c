"""Settings helpers fail loudly, naming the variable; defaults are the embedded ones."""

import subprocess
import sys

import pytest
from django.core.exceptions import ImproperlyConfigured

from market7.channel_layers import channel_layer_config
from market7.env import env_bool, env_choice, env_db_url, env_int, env_list, env_redis_url, env_timezone


def test_env_bool_accepts_the_documented_spellings():
    assert env_bool("DEBUG", False, environ_={"DEBUG": "yes"}) is True
    assert env_bool("DEBUG", True, environ_={"DEBUG": "OFF"}) is False
    assert env_bool("DEBUG", True, environ_={}) is True


def test_env_bool_rejects_anything_else_naming_the_variable():
    with pytest.raises(ImproperlyConfigured, match=r"DEBUG='maybe' is not a boolean"):
        env_bool("DEBUG", False, environ_={"DEBUG": "maybe"})


def test_env_int_bad_value_and_range():
    assert env_int("PORT", 8000, environ_={}) == 8000
    assert env_int("PORT", 8000, environ_={"PORT": "9001"}) == 9001
    with pytest.raises(ImproperlyConfigured, match=r"PORT='80a' is not an integer"):
        env_int("PORT", 8000, environ_={"PORT": "80a"})
    with pytest.raises(ImproperlyConfigured, match=r"PORT=70000 is above the maximum 65535"):
        env_int("PORT", 8000, max_value=65535, environ_={"PORT": "70000"})


def test_env_choice_default_value_and_refusal():
    kinds = ("pubsub", "queue")
    assert env_choice("MARKET7_CHANNEL_LAYER", "pubsub", kinds, environ_={}) == "pubsub"
    assert (
        env_choice("MARKET7_CHANNEL_LAYER", "pubsub", kinds, environ_={"MARKET7_CHANNEL_LAYER": " queue "}) == "queue"
    )
    with pytest.raises(ImproperlyConfigured, match=r"^MARKET7_CHANNEL_LAYER='Queue' is not one of pubsub, queue$"):
        env_choice("MARKET7_CHANNEL_LAYER", "pubsub", kinds, environ_={"MARKET7_CHANNEL_LAYER": "Queue"})


def test_channel_layer_config_for_each_kind():
    common = {"prefix": "m7", "max_connections": 500, "capacity": 2000, "expiry": 30}
    assert channel_layer_config("pubsub", "redis://h:6379/2", **common) == {
        "BACKEND": "channels_redis.pubsub.RedisPubSubChannelLayer",
        "CONFIG": {"hosts": [{"address": "redis://h:6379/2", "max_connections": 500}], "prefix": "m7"},
    }
    assert channel_layer_config("queue", "redis://h:6379/2", **common) == {
        "BACKEND": "channels_redis.core.RedisChannelLayer",
        "CONFIG": {
            "hosts": [{"address": "redis://h:6379/2", "max_connections": 500}],
            "prefix": "m7",
            "capacity": 2000,
            "expiry": 30,
        },
    }
    with pytest.raises(ValueError, match="^unknown channel layer 'kafka'; use one of pubsub, queue$"):
        channel_layer_config("kafka", "redis://h:6379/2", **common)


def test_env_list_splits_and_strips():
    assert env_list("ALLOWED_HOSTS", ["x"], environ_={"ALLOWED_HOSTS": " a.example , b.example,,"}) == [
        "a.example",
        "b.example",
    ]
    assert env_list("ALLOWED_HOSTS", ["x"], environ_={}) == ["x"]


def test_database_url_parsing_and_errors():
    pg = env_db_url("DATABASE_URL", "sqlite:///x", environ_={"DATABASE_URL": "postgres://u:p@127.0.0.1:5432/m7"})
    assert (pg["ENGINE"], pg["NAME"], pg["HOST"], pg["PORT"], pg["USER"]) == (
        "django.db.backends.postgresql",
        "m7",
        "127.0.0.1",
        5432,
        "u",
    )
    lite = env_db_url("DATABASE_URL", "sqlite:////tmp/a.sqlite3", environ_={})
    assert (lite["ENGINE"], lite["NAME"]) == ("django.db.backends.sqlite3", "/tmp/a.sqlite3")
    with pytest.raises(ImproperlyConfigured, match=r"DATABASE_URL='mysql://x/y': unsupported scheme 'mysql'"):
        env_db_url("DATABASE_URL", "sqlite:///x", environ_={"DATABASE_URL": "mysql://x/y"})
    with pytest.raises(ImproperlyConfigured, match=r"DATABASE_URL='postgres://127.0.0.1:5432/' names no database"):
        env_db_url("DATABASE_URL", "sqlite:///x", environ_={"DATABASE_URL": "postgres://127.0.0.1:5432/"})


def test_redis_url_and_timezone():
    assert env_redis_url("REDIS_URL", environ_={}) is None
    assert env_redis_url("REDIS_URL", environ_={"REDIS_URL": "redis://127.0.0.1:6379/1"}) == "redis://127.0.0.1:6379/1"
    with pytest.raises(ImproperlyConfigured, match=r"REDIS_URL='http://x' must start with redis://"):
        env_redis_url("REDIS_URL", environ_={"REDIS_URL": "http://x"})
    assert env_timezone("TIME_ZONE", "UTC", environ_={"TIME_ZONE": "Europe/Paris"}) == "Europe/Paris"
    with pytest.raises(ImproperlyConfigured, match=r"TIME_ZONE='Mars/Olympus' is not a known IANA time zone"):
        env_timezone("TIME_ZONE", "UTC", environ_={"TIME_ZONE": "Mars/Olympus"})


def _settings_import(env_extra: dict) -> subprocess.CompletedProcess:
    import os

    env = {k: v for k, v in os.environ.items() if k not in {"SECRET_KEY", "DEBUG"}}
    env.update(env_extra)
    return subprocess.run(
        [
            sys.executable,
            "-c",
            "import django, os; os.environ['DJANGO_SETTINGS_MODULE']='market7.settings'; django.setup()",
        ],
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
    )


def test_bad_port_stops_settings_with_the_variable_name():
    result = _settings_import({"PORT": "eighty"})
    assert result.returncode != 0
    assert "ImproperlyConfigured: PORT='eighty' is not an integer" in result.stderr


def test_sqlite_default_uses_wal_and_immediate_transactions(tmp_path):
    import json
    import os

    env = {k: v for k, v in os.environ.items() if k != "DATABASE_URL"}
    env["MARKET7_VAR_DIR"] = str(tmp_path)
    code = (
        "import django, json, os; os.environ['DJANGO_SETTINGS_MODULE']='market7.settings'; django.setup(); "
        "from django.db import connection; c = connection.cursor(); c.execute('PRAGMA journal_mode'); "
        "from django.conf import settings; db = settings.DATABASES['default']; "
        "print(json.dumps([db['ENGINE'], db['NAME'], db['OPTIONS']['transaction_mode'], c.fetchone()[0]]))"
    )
    result = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True, timeout=60)
    assert result.returncode == 0, result.stderr
    engine, name, mode, journal = json.loads(result.stdout.strip().splitlines()[-1])
    assert engine == "django_prometheus.db.backends.sqlite3"  # Django's backend, wrapped to count queries
    assert name == str(tmp_path / "market7.sqlite3")
    assert mode == "IMMEDIATE"
    assert journal == "wal"
