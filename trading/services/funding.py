"""Funding rates of perpetuals: file reading, validation, upsert, and the array read.

File format (``../shared/data/ohlcv/futures/<SYMBOL>-funding.csv.gz``): header exactly
``time,funding_rate``; ``time`` the funding event in integer epoch **ms** UTC (whole minute);
``funding_rate`` a fraction per event (``0.0001`` = 0.01 %), written as a plain decimal.

Row rules (first failing one named, like candles): ``time`` an integer in 1970..2100, a whole
minute, strictly increasing (duplicates / out-of-order rejected, first kept); ``funding_rate`` a
finite decimal with at most 10 decimal places and ``|rate| <= 0.1`` (10 % per event is a unit
mistake, not a market: Binance caps the rate at a few percent). One bad row and nothing is
written (:class:`~trading.services.candle_files.CandleImportError` ``"BTCUSDT-funding.csv.gz
line 7: funding_rate 'x' is not a number"``) unless ``skip_invalid``. Rates are stored as
``Decimal`` exactly as written (DESIGN: money and rates at the boundary are Decimal).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import timedelta
from decimal import Decimal, InvalidOperation
from pathlib import Path

import numpy as np
from django.db import transaction

from trading.models.market import FundingRate, Market
from trading.selectors.candles import EPOCH
from trading.services.candle_files import MAX_OPEN_TIME_MS, CandleImportError, Rejection, _read_bytes, fmt_ms

__all__ = ["FUNDING_HEADER", "FundingRows", "funding_arrays", "funding_upsert", "read_funding_file", "validate_funding"]

FUNDING_HEADER = "time,funding_rate"
MAX_ABS_RATE = Decimal("0.1")
_MINUTE_MS = 60_000


@dataclass
class FundingRows:
    """Funding events: ``time`` int64 epoch ms, ``rate`` Decimal fractions, ``line`` 1-based file lines."""

    time: list[int]
    rate: list[Decimal]
    line: list[int]

    def __len__(self) -> int:
        return len(self.time)


def validate_funding(times: list[int], rates: list[Decimal], lines: list[int]) -> tuple[FundingRows, list[Rejection]]:
    """Apply the row rules of the module docstring; returns (valid rows, rejections)."""
    keep = FundingRows([], [], [])
    rejections: list[Rejection] = []
    first_line: dict[int, int] = {}
    last = None
    for t, r, n in zip(times, rates, lines, strict=True):
        if not 0 <= t < MAX_OPEN_TIME_MS:
            reason = f"time {t} out of range (epoch ms 1970..2100)"
        elif t % _MINUTE_MS:
            reason = f"time {t} ({fmt_ms(t)} UTC) is not a whole minute"
        elif not r.is_finite():
            reason = f"funding_rate is {r}"
        elif -r.as_tuple().exponent > 10:
            reason = f"funding_rate {r} has more than 10 decimal places"
        elif abs(r) > MAX_ABS_RATE:
            reason = f"funding_rate {r} beyond ±{MAX_ABS_RATE}: not a plausible rate per event (a fraction)"
        elif last is not None and t == last:
            reason = f"duplicate time {t} ({fmt_ms(t)} UTC), first on line {first_line[t]}"
        elif last is not None and t < last:
            reason = (
                f"time {t} ({fmt_ms(t)} UTC) is before the previous row's {last}; times must be strictly increasing"
            )
        else:
            keep.time.append(t)
            keep.rate.append(r)
            keep.line.append(n)
            first_line[t] = n
            last = t
            continue
        rejections.append(Rejection(n, reason))
    return keep, rejections


def read_funding_file(path: Path | str) -> tuple[FundingRows, list[Rejection], int]:
    """Parse and validate a whole funding file; nothing is written.

    Returns (valid rows, rejections by line, number of data rows). Wrong header, unreadable
    file or bad gzip: CandleImportError (not skippable).
    """
    path = Path(path)
    raw = _read_bytes(path)
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError as exc:
        line = raw[: exc.start].count(b"\n") + 1
        raise CandleImportError(f"{path.name} line {line}: not UTF-8 text") from None
    lines = text.split("\n")
    if lines and lines[-1] == "":
        lines.pop()
    header = lines[0].rstrip("\r") if lines else ""
    if header != FUNDING_HEADER:
        raise CandleImportError(f"{path.name} line 1: header must be exactly {FUNDING_HEADER!r}, got {header!r}")
    times, rates, numbers, rejections = [], [], [], []
    for number, line in enumerate(lines[1:], start=2):
        fields = line.rstrip("\r").split(",")
        if len(fields) != 2:
            rejections.append(
                Rejection(number, "empty line" if fields == [""] else f"expected 2 fields, got {len(fields)}")
            )
            continue
        raw_time, raw_rate = fields
        if not raw_time.isascii() or not raw_time.isdigit():
            rejections.append(Rejection(number, f"time {raw_time!r} is not an integer epoch ms"))
            continue
        try:
            rate = Decimal(raw_rate)
        except InvalidOperation:
            rejections.append(Rejection(number, f"funding_rate {raw_rate!r} is not a number"))
            continue
        times.append(int(raw_time))
        rates.append(rate)
        numbers.append(number)
    rows, more = validate_funding(times, rates, numbers)
    rejections = sorted(rejections + more, key=lambda r: r.line)
    return rows, rejections, len(lines) - 1


@transaction.atomic
def funding_upsert(*, market: Market, rows: FundingRows) -> tuple[int, int, int]:
    """Insert new funding events, update changed rates, leave equal ones; one transaction.

    Returns ``(inserted, updated, unchanged)``. ``rows`` must be valid (:func:`validate_funding`).
    """
    if not len(rows):
        return 0, 0, 0
    stamps = [EPOCH + timedelta(milliseconds=t) for t in rows.time]
    existing = dict(
        FundingRate.objects.filter(market=market, time__gte=stamps[0], time__lte=stamps[-1]).values_list("time", "rate")
    )
    new, changed = [], []
    for stamp, rate in zip(stamps, rows.rate, strict=True):
        old = existing.get(stamp)
        if old is None:
            new.append(FundingRate(market=market, time=stamp, rate=rate))
        elif old != rate:
            changed.append(FundingRate(market=market, time=stamp, rate=rate))
    FundingRate.objects.bulk_create(new, batch_size=1000)
    if changed:
        FundingRate.objects.bulk_create(
            changed, update_conflicts=True, unique_fields=["market", "time"], update_fields=["rate"], batch_size=1000
        )
    return len(new), len(changed), len(rows) - len(new) - len(changed)


def funding_arrays(*, market: Market, start_ms: int | None = None, end_ms: int | None = None) -> dict[str, np.ndarray]:
    """Funding events of ``market`` with ``start_ms <= time < end_ms`` (epoch ms, optional),
    oldest first: ``{"time": int64 epoch ms, "rate": float64 fraction}`` (floats for the engine)."""
    qs = FundingRate.objects.filter(market=market)
    if start_ms is not None:
        qs = qs.filter(time__gte=EPOCH + timedelta(milliseconds=start_ms))
    if end_ms is not None:
        qs = qs.filter(time__lt=EPOCH + timedelta(milliseconds=end_ms))
    rows = list(qs.order_by("time").values_list("time", "rate"))
    return {
        "time": np.array([(t - EPOCH) // timedelta(milliseconds=1) for t, _ in rows], dtype=np.int64),
        "rate": np.array([float(r) for _, r in rows], dtype=np.float64),
    }
