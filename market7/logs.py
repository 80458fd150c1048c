"""Structured logs: one JSON object per line when ``LOG_FORMAT=json``, with the request id and the
bot id of the work in progress.

- :class:`RequestIdMiddleware` takes the request's ``X-Request-ID`` (from the proxy; 1-64
  characters of ``A-Za-z0-9._-``) or makes one (32 hex digits), answers it in the response's
  ``X-Request-ID`` and keeps it in a context variable for the request's log lines.
- :func:`log_context` sets ``bot_id`` (or ``request_id``) for a block: the bot runner's step is
  wrapped in it (``market7.metrics.observe_bot_step``).
- :class:`ContextFilter` (on the console handler, both formats) copies both onto every record as
  ``record.request_id`` / ``record.bot_id`` (None when unknown).
- :class:`JsonFormatter` writes ``{"time", "level", "logger", "message", "process", "thread"}``,
  plus ``"request_id"`` and ``"bot_id"`` when known and ``"exc_info"`` (the formatted
  traceback) with an exception. ``time`` is UTC ISO 8601 with milliseconds.
"""

from __future__ import annotations

import contextlib
import contextvars
import json
import logging
import re
import uuid
from collections.abc import Iterator
from datetime import UTC, datetime
from typing import Any

request_id_var: contextvars.ContextVar[str | None] = contextvars.ContextVar("m7_request_id", default=None)
bot_id_var: contextvars.ContextVar[int | None] = contextvars.ContextVar("m7_bot_id", default=None)

_REQUEST_ID = re.compile(r"^[A-Za-z0-9._-]{1,64}$")


@contextlib.contextmanager
def log_context(*, bot_id: int | None = None, request_id: str | None = None) -> Iterator[None]:
    """Tag the log lines written inside the block with ``bot_id`` / ``request_id`` (the ones not
    given keep their current value)."""
    tokens = []
    if bot_id is not None:
        tokens.append((bot_id_var, bot_id_var.set(int(bot_id))))
    if request_id is not None:
        tokens.append((request_id_var, request_id_var.set(request_id)))
    try:
        yield
    finally:
        for var, token in reversed(tokens):
            var.reset(token)


class ContextFilter(logging.Filter):
    """Adds ``request_id`` and ``bot_id`` (None when unknown) to every record."""

    def filter(self, record: logging.LogRecord) -> bool:
        if getattr(record, "request_id", None) is None:
            record.request_id = request_id_var.get()
        if getattr(record, "bot_id", None) is None:
            record.bot_id = bot_id_var.get()
        return True


class JsonFormatter(logging.Formatter):
    """One JSON object per record (module doc)."""

    def format(self, record: logging.LogRecord) -> str:
        data: dict[str, Any] = {
            "time": datetime.fromtimestamp(record.created, UTC).isoformat(timespec="milliseconds"),
            "level": record.levelname,
            "logger": record.name,
            "message": record.getMessage(),
            "process": record.process,
            "thread": record.threadName,
        }
        request_id = getattr(record, "request_id", None) or request_id_var.get()
        bot_id = getattr(record, "bot_id", None) or bot_id_var.get()
        if request_id is not None:
            data["request_id"] = request_id
        if bot_id is not None:
            data["bot_id"] = bot_id
        if record.exc_info:
            data["exc_info"] = self.formatException(record.exc_info)
        elif record.exc_text:
            data["exc_info"] = record.exc_text
        return json.dumps(data, default=str, ensure_ascii=False)


class RequestIdMiddleware:
    """Give every request an id (module doc) for its log lines and its ``X-Request-ID`` answer."""

    def __init__(self, get_response):
        self.get_response = get_response

    def __call__(self, request):
        given = request.META.get("HTTP_X_REQUEST_ID", "")
        request_id = given if _REQUEST_ID.match(given) else uuid.uuid4().hex
        request.request_id = request_id
        token = request_id_var.set(request_id)
        try:
            response = self.get_response(request)
        finally:
            request_id_var.reset(token)
        response["X-Request-ID"] = request_id
        return response


def logging_config(*, fmt: str, level: str) -> dict[str, Any]:
    """The ``LOGGING`` dict of the settings: ``fmt`` ``plain`` (the human format) or ``json``."""
    return {
        "version": 1,
        "disable_existing_loggers": False,
        "filters": {"context": {"()": "market7.logs.ContextFilter"}},
        "formatters": {
            "plain": {"format": "%(asctime)s %(levelname)s %(name)s: %(message)s"},
            "json": {"()": "market7.logs.JsonFormatter"},
        },
        "handlers": {"console": {"class": "logging.StreamHandler", "formatter": fmt, "filters": ["context"]}},
        "root": {"handlers": ["console"], "level": level},
        "loggers": {"django.db.backends": {"level": "WARNING"}},
    }
