"""Brokers of bots: the paper broker (the backtest's fill model) and the Decimal boundary.

:class:`PaperBroker` **is** the engine's :class:`~strategies.engine.broker.SimulatedBroker` —
the one fill model of Market7 (next-open market fills, limit/stop rules, pessimistic order of
events inside a candle, fees, precision and minimums) — so a paper bot fills exactly like a
backtest of the same candles. What it adds is the database boundary: engine results are
float64; :func:`price_dec` / :func:`amount_dec` / :func:`money_dec` turn them into
``Decimal`` rounded to the market's precision (ccxt ``decimal_to_precision`` through
``MarketSpec.price_str/amount_str``) or, for quote money (costs, fees, P&L), to
:data:`MONEY_PLACES` decimal places.

:func:`broker_for` picks a bot's broker: paper, or for a live bot
:class:`trading.brokers.ccxt_live.CcxtBroker` — the same protocol through ccxt — signed with
the bot's exchange account (docs/live.md).
"""

from __future__ import annotations

from decimal import ROUND_HALF_EVEN, Decimal
from typing import Any

from strategies.engine.broker import SimulatedBroker
from strategies.engine.market import MarketSpec

# Slippage of paper fills (basis points against you on market and stop fills) — the same
# default as backtests (strategies.models.BacktestRun.slippage_bps).
PAPER_SLIPPAGE_BPS = 5.0
MONEY_PLACES = Decimal("1e-8")  # quote money (cost, fees, P&L, equity) is rounded to 1e-8


class LiveTradingDisabled(RuntimeError):
    """Live trading is not enabled yet; bots run in paper mode only."""


class PaperBroker(SimulatedBroker):
    """The simulated fill model, for paper bots. Same arguments as ``SimulatedBroker``."""

    def __init__(self, slippage_bps: float = PAPER_SLIPPAGE_BPS, use_lower_timeframe: bool = True) -> None:
        super().__init__(slippage_bps=slippage_bps, use_lower_timeframe=use_lower_timeframe)


def broker_for(mode: str, *, account=None):
    """The broker of a bot's ``mode``: a :class:`PaperBroker` for ``paper``; for ``live`` a
    :class:`trading.brokers.ccxt_live.CcxtBroker` signed with ``account`` (the bot's
    ``ExchangeAccount``; none is :class:`LiveTradingDisabled`)."""
    if mode == "paper":
        return PaperBroker()
    if mode == "live":
        if account is None:
            raise LiveTradingDisabled("a live bot needs an exchange account")
        from trading.brokers.ccxt_live import CcxtBroker
        from trading.services.exchange_accounts import account_client

        return CcxtBroker(account_client(account))
    raise ValueError(f"unknown bot mode {mode!r}")


def market_spec(market) -> MarketSpec:
    """The engine's :class:`MarketSpec` of a ``trading.models.Market`` row (its ccxt
    ``precision``/``limits`` in TICK_SIZE mode, as Binance gives them, and fee fractions).
    Markets imported from files without a ``discover_markets`` run have no precision yet: the
    :data:`SPEC_DEFAULTS` apply (1e-8 ticks, 5 quote minimum notional, 10 bps fees) — the same
    values ``MarketSpec``'s own defaults have, given explicitly."""
    precision = dict(market.precision or {})
    limits = {k: dict(v or {}) for k, v in (market.limits or {}).items()}
    d = SPEC_DEFAULTS
    if precision.get("amount") is None:
        precision["amount"] = d["amount_tick"]
    if precision.get("price") is None:
        precision["price"] = d["price_tick"]
    limits.setdefault("amount", {})
    limits.setdefault("cost", {})
    if limits["amount"].get("min") is None:
        limits["amount"]["min"] = d["min_amount"]
    if limits["cost"].get("min") is None:
        limits["cost"]["min"] = d["min_cost"]
    data: dict[str, Any] = {
        "symbol": market.symbol,
        "precision": precision,
        "limits": limits,
        "maker": float(market.maker_fee) if market.maker_fee is not None else d["fee"],
        "taker": float(market.taker_fee) if market.taker_fee is not None else d["fee"],
    }
    return MarketSpec.from_ccxt(data)


SPEC_DEFAULTS = {"amount_tick": 1e-8, "price_tick": 1e-8, "min_amount": 0.0, "min_cost": 5.0, "fee": 0.001}


def price_dec(spec: MarketSpec, value: float | None) -> Decimal | None:
    """A price (quote) as Decimal rounded to the market's price tick."""
    return None if value is None else Decimal(spec.price_str(float(value)))


def amount_dec(spec: MarketSpec, value: float | None) -> Decimal | None:
    """An amount (base units) as Decimal truncated to the market's amount tick."""
    return None if value is None else Decimal(spec.amount_str(abs(float(value)))) * (-1 if value < 0 else 1)


def avg_price_dec(value: float | None) -> Decimal | None:
    """An average price (may sit between ticks) with 12 significant decimals kept."""
    return None if value is None else Decimal(repr(float(value))).quantize(Decimal("1e-10"), rounding=ROUND_HALF_EVEN)


def money_dec(value: float | None) -> Decimal | None:
    """Quote money (cost, fee, P&L, equity) as Decimal rounded to :data:`MONEY_PLACES`."""
    return None if value is None else Decimal(repr(float(value))).quantize(MONEY_PLACES, rounding=ROUND_HALF_EVEN)


__all__ = [
    "LiveTradingDisabled",
    "MONEY_PLACES",
    "PAPER_SLIPPAGE_BPS",
    "PaperBroker",
    "amount_dec",
    "avg_price_dec",
    "broker_for",
    "market_spec",
    "money_dec",
    "price_dec",
]
