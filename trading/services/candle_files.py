"""Candle files: names, reading, row validation and gap finding (nothing is written here).

File format (the ``../shared/data`` format): ``<SYMBOL>-<timeframe>.csv.gz`` or ``.csv``, e.g.
``BTCUSDT-1h.csv.gz``; header exactly ``open_time,open,high,low,close,volume``; ``open_time``
is the candle open in epoch **ms** UTC; prices in the quote currency, volume in base units.

Every row is validated before anything is written (:func:`validate_candles`): numeric fields,
no NaN/inf, prices at most 1e15 and volume at most 1e20, ``low > 0``, ``high >= max(open, close)``, ``low <= min(open, close)``,
``volume >= 0``, ``open_time`` aligned to the timeframe and strictly increasing. One bad row
and the file imports nothing (:class:`CandleImportError` ``"BTCUSDT-1h.csv.gz line 42: high
41000.5 < close 41200.0"``, line 1 = header) unless ``skip_invalid``.

Also the candle column types every candle service shares (:class:`CandleArrays`,
:class:`Rejection`, :class:`Gap`) and their formatting helpers. Re-exported by
:mod:`trading.services.candles`.
"""

from __future__ import annotations

import gzip
import io
import re
import zlib
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from datetime import timedelta
from pathlib import Path

import numpy as np
import pandas as pd
from django.conf import settings

from market7.timeframes import timeframe_ms
from trading.models.market import Timeframe
from trading.selectors.candles import EPOCH

__all__ = [
    "CandleArrays",
    "CandleImportError",
    "Gap",
    "Rejection",
    "bundled_candle_files",
    "find_gaps",
    "fmt_ms",
    "fmt_number",
    "parse_candle_filename",
    "parse_data_filename",
    "read_candle_file",
    "validate_candles",
]

HEADER = "open_time,open,high,low,close,volume"
VALUE_COLUMNS = ("open", "high", "low", "close", "volume")
SUPPORTED_TIMEFRAMES = tuple(choice.value for choice in Timeframe)
MAX_OPEN_TIME_MS = 4_102_444_800_000  # 2100-01-01: beyond it a "time" is a unit mistake
# Beyond these a value is a unit or parsing mistake, not a market: the dearest real quotes
# (BTC in IDR/VND) are ~1e9-1e10 and the largest hourly volumes (meme coins) ~1e13. The bounds
# also keep every product the pages and API compute (close * volume, P&L) finite: 1e300 would
# make the 24 h quote volume inf, which JSON cannot carry.
MAX_PRICE = 1e15
MAX_VOLUME = 1e20
_FILE_RE = re.compile(r"^(?P<symbol>[A-Za-z0-9]+)-(?P<rest>[A-Za-z0-9-]+)$")


class CandleImportError(ValueError):
    """A candle file cannot be imported; the message names the file (and line, when a row)."""

    def __init__(self, message: str, *, rejections: list[Rejection] | None = None):
        super().__init__(message)
        self.rejections = rejections or []


@dataclass
class CandleArrays:
    """Column arrays of candles: ``time`` int64 epoch ms (open), prices/volume float64.

    ``line`` is each row's 1-based line in its source file (header = 1), or None.
    """

    time: np.ndarray
    open: np.ndarray
    high: np.ndarray
    low: np.ndarray
    close: np.ndarray
    volume: np.ndarray
    line: np.ndarray | None = None

    def __len__(self) -> int:
        return len(self.time)

    def take(self, mask_or_index: np.ndarray) -> CandleArrays:
        return CandleArrays(
            *(getattr(self, name)[mask_or_index] for name in ("time", *VALUE_COLUMNS)),
            line=None if self.line is None else self.line[mask_or_index],
        )

    @classmethod
    def from_rows(cls, rows: Iterable[list | tuple]) -> CandleArrays:
        """From ccxt OHLCV rows ``[ms, open, high, low, close, volume]``."""
        data = np.array(list(rows), dtype=np.float64).reshape(-1, 6)
        return cls(data[:, 0].astype(np.int64), *(np.ascontiguousarray(data[:, i]) for i in range(1, 6)))


@dataclass(frozen=True)
class Rejection:
    line: int
    reason: str

    def __str__(self) -> str:
        return f"line {self.line}: {self.reason}"


def fmt_ms(ms: int) -> str:
    """Epoch ms -> ``2024-09-07 02:00`` (UTC)."""
    return (EPOCH + timedelta(milliseconds=int(ms))).strftime("%Y-%m-%d %H:%M")


def fmt_number(value: float) -> str:
    """Shortest exact decimal, never scientific: 41200.0, 0.00000965."""
    value = float(value)
    if not np.isfinite(value):
        return repr(value)
    return np.format_float_positional(value, trim="0")


@dataclass(frozen=True)
class Gap:
    """Missing candles: the first and last missing open times (epoch ms) and how many."""

    start_ms: int
    end_ms: int
    count: int

    def __str__(self) -> str:
        return f"gap {fmt_ms(self.start_ms)} → {fmt_ms(self.end_ms)} UTC ({self.count} candle{'' if self.count == 1 else 's'})"


def parse_candle_filename(path: Path | str) -> tuple[str, str]:
    """``BTCUSDT-1h.csv.gz`` -> ``("BTCUSDT", "1h")``. Mark-price, funding, unknown timeframes and
    other names: CandleImportError explaining why."""
    name = Path(path).name
    for suffix in (".csv.gz", ".csv"):
        if name.endswith(suffix):
            stem = name[: -len(suffix)]
            break
    else:
        raise CandleImportError(f"{name}: not a candle file; expected <SYMBOL>-<timeframe>.csv.gz or .csv")
    match = _FILE_RE.match(stem)
    if not match:
        raise CandleImportError(
            f"{name}: not a candle file name; expected <SYMBOL>-<timeframe>.csv.gz, e.g. BTCUSDT-1h.csv.gz"
        )
    symbol, rest = match["symbol"].upper(), match["rest"]
    if rest.endswith("-mark"):
        raise CandleImportError(f"{name}: mark-price candles, not last-price OHLCV (see parse_data_filename)")
    if rest == "funding" or rest.endswith("-funding"):
        raise CandleImportError(f"{name}: funding rates, not OHLCV candles (see parse_data_filename)")
    if rest not in SUPPORTED_TIMEFRAMES:
        raise CandleImportError(f"{name}: unsupported timeframe {rest!r}; use one of {', '.join(SUPPORTED_TIMEFRAMES)}")
    return symbol, rest


def parse_data_filename(path: Path | str) -> tuple[str, str, str | None]:
    """Any market-data file of the ``../shared/data`` layout -> ``(SYMBOL, kind, timeframe)``.

    ``BTCUSDT-1h.csv.gz`` -> ``("BTCUSDT", "last", "1h")``; ``BTCUSDT-1h-mark.csv.gz`` ->
    ``("BTCUSDT", "mark", "1h")``; ``BTCUSDT-funding.csv.gz`` -> ``("BTCUSDT", "funding", None)``.
    Other names: CandleImportError saying why.
    """
    name = Path(path).name
    stem = (
        name[: -len(".csv.gz")] if name.endswith(".csv.gz") else name[: -len(".csv")] if name.endswith(".csv") else ""
    )
    match = _FILE_RE.match(stem) if stem else None
    if match and match["rest"] == "funding":
        return match["symbol"].upper(), "funding", None
    if match and match["rest"].endswith("-mark"):
        timeframe = match["rest"][: -len("-mark")]
        if timeframe not in SUPPORTED_TIMEFRAMES:
            raise CandleImportError(
                f"{name}: unsupported timeframe {timeframe!r}; use one of {', '.join(SUPPORTED_TIMEFRAMES)}"
            )
        return match["symbol"].upper(), "mark", timeframe
    symbol, timeframe = parse_candle_filename(path)
    return symbol, "last", timeframe


def bundled_candle_files() -> list[Path]:
    """Every candle file of the bundled set (``settings.MARKET7_BUNDLED_DATA``), sorted by name."""
    folder = Path(settings.MARKET7_BUNDLED_DATA)
    return sorted(p for p in folder.iterdir() if p.name.endswith((".csv.gz", ".csv")))


def _read_bytes(path: Path) -> bytes:
    try:
        raw = path.read_bytes()
    except FileNotFoundError:
        raise CandleImportError(f"{path}: no such file") from None
    except OSError as exc:
        raise CandleImportError(f"{path.name}: cannot read ({exc.strerror or exc})") from None
    if path.name.endswith(".gz"):
        try:
            raw = gzip.decompress(raw)
        except (OSError, EOFError, zlib.error) as exc:
            raise CandleImportError(f"{path.name}: not a valid gzip file ({exc})") from None
    return raw


def _data_line_count(raw: bytes) -> int:
    lines = raw.count(b"\n") + (0 if raw.endswith(b"\n") else 1)
    return lines - 1


def _times_are_plain_integers(raw: bytes) -> bool:
    """True when every data line's first field is only ASCII digits (pandas would also accept
    ``1.7e12`` or ``...000.0`` as int64; the format says integer epoch ms)."""
    data = np.frombuffer(raw, dtype=np.uint8)
    newlines = np.flatnonzero(data == 10)
    starts = newlines + 1
    starts = starts[starts < len(data)]
    if not len(starts):
        return True
    commas = np.flatnonzero(data == 44)
    first_comma = np.searchsorted(commas, starts)
    if (first_comma >= len(commas)).any():
        return False
    ends = commas[first_comma]
    next_newline = np.append(newlines, len(data))[np.searchsorted(newlines, starts)]
    if (ends > next_newline).any() or (ends == starts).any():
        return False  # a line without a comma, or an empty open_time
    not_digit = np.concatenate(([0], np.cumsum((data < 48) | (data > 57))))
    return bool(((not_digit[ends] - not_digit[starts]) == 0).all())


def _parse_fast(raw: bytes) -> CandleArrays | None:
    """Vectorised parse; None when anything is off (then :func:`_parse_slow` finds what)."""
    dtypes = {"open_time": np.int64, **{name: np.float64 for name in VALUE_COLUMNS}}
    try:
        frame = pd.read_csv(io.BytesIO(raw), dtype=dtypes, engine="c", skip_blank_lines=False)
    except (ValueError, TypeError, OverflowError):
        return None
    if list(frame.columns) != HEADER.split(",") or len(frame) != _data_line_count(raw):
        return None
    if not _times_are_plain_integers(raw):
        return None
    values = frame[list(VALUE_COLUMNS)].to_numpy(dtype=np.float64)
    if not np.isfinite(values).all():
        return None  # tell NaN from an empty field from inf, line by line
    n = len(frame)
    return CandleArrays(
        frame["open_time"].to_numpy(dtype=np.int64),
        *(np.ascontiguousarray(values[:, i]) for i in range(5)),
        line=np.arange(2, n + 2, dtype=np.int64),
    )


def _parse_slow(text: str) -> tuple[CandleArrays, list[Rejection]]:
    """Line-by-line parse that says exactly what is wrong with each unparsable row."""
    lines = text.split("\n")
    if lines and lines[-1] == "":
        lines.pop()
    times, values, line_numbers, rejections = [], [], [], []
    for number, line in enumerate(lines[1:], start=2):
        fields = line.rstrip("\r").split(",")
        if len(fields) != 6:
            reason = "empty line" if fields == [""] else f"expected 6 fields, got {len(fields)}"
            rejections.append(Rejection(number, reason))
            continue
        raw_time, *raw_values = fields
        if raw_time == "":
            rejections.append(Rejection(number, "open_time is empty"))
            continue
        if not raw_time.isascii() or not raw_time.isdigit():
            rejections.append(Rejection(number, f"open_time {raw_time!r} is not an integer epoch ms"))
            continue
        parsed, reason = [], None
        for name, raw_value in zip(VALUE_COLUMNS, raw_values, strict=True):
            if raw_value == "":
                reason = f"{name} is empty"
                break
            try:
                parsed.append(float(raw_value))
            except ValueError:
                reason = f"{name} {raw_value!r} is not a number"
                break
        if reason:
            rejections.append(Rejection(number, reason))
            continue
        times.append(int(raw_time))
        values.append(parsed)
        line_numbers.append(number)
    data = np.array(values, dtype=np.float64).reshape(-1, 5)
    arrays = CandleArrays(
        np.array(times, dtype=np.int64) if max(times, default=0) < 2**63 else np.array(times, dtype=object),
        *(np.ascontiguousarray(data[:, i]) for i in range(5)),
        line=np.array(line_numbers, dtype=np.int64),
    )
    if arrays.time.dtype == object:  # absurdly large integers: reject them, keep int64 arrays
        big = np.array([t >= 2**63 for t in arrays.time])
        rejections += [
            Rejection(int(n), f"open_time {t} out of range (epoch ms 1970..2100)")
            for n, t in zip(arrays.line[big], arrays.time[big], strict=True)
        ]
        arrays = arrays.take(~big)
        arrays.time = arrays.time.astype(np.int64)
    return arrays, rejections


def validate_candles(candles: CandleArrays, *, timeframe: str) -> tuple[np.ndarray, list[Rejection]]:
    """Vectorised row checks; returns (mask of valid rows, rejections of the others).

    Rules, first failing one named: finite numbers; prices <= :data:`MAX_PRICE` and volume
    <= :data:`MAX_VOLUME`; open_time in 1970..2100; ``low > 0``;
    ``high >= max(open, close)``; ``low <= min(open, close)``; ``volume >= 0``; open_time a
    multiple of the timeframe; open_time strictly greater than every earlier valid row's
    (duplicates and out-of-order rows are rejected, the first occurrence kept). Rows without
    ``line`` numbers are reported by their 0-based index.
    """
    n = len(candles)
    tf = timeframe_ms(timeframe)
    lines = candles.line if candles.line is not None else np.arange(n)
    t, o, h, lo, c, v = candles.time, candles.open, candles.high, candles.low, candles.close, candles.volume
    reasons: dict[int, str] = {}
    bad = np.zeros(n, dtype=bool)

    def reject(mask: np.ndarray, describe: Callable[[int], str]) -> None:
        fresh = mask & ~bad
        for i in np.flatnonzero(fresh):
            reasons[int(i)] = describe(int(i))
        bad[fresh] = True

    for name, column in zip(VALUE_COLUMNS, (o, h, lo, c, v), strict=True):
        reject(
            ~np.isfinite(column),
            lambda i, name=name, column=column: f"{name} is {'NaN' if np.isnan(column[i]) else fmt_number(column[i])}",
        )
    for name, column in zip(VALUE_COLUMNS, (o, h, lo, c, v), strict=True):
        what, limit = ("volume", MAX_VOLUME) if name == "volume" else ("price", MAX_PRICE)
        with np.errstate(invalid="ignore"):
            too_big = column > limit
        reject(
            too_big, lambda i, n=name, col=column, w=what, lim=limit: f"{n} {col[i]:g} > {lim:g}: not a plausible {w}"
        )
    reject((t < 0) | (t >= MAX_OPEN_TIME_MS), lambda i: f"open_time {t[i]} out of range (epoch ms 1970..2100)")
    with np.errstate(invalid="ignore"):
        reject(lo <= 0, lambda i: f"low {fmt_number(lo[i])} <= 0")
        reject(
            h < np.maximum(o, c),
            lambda i: (
                f"high {fmt_number(h[i])} < close {fmt_number(c[i])}"
                if c[i] >= o[i]
                else f"high {fmt_number(h[i])} < open {fmt_number(o[i])}"
            ),
        )
        reject(
            lo > np.minimum(o, c),
            lambda i: (
                f"low {fmt_number(lo[i])} > close {fmt_number(c[i])}"
                if c[i] <= o[i]
                else f"low {fmt_number(lo[i])} > open {fmt_number(o[i])}"
            ),
        )
        reject(v < 0, lambda i: f"volume {fmt_number(v[i])} < 0")
    reject(t % tf != 0, lambda i: f"open_time {t[i]} ({fmt_ms(t[i])} UTC) is not aligned to {timeframe}")

    # Strictly increasing: compare each row with the running max of earlier still-valid rows.
    if n:
        masked = np.where(bad, np.iinfo(np.int64).min, t)
        previous = np.concatenate(([np.iinfo(np.int64).min], np.maximum.accumulate(masked)[:-1]))
        order_bad = (t <= previous) & ~bad
        if order_bad.any():
            kept = ~(bad | order_bad)
            kept_t, kept_lines = t[kept], lines[kept]

            def describe(i: int) -> str:
                if t[i] == previous[i]:
                    first = kept_lines[np.searchsorted(kept_t, t[i])]
                    return f"duplicate open_time {t[i]} ({fmt_ms(t[i])} UTC), first on line {first}"
                return (
                    f"open_time {t[i]} ({fmt_ms(t[i])} UTC) is before the previous row's "
                    f"{previous[i]} ({fmt_ms(previous[i])} UTC); times must be strictly increasing"
                )

            reject(order_bad, describe)
    rejections = [Rejection(int(lines[i]), reasons[i]) for i in sorted(reasons)]
    return ~bad, rejections


def read_candle_file(path: Path | str, *, timeframe: str) -> tuple[CandleArrays, list[Rejection], int]:
    """Parse and validate a whole candle file; nothing is written.

    Returns (valid rows, rejections sorted by line, number of data rows). The header must be
    exactly :data:`HEADER`: otherwise CandleImportError (not skippable). Unreadable file or bad
    gzip: CandleImportError.
    """
    path = Path(path)
    raw = _read_bytes(path)
    first_line = raw.split(b"\n", 1)[0].rstrip(b"\r")
    if not raw.strip():
        raise CandleImportError(f"{path.name} line 1: empty file, expected the header {HEADER!r}")
    if first_line != HEADER.encode():
        shown = first_line.decode("utf-8", errors="replace")
        raise CandleImportError(f"{path.name} line 1: header must be exactly {HEADER!r}, got {shown!r}")
    candles = _parse_fast(raw)
    rejections: list[Rejection] = []
    if candles is None:
        try:
            text = raw.decode("utf-8")
        except UnicodeDecodeError as exc:
            line = raw[: exc.start].count(b"\n") + 1
            raise CandleImportError(f"{path.name} line {line}: not UTF-8 text") from None
        candles, rejections = _parse_slow(text)
    rows = len(candles) + len(rejections)
    valid, more = validate_candles(candles, timeframe=timeframe)
    if more:
        rejections = sorted(rejections + more, key=lambda r: r.line)
        candles = candles.take(valid)
    return candles, rejections, rows


def find_gaps(times: np.ndarray, *, timeframe: str) -> list[Gap]:
    """Missing ranges between consecutive open times (epoch ms, strictly increasing)."""
    tf = timeframe_ms(timeframe)
    if len(times) < 2:
        return []
    steps = np.diff(times)
    at = np.flatnonzero(steps > tf)
    return [Gap(int(times[i] + tf), int(times[i + 1] - tf), int(steps[i] // tf - 1)) for i in at]
