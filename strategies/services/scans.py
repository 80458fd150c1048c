"""Scan services: run strategy detectors on the newest closed candle of each market, store the scan.

A scan is "as of" a time ``at`` (UTC): it reads only candles whose **close** time ≤ ``at``
(open time ≤ ``at`` − one timeframe), the last :data:`LOOKBACK_CANDLES` of them per market —
what the detectors need to warm up their indicators — plus BTC/USDT's over the same window for
the market condition (:class:`~strategies.signals.DetectorInput` ``btc``). Each detector of
:mod:`strategies.signals` then runs with ``since_ms`` = the open time of the market's newest
candle, so a scan returns the signals of that candle only. ``at`` is floored to the timeframe
(``12:30`` on 1h scans as of ``12:00``); without it the scan is as of the close of the newest
stored candle of the markets. A scan ``at`` T therefore equals the scan of the data truncated
at T (the detectors are causal and see the same window).

``scan_plan`` validates and loads (:class:`ScanError` with a one-line reason on bad input,
nothing written), ``scan_detect`` runs the detectors, ``scan_save`` stores a
:class:`~strategies.models.MarketScan` with its :class:`~strategies.models.ScanSignal` rows in
one transaction; :func:`scan_run` does the three.
"""

from __future__ import annotations

import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from django.db import transaction
from django.db.models import Max

from market7.timeframes import dt_to_ms, ms_to_dt, timeframe_ms
from strategies.engine.feed import Candles
from strategies.models import MarketScan, ScanSignal
from strategies.signals import Detector, DetectorInput, Signal, get_detector
from strategies.signals.base import json_safe
from trading.models import Candle, Market
from trading.selectors.candles import candles_arrays
from trading.services.bot_validation import fmt_minute

LOOKBACK_CANDLES = 500  # per market: enough for every detector's indicators (EMA 200, 4h highs ...)
BTC_SYMBOL = "BTC/USDT"


class ScanError(ValueError):
    """Bad scan inputs; the message is one line, for users."""


@dataclass
class ScanPlan:
    """Validated scan inputs and the loaded candles: ``at_ms`` is the close time of the newest
    candle read (epoch ms UTC); ``inputs`` one :class:`DetectorInput` per market, in the order
    given."""

    exchange: str
    timeframe: str
    at_ms: int
    detectors: tuple[Detector, ...]
    params: dict[str, dict[str, Any]]
    markets: dict[str, Market]
    inputs: tuple[DetectorInput, ...]
    started: float = field(default_factory=time.monotonic)

    @property
    def at(self) -> datetime:
        return ms_to_dt(self.at_ms)


def scan_plan(
    *,
    symbols: Sequence[str],
    timeframe: str,
    strategies: Sequence[str],
    at: datetime | None = None,
    params: Mapping[str, Mapping[str, Any]] | None = None,
    exchange: str = "binance",
    lookback: int = LOOKBACK_CANDLES,
) -> ScanPlan:
    """Check the inputs and load the candles; :class:`ScanError` on the first bad one.

    ``params``: ``{strategy: {param: value}}`` (the detector validates its own values).
    """
    started = time.monotonic()
    try:
        tf = timeframe_ms(timeframe)
    except ValueError as exc:
        raise ScanError(str(exc)) from None
    names = list(dict.fromkeys(s.strip() for s in strategies if s.strip()))
    if not names:
        raise ScanError("no strategies given")
    try:
        detectors = tuple(get_detector(n) for n in names)
    except KeyError as exc:
        raise ScanError(str(exc.args[0])) from None
    params = {k: dict(v) for k, v in (params or {}).items()}
    if stray := sorted(set(params) - set(names)):
        raise ScanError(f"params given for strategies not scanned: {', '.join(stray)}")
    symbols = list(dict.fromkeys(s.strip() for s in symbols if s.strip()))
    if not symbols:
        raise ScanError("no symbols given")
    found = {m.symbol: m for m in Market.objects.filter(exchange__code=exchange, symbol__in=[*symbols, BTC_SYMBOL])}
    if missing := [s for s in symbols if s not in found]:
        raise ScanError(f"unknown symbol(s) on {exchange}: {', '.join(missing)}")
    markets = {s: found[s] for s in symbols}
    if at is None:
        last = Candle.objects.filter(market__in=markets.values(), timeframe=timeframe).aggregate(t=Max("open_time"))[
            "t"
        ]
        if last is None:
            raise ScanError(f"no {timeframe} candles stored for {', '.join(symbols)}")
        at_ms = dt_to_ms(last) + tf
    else:
        if at.tzinfo is None:
            raise ScanError("at must be timezone-aware (UTC)")
        at_ms = dt_to_ms(at) // tf * tf
    window = {"timeframe": timeframe, "start": at_ms - lookback * tf, "end": at_ms - tf + 1}
    btc = _candles(found[BTC_SYMBOL], **window) if BTC_SYMBOL in found else None
    inputs = []
    for symbol, market in markets.items():
        candles = btc if symbol == BTC_SYMBOL and btc is not None else _candles(market, **window)
        if len(candles) == 0:
            raise ScanError(
                f"no {timeframe} candles of {symbol} closed by {fmt_minute(ms_to_dt(at_ms))} UTC "
                f"(looked back {lookback} candles)"
            )
        usable_btc = btc if symbol != BTC_SYMBOL and btc is not None and len(btc) else None
        inputs.append(DetectorInput(symbol, timeframe, candles, usable_btc))
    return ScanPlan(exchange, timeframe, at_ms, detectors, params, markets, tuple(inputs), started)


def _candles(market: Market, *, timeframe: str, start: int, end: int) -> Candles:
    a = candles_arrays(market=market, timeframe=timeframe, start=start, end=end)
    return Candles.from_arrays(a["time"], a["open"], a["high"], a["low"], a["close"], a["volume"])


def scan_detect(plan: ScanPlan, *, all_: bool = False) -> list[Signal]:
    """Every detector on every market's newest candle: the signals, market by market (order
    given) then strategy by strategy; passing ones only unless ``all_``. A detector's
    ``ParamError`` becomes a :class:`ScanError`."""
    from strategies.base import ParamError

    out: list[Signal] = []
    for data in plan.inputs:
        newest = int(data.candles.time[-1])
        for det in plan.detectors:
            try:
                found = det.detect(data, plan.params.get(det.name), since_ms=newest, all_=all_)
            except ParamError as exc:
                raise ScanError(f"invalid params for {det.name}: {exc}") from None
            out.extend(s for s in found if s.time >= newest and (all_ or s.passed))
    return out


def scan_save(plan: ScanPlan, signals: Sequence[Signal], *, owner=None) -> MarketScan:
    """Store the scan and its signals in one transaction (all or nothing)."""
    with transaction.atomic():
        scan = MarketScan.objects.create(
            owner=owner,
            at=plan.at,
            exchange=plan.exchange,
            timeframe=plan.timeframe,
            strategies=[d.name for d in plan.detectors],
            symbols_count=len(plan.markets),
            signals_count=len(signals),
            duration_ms=round((time.monotonic() - plan.started) * 1000),
        )
        ScanSignal.objects.bulk_create(
            [
                ScanSignal(
                    scan=scan,
                    market=plan.markets[s.symbol],
                    strategy=s.strategy,
                    time=ms_to_dt(s.time),
                    side=s.side,
                    score=s.score,
                    components=s.components_json(),
                    entry=s.entry,
                    stop_loss=s.stop_loss,
                    take_profit=s.take_profit,
                    rrr=s.rrr,
                    reason=s.reason,
                    passed=s.passed,
                    extra=json_safe(dict(s.extra)),
                )
                for s in signals
            ]
        )
    return scan


def scan_run(
    *,
    symbols: Sequence[str],
    timeframe: str,
    strategies: Sequence[str],
    at: datetime | None = None,
    all_: bool = False,
    owner=None,
    params: Mapping[str, Mapping[str, Any]] | None = None,
    save: bool = True,
    exchange: str = "binance",
) -> tuple[MarketScan | None, list[Signal]]:
    """Plan, detect and (with ``save``) store a scan; see the module docstring. Bad inputs:
    :class:`ScanError`, nothing saved. ``owner`` None: a system scan."""
    plan = scan_plan(
        symbols=symbols, timeframe=timeframe, strategies=strategies, at=at, params=params, exchange=exchange
    )
    signals = scan_detect(plan, all_=all_)
    return (scan_save(plan, signals, owner=owner) if save else None), signals


def scan_json(at_ms: int, signals: Sequence[Signal], *, all_: bool = False) -> dict[str, Any]:
    """The ``scan --json`` document: ``{"at": ISO UTC, "signals": [...]}``, each signal with
    symbol, strategy, time (ISO UTC, candle open), side, score, components
    ``{name: {"value", "points"}}``, entry, stop_loss, take_profit, rrr, reason (+ passed with
    ``all_``)."""
    rows = []
    for s in signals:
        row = {
            "symbol": s.symbol,
            "strategy": s.strategy,
            "time": _iso(s.time),
            "side": s.side,
            "score": s.score,
            "components": s.components_json(),
            "entry": s.entry,
            "stop_loss": s.stop_loss,
            "take_profit": s.take_profit,
            "rrr": s.rrr,
            "reason": s.reason,
        }
        if all_:
            row["passed"] = s.passed
        rows.append(row)
    return {"at": _iso(at_ms), "signals": rows}


def _iso(ms: int) -> str:
    return datetime.fromtimestamp(ms / 1000, tz=UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def parse_at(text: str) -> datetime:
    """``--at`` text (ISO, e.g. ``2025-06-01T12:00``; naive = UTC) -> aware datetime; ScanError."""
    try:
        value = datetime.fromisoformat(text.replace("Z", "+00:00"))
    except ValueError:
        raise ScanError(f"--at {text!r} is not an ISO time (e.g. 2025-06-01T12:00)") from None
    return value if value.tzinfo else value.replace(tzinfo=UTC)
