"""Candle fetch: closed candles from an exchange through ccxt ``fetch_ohlcv``, validated
like a file and upserted page by page (:func:`candles_fetch`). Re-exported by
:mod:`trading.services.candles`.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime
from decimal import Decimal

import numpy as np
from django.db.models import Max

from market7.timeframes import timeframe_ms
from trading.exchanges import exchange_call, exchange_client
from trading.models.market import Candle, FundingRate, MarkCandle
from trading.selectors.candles import candles_last_open_ms, datetime_to_ms
from trading.services.candle_files import SUPPORTED_TIMEFRAMES, CandleArrays, Gap, find_gaps, fmt_ms, validate_candles
from trading.services.candle_upsert import candles_upsert
from trading.services.funding import funding_upsert, validate_funding
from trading.services.markets import _ccxt_market_type, exchange_ensure, market_upsert_ccxt

__all__ = ["CandleFetchError", "FetchReport", "FundingFetch", "SymbolFetch", "candles_fetch", "funding_fetch"]

FETCH_LIMIT = 1000  # Binance's maximum klines per request


class CandleFetchError(ValueError):
    """A fetch cannot be done as asked (unknown symbol, bad range, invalid candle from the exchange)."""


@dataclass
class SymbolFetch:
    """What :func:`candles_fetch` did for one symbol (times in epoch ms)."""

    symbol: str
    start_ms: int  # startTime of the first request
    resumed: bool  # True when start_ms came from the last stored candle, not ``since``
    requests: int = 0
    received: int = 0
    dropped_open: int = 0  # still-open candles the exchange sent; never stored
    inserted: int = 0
    updated: int = 0
    unchanged: int = 0
    first_ms: int | None = None
    last_ms: int | None = None
    gaps: list[Gap] = field(default_factory=list)


@dataclass
class FetchReport:
    exchange: str
    timeframe: str
    market_type: str
    server_time_ms: int
    symbols: list[SymbolFetch] = field(default_factory=list)


def _as_ms(value: datetime | int, name: str) -> int:
    if isinstance(value, datetime):
        if value.tzinfo is None:
            raise CandleFetchError(f"{name} is a naive datetime; give a UTC time")
        return datetime_to_ms(value)
    return int(value)


def candles_fetch(
    *,
    exchange: str,
    symbols: list[str],
    timeframe: str,
    since: datetime | int,
    until: datetime | int | None = None,
    market_type: str = "spot",
    price: str = "last",
    progress: Callable[[str], None] | None = None,
) -> FetchReport:
    """Fetch closed candles ``since <= open_time < until`` through ccxt ``fetch_ohlcv`` and upsert them.

    ``symbols`` are ccxt unified (``BTC/USDT``; ``BTC/USDT:USDT`` for swap); ``since``/``until``
    are timezone-aware datetimes or epoch ms (``until`` None: up to now). Resumes after the last
    stored candle when that is later than ``since``. Pages of :data:`FETCH_LIMIT` candles; each
    page is validated like a file and upserted in its own transaction, so an interrupted fetch
    keeps what it stored and the next run resumes. A candle is stored only when closed by the
    exchange's clock (``fetch_time``): ``open_time + timeframe <= server time``.

    ``price="mark"`` (swap only) fetches mark-price candles (ccxt ``params={"price": "mark"}``,
    Binance ``/fapi/v1/markPriceKlines``) into :class:`~trading.models.market.MarkCandle`.

    Errors: ExchangeUnavailable (cannot reach / rate limited), ExchangeRequestError,
    CandleFetchError (unknown symbol, bad range or timeframe, invalid candle from the exchange).
    """
    if timeframe not in SUPPORTED_TIMEFRAMES:
        raise CandleFetchError(f"unsupported timeframe {timeframe!r}; use one of {', '.join(SUPPORTED_TIMEFRAMES)}")
    if market_type not in ("spot", "swap"):
        raise CandleFetchError(f"unknown market type {market_type!r}; use spot or swap")
    if not symbols:
        raise CandleFetchError("no symbols given")
    if price not in ("last", "mark"):
        raise CandleFetchError(f"unknown price {price!r}; use last or mark")
    if price == "mark" and market_type != "swap":
        raise CandleFetchError("mark prices exist for perpetuals only; use --market-type swap")
    model = MarkCandle if price == "mark" else Candle
    tf = timeframe_ms(timeframe)
    since_ms = _as_ms(since, "since")
    until_ms = None if until is None else _as_ms(until, "until")
    if until_ms is not None and until_ms <= since_ms:
        raise CandleFetchError(f"--until {fmt_ms(until_ms)} is not after --since {fmt_ms(since_ms)}")
    say = progress or (lambda message: None)

    ccxt_types = ["spot"] if market_type == "spot" else ["linear"]
    client = exchange_client(exchange, options={"defaultType": market_type, "fetchMarkets": {"types": ccxt_types}})
    exchange_call(exchange, client.load_markets)
    for symbol in symbols:
        info = client.markets.get(symbol)
        if info is None or _ccxt_market_type(info) != market_type:
            raise CandleFetchError(f"{symbol} is not a {market_type} market on {exchange}")
    now_ms = int(exchange_call(exchange, client.fetch_time))
    report = FetchReport(exchange, timeframe, market_type, now_ms)
    exchange_row = exchange_ensure(code=exchange)

    for symbol in symbols:
        market, _ = market_upsert_ccxt(exchange=exchange_row, market=client.markets[symbol])
        last_ms = candles_last_open_ms(market=market, timeframe=timeframe, model=model)
        start = since_ms - since_ms % tf if since_ms % tf else since_ms
        resumed = last_ms is not None and last_ms + tf > start
        if resumed:
            start = last_ms + tf
        result = SymbolFetch(symbol, start, resumed)
        report.symbols.append(result)
        say(
            f"{symbol} {timeframe}: from {fmt_ms(start)} UTC"
            + (" (resuming after the last stored candle)" if resumed else "")
        )
        cursor, stored_times = start, []
        while (until_ms is None or cursor < until_ms) and cursor + tf <= now_ms:
            params = {} if until_ms is None else {"until": until_ms - 1}
            if price == "mark":
                params["price"] = "mark"
            rows = exchange_call(
                exchange, client.fetch_ohlcv, symbol, timeframe, since=cursor, limit=FETCH_LIMIT, params=params
            )
            result.requests += 1
            result.received += len(rows)
            if not rows:
                break
            page = CandleArrays.from_rows(rows)
            keep = (page.time >= cursor) & (page.time + tf <= now_ms)
            if until_ms is not None:
                keep &= page.time < until_ms
            result.dropped_open += int((page.time + tf > now_ms).sum())
            page = page.take(keep)
            valid, rejections = validate_candles(page, timeframe=timeframe)
            if rejections:
                bad = int(np.flatnonzero(~valid)[0])
                raise CandleFetchError(
                    f"{exchange} sent an invalid {symbol} {timeframe} candle at {fmt_ms(page.time[bad])} UTC: "
                    f"{rejections[0].reason}; nothing of this page was stored"
                )
            counts = candles_upsert(market=market, timeframe=timeframe, candles=page, model=model)
            result.inserted += counts.inserted
            result.updated += counts.updated
            result.unchanged += counts.unchanged
            stored_times.append(page.time)
            say(
                f"{symbol} {timeframe}: {result.inserted + result.updated + result.unchanged} candles"
                + (f" up to {fmt_ms(page.time[-1])} UTC" if len(page) else "")
            )
            last_row = int(rows[-1][0])
            if last_row < cursor or len(rows) < FETCH_LIMIT:
                break
            cursor = last_row + tf
        if stored_times:
            times = np.concatenate(stored_times)
            if len(times):
                result.first_ms, result.last_ms = int(times[0]), int(times[-1])
                result.gaps = find_gaps(times, timeframe=timeframe)
    return report


@dataclass
class FundingFetch:
    """What :func:`funding_fetch` did for one symbol (times in epoch ms)."""

    symbol: str
    start_ms: int
    requests: int = 0
    received: int = 0
    inserted: int = 0
    updated: int = 0
    unchanged: int = 0
    first_ms: int | None = None
    last_ms: int | None = None


FUNDING_LIMIT = 1000  # Binance's maximum funding events per request


def funding_fetch(
    *,
    exchange: str,
    symbols: list[str],
    since: datetime | int,
    until: datetime | int | None = None,
    progress: Callable[[str], None] | None = None,
) -> list[FundingFetch]:
    """Fetch realised funding rates ``since <= time < until`` of perpetual ``symbols`` through
    ccxt ``fetch_funding_rate_history`` (Binance ``/fapi/v1/fundingRate``) and upsert them.

    Funding times are rounded to the whole minute (Binance's ``fundingTime`` carries a few ms of
    jitter, e.g. ``08:00:00.008``); the rate is taken from the exchange's decimal string
    (``info.fundingRate``) as a Decimal. Resumes after the last stored event; each page is
    validated like a file (:func:`~trading.services.funding.validate_funding`) and upserted in
    its own transaction. Errors as :func:`candles_fetch`.
    """
    if not symbols:
        raise CandleFetchError("no symbols given")
    since_ms = _as_ms(since, "since")
    until_ms = None if until is None else _as_ms(until, "until")
    if until_ms is not None and until_ms <= since_ms:
        raise CandleFetchError(f"--until {fmt_ms(until_ms)} is not after --since {fmt_ms(since_ms)}")
    say = progress or (lambda message: None)
    client = exchange_client(exchange, options={"defaultType": "swap", "fetchMarkets": {"types": ["linear"]}})
    exchange_call(exchange, client.load_markets)
    for symbol in symbols:
        info = client.markets.get(symbol)
        if info is None or _ccxt_market_type(info) != "swap":
            raise CandleFetchError(f"{symbol} is not a swap market on {exchange}")
    exchange_row = exchange_ensure(code=exchange)
    out = []
    for symbol in symbols:
        market, _ = market_upsert_ccxt(exchange=exchange_row, market=client.markets[symbol])
        last = FundingRate.objects.filter(market=market).aggregate(last=Max("time"))["last"]
        start = (
            since_ms if last is None else max(since_ms, datetime_to_ms(last) + 60_000)
        )  # next minute: past the jitter
        result = FundingFetch(symbol, start)
        out.append(result)
        cursor = start
        while until_ms is None or cursor < until_ms:
            params = {} if until_ms is None else {"endTime": until_ms - 1}
            rows = exchange_call(
                exchange, client.fetch_funding_rate_history, symbol, since=cursor, limit=FUNDING_LIMIT, params=params
            )
            result.requests += 1
            result.received += len(rows)
            if not rows:
                break
            times = [int(round(int(r["timestamp"]) / 60_000)) * 60_000 for r in rows]
            rates = [Decimal(str((r.get("info") or {}).get("fundingRate", r["fundingRate"]))) for r in rows]
            keep = [k for k, t in enumerate(times) if t >= cursor - 60_000 and (until_ms is None or t < until_ms)]
            page, rejections = validate_funding(
                [times[k] for k in keep], [rates[k] for k in keep], list(range(1, len(keep) + 1))
            )
            if rejections:
                raise CandleFetchError(
                    f"{exchange} sent an invalid {symbol} funding event: {rejections[0].reason}; "
                    "nothing of this page was stored"
                )
            inserted, updated, unchanged = funding_upsert(market=market, rows=page)
            result.inserted += inserted
            result.updated += updated
            result.unchanged += unchanged
            if len(page):
                result.first_ms = page.time[0] if result.first_ms is None else result.first_ms
                result.last_ms = page.time[-1]
            say(f"{symbol} funding: {result.inserted + result.updated + result.unchanged} events")
            if len(rows) < FUNDING_LIMIT:
                break
            cursor = int(rows[-1]["timestamp"]) + 1
    return out
