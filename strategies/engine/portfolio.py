"""One portfolio (one capital in quote currency) shared by every market a bot trades.

Pure Python (no Django), float64. Accounting is a signed cash account: a buy spends
``price x amount + fee`` quote, a sell receives ``price x amount - fee``; a position is a
signed amount per symbol (long > 0, short < 0). Equity is therefore
``cash + sum(amount_s x close_s)`` for longs and shorts alike. Shorts are collateralised 1:1:
the buying power (:meth:`Portfolio.free`) of a short of notional N is reduced by N, i.e.
``free = cash - reserved - 2 x sum(|short amount| x short entry price)``.

A *deal* is the life of a position from flat back to flat; the portfolio records entries,
exits, fees and safety-order fills per deal and emits a :class:`ClosedTrade` when it closes.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from typing import Any

from .orders import ClosedTrade, Fill, Order, Side

__all__ = ["Position", "OpenDeal", "Portfolio"]


@dataclass(slots=True)
class Position:
    """Open position in one symbol: signed ``amount`` (base units), average ``entry_price`` (quote)."""

    symbol: str
    amount: float = 0.0
    entry_price: float = 0.0
    deal_id: str = ""

    @property
    def side(self) -> str:
        return "long" if self.amount > 0 else "short" if self.amount < 0 else ""

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


@dataclass(slots=True)
class OpenDeal:
    """Running totals of a deal that is still open (quote currency, base units, epoch ms)."""

    deal_id: str
    symbol: str
    side: str
    opened_at: int
    entry_amount: float = 0.0
    entry_cost: float = 0.0
    exit_amount: float = 0.0
    exit_value: float = 0.0
    fees: float = 0.0
    safety_orders_filled: int = 0
    tags: list[str] = field(default_factory=list)
    orders: list[str] = field(default_factory=list)
    # perpetuals: funding paid (quote, signed), the last liquidation price computed and the
    # minimum distance (%) of the adverse mark extreme from it over the deal (100: not yet seen)
    funding: float = 0.0
    liquidation_price: float = 0.0
    min_liq_distance_pct: float = 100.0

    @property
    def entry_price(self) -> float:
        return self.entry_cost / self.entry_amount if self.entry_amount else 0.0

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> OpenDeal:
        return cls(**d)


class Portfolio:
    """Cash, positions and open deals. ``cash`` and ``reserved`` are quote currency."""

    __slots__ = ("cash", "reserved", "positions", "deals", "amount_ticks", "_shorts", "swaps")

    def __init__(self, cash: float, amount_ticks: dict[str, float] | None = None) -> None:
        self.cash = float(cash)
        self.reserved = 0.0
        self.positions: dict[str, Position] = {}
        self.deals: dict[str, OpenDeal] = {}
        self.amount_ticks = amount_ticks or {}
        self._shorts: dict[str, float] = {}  # symbol -> short collateral (|amount| x entry)
        self.swaps: dict[str, float] = {}  # perpetual symbol -> leverage (margin, not 1:1)

    # -- reads ------------------------------------------------------------------------------
    def position(self, symbol: str) -> Position:
        p = self.positions.get(symbol)
        if p is None:
            p = self.positions[symbol] = Position(symbol)
        return p

    def amount(self, symbol: str) -> float:
        p = self.positions.get(symbol)
        return p.amount if p is not None else 0.0

    def short_collateral(self) -> float:
        return sum(self._shorts[s] for s in sorted(self._shorts)) if self._shorts else 0.0

    def free(self) -> float:
        """Buying power in quote: cash minus reservations of resting orders minus short collateral.

        Perpetual positions (:attr:`swaps`) are collateralised by margin: their notional at entry
        is added back to the cash account (wallet balance = cash + amount x entry) and their
        initial margin ``|amount| x entry / leverage`` is held instead."""
        free = self.cash - self.reserved
        if self._shorts:
            free -= 2.0 * self.short_collateral()
        if self.swaps:
            for s in sorted(self.swaps):
                p = self.positions.get(s)
                if p is not None and p.amount:
                    free += p.amount * p.entry_price - abs(p.amount) * p.entry_price / self.swaps[s]
        return free

    def wallet_balance(self) -> float:
        """Cross wallet balance (quote): cash plus every perpetual position at its entry price."""
        w = self.cash
        for s in sorted(self.swaps):
            p = self.positions.get(s)
            if p is not None and p.amount:
                w += p.amount * p.entry_price
        return w

    def _track_short(self, pos: Position) -> None:
        if pos.amount < 0 and pos.symbol not in self.swaps:
            self._shorts[pos.symbol] = -pos.amount * pos.entry_price
        else:
            self._shorts.pop(pos.symbol, None)

    def equity(self, prices: dict[str, float]) -> float:
        """Mark-to-market equity (quote) given ``{symbol: price}`` for every open position."""
        eq = self.cash
        for s in sorted(self.positions):
            a = self.positions[s].amount
            if a:
                eq = eq + a * prices[s]
        return eq

    # -- writes -----------------------------------------------------------------------------
    def apply_fill(self, fill: Fill, order: Order, new_deal_id) -> ClosedTrade | None:
        """Book ``fill`` (of ``order``): cash, position, deal totals. Returns the closed deal, if any.

        ``new_deal_id()`` is called when the fill opens a position from flat and the order has
        no ``deal_id``. Amounts are snapped to the market's amount tick so a position that was
        bought in pieces and sold in one piece ends at exactly zero.
        """
        pos = self.position(fill.symbol)
        signed = fill.amount if fill.side == Side.BUY else -fill.amount
        notional = fill.price * fill.amount
        if fill.side == Side.BUY:
            self.cash -= notional + fill.fee
        else:
            self.cash += notional - fill.fee

        if pos.amount == 0.0:
            deal_id = order.deal_id or new_deal_id()
            order.deal_id = deal_id
            fill.deal_id = deal_id
            pos.deal_id = deal_id
            self.deals[deal_id] = OpenDeal(deal_id, fill.symbol, "long" if signed > 0 else "short", fill.time)
        deal = self.deals[pos.deal_id]
        fill.deal_id = pos.deal_id
        if not order.deal_id:
            order.deal_id = pos.deal_id
        if order.client_order_id not in deal.orders:
            deal.orders.append(order.client_order_id)
        deal.fees += fill.fee
        increasing = pos.amount == 0.0 or (pos.amount > 0) == (signed > 0)
        tick = self.amount_ticks.get(fill.symbol, 1e-12)
        new_amount = round((pos.amount + signed) / tick) * tick
        if abs(new_amount) < tick / 2:
            new_amount = 0.0
        if increasing:
            deal.entry_amount += fill.amount
            deal.entry_cost += notional
            if order.tag == "safety_order":
                deal.safety_orders_filled += 1
            pos.entry_price = deal.entry_cost / deal.entry_amount
            pos.amount = new_amount
            self._track_short(pos)
            return None
        deal.exit_amount += fill.amount
        deal.exit_value += notional
        pos.amount = new_amount
        self._track_short(pos)
        if new_amount != 0.0:
            return None
        # flat: the deal is closed
        del self.deals[deal.deal_id]
        pos.entry_price = 0.0
        pos.deal_id = ""
        if deal.side == "long":
            pnl = deal.exit_value - deal.entry_cost - deal.fees - deal.funding
        else:
            pnl = deal.entry_cost - deal.exit_value - deal.fees - deal.funding
        lev = self.swaps.get(deal.symbol, 0.0)
        return ClosedTrade(
            deal_id=deal.deal_id,
            symbol=deal.symbol,
            side=deal.side,
            opened_at=deal.opened_at,
            closed_at=fill.time,
            entry_price=deal.entry_price,
            exit_price=deal.exit_value / deal.exit_amount,
            amount=deal.entry_amount,
            cost=deal.entry_cost,
            fees=deal.fees,
            pnl=pnl,
            pnl_pct=pnl / deal.entry_cost * 100.0 if deal.entry_cost else 0.0,
            exit_reason=order.tag or "close",
            safety_orders_filled=deal.safety_orders_filled,
            tags=list(deal.tags),
            orders=list(deal.orders),
            leverage=lev,
            margin=deal.entry_cost / lev if lev else 0.0,
            liquidation_price=deal.liquidation_price,
            min_liquidation_distance_pct=deal.min_liq_distance_pct if lev else 0.0,
            funding=deal.funding,
        )

    # -- state ------------------------------------------------------------------------------
    def to_dict(self) -> dict[str, Any]:
        return {
            "cash": self.cash,
            "positions": {s: p.to_dict() for s, p in sorted(self.positions.items()) if p.amount != 0.0},
            "deals": {k: d.to_dict() for k, d in sorted(self.deals.items())},
        }

    @classmethod
    def from_dict(
        cls, d: dict[str, Any], amount_ticks: dict[str, float] | None = None, swaps: dict[str, float] | None = None
    ) -> Portfolio:
        p = cls(d["cash"], amount_ticks)
        p.swaps = dict(swaps or {})
        p.positions = {s: Position(**v) for s, v in d.get("positions", {}).items()}
        p.deals = {k: OpenDeal.from_dict(v) for k, v in d.get("deals", {}).items()}
        for pos in p.positions.values():
            p._track_short(pos)
        return p
