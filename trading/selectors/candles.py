"""Candle range reads as numpy arrays (for the engine, charts and the import/fetch services).

Times are epoch **milliseconds** UTC (int64), a candle's open time; prices are in the market's
quote currency and volume in base units (float64), as stored.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import numpy as np
from django.db import connection
from django.db.models import BigIntegerField, Func, Max

from trading.models.market import Candle, Market

EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
_MS = timedelta(milliseconds=1)
ARRAY_FIELDS = ("time", "open", "high", "low", "close", "volume")


class EpochMs(Func):
    """Epoch milliseconds (bigint) of a timestamptz column, computed by PostgreSQL, so a read of
    many candles loads integers instead of parsing one datetime per row in Python.
    ``EXTRACT(EPOCH ...)`` is exact (numeric, microseconds) on PostgreSQL 14+, and candle open
    times are whole milliseconds. PostgreSQL only (other backends: ``NotImplementedError``)."""

    output_field = BigIntegerField()

    def as_sql(self, compiler, connection, **extra_context):
        raise NotImplementedError("EpochMs is PostgreSQL-only")

    def as_postgresql(self, compiler, connection, **extra_context):
        return super().as_sql(
            compiler, connection, template="(EXTRACT(EPOCH FROM %(expressions)s) * 1000)::bigint", **extra_context
        )


def _as_datetime(value: datetime | int | None, name: str) -> datetime | None:
    if value is None:
        return None
    if isinstance(value, datetime):
        if value.tzinfo is None:
            raise ValueError(f"{name} is a naive datetime; Market7 times are timezone-aware UTC")
        return value
    if isinstance(value, int | np.integer):
        return EPOCH + int(value) * _MS
    raise TypeError(f"{name} must be a timezone-aware datetime or epoch ms int, not {type(value).__name__}")


def datetime_to_ms(value: datetime) -> int:
    """Exact epoch milliseconds of a timezone-aware datetime (integer arithmetic, no float)."""
    return (value - EPOCH) // _MS


def candles_arrays(
    *,
    market: Market,
    timeframe: str,
    start: datetime | int | None = None,
    end: datetime | int | None = None,
    model=Candle,
) -> dict[str, np.ndarray]:
    """Candles of ``market``/``timeframe`` with ``start <= open_time < end``, oldest first.

    ``start``/``end``: timezone-aware datetimes or epoch ms ints; None means unbounded.
    Returns ``{"time": int64 epoch ms, "open"|"high"|"low"|"close"|"volume": float64}``, all the
    same length (0 when there is nothing). Naive datetime: ValueError. ``model``: ``Candle``
    (last price, default) or ``MarkCandle`` (mark price).
    """
    qs = model.objects.filter(market=market, timeframe=timeframe)
    start_dt, end_dt = _as_datetime(start, "start"), _as_datetime(end, "end")
    if start_dt is not None:
        qs = qs.filter(open_time__gte=start_dt)
    if end_dt is not None:
        qs = qs.filter(open_time__lt=end_dt)
    qs = qs.order_by("open_time")
    server_ms = connection.vendor == "postgresql"  # epoch ms computed by the server: no datetime per row
    if server_ms:
        rows = list(qs.annotate(ms=EpochMs("open_time")).values_list("ms", *ARRAY_FIELDS[1:]))
    else:
        rows = list(qs.values_list("open_time", *ARRAY_FIELDS[1:]))
    if not rows:
        return {"time": np.empty(0, dtype=np.int64), **{k: np.empty(0, dtype=np.float64) for k in ARRAY_FIELDS[1:]}}
    if server_ms:
        times = np.fromiter((row[0] for row in rows), dtype=np.int64, count=len(rows))
    else:
        times = np.fromiter(((row[0] - EPOCH) // _MS for row in rows), dtype=np.int64, count=len(rows))
    values = np.array([row[1:] for row in rows], dtype=np.float64)
    return {"time": times, **{name: np.ascontiguousarray(values[:, i]) for i, name in enumerate(ARRAY_FIELDS[1:])}}


def candles_last_open_ms(*, market: Market, timeframe: str, model=Candle) -> int | None:
    """Epoch ms of the newest stored candle (``model``: Candle or MarkCandle) of
    ``market``/``timeframe``, or None when there is none."""
    last = model.objects.filter(market=market, timeframe=timeframe).aggregate(last=Max("open_time"))["last"]
    return None if last is None else datetime_to_ms(last)
