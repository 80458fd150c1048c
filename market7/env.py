"""Typed readers for settings that come from the environment.

Every helper fails loudly: a malformed value raises ``ImproperlyConfigured`` naming the
variable and what was wrong, instead of silently falling back (healthchecks' ``hc/settings.py``
style). Unset means the documented default. URL parsing is delegated to django-environ.
"""

from __future__ import annotations

import os
from collections.abc import Mapping

import environ
from django.core.exceptions import ImproperlyConfigured

_TRUE = {"1", "true", "yes", "on"}
_FALSE = {"0", "false", "no", "off", ""}


def _raw(name: str, environ_: Mapping[str, str] | None) -> str | None:
    source = os.environ if environ_ is None else environ_
    value = source.get(name)
    return None if value is None else value.strip()


def env_str(name: str, default: str | None = None, *, environ_: Mapping[str, str] | None = None) -> str | None:
    """The variable as a string, or ``default`` when unset."""
    value = _raw(name, environ_)
    return default if value is None else value


def env_bool(name: str, default: bool, *, environ_: Mapping[str, str] | None = None) -> bool:
    """``1/true/yes/on`` or ``0/false/no/off`` (any case). Anything else: ImproperlyConfigured."""
    value = _raw(name, environ_)
    if value is None:
        return default
    lowered = value.lower()
    if lowered in _TRUE:
        return True
    if lowered in _FALSE:
        return False
    raise ImproperlyConfigured(f"{name}={value!r} is not a boolean; use one of 1/0, true/false, yes/no, on/off")


def env_int(
    name: str,
    default: int,
    *,
    min_value: int | None = None,
    max_value: int | None = None,
    environ_: Mapping[str, str] | None = None,
) -> int:
    """An integer, optionally bounded (inclusive). Malformed or out of range: ImproperlyConfigured."""
    value = _raw(name, environ_)
    if value is None or value == "":
        return default
    try:
        number = int(value)
    except ValueError:
        raise ImproperlyConfigured(f"{name}={value!r} is not an integer") from None
    if min_value is not None and number < min_value:
        raise ImproperlyConfigured(f"{name}={number} is below the minimum {min_value}")
    if max_value is not None and number > max_value:
        raise ImproperlyConfigured(f"{name}={number} is above the maximum {max_value}")
    return number


def env_choice(name: str, default: str, choices: tuple[str, ...], *, environ_: Mapping[str, str] | None = None) -> str:
    """One of ``choices`` (exact, case-sensitive). Anything else: ImproperlyConfigured listing them."""
    value = _raw(name, environ_)
    if value is None or value == "":
        return default
    if value not in choices:
        raise ImproperlyConfigured(f"{name}={value!r} is not one of {', '.join(choices)}")
    return value


def env_list(name: str, default: list[str], *, environ_: Mapping[str, str] | None = None) -> list[str]:
    """A comma-separated list; blanks are dropped. Unset: ``default``."""
    value = _raw(name, environ_)
    if value is None:
        return list(default)
    return [item.strip() for item in value.split(",") if item.strip()]


def env_db_url(name: str, default: str, *, environ_: Mapping[str, str] | None = None) -> dict:
    """A database URL (``postgres://``, ``postgresql://``, ``sqlite:///``) as a Django DATABASES entry.

    Raises ImproperlyConfigured for an unknown scheme or a URL django-environ cannot parse.
    """
    value = _raw(name, environ_) or default
    scheme = value.split(":", 1)[0].lower()
    if scheme not in {"postgres", "postgresql", "pgsql", "psql", "sqlite"}:
        raise ImproperlyConfigured(f"{name}={value!r}: unsupported scheme {scheme!r}; use postgres:// or sqlite:///")
    try:
        config = environ.Env.db_url_config(value)
    except Exception as exc:  # django-environ raises several types for malformed URLs
        raise ImproperlyConfigured(f"{name}={value!r} is not a valid database URL: {exc}") from None
    if config["ENGINE"].endswith("postgresql") and not config.get("NAME"):
        raise ImproperlyConfigured(f"{name}={value!r} names no database")
    return config


def env_redis_url(name: str, *, environ_: Mapping[str, str] | None = None) -> str | None:
    """A ``redis://``/``rediss://``/``unix://`` URL, or None when unset (the embedded server is used)."""
    value = _raw(name, environ_)
    if not value:
        return None
    if value.split(":", 1)[0].lower() not in {"redis", "rediss", "unix"}:
        raise ImproperlyConfigured(f"{name}={value!r} must start with redis://, rediss:// or unix://")
    return value


def env_timezone(name: str, default: str, *, environ_: Mapping[str, str] | None = None) -> str:
    """An IANA time zone name such as ``Europe/Paris``. Unknown: ImproperlyConfigured."""
    import zoneinfo

    value = _raw(name, environ_) or default
    try:
        zoneinfo.ZoneInfo(value)
    except (zoneinfo.ZoneInfoNotFoundError, ValueError):
        raise ImproperlyConfigured(f"{name}={value!r} is not a known IANA time zone") from None
    return value
