"""Smart DCA (``smart_dca``): the 3Commas DCA bot, long and short, with the Market7 guards.

Pure numpy + TA-Lib (no Django). Terms are 3Commas':

* **base order** — a market order of ``base_order_size`` quote opens a deal when the deal
  start condition holds (``asap``, ``rsi`` — RSI(``rsi_period``) below ``rsi_below`` for longs /
  above ``rsi_above`` for shorts — or ``strategy:<name>``: another registered strategy's
  ``entry_signals``), subject to ``max_active_deals`` (across symbols), the cooldown since the
  last deal on the symbol, the BTC market filter and the portfolio risk manager.
* **safety orders** (SO) — limit orders resting below (long) / above (short) the base order
  price. SO ``n`` (1-based) sits at a **cumulative** deviation from the base order fill price

      D_n = sum_{k=1..n} price_deviation x step_scale^(k-1)   (percent)
      price_n = base_price x (1 - D_n / 100)     (long;  x (1 + D_n / 100) for short)

  and its size is ``safety_order_size x volume_scale^(n-1)`` quote. At most
  ``active_safety_orders`` rest at a time; the ladder is refilled as they fill, up to
  ``max_safety_orders``.
* **take profit** — after each entry fill a reduce-only limit order closes the whole position
  at ``avg_entry x (1 + take_profit / 100)`` (``tp_type="total"``: % of total volume, 3Commas'
  default) or at the price where the profit equals ``take_profit`` % of the base order's cost
  (``tp_type="base"``: ``(entry_cost + base_cost x tp/100) / amount``). Mirrored for shorts.
* **trailing take profit** — instead of the limit order: armed when a candle's high reaches
  the TP price; the deal is closed at market when a candle closes ``trailing_deviation`` %
  below the highest high since arming (mirrored for shorts).
* **stop loss** — ``stop_loss`` % from the average entry: a reduce-only stop-market order, or
  with ``stop_loss_timeout`` N > 0 a market close once N consecutive closes stayed beyond it.
* **manual commands** (the deal page) — ``add_funds``: a market order of ``quote`` quote in
  the deal's direction (tag ``manual_safety_order``), filled at the next open; it moves the
  average entry, TP and SL like a safety order and shows on the ladder as a manual row, but
  does not use one of the ``max_safety_orders`` (3Commas' "add funds"). ``set_exits``: a new
  ``take_profit`` and/or ``stop_loss`` in percent **from the average entry** for this deal
  only (``stop_loss`` 0 removes it); the TP / SL orders are replaced at once.
* **cooldown** — ``cooldown`` candles (or seconds, ``cooldown_unit``) after a deal closes
  before the next deal on the same symbol.

Guards (:mod:`strategies.library.guards`) hold, resize, tag or exit and record a ``Decision``
with a reason each time they act. Decisions are taken on closed candles only; an order placed
on the close of candle ``i`` fills from candle ``i + 1`` (fill model: ``strategies.engine.broker``).
Counting of time-based rules (SL timeout, zombie age, trailing arming) starts on the candle
after the last entry fill, when the new average entry is known.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from typing import Any

import numpy as np
import talib

from strategies.base import BaseStrategy, CommandRefused, Param, StrategyState
from strategies.engine.broker import first_true_index
from strategies.engine.orders import OrderIntent, OrderStatus, OrderType, Side
from strategies.engine.types import Decision, Outcome
from strategies.registry import register

from .confidence import DealSnapshot, RuleConfidence, RuleExitScorer
from .guards import (
    BtcMarketFilter,
    ConfidenceDcaGuard,
    SafuExit,
    SpendGuard,
    StepRepeatGuard,
    TrailingStepGuard,
    ZombieTag,
    fmt,
    guard_params,
)

__all__ = ["SmartDCA", "DcaState", "DcaSymbolState", "so_deviations", "so_prices", "so_sizes", "take_profit_price"]

_INF = float("inf")
HOUR_MS = 3_600_000


# --- the 3Commas formulas, pure -----------------------------------------------------------
def so_deviations(price_deviation: float, step_scale: float, n: int) -> list[float]:
    """Cumulative deviations (percent of the base order price) of safety orders 1..n."""
    out, cum = [], 0.0
    for k in range(n):
        cum = cum + price_deviation * step_scale**k
        out.append(cum)
    return out


def so_prices(base_price: float, price_deviation: float, step_scale: float, n: int, side: str = "long") -> list[float]:
    """Unrounded prices (quote) of safety orders 1..n (see module doc)."""
    sign = -1.0 if side == "long" else 1.0
    return [base_price * (1.0 + sign * d / 100.0) for d in so_deviations(price_deviation, step_scale, n)]


def so_sizes(safety_order_size: float, volume_scale: float, n: int) -> list[float]:
    """Sizes (quote) of safety orders 1..n: ``size x volume_scale^(k-1)``."""
    return [safety_order_size * volume_scale**k for k in range(n)]


def take_profit_price(avg_entry: float, take_profit_pct: float, side: str = "long") -> float:
    """3Commas TP of total volume: ``avg x (1 + tp/100)`` long, ``avg x (1 - tp/100)`` short."""
    return (
        avg_entry * (1.0 + take_profit_pct / 100.0) if side == "long" else avg_entry * (1.0 - take_profit_pct / 100.0)
    )


def _quote_ccy(symbol: str) -> str:
    """``"BTC/USDT"`` -> ``"USDT"``; ``"BTC/USDT:USDT"`` -> ``"USDT"``."""
    return symbol.split("/")[-1].split(":")[0]


# --- state ---------------------------------------------------------------------------------
@dataclass
class DcaSymbolState:
    """Per-symbol Smart DCA state (JSON-safe). Times are candle open times, epoch ms."""

    deal_id: str = ""
    phase: str = "idle"  # idle | opening | active | closing
    base_price: float = 0.0
    base_cost: float = 0.0
    levels: list[float] = field(default_factory=list)  # computed SO prices, SO n at [n-1]
    cum_dev: float = 0.0
    so_filled: int = 0
    filled_prices: list[float] = field(default_factory=list)
    last_fill_time: int = -1
    last_fill_price: float = 0.0
    last_so_fill_time: int = -1
    tp_price: float = 0.0
    sl_price: float = 0.0
    held: str = ""  # "" | "gate" | "step_repeat"
    held_rule: str = ""
    ladder_stop_at: int = 0  # SO index not to place again until the next entry fill (0: none)
    zombie: bool = False
    stop_averaging: bool = False
    cooldown_until: int = 0  # close time (ms) from which a new deal may start
    entry_blocked: str = ""  # "" | "btc" | "funds": the entry block already reported
    tp_pct: float | None = None  # this deal's take profit, % from avg entry (manual set_exits)
    sl_pct: float | None = None  # this deal's stop loss, % from avg entry (0: none)
    manual: list[dict[str, float]] = field(default_factory=list)  # manual SO fills: time, price, amount


@dataclass
class DcaState(StrategyState):
    symbols: dict[str, DcaSymbolState] = field(default_factory=dict)
    active_deals: int = 0

    def to_dict(self) -> dict[str, Any]:
        return {"symbols": {k: asdict(v) for k, v in sorted(self.symbols.items())}, "active_deals": self.active_deals}

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> DcaState:
        return cls({k: DcaSymbolState(**v) for k, v in d.get("symbols", {}).items()}, d.get("active_deals", 0))


class _Arrays:
    """Per-symbol pre-computed causal arrays (see ``SmartDCA.prepare``)."""

    __slots__ = (
        "c", "time", "high", "low", "close", "entry_idx", "entry_ok_idx", "btc", "conf", "gate",
        "gate_true_idx", "gate_false_idx", "atr_pct", "safu_f", "tpos", "sig",
    )  # fmt: skip


class _Scan:
    """A cached forward search of one exit rule for one deal state (``deal_id, lf, avg``).

    The rule's first firing candle at or after ``lf + 1`` (the candle after the last entry
    fill) depends only on the deal state, so it is searched once and extended on demand:
    ``hit`` is that candle's index once found (else -1) and ``[lf + 1, hi)`` the range known
    not to fire; ``aux`` carries the search's running state at ``hi``.
    """

    __slots__ = ("deal_id", "lf", "avg", "hit", "hi", "aux")

    def __init__(self, deal_id: str, lf: int, avg: float, aux: int = 0) -> None:
        self.deal_id, self.lf, self.avg = deal_id, lf, avg
        self.hit, self.hi, self.aux = -1, lf + 1, aux


# --- the strategy --------------------------------------------------------------------------
_CORE_PARAMS = (
    Param(
        "direction",
        "choice",
        "long",
        choices=("long", "short"),
        group="deal",
        help="Long: buy the dips. Short: sell the rips.",
    ),
    Param("base_order_size", "float", 20.0, 0.0, 1e12, "quote", "Size of the order that opens a deal.", group="deal"),
    Param(
        "safety_order_size", "float", 40.0, 0.0, 1e12, "quote", "Size of the first safety order.", group="safety orders"
    ),
    Param("max_safety_orders", "int", 5, 0, 200, "", "Safety orders per deal at most.", group="safety orders"),
    Param("active_safety_orders", "int", 3, 1, 200, "", "Safety orders resting at a time.", group="safety orders"),
    Param(
        "price_deviation",
        "float",
        1.0,
        0.01,
        100.0,
        "%",
        "Distance of safety order 1 from the base order price.",
        group="safety orders",
    ),
    Param(
        "step_scale",
        "float",
        1.0,
        0.1,
        10.0,
        "x",
        "Each next step is this multiple of the previous one.",
        group="safety orders",
    ),
    Param(
        "volume_scale",
        "float",
        1.0,
        0.1,
        10.0,
        "x",
        "Each next safety order is this multiple of the previous one.",
        group="safety orders",
    ),
    Param("take_profit", "float", 1.5, 0.01, 1000.0, "%", "Target profit.", group="take profit"),
    Param(
        "tp_type",
        "choice",
        "total",
        choices=("total", "base"),
        group="take profit",
        help="Percent of total volume (avg entry) or of the base order.",
    ),
    Param("trailing_enabled", "bool", False, group="take profit", help="Trail the take profit."),
    Param(
        "trailing_deviation",
        "float",
        0.5,
        0.01,
        100.0,
        "%",
        "Exit when the price retraces this much from the high since the TP was reached.",
        group="take profit",
    ),
    Param("stop_loss", "float", 0.0, 0.0, 100.0, "%", "Stop loss from the average entry (0 = off).", group="stop loss"),
    Param(
        "stop_loss_timeout",
        "int",
        0,
        0,
        100_000,
        "candles",
        "Closes beyond the stop loss needed before closing (0 = stop order).",
        group="stop loss",
    ),
    Param("cooldown", "float", 0.0, 0.0, 1e9, "", "Pause between deals on a symbol.", group="deal"),
    Param(
        "cooldown_unit", "choice", "candles", choices=("candles", "seconds"), group="deal", help="Unit of the cooldown."
    ),
    Param("max_active_deals", "int", 1, 1, 1000, "", "Open deals at most, across all symbols.", group="deal"),
    Param("start_condition", "str", "asap", group="deal", help='"asap", "rsi", or "strategy:<name>".'),
    Param("rsi_period", "int", 14, 2, 500, "candles", "RSI period for the rsi start condition.", group="deal"),
    Param("rsi_below", "float", 30.0, 0.0, 100.0, "", "Long deals start when RSI is below this.", group="deal"),
    Param("rsi_above", "float", 70.0, 0.0, 100.0, "", "Short deals start when RSI is above this.", group="deal"),
)


@register
class SmartDCA(BaseStrategy):
    """Smart DCA: base order + safety-order ladder + take profit, with Market7 guards."""

    name = "smart_dca"
    title = "Smart DCA"
    description = "3Commas-style DCA bot (long/short) with confidence, spend, zombie, BTC-filter and SAFU guards."
    PARAMS = _CORE_PARAMS + tuple(guard_params())
    State = DcaState

    def __init__(self, params: dict[str, Any] | None = None, confidence_provider=None, exit_scorer=None) -> None:
        super().__init__(params)
        p = self.params
        self.long = p["direction"] == "long"
        self.side = "long" if self.long else "short"
        self.entry_side = Side.BUY if self.long else Side.SELL
        self.exit_side = Side.SELL if self.long else Side.BUY
        self.g_conf = ConfidenceDcaGuard.from_params(p)
        self.g_step = StepRepeatGuard.from_params(p)
        self.g_trail = TrailingStepGuard.from_params(p)
        self.g_spend = SpendGuard.from_params(p)
        self.g_zombie = ZombieTag.from_params(p)
        self.g_btc = BtcMarketFilter.from_params(p)
        self.g_safu = SafuExit.from_params(p)
        self.confidence_provider = confidence_provider or RuleConfidence(self.side)
        self.exit_scorer = exit_scorer or RuleExitScorer(p["safu_drawdown_ref_pct"])
        self._feed = None
        self._arrays: dict[str, _Arrays] = {}
        self._btc_series: dict[str, np.ndarray] | None = None
        self._waiting: set[str] = set()
        self._scans: dict[tuple[str, str], _Scan] = {}
        self.budget = p["base_order_size"] + sum(
            so_sizes(p["safety_order_size"], p["volume_scale"], p["max_safety_orders"])
        )

    @classmethod
    def check_params(cls, p: dict[str, Any]) -> dict[str, str]:
        errors = {}
        sc = p["start_condition"]
        if sc not in ("asap", "rsi") and not sc.startswith("strategy:"):
            errors["start_condition"] = 'must be "asap", "rsi" or "strategy:<name>"'
        elif sc.startswith("strategy:"):
            from strategies.registry import StrategyNotFound, get_strategy

            name = sc.split(":", 1)[1]
            if name == cls.name:
                errors["start_condition"] = "smart_dca cannot start on its own signal"
            else:
                try:
                    get_strategy(name)
                except StrategyNotFound as e:
                    errors["start_condition"] = str(e)
        if p["direction"] == "long" and p["stop_loss"] >= 100:
            errors["stop_loss"] = "must be < 100% for long deals"
        if p["direction"] == "long" and p["max_safety_orders"] > 0:
            d = so_deviations(p["price_deviation"], p["step_scale"], p["max_safety_orders"])[-1]
            if d >= 100:
                errors["max_safety_orders"] = f"the last safety order would be {d:.1f}% below the base order (>= 100%)"
        return errors

    # -- preparation ----------------------------------------------------------------------
    def prepare(self, feed) -> None:
        """Reset the per-feed cache; arrays are computed lazily per symbol (causal TA-Lib)."""
        if feed is not self._feed:
            self._feed = feed
            self._arrays = {}
            self._btc_series = None
        self._waiting = set()
        self._scans: dict[tuple[str, str], _Scan] = {}

    def _arr(self, feed, symbol: str) -> _Arrays:
        A = self._arrays.get(symbol)
        if A is not None:
            return A
        p = self.params
        c = feed.candles(symbol)
        n = len(c)
        A = _Arrays()
        A.tpos = {}
        A.c, A.time, A.high, A.low, A.close = c, c.time, c.high, c.low, c.close
        sc = p["start_condition"]
        if sc == "asap":
            sig = np.ones(n, dtype=bool)
        elif sc == "rsi":
            rsi = talib.RSI(c.close, p["rsi_period"]) if n > p["rsi_period"] else np.full(n, np.nan)
            with np.errstate(invalid="ignore"):
                sig = rsi < p["rsi_below"] if self.long else rsi > p["rsi_above"]
        else:
            from strategies.registry import get_strategy

            other = get_strategy(sc.split(":", 1)[1])()
            other.prepare(feed)
            sig = np.asarray(other.entry_signals(c, symbol), dtype=bool)
        A.btc = None
        block = np.zeros(n, dtype=bool)
        if self.g_btc is not None:
            bsym = self.g_btc.symbol
            if bsym not in feed:
                raise KeyError(f"btc_market_filter needs {bsym} candles in the feed")
            b = feed.candles(bsym)
            ser = self._btc_series
            if ser is None:  # one BTC series per feed, shared by every symbol
                ser = self._btc_series = self.g_btc.series(b, self.side, feed.tf_ms)
            j = np.searchsorted(b.time, c.time, side="right") - 1
            ok = j >= 0
            jj = np.maximum(j, 0)
            block = ser["block"][jj] & ok
            A.btc = {
                "block": block,
                "close": np.where(ok, ser["close"][jj], np.nan),
                "ema": np.where(ok, ser["ema"][jj], np.nan),
                "change": np.where(ok, ser["change"][jj], np.nan),
            }
        A.sig = sig
        A.entry_idx = np.flatnonzero(sig)
        A.entry_ok_idx = np.flatnonzero(sig & ~block)
        A.conf = None
        if self.g_conf is not None and hasattr(self.confidence_provider, "series"):
            A.conf = np.asarray(self.confidence_provider.series(symbol, c), dtype=np.float64)
        if self.g_conf is not None and A.conf is None:
            A.gate = None
        else:
            gate = ~block
            if A.conf is not None:
                gate = gate & (A.conf >= self.g_conf.threshold)
            A.gate = gate
            A.gate_true_idx = np.flatnonzero(gate)
            A.gate_false_idx = np.flatnonzero(~gate)
        A.safu_f = None
        if self.g_safu is not None and hasattr(self.exit_scorer, "exit_factors"):
            A.safu_f = self.exit_scorer.exit_factors(c, self.side, self.g_safu.threshold)
        A.atr_pct = None
        if self.g_trail is not None and self.g_trail.mode == "atr":
            A.atr_pct = self.g_trail.atr_pct(c.high, c.low, c.close)
        self._arrays[symbol] = A
        return A

    # -- state ----------------------------------------------------------------------------
    def initial_state(self) -> DcaState:
        return DcaState()

    def state_from_dict(self, d):
        return DcaState.from_dict(d) if d else DcaState()

    def deal_info(self, state: DcaState, symbol: str) -> dict[str, Any]:
        st = state.symbols.get(symbol)
        if st is None or st.phase == "idle":
            return {}
        p = self.params
        n_max = p["max_safety_orders"]
        planned = list(st.levels)
        if len(planned) < n_max and st.base_price:
            sign = -1.0 if self.long else 1.0
            cum = st.cum_dev
            for k in range(len(planned), n_max):
                cum = cum + p["price_deviation"] * p["step_scale"] ** k
                planned.append(st.base_price * (1.0 + sign * cum / 100.0))
        sizes = so_sizes(p["safety_order_size"], p["volume_scale"], n_max)
        ladder = [
            {
                "so_index": k + 1,
                "price": planned[k],
                "quote": sizes[k],
                "status": "filled" if k < st.so_filled else "planned",
            }
            for k in range(n_max)
        ]
        ladder += [
            {
                "so_index": f"M{k + 1}",
                "price": m["price"],
                "quote": m["price"] * m["amount"],
                "status": "filled",
                "manual": True,
            }
            for k, m in enumerate(st.manual)
        ]
        return {
            "phase": st.phase,
            "base_price": st.base_price,
            "max_safety_orders": n_max,
            "take_profit_price": st.tp_price,
            "stop_loss_price": st.sl_price or None,
            "next_so_price": planned[st.so_filled] if st.so_filled < n_max and planned else None,
            "ladder": ladder,
            "zombie": st.zombie,
            "held_by": st.held_rule if st.held else "",
        }

    # -- manual commands (the deal page) --------------------------------------------------
    def on_command(self, state: DcaState, command: dict[str, Any], ctx) -> None:
        """``add_funds`` (``quote``: amount in quote currency, > 0) or ``set_exits``
        (``take_profit`` > 0 and/or ``stop_loss`` >= 0, percent from the average entry; a
        missing key keeps the current value) on the open deal ``command["deal_id"]`` (see the
        module doc). Raises :class:`CommandRefused` when the deal is not active on
        ``ctx.symbol``, an argument is out of range, or the order is rejected."""
        cmd = command.get("cmd")
        st = state.symbols.get(ctx.symbol)
        deal_id = command.get("deal_id")
        if st is None or st.deal_id != deal_id or st.phase == "idle":
            raise CommandRefused(f"deal {deal_id} is not an open Smart DCA deal of {ctx.symbol}")
        if st.phase != "active":
            wait = "its base order has not filled yet" if st.phase == "opening" else "it is closing"
            raise CommandRefused(f"deal {deal_id} is {st.phase}: {wait}")
        if cmd == "add_funds":
            self._add_funds(ctx, st, command)
        elif cmd == "set_exits":
            self._set_exits(ctx, st, command)
        else:
            raise CommandRefused(f"Smart DCA does not know the command {cmd!r}")

    def _add_funds(self, ctx, st: DcaSymbolState, command: dict[str, Any]) -> None:
        try:
            quote = float(command.get("quote"))
        except (TypeError, ValueError):
            raise CommandRefused("the amount to add must be a number (quote currency)") from None
        if not quote > 0 or quote == _INF:
            raise CommandRefused(f"the amount to add must be > 0, got {quote:g}")
        o = ctx.place(
            OrderIntent(
                ctx.symbol,
                self.entry_side,
                OrderType.MARKET,
                quote_amount=quote,
                tag="manual_safety_order",
                deal_id=st.deal_id,
            )
        )
        if o.status == OrderStatus.REJECTED:
            raise CommandRefused(f"the order was rejected: {o.reject_reason}")
        ccy = _quote_ccy(ctx.symbol)
        ctx.decide(
            "manual_add_funds",
            Outcome.INFO,
            f"add funds {fmt(quote)} {ccy}: market {self.entry_side} {o.amount:g} {ctx.symbol} at the next open "
            f"(last close {ctx.close:g}); a manual safety order, TP and SL follow the new average",
            {"deal_id": st.deal_id, "quote": quote, "amount": o.amount, "client_order_id": o.client_order_id},
        )

    def _set_exits(self, ctx, st: DcaSymbolState, command: dict[str, Any]) -> None:
        def pct(key: str) -> float | None:
            if command.get(key) is None:
                return None
            try:
                v = float(command[key])
            except (TypeError, ValueError):
                raise CommandRefused(f"{key.replace('_', ' ')} must be a number (percent)") from None
            if v != v or v == _INF:
                raise CommandRefused(f"{key.replace('_', ' ')} must be a finite number")
            return v

        tp, sl = pct("take_profit"), pct("stop_loss")
        if tp is None and sl is None:
            raise CommandRefused("give a take profit or a stop loss (percent from the average entry)")
        if tp is not None and not 0 < tp <= 1000:
            raise CommandRefused(f"take profit must be > 0% and <= 1000% from the average entry, got {fmt(tp)}%")
        if sl is not None and not (0 <= sl < 100 if self.long else 0 <= sl <= 1000):
            limit = "< 100%" if self.long else "<= 1000%"
            raise CommandRefused(
                f"stop loss must be >= 0% (0 = none) and {limit} from the average entry, got {fmt(sl)}%"
            )
        old_tp, old_sl = st.tp_price, st.sl_price
        if tp is not None:
            st.tp_pct = tp
        if sl is not None:
            st.sl_pct = sl
        self._refresh_exits(ctx, st)
        avg = ctx.position.entry_price
        parts = []
        if tp is not None:
            parts.append(f"take profit {old_tp:g} -> {st.tp_price:g} ({fmt(tp)}% from avg {avg:g})")
        if sl is not None:
            now = f"{st.sl_price:g} ({fmt(sl)}% from avg {avg:g})" if st.sl_price else "none"
            parts.append(f"stop loss {old_sl:g} -> {now}" if old_sl else f"stop loss none -> {now}")
        ctx.decide(
            "manual_set_exits",
            Outcome.INFO,
            "; ".join(parts),
            {
                "deal_id": st.deal_id,
                "take_profit_pct": tp,
                "stop_loss_pct": sl,
                "take_profit_price": st.tp_price,
                "stop_loss_price": st.sl_price or None,
            },
        )

    # -- per candle -----------------------------------------------------------------------
    def on_candle(self, ctx) -> None:
        s = ctx.symbol
        state: DcaState = ctx.state
        st = state.symbols.get(s)
        if st is None:
            st = state.symbols[s] = DcaSymbolState()
        A = self._arrays.get(s) or self._arr(ctx.feed, s)
        self._waiting.discard(s)
        refresh = False
        for f in ctx.fills:
            if f.tag == "base_order":
                st.phase = "active"
                st.base_price = f.price
                st.base_cost = f.price * f.amount
                st.last_fill_time = ctx.time
                st.last_fill_price = f.price
                refresh = True
            elif f.tag == "safety_order":
                st.so_filled += 1
                st.filled_prices.append(f.price)
                st.last_fill_time = ctx.time
                st.last_so_fill_time = ctx.time
                st.last_fill_price = f.price
                refresh = True
            elif f.tag == "manual_safety_order":
                st.manual.append({"time": ctx.time, "price": f.price, "amount": f.amount})
                st.last_fill_time = ctx.time
                st.last_fill_price = f.price
                refresh = True
        pos = ctx.position
        if st.phase in ("active", "closing") and pos.amount == 0.0:
            self._end_deal(ctx, st, state)
        elif st.phase == "opening" and not any(o.tag == "base_order" for o in ctx.orders) and pos.amount == 0.0:
            self._end_deal(ctx, st, state)
        if st.phase == "active":
            if refresh:
                st.ladder_stop_at = 0
                self._refresh_exits(ctx, st)
            if ctx.i > self._idx(A, st.last_fill_time):
                if self._check_exits(ctx, st, A):
                    return None
            if not st.stop_averaging:
                self._sync_ladder(ctx, st, A)
        if st.phase == "idle":
            self._try_entry(ctx, st, state, A)
        return None

    @staticmethod
    def _idx(A: _Arrays, t: int) -> int:
        """Index of the candle opening at ``t`` (memoized: deal times are looked up often)."""
        i = A.tpos.get(t)
        if i is None:
            if len(A.tpos) > 4096:
                A.tpos.clear()
            i = A.tpos[t] = int(A.time.searchsorted(t))
        return i

    def _end_deal(self, ctx, st: DcaSymbolState, state: DcaState) -> None:
        for o in list(ctx.orders):
            if o.deal_id == st.deal_id:
                ctx.cancel(o, "deal_closed")
        p = self.params
        cd = p["cooldown"]
        until = ctx.close_time + (int(cd * ctx.feed.tf_ms) if p["cooldown_unit"] == "candles" else int(cd * 1000))
        st.__dict__.update(DcaSymbolState(cooldown_until=until).__dict__)
        state.active_deals -= 1
        ctx.notify("slot")

    def _refresh_exits(self, ctx, st: DcaSymbolState) -> None:
        p = self.params
        m = ctx.market
        pos = ctx.position
        avg, amt = pos.entry_price, abs(pos.amount)
        if st.tp_pct is not None:
            tp = take_profit_price(avg, st.tp_pct, self.side)
        elif p["tp_type"] == "total":
            tp = take_profit_price(avg, p["take_profit"], self.side)
        else:
            deal = ctx.portfolio.deals[st.deal_id]
            target = st.base_cost * p["take_profit"] / 100.0
            tp = (deal.entry_cost + target) / amt if self.long else (deal.entry_cost - target) / amt
        st.tp_price = m.round_price(tp)
        for o in list(ctx.orders):
            if o.tag in ("take_profit", "stop_loss") and o.deal_id == st.deal_id:
                ctx.cancel(o, "replaced")
        if not p["trailing_enabled"]:
            ctx.place(
                OrderIntent(
                    ctx.symbol,
                    self.exit_side,
                    OrderType.LIMIT,
                    amount=amt,
                    price=st.tp_price,
                    tag="take_profit",
                    deal_id=st.deal_id,
                    reduce_only=True,
                )
            )
        sl_pct = self._sl_pct(st)
        if sl_pct > 0:
            sl = avg * (1.0 - sl_pct / 100.0) if self.long else avg * (1.0 + sl_pct / 100.0)
            st.sl_price = m.round_price(sl)
            if p["stop_loss_timeout"] == 0:
                ctx.place(
                    OrderIntent(
                        ctx.symbol,
                        self.exit_side,
                        OrderType.STOP,
                        amount=amt,
                        stop_price=st.sl_price,
                        tag="stop_loss",
                        deal_id=st.deal_id,
                        reduce_only=True,
                    )
                )
        else:
            st.sl_price = 0.0

    def _sl_pct(self, st: DcaSymbolState) -> float:
        """This deal's stop loss in % from the average entry (a manual ``set_exits`` wins)."""
        return self.params["stop_loss"] if st.sl_pct is None else st.sl_pct

    # -- exits ----------------------------------------------------------------------------
    def _exit(self, ctx, st: DcaSymbolState, tag: str) -> bool:
        for o in list(ctx.orders):
            if o.deal_id == st.deal_id:
                ctx.cancel(o, f"exit: {tag}")
        o = ctx.place(
            OrderIntent(ctx.symbol, self.exit_side, OrderType.MARKET, tag=tag, deal_id=st.deal_id, reduce_only=True)
        )
        if o.status == OrderStatus.REJECTED:
            ctx.decide("smart_dca", Outcome.BLOCK, f"{tag} close order rejected: {o.reject_reason}")
            return False
        st.phase = "closing"
        return True

    def _check_exits(self, ctx, st: DcaSymbolState, A: _Arrays) -> bool:
        """Exit rules evaluated at the closed candle ``ctx.i`` (same functions as next_wake)."""
        p = self.params
        i = ctx.i
        lf = self._idx(A, st.last_fill_time)
        avg = ctx.position.entry_price
        if p["trailing_enabled"] and self._trail_exit(A, st, lf, i, i + 1) == i:
            ref = self._trail_ref(A, st, lf, i)
            ctx.decide(
                "trailing_take_profit",
                Outcome.EXIT,
                f"close {A.close[i]:g} retraced {fmt(p['trailing_deviation'])}% from {'high' if self.long else 'low'} {ref:g} after take profit {st.tp_price:g}",
            )
            return self._exit(ctx, st, "trailing_take_profit")
        if st.sl_price > 0 and p["stop_loss_timeout"] > 0 and self._sl_timeout(A, st, lf, i, i + 1) == i:
            ctx.decide(
                "stop_loss",
                Outcome.EXIT,
                f"{p['stop_loss_timeout']} closes {'below' if self.long else 'above'} stop loss {st.sl_price:g} ({fmt(self._sl_pct(st))}% from avg {avg:g})",
            )
            return self._exit(ctx, st, "stop_loss")
        if self.g_zombie is not None and not st.zombie:
            if self._zombie_first(ctx.symbol, A, st, avg, lf, i, i + 1, ctx.feed.tf_ms) == i:
                z = self._zombie(A, st, avg, lf, i, i + 1, ctx.feed.tf_ms)
                st.zombie = True
                ctx.tag_deal(st.deal_id, "zombie")
                close = float(A.close[i])
                loss = (avg - close) / avg * 100.0 if self.long else (close - avg) / avg * 100.0
                ctx.record(self.g_zombie.tag(ctx.time, ctx.symbol, z[1] / HOUR_MS, loss))
                if self.g_zombie.action == "close":
                    return self._exit(ctx, st, "zombie")
                if self.g_zombie.action == "stop_averaging":
                    st.stop_averaging = True
                    for o in list(ctx.orders):
                        if o.tag == "safety_order":
                            ctx.cancel(o, "zombie_tag: stop averaging")
        if self.g_safu is not None:
            vector = A.safu_f is not None or hasattr(self.exit_scorer, "series")
            score = None
            snap = (
                None if vector else DealSnapshot(st.deal_id, self.side, avg, abs(ctx.position.amount), st.so_filled, 0)
            )
            if vector:
                fire = self._safu_first(ctx.symbol, A, st, avg, lf, i, i + 1) == i
            else:
                score = float(self.exit_scorer.score(ctx.symbol, ctx, snap))
                fire = score >= self.g_safu.threshold
            if fire:
                close = float(A.close[i])
                dd = (avg - close) / avg * 100.0 if self.long else (close - avg) / avg * 100.0
                if score is None:
                    snap = DealSnapshot(st.deal_id, self.side, avg, abs(ctx.position.amount), st.so_filled, 0)
                    score = float(self.exit_scorer.score(ctx.symbol, ctx, snap))
                ctx.record(self.g_safu.check(ctx.time, ctx.symbol, score, dd))
                return self._exit(ctx, st, "safu_exit")
        return False

    # vectorized searches: first candle index j in [start, end) where the rule fires, else end
    def _trail_exit(self, A: _Arrays, st, lf: int, start: int, end: int) -> int:
        tp, td = st.tp_price, self.params["trailing_deviation"] / 100.0
        h, lo, c = A.high, A.low, A.close
        if self.long:
            arm = first_true_index(lambda a, b: h[a:b] >= tp, lf + 1, end)
        else:
            arm = first_true_index(lambda a, b: lo[a:b] <= tp, lf + 1, end)
        if arm >= end:
            return end
        s0 = max(arm, start)
        a, size = s0, 32
        if self.long:
            ext = h[arm:s0].max() if s0 > arm else -_INF
            while a < end:
                b = min(end, a + size)
                run = np.maximum(np.maximum.accumulate(h[a:b]), ext)
                m = c[a:b] <= run * (1.0 - td)
                k = int(m.argmax())
                if m[k]:
                    return a + k
                ext, a, size = run[-1], b, size * 4
        else:
            ext = lo[arm:s0].min() if s0 > arm else _INF
            while a < end:
                b = min(end, a + size)
                run = np.minimum(np.minimum.accumulate(lo[a:b]), ext)
                m = c[a:b] >= run * (1.0 + td)
                k = int(m.argmax())
                if m[k]:
                    return a + k
                ext, a, size = run[-1], b, size * 4
        return end

    def _trail_ref(self, A, st, lf, i) -> float:
        tp = st.tp_price
        if self.long:
            arm = first_true_index(lambda a, b: A.high[a:b] >= tp, lf + 1, i + 1)
            return float(A.high[arm : i + 1].max())
        arm = first_true_index(lambda a, b: A.low[a:b] <= tp, lf + 1, i + 1)
        return float(A.low[arm : i + 1].min())

    def _sl_timeout(self, A: _Arrays, st, lf: int, start: int, end: int) -> int:
        T = self.params["stop_loss_timeout"]
        sl = st.sl_price
        c = A.close
        start = max(start, lf + T)
        a, size = start, 32
        while a < end:
            b = min(end, a + size)
            lo0 = a - T + 1
            lo = max(lf + 1, lo0)
            seg = c[lo:b] < sl if self.long else c[lo:b] > sl
            x = np.concatenate((np.zeros(lo - lo0, dtype=bool), seg)) if lo > lo0 else seg
            cs = np.concatenate(([0], np.cumsum(x)))
            m = (cs[T:] - cs[: len(cs) - T]) == T
            k = int(m.argmax())
            if m[k]:
                return a + k
            a, size = b, size * 4
        return end

    def _zombie(self, A: _Arrays, st, avg: float, lf: int, start: int, end: int, tf_ms: int) -> tuple[int, int]:
        """``(j, ms_below)``: first candle where the deal has been beyond the zombie threshold for
        ``hours`` (from the open of the run's first candle to the close of ``j``)."""
        thr = self.g_zombie.threshold(avg, self.side)
        c = A.close
        start = max(start, lf + 1)
        if start >= end:
            return end, 0
        # nothing can fire before the first close beyond the threshold
        if self.long:
            start = first_true_index(lambda a, b: c[a:b] < thr, start, end)
        else:
            start = first_true_index(lambda a, b: c[a:b] > thr, start, end)
        if start >= end:
            return end, 0
        # last index before `start` (and after lf) where the deal was NOT beyond the threshold
        if start > lf + 1:
            seg = c[lf + 1 : start] < thr if self.long else c[lf + 1 : start] > thr
            nz = np.flatnonzero(~seg)
            last_ok = lf + 1 + int(nz[-1]) if len(nz) else lf
        else:
            last_ok = lf
        return self._zombie_scan(A, thr, start, end, last_ok, tf_ms)[:2]

    def _scan(self, symbol: str, rule: str, deal_id: str, lf: int, avg: float, aux: int = 0) -> _Scan:
        sc = self._scans.get((symbol, rule))
        if sc is None or sc.lf != lf or sc.avg != avg or sc.deal_id != deal_id:
            sc = self._scans[(symbol, rule)] = _Scan(deal_id, lf, avg, aux)
        return sc

    def _zombie_first(self, symbol: str, A: _Arrays, st, avg: float, lf: int, start: int, end: int, tf_ms: int) -> int:
        """Same answer as ``_zombie(...)[0]``, from the deal's cached search (see :class:`_Scan`)."""
        sc = self._scan(symbol, "zombie", st.deal_id, lf, avg, lf)
        if sc.hit >= 0:
            if sc.hit >= start:
                return sc.hit if sc.hit < end else end
            return self._zombie(A, st, avg, lf, start, end, tf_ms)[0]
        if end <= sc.hi:
            return end
        if start > sc.hi:  # a range the cache never covered: search it plainly
            return self._zombie(A, st, avg, lf, start, end, tf_ms)[0]
        j, _, last_ok = self._zombie_scan(A, self.g_zombie.threshold(avg, self.side), sc.hi, end, sc.aux, tf_ms)
        if j < end:
            sc.hit = j
        else:
            sc.hi, sc.aux = end, last_ok
        return j

    def _zombie_scan(self, A: _Arrays, thr: float, a: int, end: int, last_ok: int, tf_ms: int) -> tuple[int, int, int]:
        """First zombie candle in ``[a, end)`` given ``last_ok`` (the last candle before ``a`` not
        beyond the threshold); returns ``(j or end, ms below the threshold at j or 0, last_ok
        at end)``."""
        need = int(round(self.g_zombie.hours * HOUR_MS))
        c, t = A.close, A.time
        if last_ok == a - 1:  # nothing fires before the first close beyond the threshold
            if self.long:
                a2 = first_true_index(lambda x, y: c[x:y] < thr, a, end)
            else:
                a2 = first_true_index(lambda x, y: c[x:y] > thr, a, end)
            if a2 >= end:
                return end, 0, end - 1
            last_ok, a = a2 - 1, a2
        size = 32
        n1 = len(t) - 1
        while a < end:
            b = min(end, a + size)
            u = c[a:b] < thr if self.long else c[a:b] > thr
            lastf = np.maximum.accumulate(np.where(~u, np.arange(a, b), last_ok))
            dur = t[a:b] + tf_ms - t[np.minimum(lastf + 1, n1)]
            m = u & (dur >= need)
            k = int(m.argmax())
            if m[k]:
                return a + k, int(dur[k]), last_ok
            last_ok = int(lastf[-1])
            a, size = b, size * 4
        return end, 0, last_ok

    def _safu_first(self, symbol: str, A: _Arrays, st, avg: float, lf: int, start: int, end: int) -> int:
        """Same answer as :meth:`_safu`, from the deal's cached search when the scorer is
        vectorized (``exit_factors``)."""
        if A.safu_f is None:
            return self._safu(symbol, A, st, avg, lf, start, end)
        sc = self._scan(symbol, "safu", st.deal_id, lf, avg)
        if sc.hit >= 0:
            if sc.hit >= start:
                return sc.hit if sc.hit < end else end
            return self._safu(symbol, A, st, avg, lf, start, end)
        if end <= sc.hi:
            return end
        if start > sc.hi:
            return self._safu(symbol, A, st, avg, lf, start, end)
        j = self._safu(symbol, A, st, avg, lf, sc.hi, end)
        if j < end:
            sc.hit = j
        else:
            sc.hi = end
        return j

    def _safu(self, symbol: str, A: _Arrays, st, avg: float, lf: int, start: int, end: int) -> int:
        thr = self.g_safu.threshold
        start = max(start, lf + 1)
        if A.safu_f is not None:
            f, c = A.safu_f, A.close
            if self.long:
                return first_true_index(lambda a, b: c[a:b] <= avg * f[a:b], start, end)
            return first_true_index(lambda a, b: c[a:b] >= avg * f[a:b], start, end)
        if not hasattr(self.exit_scorer, "series"):
            return start if start < end else end
        return first_true_index(
            lambda a, b: self.exit_scorer.series(symbol, A.c, self.side, avg, a, b) >= thr, start, end
        )

    # -- safety order ladder --------------------------------------------------------------
    def _gate_rule(self, ctx, A: _Arrays) -> tuple[str, float]:
        """``(rule, confidence)``: the gate rule holding safety orders at ``ctx.i`` (``""`` when
        none). Cheap; the Decision is built by :meth:`_gate_decision` only when recorded (the
        gate's ALLOW is never recorded: it is looked at on every candle of the naive loop)."""
        i = ctx.i
        if self.g_btc is not None and A.btc["block"][i]:
            return BtcMarketFilter.NAME, 0.0
        if self.g_conf is not None:
            cval = (
                float(A.conf[i]) if A.conf is not None else float(self.confidence_provider.confidence(ctx.symbol, ctx))
            )
            if self.g_conf.blocks(cval):
                return ConfidenceDcaGuard.NAME, cval
        return "", 0.0

    def _gate_decision(self, ctx, A: _Arrays, rule: str, cval: float, n: int) -> Decision:
        i = ctx.i
        if rule == BtcMarketFilter.NAME:
            return self.g_btc.check(
                ctx.time,
                ctx.symbol,
                self.side,
                True,
                float(A.btc["close"][i]),
                float(A.btc["ema"][i]),
                float(A.btc["change"][i]),
                "safety orders",
            )
        return self.g_conf.check(ctx.time, ctx.symbol, cval, n)

    def _hold(self, ctx, st: DcaSymbolState, kind: str, rule: str, decision, resting) -> None:
        """Cancel the resting safety orders; record ``decision()`` when the hold starts."""
        for o in resting:
            ctx.cancel(o, f"{rule}: held")
        if st.held != kind:
            st.held, st.held_rule = kind, rule
            ctx.record(decision())

    def _release(self, ctx, st: DcaSymbolState) -> None:
        if st.held:
            ctx.decide(st.held_rule, Outcome.INFO, "safety orders resumed")
            st.held, st.held_rule = "", ""

    def _sync_ladder(self, ctx, st: DcaSymbolState, A: _Arrays) -> None:
        p = self.params
        max_so = p["max_safety_orders"]
        if st.so_filled >= max_so:
            return
        resting = [o for o in ctx.orders if o.tag == "safety_order"]
        n_next = max([o.so_index for o in resting] + [st.so_filled]) + 1
        if self.g_btc is not None or self.g_conf is not None:
            n = n_next if not resting else min(o.so_index for o in resting)
            rule, cval = self._gate_rule(ctx, A)
            if rule:
                self._hold(ctx, st, "gate", rule, lambda: self._gate_decision(ctx, A, rule, cval, n), resting)
                return
            if st.held == "gate":
                self._release(ctx, st)
        since = None
        if self.g_step is not None and st.last_so_fill_time >= 0:
            since = ctx.i - self._idx(A, st.last_so_fill_time)
            if since < self.g_step.min_candles:
                g_step = self.g_step
                self._hold(
                    ctx,
                    st,
                    "step_repeat",
                    g_step.NAME,
                    lambda: g_step.check(ctx.time, ctx.symbol, n_next, since),
                    resting,
                )
                return
        if st.held == "step_repeat":
            self._release(ctx, st)
        max_rest = 1 if self.g_step is not None else p["active_safety_orders"]
        m = ctx.market
        while len(resting) < max_rest and n_next <= max_so:
            if st.ladder_stop_at and n_next >= st.ladder_stop_at:
                return
            price = self._level_price(ctx, st, A, n_next)
            if price is None:
                st.ladder_stop_at = n_next
                return
            quote = p["safety_order_size"] * p["volume_scale"] ** (n_next - 1)
            if self.g_step is not None:
                args = (n_next, since, st.so_filled, price, st.filled_prices, m.price_tick)
                blocked = self.g_step.blocks(*args)
                if blocked or ctx.record_allow:
                    ctx.record(
                        self.g_step.check(ctx.time, ctx.symbol, *args[:4], tuple(st.filled_prices), m.price_tick)
                    )
                if blocked:
                    st.ladder_stop_at = n_next
                    return
            if self.g_spend is not None:
                if self._spend_check(ctx, st, resting, n_next, price, quote):
                    st.ladder_stop_at = n_next
                    return
            o = ctx.place(
                OrderIntent(
                    ctx.symbol,
                    self.entry_side,
                    OrderType.LIMIT,
                    quote_amount=quote,
                    price=price,
                    tag="safety_order",
                    so_index=n_next,
                    deal_id=st.deal_id,
                )
            )
            if o.status == OrderStatus.REJECTED:
                ctx.decide("smart_dca", Outcome.BLOCK, f"safety order {n_next} rejected: {o.reject_reason}")
                st.ladder_stop_at = n_next
                return
            resting.append(o)
            n_next += 1

    def _level_price(self, ctx, st: DcaSymbolState, A: _Arrays, n: int) -> float | None:
        if n <= len(st.levels):
            return st.levels[n - 1]
        p = self.params
        step = p["price_deviation"] * p["step_scale"] ** (n - 1)
        if self.g_trail is not None:
            close = float(A.close[ctx.i])
            lfp = st.last_fill_price
            move = ((lfp - close) / lfp * 100.0 if self.long else (close - lfp) / lfp * 100.0) if lfp else 0.0
            atr = float(A.atr_pct[ctx.i]) if A.atr_pct is not None else 0.0
            if self.g_trail.widened(step, atr, move) > step or ctx.record_allow:
                step, d = self.g_trail.widen(ctx.time, ctx.symbol, n, step, atr, move)
                ctx.record(d)
        cum = st.cum_dev + step
        raw = st.base_price * (1.0 - cum / 100.0) if self.long else st.base_price * (1.0 + cum / 100.0)
        if raw <= 0:
            return None
        price = ctx.market.round_price(raw)
        if price <= 0:
            return None
        st.levels.append(price)
        st.cum_dev = cum
        return price

    def _spend_check(self, ctx, st: DcaSymbolState, resting, n: int, price: float, quote: float) -> bool:
        """Run the spend guard for safety order ``n``; record its decision; True when it blocks."""
        deal = ctx.portfolio.deals[st.deal_id]
        cost = deal.entry_cost + sum(o.amount * o.price for o in resting)
        amount = deal.entry_amount + sum(o.amount for o in resting)
        avg = cost / amount if amount else price
        dd = (avg - price) / avg * 100.0 if self.long else (price - avg) / avg * 100.0
        basis = self.budget if self.g_spend.basis == "budget" else ctx.equity()
        blocked = self.g_spend.blocks(cost + quote, basis, dd)
        if blocked or ctx.record_allow:
            ctx.record(self.g_spend.check(ctx.time, ctx.symbol, n, cost + quote, basis, dd))
        return blocked

    # -- entries --------------------------------------------------------------------------
    def _try_entry(self, ctx, st: DcaSymbolState, state: DcaState, A: _Arrays) -> None:
        p = self.params
        i = ctx.i
        if ctx.close_time < st.cooldown_until:
            return
        if state.active_deals >= p["max_active_deals"]:
            self._waiting.add(ctx.symbol)
            ctx.wait_for("slot")
            return
        if not A.sig[i]:
            return
        if self.g_btc is not None and A.btc["block"][i]:
            if st.entry_blocked != "btc":
                st.entry_blocked = "btc"
                ctx.record(
                    self.g_btc.check(
                        ctx.time,
                        ctx.symbol,
                        self.side,
                        True,
                        float(A.btc["close"][i]),
                        float(A.btc["ema"][i]),
                        float(A.btc["change"][i]),
                        "new deal",
                    )
                )
            return
        quote = p["base_order_size"]
        m = ctx.market
        need = quote * (1.0 + m.taker_fee_bps / 1e4) if self.long else quote
        free = ctx.free()
        if need > free:
            if st.entry_blocked != "funds":
                st.entry_blocked = "funds"
                ctx.decide(
                    "smart_dca",
                    Outcome.BLOCK,
                    f"insufficient funds: base order needs {need:.2f}, free {free:.2f}; new deal blocked",
                )
            return
        close = float(A.close[i])
        stop = None
        if p["stop_loss"] > 0:
            stop = close * (1.0 - p["stop_loss"] / 100.0) if self.long else close * (1.0 + p["stop_loss"] / 100.0)
        conf = float(A.conf[i]) if A.conf is not None else None
        approved, quote = ctx.check_entry(self.side, quote, close, stop, conf)
        if not approved:
            return
        deal_id = ctx.new_deal_id()
        o = ctx.place(
            OrderIntent(
                ctx.symbol, self.entry_side, OrderType.MARKET, quote_amount=quote, tag="base_order", deal_id=deal_id
            )
        )
        if o.status == OrderStatus.REJECTED:
            ctx.decide("smart_dca", Outcome.BLOCK, f"base order rejected: {o.reject_reason}")
            return
        st.phase = "opening"
        st.deal_id = deal_id
        st.entry_blocked = ""
        state.active_deals += 1
        if state.active_deals >= p["max_active_deals"]:
            ctx.recall("slot")  # the others woken by the freed slot would only wait again

    # -- skipping -------------------------------------------------------------------------
    def next_wake(self, ctx) -> int | None:
        s = ctx.symbol
        st = ctx.state.symbols.get(s)
        A = self._arrays.get(s) or self._arr(ctx.feed, s)
        i, end = ctx.i, ctx.end
        if st is None or st.phase == "idle":
            if s in self._waiting:
                return None
            start = i + 1
            if st is not None and st.cooldown_until:
                start = max(start, int(A.time.searchsorted(st.cooldown_until - ctx.feed.tf_ms)))
            idx = A.entry_ok_idx if (st is not None and st.entry_blocked == "btc") else A.entry_idx
            k = int(idx.searchsorted(start))
            return int(idx[k]) if k < len(idx) else None
        if st.phase != "active":
            return None  # waiting for the base / close market order: the broker wakes us
        p = self.params
        lf = self._idx(A, st.last_fill_time)
        start = max(i + 1, lf + 1)
        best = end
        if p["trailing_enabled"]:
            best = min(best, self._trail_exit(A, st, lf, start, best))
        if st.sl_price > 0 and p["stop_loss_timeout"] > 0:
            best = min(best, self._sl_timeout(A, st, lf, start, best))
        avg = ctx.position.entry_price
        if self.g_zombie is not None and not st.zombie:
            best = min(best, self._zombie_first(s, A, st, avg, lf, start, best, ctx.feed.tf_ms))
        if self.g_safu is not None:
            best = min(best, self._safu_first(s, A, st, avg, lf, start, best))
        if not st.stop_averaging and st.so_filled < p["max_safety_orders"]:
            if self.g_btc is not None or self.g_conf is not None:
                if A.gate is None:
                    best = min(best, i + 1)
                else:
                    idx = A.gate_true_idx if st.held == "gate" else A.gate_false_idx
                    k = int(idx.searchsorted(i + 1))
                    if k < len(idx):
                        best = min(best, int(idx[k]))
            if st.held == "step_repeat" and self.g_step is not None:
                best = min(best, self._idx(A, st.last_so_fill_time) + self.g_step.min_candles)
        return best if best < end else None
