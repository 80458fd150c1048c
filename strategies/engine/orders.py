"""Order, fill and deal records of the trading core (float64, quote currency, epoch ms UTC).

Pure Python (no Django). These are the engine's outputs and what a strategy asks for:

* :class:`OrderIntent` / :class:`CancelIntent` — what a strategy returns from ``on_candle``;
* :class:`Order` — an order with its lifecycle ``new -> open -> partially_filled -> filled``
  or ``canceled`` / ``rejected`` (with ``reject_reason``);
* :class:`Fill` — one execution (price, amount, fee in quote, maker/taker, time);
* :class:`ClosedTrade` — a closed deal (entry/exit averages, P&L, exit reason, tags).

All have ``to_dict()`` (JSON-safe) and ``from_dict()``. The Django layer converts prices and
amounts to ``Decimal`` at the database boundary (``MarketSpec.price_str/amount_str``).
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field, fields
from typing import Any

__all__ = [
    "Side",
    "OrderType",
    "OrderStatus",
    "Liquidity",
    "OrderIntent",
    "CancelIntent",
    "Order",
    "Fill",
    "ClosedTrade",
]


class Side:
    BUY = "buy"
    SELL = "sell"


class OrderType:
    MARKET = "market"
    LIMIT = "limit"
    STOP = "stop_market"


class OrderStatus:
    NEW = "new"
    OPEN = "open"
    PARTIALLY_FILLED = "partially_filled"
    FILLED = "filled"
    CANCELED = "canceled"
    REJECTED = "rejected"
    FINAL = frozenset({"filled", "canceled", "rejected"})


class Liquidity:
    MAKER = "maker"
    TAKER = "taker"


@dataclass(slots=True)
class OrderIntent:
    """What a strategy wants to place. Give ``amount`` (base units) or ``quote_amount`` (quote).

    ``quote_amount`` is converted with the limit price, the stop price, or (market orders) the
    close of the deciding candle, then truncated to the market's amount tick.
    ``reduce_only`` orders only ever shrink the open position (take profit, stop loss, close).
    """

    symbol: str
    side: str
    type: str = OrderType.MARKET
    amount: float | None = None
    quote_amount: float | None = None
    price: float | None = None
    stop_price: float | None = None
    tag: str = ""
    so_index: int = 0
    deal_id: str = ""
    reduce_only: bool = False


@dataclass(slots=True)
class CancelIntent:
    """Cancel the open order ``client_order_id`` (``reason`` is kept on the order)."""

    client_order_id: str
    reason: str = ""


def _from_dict(cls, data: dict[str, Any]):
    names = {f.name for f in fields(cls)}
    return cls(**{k: v for k, v in data.items() if k in names})


@dataclass(slots=True)
class Order:
    """One order. Prices/amounts float64 (quote / base units), times epoch ms UTC.

    ``created_at`` is the close time of the candle the order was decided on; an order can only
    fill on candles that open at or after it. ``average`` is the average fill price.
    """

    client_order_id: str
    symbol: str
    side: str
    type: str
    amount: float
    price: float | None = None
    stop_price: float | None = None
    filled: float = 0.0
    average: float | None = None
    status: str = OrderStatus.NEW
    reject_reason: str = ""
    cancel_reason: str = ""
    tag: str = ""
    so_index: int = 0
    deal_id: str = ""
    reduce_only: bool = False
    created_at: int = 0
    updated_at: int = 0
    fee: float = 0.0
    reserved: float = 0.0  # quote locked by the simulated broker while the order rests

    @property
    def is_open(self) -> bool:
        return self.status == OrderStatus.OPEN or self.status == OrderStatus.PARTIALLY_FILLED

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> Order:
        return _from_dict(cls, data)


@dataclass(slots=True)
class Fill:
    """One execution. ``fee`` is in quote currency; ``liquidity`` is ``maker`` or ``taker``."""

    client_order_id: str
    symbol: str
    side: str
    price: float
    amount: float
    fee: float
    liquidity: str
    time: int
    tag: str = ""
    deal_id: str = ""

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> Fill:
        return _from_dict(cls, data)


@dataclass(slots=True)
class ClosedTrade:
    """A closed deal (position opened from flat and brought back to flat).

    ``entry_price``/``exit_price`` are amount-weighted averages; ``amount`` the total amount
    bought (long) or sold (short); ``cost`` the entry notional in quote; ``fees`` all fees in
    quote; ``pnl`` = exit value - entry cost - fees (long; mirrored for short), ``pnl_pct`` =
    pnl / cost x 100. ``exit_reason`` is the tag of the order that flattened the position.
    """

    deal_id: str
    symbol: str
    side: str
    opened_at: int
    closed_at: int
    entry_price: float
    exit_price: float
    amount: float
    cost: float
    fees: float
    pnl: float
    pnl_pct: float
    exit_reason: str
    safety_orders_filled: int = 0
    tags: list[str] = field(default_factory=list)
    orders: list[str] = field(default_factory=list)
    # perpetuals only (0.0 on spot): leverage, initial margin (quote) = cost / leverage, the
    # liquidation price last computed before the close (quote), its minimum distance from the
    # adverse mark extreme over the deal (%), and the funding paid (quote, signed: > 0 paid).
    leverage: float = 0.0
    margin: float = 0.0
    liquidation_price: float = 0.0
    min_liquidation_distance_pct: float = 0.0
    funding: float = 0.0

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> ClosedTrade:
        return _from_dict(cls, data)


# Deal is the field's word (3Commas); ClosedTrade is the generic one.
Deal = ClosedTrade
