"""USDT-M perpetuals at the Django boundary: validate leverage settings, build the engine's
swap :class:`~strategies.engine.MarketSpec`, and load mark candles and funding rates for a feed.

Used by the backtest service (``strategies.services.backtests``) and by paper bots (the bot
validation and the runner's feed), so a backtest and a bot of the same settings run the same
engine inputs. The pure formulas (tiers, liquidation price, funding) live in
:mod:`strategies.engine.perps`; liquidation and funding are applied by the engine
(:mod:`strategies.engine.margin`).

Settings (:class:`PerpetualSettings`, stored as JSON ``{"leverage", "margin_mode",
"liquidation_buffer_pct"}``):

* ``leverage`` — a whole number 1..125, at most the maximum leverage of the market's first
  tier (the bundled tier table, ``strategies/engine/data/leverage_tiers.json``). A market
  without a bundled tier table is refused (no invented maintenance rates).
* ``margin_mode`` — ``isolated`` or ``cross``.
* ``liquidation_buffer_pct`` — Market7's buffer guard in percent (0 = off, < 100).

Errors are :class:`PerpetualError` (a ``ValueError``) with one line for users.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, replace
from datetime import timedelta
from typing import Any

import numpy as np

from strategies.engine import Candles, MarketSpec
from strategies.engine.perps import MAX_LEVERAGE, bundled_tiers
from trading.brokers import market_spec
from trading.models.market import FundingRate, MarkCandle, Market
from trading.selectors.candles import EPOCH, candles_arrays
from trading.services.funding import funding_arrays

__all__ = [
    "MARGIN_MODES",
    "PerpetualError",
    "PerpetualSettings",
    "funding_coverage_check",
    "perpetual_feed_parts",
    "perpetual_settings_validate",
    "perpetual_spec",
]

MARGIN_MODES = ("isolated", "cross")
SWAP_SYMBOL = re.compile(r"^[A-Z0-9]+/USDT:USDT$")
FUNDING_GAP_MS = 8 * 3_600_000  # Binance's longest funding interval (8 h)


class PerpetualError(ValueError):
    """Unusable perpetual settings or market; the message is one line, for users."""


@dataclass(frozen=True)
class PerpetualSettings:
    """Validated leverage settings of a swap backtest or bot (see the module docstring)."""

    leverage: int
    margin_mode: str
    liquidation_buffer_pct: float = 0.0

    def to_dict(self) -> dict[str, Any]:
        return {
            "leverage": self.leverage,
            "margin_mode": self.margin_mode,
            "liquidation_buffer_pct": self.liquidation_buffer_pct,
        }


def perpetual_settings_validate(
    *,
    markets: list[Market] | tuple[Market, ...],
    leverage: Any,
    margin_mode: Any = "isolated",
    liquidation_buffer_pct: Any = 0,
) -> PerpetualSettings:
    """Check ``leverage`` / ``margin_mode`` / ``liquidation_buffer_pct`` against every market of
    ``markets`` (each a ``Market`` of type swap named ``XXX/USDT:USDT`` with a bundled tier
    table). Returns the settings; raises :class:`PerpetualError` on the first bad one."""
    try:
        lev_f = float(leverage)
    except (TypeError, ValueError):
        raise PerpetualError(f"leverage {leverage!r} is not a number") from None
    if not lev_f.is_integer() or not 1 <= lev_f <= MAX_LEVERAGE:
        raise PerpetualError(f"leverage must be a whole number 1..{MAX_LEVERAGE}, got {leverage}")
    lev = int(lev_f)
    if margin_mode not in MARGIN_MODES:
        raise PerpetualError(f"margin mode must be isolated or cross, got {margin_mode!r}")
    try:
        buffer = float(liquidation_buffer_pct or 0)
    except (TypeError, ValueError):
        raise PerpetualError(f"liquidation buffer {liquidation_buffer_pct!r} is not a number") from None
    if not 0 <= buffer < 100:
        raise PerpetualError(f"liquidation buffer must be 0..100 %, got {buffer:g}")
    for m in markets:
        if m.type != Market.Type.SWAP or not SWAP_SYMBOL.match(m.symbol):
            raise PerpetualError(f"{m.symbol} is not a USDT-M perpetual (a swap market named like BTC/USDT:USDT)")
        tiers = bundled_tiers(m.symbol)
        if tiers is None:
            raise PerpetualError(
                f"{m.symbol}: no leverage tier table is bundled (strategies/engine/data/leverage_tiers.json); "
                "refused rather than guessing maintenance margin rates"
            )
        cap = tiers.max_leverage(0.0)
        if lev > cap:
            raise PerpetualError(f"{m.symbol}: leverage {lev} > {cap:g}, the maximum of its first tier")
    return PerpetualSettings(lev, margin_mode, buffer)


def perpetual_spec(market: Market, settings: PerpetualSettings | dict[str, Any]) -> MarketSpec:
    """The engine spec of swap ``market`` with ``settings`` (precision, limits and fees as
    :func:`trading.brokers.market_spec`; tiers bundled)."""
    if isinstance(settings, dict):
        settings = PerpetualSettings(**settings)
    return replace(
        market_spec(market),
        market_type="swap",
        leverage=float(settings.leverage),
        margin_mode=settings.margin_mode,
        liquidation_buffer_pct=float(settings.liquidation_buffer_pct),
    )


def perpetual_feed_parts(
    markets: list[Market] | tuple[Market, ...], timeframe: str, start_ms: int, end_ms: int
) -> tuple[dict[str, Candles], dict[str, tuple[np.ndarray, np.ndarray]]]:
    """Mark candles (open time in ``[start_ms, end_ms]``) and funding events (time in
    ``[start_ms, end_ms + timeframe)``: the events inside the last candle) of ``markets``, as
    ``Feed(mark=..., funding=...)`` takes them. A market without mark candles is left out (the
    engine then checks liquidation on last price and records why)."""
    from market7.timeframes import timeframe_ms

    tf = timeframe_ms(timeframe)
    mark: dict[str, Candles] = {}
    funding: dict[str, tuple[np.ndarray, np.ndarray]] = {}
    for m in markets:
        a = candles_arrays(market=m, timeframe=timeframe, start=start_ms, end=end_ms + 1, model=MarkCandle)
        if len(a["time"]):
            mark[m.symbol] = Candles.from_arrays(a["time"], a["open"], a["high"], a["low"], a["close"], a["volume"])
        f = funding_arrays(market=m, start_ms=start_ms, end_ms=end_ms + tf)
        funding[m.symbol] = (f["time"], f["rate"])
    return mark, funding


def funding_coverage_check(markets: list[Market] | tuple[Market, ...], start_ms: int, end_ms: int) -> None:
    """The stored funding events of each market must cover ``[start_ms, end_ms]`` to within one
    funding interval (8 h): a window without stored funding would silently pay none.
    Raises :class:`PerpetualError` naming the file to import."""
    from django.db.models import Max, Min

    for m in markets:
        span = FundingRate.objects.filter(market=m).aggregate(first=Min("time"), last=Max("time"))
        if span["first"] is None:
            raise PerpetualError(
                f"no funding rates stored for {m.symbol}: import {m.exchange_symbol or m.base + m.quote}-funding.csv.gz"
            )
        first = (span["first"] - EPOCH) // timedelta(milliseconds=1)
        last = (span["last"] - EPOCH) // timedelta(milliseconds=1)
        if start_ms < first - FUNDING_GAP_MS or end_ms > last + FUNDING_GAP_MS:
            from trading.services.candle_files import fmt_ms

            raise PerpetualError(
                f"funding rates of {m.symbol} are stored for {fmt_ms(first)} .. {fmt_ms(last)} UTC only; "
                f"the window {fmt_ms(start_ms)} .. {fmt_ms(end_ms)} reaches outside"
            )
