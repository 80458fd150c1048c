"""Market specifications: precision, limits and fees of one tradable market.

Pure Python (no Django). A :class:`MarketSpec` is what the engine and the simulated broker
need to know about a market to size, round, validate and charge an order. Amounts are
truncated and prices rounded to the market's tick sizes with ccxt's own precision helpers
(``ccxt.base.decimal_to_precision`` in ``TICK_SIZE`` mode) so a backtest rounds exactly like
the live exchange adapter does.
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass, fields
from functools import lru_cache
from typing import Any

from ccxt.base.decimal_to_precision import (
    DECIMAL_PLACES,
    ROUND,
    SIGNIFICANT_DIGITS,
    TICK_SIZE,
    TRUNCATE,
    decimal_to_precision,
)

__all__ = ["MarketSpec"]


def _tick_str(tick: float) -> str:
    # repr of a float tick such as 1e-05 is accepted by ccxt's helper, but a plain decimal
    # string avoids scientific notation surprises.
    return format(tick, ".12f").rstrip("0").rstrip(".") or "0"


@lru_cache(maxsize=256)
def _decimals(tick: float) -> int:
    s = _tick_str(tick)
    return len(s.split(".")[1]) if "." in s else 0


_EPS = 1e-7
_POW10: dict[float, tuple[float, float] | None] = {}


def _pow10(tick: float) -> tuple[float, float] | None:
    """``(10^d, 0.0)`` when ``tick == 10^-d`` (d >= 0), ``(1.0, tick)`` when ``tick`` is 10, 100,
    ...; ``None`` for any other tick. Cached per tick."""
    try:
        return _POW10[tick]
    except KeyError:
        pass
    out = None
    s = _tick_str(tick)
    if float(s) == tick:
        if s == "1" or (s.startswith("0.") and s[2:-1].strip("0") == "" and s[-1] == "1"):
            d = len(s) - 2 if s != "1" else 0
            if d <= 22:
                out = (10.0**d, 0.0)
        elif s.startswith("1") and s[1:].strip("0") == "" and len(s) <= 22:
            out = (1.0, float(s))
    _POW10[tick] = out
    return out


@dataclass(frozen=True, slots=True)
class MarketSpec:
    """Precision, limits and fees of one market (float64, quote currency for costs).

    Attributes:
        symbol: ccxt unified symbol, ``"BTC/USDT"`` (spot) or ``"BTC/USDT:USDT"`` (USDT-M perpetual).
        amount_tick: smallest amount step in base units (amounts are TRUNCATED to it).
        price_tick: smallest price step in quote (prices are ROUNDED to it).
        min_amount: orders below this amount (base units) are rejected.
        min_cost: orders below this notional (quote) are rejected (Binance ``NOTIONAL`` filter).
        maker_fee_bps / taker_fee_bps: fees in basis points of the notional, charged in quote.

    Perpetuals (``market_type="swap"``, USDT-M linear contracts; formulas in
    :mod:`strategies.engine.perps`):
        leverage: 1..125, capped by the first tier of ``tiers`` (and per order by the tier of
            the position notional).
        margin_mode: ``"isolated"`` (the deal's margin alone backs it) or ``"cross"`` (the
            whole wallet). Positions are one-way (one net position per symbol).
        tiers: maintenance brackets ``((min_notional, max_notional, mmr, max_leverage, cum), ...)``
            (:meth:`~strategies.engine.perps.TierTable.to_rows`); empty: the bundled table of
            ``symbol`` (:func:`~strategies.engine.perps.bundled_tiers`).
        liquidation_fee_bps: liquidation clearance fee of the notional at the liquidation price
            (Market7's default 125 bps = 1.25 %); at most the margin left (isolated or cross).
        liquidation_buffer_pct: Market7's liquidation-buffer guard: no entry or safety order
            whose fill would leave the liquidation price closer than this % to the order price.

    The defaults are Binance-spot-like (10 bps fees, 5 USDT minimum notional) with fine ticks;
    use :meth:`binance_like` to get ticks scaled to a price level, or :meth:`from_ccxt` with the
    market dict ccxt's ``load_markets()`` returns (or the one stored in the database).
    """

    symbol: str
    amount_tick: float = 1e-8
    price_tick: float = 1e-8
    min_amount: float = 0.0
    min_cost: float = 5.0
    maker_fee_bps: float = 10.0
    taker_fee_bps: float = 10.0
    market_type: str = "spot"
    leverage: float = 1.0
    margin_mode: str = "isolated"
    tiers: tuple = ()
    liquidation_fee_bps: float = 125.0
    liquidation_buffer_pct: float = 0.0

    def __post_init__(self) -> None:
        if self.market_type not in ("spot", "swap"):
            raise ValueError(f"market_type must be spot or swap, got {self.market_type!r}")
        if self.market_type == "swap":
            from .perps import bundled_tiers, validate_leverage

            if self.margin_mode not in ("isolated", "cross"):
                raise ValueError(f"margin_mode must be isolated or cross, got {self.margin_mode!r}")
            tiers = tuple(tuple(float(x) for x in row) for row in self.tiers)
            if not tiers:
                table = bundled_tiers(self.symbol)
                if table is None:
                    raise ValueError(
                        f"no leverage tiers bundled for {self.symbol}; give tiers (ccxt fetch_leverage_tiers)"
                    )
                tiers = table.to_rows()
            object.__setattr__(self, "tiers", tiers)
            validate_leverage(self.leverage, self.tier_table())

    @property
    def is_swap(self) -> bool:
        return self.market_type == "swap"

    def tier_table(self):
        """The :class:`~strategies.engine.perps.TierTable` of a swap market (cached)."""
        from .perps import TierTable

        cached = _TIER_CACHE.get(self.tiers)
        if cached is None:
            cached = _TIER_CACHE[self.tiers] = TierTable.from_rows(self.tiers)
        return cached

    # -- construction -------------------------------------------------------------------
    @classmethod
    def from_ccxt(cls, market: dict[str, Any], precision_mode: int = TICK_SIZE) -> MarketSpec:
        """Build from a ccxt market dict (``precision``, ``limits``, ``maker``, ``taker``).

        ``precision_mode`` is the exchange's ``precisionMode`` (ccxt ``TICK_SIZE`` for Binance;
        with ``DECIMAL_PLACES`` a precision of ``2`` means a tick of ``0.01``). Fees in the dict
        are fractions (``0.001``) and become basis points (``10``). Missing values fall back to
        the class defaults. Raises ``KeyError`` when ``symbol`` is missing.
        """
        precision = market.get("precision") or {}
        limits = market.get("limits") or {}

        def tick(value: Any, default: float) -> float:
            if value is None:
                return default
            value = float(value)
            if precision_mode == DECIMAL_PLACES or (precision_mode != TICK_SIZE and value >= 1 and value.is_integer()):
                return 10.0 ** (-int(value))
            if precision_mode == SIGNIFICANT_DIGITS:
                raise ValueError("SIGNIFICANT_DIGITS precision is not supported; convert to a tick size first")
            return value

        def lim(group: str, key: str, default: float) -> float:
            v = (limits.get(group) or {}).get(key)
            return default if v is None else float(v)

        maker = market.get("maker")
        taker = market.get("taker")
        return cls(
            symbol=market["symbol"],
            amount_tick=tick(precision.get("amount"), _DEFAULTS["amount_tick"]),
            price_tick=tick(precision.get("price"), _DEFAULTS["price_tick"]),
            min_amount=lim("amount", "min", 0.0),
            min_cost=lim("cost", "min", 0.0),
            maker_fee_bps=_DEFAULTS["maker_fee_bps"] if maker is None else float(maker) * 1e4,
            taker_fee_bps=_DEFAULTS["taker_fee_bps"] if taker is None else float(taker) * 1e4,
        )

    @classmethod
    def binance_like(cls, symbol: str, price: float, **overrides: Any) -> MarketSpec:
        """Binance-like ticks for a market trading around ``price`` (quote).

        Price tick: ``10^(floor(log10(price)) - 6)``, at least 1e-8 (42,283.58 -> 0.01,
        0.1234 -> 1e-7). Amount tick: ``10^(-floor(log10(price)) - 1)`` within [1e-8, 1]
        (BTC -> 0.00001, ETH -> 0.0001, SOL -> 0.001, XRP/DOGE -> 1), as on Binance spot.
        Minimum amount one tick, minimum notional 5 quote, fees 10 bps.
        """
        if not price > 0:
            raise ValueError(f"price must be > 0, got {price!r}")
        mag = math.floor(math.log10(price))
        price_tick = 10.0 ** max(mag - 6, -8)
        amount_tick = 10.0 ** min(max(-mag - 1, -8), 0)
        kw = {"amount_tick": amount_tick, "price_tick": price_tick, "min_amount": amount_tick, "min_cost": 5.0}
        kw.update(overrides)
        return cls(symbol=symbol, **kw)

    # -- names ----------------------------------------------------------------------------
    @property
    def base(self) -> str:
        return self.symbol.split("/")[0]

    @property
    def quote(self) -> str:
        return self.symbol.split("/")[1].split(":")[0]

    @property
    def is_perpetual(self) -> bool:
        return ":" in self.symbol

    # -- precision (ccxt helpers) ---------------------------------------------------------
    def amount_str(self, amount: float) -> str:
        """Amount TRUNCATED to ``amount_tick`` as a decimal string (feed it to ``Decimal``)."""
        return decimal_to_precision(amount, TRUNCATE, _tick_str(self.amount_tick), TICK_SIZE)

    def price_str(self, price: float) -> str:
        """Price ROUNDED to ``price_tick`` as a decimal string (feed it to ``Decimal``)."""
        return decimal_to_precision(price, ROUND, _tick_str(self.price_tick), TICK_SIZE)

    def amount_to_precision(self, amount: float) -> float:
        """Amount (base units, float64) truncated to ``amount_tick`` with ccxt's helper."""
        return float(self.amount_str(amount))

    def price_to_precision(self, price: float) -> float:
        """Price (quote, float64) rounded to ``price_tick`` with ccxt's helper."""
        return float(self.price_str(price))

    # -- fast float paths used in the hot loop (identical results to the ccxt helpers) -----
    def round_price(self, price: float) -> float:
        """Same value as :meth:`price_to_precision` (ccxt ROUND, half away from zero) without
        the Decimal round-trip.

        ccxt rounds the float's shortest decimal ``repr``. For a power-of-ten tick ``10^-d`` the
        answer is ``n / 10^d`` (IEEE division is correctly rounded, so that is the double
        nearest to the decimal ``n x 10^-d``, as ccxt's ``float(str)`` gives). Near a half
        tick, ``repr(price) >= B`` (``B`` the decimal half-way point) exactly when
        ``price >= double(B)``, so the tie is decided by one float comparison. Other ticks
        (``0.5``, ``0.25``) and non-positive values take ccxt's helper.
        """
        f = _pow10(self.price_tick)
        if f is None or not price > 0.0:
            return self._round_slow(price)
        mul, div = f
        x = price * mul if div == 0.0 else price / div
        r = math.floor(x)
        frac = x - r
        if frac < 0.5 - _EPS:
            n = r
        elif frac > 0.5 + _EPS:
            n = r + 1
        else:  # within 1e-7 tick of the half-way point: decide on the exact boundary
            b = (2 * r + 1) / (2.0 * mul) if div == 0.0 else (r + 0.5) * div
            n = r + 1 if price >= b else r
        return n / mul if div == 0.0 else n * div

    def _round_slow(self, price: float) -> float:
        tick = self.price_tick
        x = price / tick
        n = math.floor(x + 0.5)
        if abs(x - n + 0.5) < _EPS or abs(x - n - 0.5) < _EPS:
            return self.price_to_precision(price)
        return round(n * tick, _decimals(tick))

    def trunc_amount(self, amount: float) -> float:
        """Same value as :meth:`amount_to_precision` (ccxt TRUNCATE) on the fast float path.

        Power-of-ten ticks: ``floor(x) / 10^d``; within 1e-7 tick of a multiple ``m``, the
        result is ``m`` exactly when ``amount >= double(m x 10^-d)`` (the shortest ``repr`` of
        a double at or above that double is at or above the decimal), else ``m - 1``.
        """
        f = _pow10(self.amount_tick)
        if f is None or not amount > 0.0:
            return self._trunc_slow(amount)
        mul, div = f
        if div == 0.0:
            x = amount * mul
            m = round(x)
            if abs(x - m) < _EPS:
                c = m / mul
                return c if amount >= c else (m - 1) / mul
            return math.floor(x) / mul
        x = amount / div
        m = round(x)
        if abs(x - m) < _EPS:
            c = m * div
            return c if amount >= c else (m - 1) * div
        return math.floor(x) * div

    def _trunc_slow(self, amount: float) -> float:
        tick = self.amount_tick
        x = amount / tick
        n = math.floor(x)
        if x - n < _EPS or n + 1 - x < _EPS:
            # (almost) on a tick: exact when the float's shortest repr is that tick multiple
            cand = round(round(x) * tick, _decimals(tick))
            if repr(cand) == repr(amount):
                return cand
            return self.amount_to_precision(amount)
        return round(n * tick, _decimals(tick))

    # -- serialisation --------------------------------------------------------------------
    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> MarketSpec:
        data = dict(data)
        if "tiers" in data:
            data["tiers"] = tuple(tuple(row) for row in data["tiers"])
        return cls(**data)


_TIER_CACHE: dict[tuple, Any] = {}

# Field defaults (a slots dataclass's class attributes are descriptors, not the defaults).
_DEFAULTS = {f.name: f.default for f in fields(MarketSpec)}
