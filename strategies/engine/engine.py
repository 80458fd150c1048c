"""The engine: steps strategies over closed candles, for backtests and live bot steps alike.

Pure numpy (no Django). One :class:`Engine` runs a whole backtest in one call **and** one
live step from saved state plus new candles; both go through the same loop, so a paper bot
replayed over a period makes exactly the trades a backtest of that period makes.

At every stepping-timeframe candle (open time ``t``) of the union of the traded symbols'
candles, in this order:

1. **fills** — for each symbol (sorted) with a candle at ``t``, the broker fills the resting
   orders that candle reaches (fill model: :mod:`strategies.engine.broker`);
2. **mark to market** — one equity point at the candle's close (``t + timeframe``):
   ``cash + sum(position x close)``; the portfolio risk manager's ``on_candle`` runs here;
3. **decisions** — for each symbol (sorted) the strategy's ``on_candle(ctx)`` sees the closed
   candle and places / cancels orders; new orders can fill from the next candle on.

**Skipping.** Most candles change nothing. With ``skip=True`` (default) the engine asks the
broker for the next candle that can reach a resting order and the strategy for its next
interesting candle (:meth:`BaseStrategy.next_wake`), jumps there, and fills the equity curve
in between in one vectorized step (positions are constant between events). With
``skip=False`` it calls everything on every candle; both give identical results (tested on
real data), which is the contract a strategy's ``next_wake`` must honour: ``on_candle`` is a
no-op on every candle before the wake it announced, unless one of its orders fills.

**State.** :class:`EngineState` (JSON round-trip) holds cash, positions, open deals, open
orders, the strategy's and the risk manager's state, id counters and the last processed
candle time. ``run(feed, state=...)`` processes only candles after that time; the feed may
hold any amount of warm-up history before it (indicators are computed over the whole feed,
causally, so feeds that start at the same candle give bit-identical decisions).
Order ids are ``f"{order_prefix}-{n}"`` and deal ids ``f"{order_prefix}-d{n}"`` from
counters kept in the state, so re-running a step from the same state never duplicates an order.
"""

from __future__ import annotations

import gc
import json
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from typing import Any

import numpy as np

from .broker import Broker, SimulatedBroker
from .feed import Candles, Feed, FeedView
from .market import MarketSpec
from .orders import CancelIntent, ClosedTrade, Fill, Order, OrderIntent, OrderStatus, OrderType, Side
from .portfolio import Portfolio, Position
from .types import Decision, Outcome

__all__ = ["Engine", "EngineState", "RunResult", "StepContext"]

DAY_MS = 86_400_000
_ORDER_TYPES = frozenset((OrderType.MARKET, OrderType.LIMIT, OrderType.STOP))
_SIDES = frozenset((Side.BUY, Side.SELL))
_NEVER = 1 << 62
_CLOSED_PNL_KEEP = 1000  # closed-trade P&Ls kept in the state for the risk manager


@dataclass
class EngineState:
    """Everything a bot needs to continue where it stopped (JSON-safe, see :meth:`to_json`).

    Attributes:
        capital: starting capital in quote currency.
        last_time: open time (epoch ms) of the last processed stepping candle, or ``None``.
        portfolio: cash, positions and open deals (:meth:`Portfolio.to_dict`).
        open_orders: resting orders (:meth:`Order.to_dict`), oldest first.
        strategy: the strategy's state as a dict. risk: the risk manager's ``state_dict()``.
        order_seq / deal_seq: id counters. peak_equity, day_start_equity (quote), day_index
        (UTC day number of ``day_start_equity``), last_equity: for drawdown and daily-loss rules.
        closed_pnls / closed_pnl_pcts: realized P&L (quote / percent) of the last closed deals.
    """

    capital: float
    last_time: int | None = None
    portfolio: dict[str, Any] = field(default_factory=dict)
    open_orders: list[dict[str, Any]] = field(default_factory=list)
    strategy: dict[str, Any] = field(default_factory=dict)
    risk: dict[str, Any] | None = None
    order_seq: int = 0
    deal_seq: int = 0
    peak_equity: float = 0.0
    day_start_equity: float = 0.0
    day_index: int = -1
    last_equity: float = 0.0
    closed_pnls: list[float] = field(default_factory=list)
    closed_pnl_pcts: list[float] = field(default_factory=list)
    version: int = 1

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    def to_json(self) -> str:
        """Canonical JSON (sorted keys, no spaces); floats round-trip exactly."""
        return json.dumps(self.to_dict(), sort_keys=True, separators=(",", ":"))

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> EngineState:
        return cls(**d)

    @classmethod
    def from_json(cls, s: str) -> EngineState:
        return cls.from_dict(json.loads(s))


@dataclass
class RunResult:
    """What one :meth:`Engine.run` produced.

    ``orders``: every order created or changed in this run (final status at the end of the
    run), in first-touch order; ``fills``, ``trades`` (closed deals) and ``decisions`` in time
    order; ``equity_time`` (int64 epoch ms of each candle **close**) and ``equity`` (float64
    quote) — one point per stepping candle processed; ``open_deals``: live view of the deals
    still open (see :meth:`Engine.open_deals`); ``state``: the new :class:`EngineState`.
    """

    state: EngineState
    orders: list[Order]
    fills: list[Fill]
    trades: list[ClosedTrade]
    decisions: list[Decision]
    equity_time: np.ndarray
    equity: np.ndarray
    open_deals: list[dict[str, Any]]
    candles_processed: int = 0
    candle_steps: int = 0
    visits: int = 0  # strategy on_candle calls (not in to_dict: skipping changes it, nothing else)

    @property
    def deals(self) -> list[ClosedTrade]:
        return self.trades

    def equity_points(self) -> list[dict[str, Any]]:
        return [{"time": int(t), "equity": float(e)} for t, e in zip(self.equity_time, self.equity, strict=True)]

    def to_dict(self) -> dict[str, Any]:
        """JSON-safe report (``json.dumps(result.to_dict(), sort_keys=True)`` is byte-stable)."""
        return {
            "orders": [o.to_dict() for o in self.orders],
            "fills": [f.to_dict() for f in self.fills],
            "trades": [t.to_dict() for t in self.trades],
            "decisions": [d.to_dict() for d in self.decisions],
            "equity": self.equity_points(),
            "open_deals": self.open_deals,
            "state": self.state.to_dict(),
            "candles_processed": self.candles_processed,
            "candle_steps": self.candle_steps,
        }


# --- risk seam -------------------------------------------------------------------------------
def _risk_types():
    """``(EntryRequest, PortfolioView, OpenPosition)`` from :mod:`strategies.risk`, or local
    stand-ins with the same fields when that package is not importable."""
    try:
        from strategies.risk import EntryRequest, OpenPosition, PortfolioView

        return EntryRequest, PortfolioView, OpenPosition
    except ImportError:  # pragma: no cover - only while strategies.risk is absent

        @dataclass
        class EntryRequest:  # type: ignore[no-redef]
            time_ms: int
            symbol: str
            side: str
            quote_amount: float
            price: float
            stop_price: float | None = None
            confidence: float | None = None

        @dataclass
        class OpenPosition:  # type: ignore[no-redef]
            symbol: str
            side: str
            notional: float
            entry_price: float
            stop_price: float | None = None

        @dataclass
        class PortfolioView:  # type: ignore[no-redef]
            time_ms: int
            equity: float
            cash: float
            peak_equity: float
            day_start_equity: float
            positions: list
            closed_pnls: list
            closed_pnl_pcts: list
            market: Any = None

        return EntryRequest, PortfolioView, OpenPosition


class StepContext:
    """What a strategy sees when one of its symbols' candles closes.

    Read: ``symbol``, ``i`` (index of the closed candle in ``candles``), ``time`` (its open
    time, ms), ``close_time``, ``candles`` (whole arrays — ``on_candle`` must read only
    ``[: i + 1]``; ``next_wake`` may scan forward to find its next event), ``end`` (the run
    stops before this index), ``market`` (:class:`MarketSpec`), ``fills`` (this symbol's fills
    during this candle), ``state`` (the strategy's state), ``feed``, ``position``, ``orders``
    (this symbol's open orders), ``view`` (causal ``MarketDataView``).

    Act: :meth:`place`, :meth:`cancel`, :meth:`record` / :meth:`decide`, :meth:`new_deal_id`,
    :meth:`tag_deal`, :meth:`check_entry` (portfolio risk), :meth:`wait_for` / :meth:`notify`.
    """

    __slots__ = (
        "_eng",
        "symbol",
        "i",
        "time",
        "close_time",
        "candles",
        "market",
        "fills",
        "state",
        "feed",
        "end",
        "record_allow",
        "_wait",
    )

    def __init__(self, eng: Engine) -> None:
        self._eng = eng
        self.record_allow = eng.record_allow  # False: ALLOW decisions are dropped, skip building them
        self.fills: list[Fill] = []
        self._wait = ""

    @property
    def position(self) -> Position:
        return self._eng._pf.position(self.symbol)

    @property
    def orders(self) -> list[Order]:
        return self._eng._open[self.symbol]

    @property
    def portfolio(self) -> Portfolio:
        return self._eng._pf

    @property
    def view(self) -> FeedView:
        return FeedView(self.feed, self.time)

    @property
    def close(self) -> float:
        return float(self.candles.close[self.i])

    def equity(self) -> float:
        """Equity (quote) at this candle's close."""
        return self._eng._equity_at_now()

    def free(self) -> float:
        """Buying power in quote (see :meth:`Portfolio.free`)."""
        return self._eng._pf.free()

    def place(self, intent: OrderIntent) -> Order:
        """Submit an order now; returns it ``open`` or ``rejected`` (with ``reject_reason``)."""
        return self._eng._place(self, intent)

    def cancel(self, order: Order | str, reason: str = "") -> None:
        self._eng._cancel_id(
            self.symbol, order if isinstance(order, str) else order.client_order_id, reason, self.close_time
        )

    def record(self, decision: Decision) -> None:
        self._eng._record(decision)

    def decide(self, rule: str, outcome: str, reason: str, payload: dict | None = None) -> Decision:
        d = Decision(self.time, rule, outcome, reason, self.symbol, payload or {})
        self._eng._record(d)
        return d

    def new_deal_id(self) -> str:
        return self._eng._new_deal_id()

    def tag_deal(self, deal_id: str, tag: str) -> None:
        deal = self._eng._pf.deals.get(deal_id)
        if deal is not None and tag not in deal.tags:
            deal.tags.append(tag)

    def check_entry(
        self,
        side: str,
        quote_amount: float,
        price: float,
        stop_price: float | None = None,
        confidence: float | None = None,
    ) -> tuple[bool, float]:
        """Ask the portfolio risk manager before a NEW deal (not for safety orders).

        Returns ``(approved, quote_amount)`` (possibly resized); its decisions are recorded.
        Without a risk manager: ``(True, quote_amount)``.
        """
        return self._eng._check_entry(self, side, quote_amount, price, stop_price, confidence)

    def wait_for(self, kind: str) -> None:
        """Sleep this symbol until ``notify(kind)``: ``"slot"`` (a deal slot freed) or
        ``"funds"`` (any fill or cancel). ``next_wake`` should then return ``None``."""
        self._wait = kind

    def notify(self, kind: str) -> None:
        """Wake the symbols waiting for ``kind`` (``"slot"`` also wakes ``"funds"`` waiters)."""
        self._eng._notify(kind, self.symbol)

    def recall(self, kind: str) -> None:
        """Put back to sleep the symbols that a ``notify(kind)`` woke and that have not run yet
        (their wake-up is restored to what it was before the notify).

        Call it when the resource is gone again (e.g. this symbol took the last deal slot): a
        woken waiter would only find nothing and ``wait_for(kind)`` again, so skipping its
        call changes nothing but time. Only waiters of exactly ``kind`` are recalled.
        """
        self._eng._recall(kind)


class Engine:
    """Steps one strategy over one portfolio of markets.

    Args:
        strategy: a :class:`~strategies.base.BaseStrategy` instance (parameters validated).
        markets: the traded markets (``MarketSpec`` list or ``{symbol: MarketSpec}``).
        broker: defaults to ``SimulatedBroker()`` (no slippage).
        risk: optional portfolio ``RiskManager`` (``strategies.risk`` contract) or ``None``.
        capital: starting capital, quote currency (float64).
        order_prefix: prefix of client order ids (``"bot42"`` -> ``"bot42-17"``).
        skip: skip candles on which nothing can happen (identical results, much faster).
        record_allow: also keep ``Outcome.ALLOW`` decisions (normally dropped).
    """

    def __init__(
        self,
        strategy,
        markets,
        broker: Broker | None = None,
        risk=None,
        capital: float = 10_000.0,
        order_prefix: str = "m7",
        skip: bool = True,
        record_allow: bool = False,
    ) -> None:
        if isinstance(markets, dict):
            markets = list(markets.values())
        self.markets: dict[str, MarketSpec] = {m.symbol: m for m in sorted(markets, key=lambda m: m.symbol)}
        if not self.markets:
            raise ValueError("Engine needs at least one market")
        self.symbols = list(self.markets)
        self.strategy = strategy
        self.broker = broker if broker is not None else SimulatedBroker()
        self.risk = risk
        self.capital = float(capital)
        self.order_prefix = order_prefix
        self.skip = skip
        self.record_allow = record_allow

    # -- state ----------------------------------------------------------------------------
    def initial_state(self) -> EngineState:
        return EngineState(
            capital=self.capital,
            portfolio=Portfolio(self.capital).to_dict(),
            strategy=self.strategy.state_to_dict(self.strategy.initial_state()),
            risk=self.risk.state_dict() if self.risk is not None else None,
            peak_equity=self.capital,
            day_start_equity=self.capital,
            last_equity=self.capital,
        )

    def close_deals(
        self, state: EngineState, timeframe_ms: int, deal_ids: list[str] | None = None, tag: str = "manual_close"
    ) -> tuple[EngineState, list[Order]]:
        """Ask to close open deals at market: the way a user's "close" button reaches the engine.

        Returns a new state (``state`` is not modified) holding, for each deal of ``deal_ids``
        (``None``: every open deal), a reduce-only market order for the whole position, tagged
        ``tag``, created at the close of the last processed candle (``state.last_time +
        timeframe_ms``, epoch ms; 0 before any candle); and the orders placed. The
        next :meth:`run` fills them at the next candle's open like any market order (fill model
        in :mod:`strategies.engine.broker`); the deal then closes with exit reason ``tag``, its
        other orders are canceled (``deal_closed``) and the strategy sees a flat position.
        Deals with such an order already resting, or with a flat position, are skipped, so
        asking twice places nothing more. Unknown deal ids are ignored.
        """
        st = EngineState.from_json(state.to_json())
        deals = st.portfolio.get("deals", {})
        positions = st.portfolio.get("positions", {})
        pending = {o.get("deal_id") for o in st.open_orders if o.get("tag") == tag}
        wanted = sorted(deals) if deal_ids is None else sorted(set(deal_ids) & set(deals))
        created_at = st.last_time + timeframe_ms if st.last_time is not None else 0
        placed: list[Order] = []
        for deal_id in wanted:
            deal = deals[deal_id]
            amount = float(positions.get(deal["symbol"], {}).get("amount", 0.0))
            if deal_id in pending or amount == 0.0:
                continue
            st.order_seq += 1
            od = Order(
                client_order_id=f"{self.order_prefix}-{st.order_seq}",
                symbol=deal["symbol"],
                side=Side.SELL if amount > 0 else Side.BUY,
                type=OrderType.MARKET,
                amount=abs(amount),
                status=OrderStatus.OPEN,
                tag=tag,
                deal_id=deal_id,
                reduce_only=True,
                created_at=created_at,
                updated_at=created_at,
            )
            st.open_orders.append(od.to_dict())
            placed.append(od)
        return st, placed

    def apply_commands(self, state: EngineState | None, commands: list[dict[str, Any]], feed: Feed):
        """Apply a user's manual commands (close, add funds, change exits ...) to ``state``
        through the engine's order path and the strategy's ``on_command``; returns a
        :class:`~strategies.engine.commands.CommandResult` (new state, orders, decisions).
        See :mod:`strategies.engine.commands`."""
        from .commands import apply_commands

        return apply_commands(self, state, commands, feed)

    def open_deals(self, state: EngineState) -> list[dict[str, Any]]:
        """Live view of the open deals in ``state`` for a UI (one dict per deal, by deal id).

        Keys: ``deal_id, symbol, side, opened_at, amount`` (base, signed), ``entry_price``
        (average, quote), ``cost``, ``fees``, ``safety_orders_filled``, ``tags``, ``orders`` (open
        order dicts) plus whatever the strategy adds via ``deal_info`` (Smart DCA:
        ``max_safety_orders, take_profit_price, stop_loss_price, next_so_price, ladder``).
        """
        pf = state.portfolio
        sstate = self.strategy.state_from_dict(state.strategy)
        out = []
        for deal_id, d in sorted(pf.get("deals", {}).items()):
            sym = d["symbol"]
            pos = pf.get("positions", {}).get(sym, {})
            info = {
                "deal_id": deal_id,
                "symbol": sym,
                "side": d["side"],
                "opened_at": d["opened_at"],
                "amount": pos.get("amount", 0.0),
                "entry_price": pos.get("entry_price", 0.0),
                "cost": d["entry_cost"],
                "fees": d["fees"],
                "safety_orders_filled": d["safety_orders_filled"],
                "tags": list(d["tags"]),
                "orders": [o for o in state.open_orders if o["symbol"] == sym],
            }
            info.update(self.strategy.deal_info(sstate, sym))
            out.append(info)
        return out

    # -- the loop -------------------------------------------------------------------------
    def run(
        self,
        feed: Feed,
        start_ms: int | None = None,
        end_ms: int | None = None,
        state: EngineState | None = None,
        progress: Callable[[int, int], None] | None = None,
    ) -> RunResult:
        """Process the feed's candles after ``state.last_time`` with open time in
        ``[start_ms, end_ms]`` (epoch ms, both optional) and return a :class:`RunResult`.

        ``state=None`` starts from :meth:`initial_state`. The given state is not modified.
        ``progress(done, total)`` is called now and then with counts of stepping candles.
        Raises ``KeyError`` when a traded market is missing from the feed.

        The cyclic garbage collector is paused for the run (the loop allocates many small
        objects and creates no cycles worth chasing; a collection pass over the growing
        order and fill lists cost ~6 % of a long backtest) and restored afterwards.
        """
        was_enabled = gc.isenabled()
        gc.disable()
        try:
            return self._run(feed, start_ms, end_ms, state, progress)
        finally:
            if was_enabled:
                gc.enable()

    def _run(self, feed, start_ms, end_ms, state, progress) -> RunResult:
        st = EngineState.from_dict(json.loads(state.to_json())) if state is not None else self.initial_state()
        syms = self.symbols
        for s in syms:
            feed.candles(s)
        self.feed = feed
        self.strategy.prepare(feed)
        self.broker.bind(feed, self.markets)
        if self.risk is not None and st.risk is not None:
            self.risk.load_state(st.risk)

        G = feed.global_times(syms)
        self._G = G
        self._C = feed.aligned_closes(syms)
        self._tf = feed.tf_ms
        lo = st.last_time + 1 if st.last_time is not None else None
        if start_ms is not None:
            lo = start_ms if lo is None else max(lo, start_ms)
        g0 = int(np.searchsorted(G, lo)) if lo is not None else 0
        g1 = int(np.searchsorted(G, end_ms, side="right")) if end_ms is not None else len(G)
        g1 = max(g0, g1)

        # run-level mutable state
        self._pf = Portfolio.from_dict(st.portfolio, {s: m.amount_tick for s, m in self.markets.items()})
        self._open: dict[str, list[Order]] = {s: [] for s in syms}
        self._touched: dict[str, Order] = {}
        for od in st.open_orders:
            o = Order.from_dict(od)
            self._open[o.symbol].append(o)
        self._pf.reserved = sum(o.reserved for lst in self._open.values() for o in lst)
        self._st = st
        self._sstate = self.strategy.state_from_dict(st.strategy)
        self._fills: list[Fill] = []
        self._trades: list[ClosedTrade] = []
        self._decisions: list[Decision] = []
        self._eq = np.zeros(g1 - g0)
        self._g0 = g0
        self._eq_now = st.last_equity
        self._g = g0
        self._phase2_pos = -1

        cands: dict[str, Candles] = {s: feed.candles(s) for s in syms}
        gidx = {s: np.searchsorted(G, cands[s].time) for s in syms}
        li1 = {}
        wake_l: dict[str, int] = {}
        wake_g: dict[str, int] = {}
        t_lo = G[g0] if g0 < len(G) else _NEVER
        t_hi = G[g1 - 1] if g1 > 0 and g1 > g0 else -1
        for s in syms:
            a = int(np.searchsorted(cands[s].time, t_lo))
            b = int(np.searchsorted(cands[s].time, t_hi, side="right"))
            li1[s] = b
            if a < b:
                wake_l[s], wake_g[s] = a, int(gidx[s][a])
            else:
                wake_l[s], wake_g[s] = -1, _NEVER
        self._wake_l, self._wake_g, self._gidx, self._li1, self._cands = wake_l, wake_g, gidx, li1, cands
        # a symbol with a candle at every global time from its first on: local = global - offset
        self._goff = {s: int(gi[0]) for s, gi in gidx.items() if len(gi) and int(gi[-1]) - int(gi[0]) == len(gi) - 1}
        self._waiters: dict[str, str] = {}
        self._funds_waiting = 0  # how many of the waiters wait for "funds"
        # woken by a notify and not yet run: symbol -> (kind, wake_l, wake_g before the notify)
        self._notified: dict[str, tuple[str, int, int]] = {}
        # the broker's next trigger per symbol, valid while the symbol's open orders are unchanged
        # (``_ver`` counts changes): no fill can happen on a wake before it, so none is tried
        self._ver: dict[str, int] = dict.fromkeys(syms, 0)
        self._nt: dict[str, tuple[int, int]] = {}
        self._held_k: list[tuple[int, str]] = []
        self._kof = {s: k for k, s in enumerate(syms)}
        self._refresh_held()
        ctx = StepContext(self)
        ctx.feed = feed
        ctx.state = self._sstate
        self._ctx = ctx
        strategy = self.strategy
        on_candle = strategy.on_candle
        next_wake = strategy.next_wake
        broker = self.broker
        skip = self.skip
        total = g1 - g0
        next_progress = g0 + 5000
        markets = self.markets
        open_ = self._open
        nt_cache = self._nt
        ver = self._ver
        notified = self._notified
        waiters = self._waiters
        tf = self._tf
        no_fills: list[Fill] = []
        defer = self.risk is None
        self._defer = defer
        visits = 0
        self._cash0 = self._pf.cash
        self._amt0 = [self._pf.amount(s) for s in syms]
        self._ev_cash: list[tuple[int, float]] = []
        self._ev_amt: list[list[tuple[int, float]]] = [[] for _ in syms]

        cur = g0
        while True:
            g = min(wake_g.values()) if wake_g else _NEVER
            if g >= g1:
                g = g1
            if g > cur and not defer:
                self._mark(cur, g)
            if g >= g1:
                break
            self._g = g
            t = int(G[g])
            self._phase2_pos = -1
            due = [s for s in syms if wake_g[s] == g]
            # 1. fills
            fills_by: dict[str, list[Fill]] = {}
            for s in due:
                if open_[s]:
                    c = nt_cache.get(s)
                    if c is not None and c[0] == ver[s] and wake_l[s] < c[1]:
                        continue  # the broker said nothing can fill before c[1]
                    f = self._execute(s, wake_l[s])
                    if f:
                        fills_by[s] = f
            if fills_by:
                self._notify("funds", "")
            # 2. mark to market (+ risk on_candle); without a risk manager nothing reads the
            # equity during the run but ctx.equity(), so the curve is built once at the end
            if not defer:
                self._mark(g, g + 1)
            # 3. decisions
            close_time = t + tf
            for pos_k, s in enumerate(syms):
                if wake_g[s] != g:
                    continue
                self._phase2_pos = pos_k
                i = wake_l[s]
                end = li1[s]
                ctx.symbol = s
                ctx.i = i
                ctx.time = t
                ctx.close_time = close_time
                ctx.candles = cands[s]
                ctx.market = markets[s]
                ctx.fills = fills_by.get(s, no_fills)
                ctx.end = end
                ctx._wait = ""
                visits += 1
                if waiters and waiters.pop(s, None) == "funds":
                    self._funds_waiting -= 1
                if notified:
                    notified.pop(s, None)
                intents = on_candle(ctx)
                if intents:
                    for it in intents:
                        if isinstance(it, CancelIntent):
                            ctx.cancel(it.client_order_id, it.reason)
                        else:
                            ctx.place(it)
                if skip:
                    if ctx._wait:
                        waiters[s] = ctx._wait
                        if ctx._wait == "funds":
                            self._funds_waiting += 1
                    # the next fill bounds the strategy's own search (we wake there anyway)
                    if open_[s]:
                        c = nt_cache.get(s)
                        if c is not None and c[0] == ver[s] and c[1] > i:
                            nt = c[1]
                        else:
                            nt = broker.next_trigger(s, open_[s], i + 1, end)
                            nt_cache[s] = (ver[s], nt)
                    else:
                        nt = end
                    ctx.end = nt
                    nw = next_wake(ctx)
                    if nw is None or nw > nt:
                        nw = nt
                    elif nw <= i:
                        nw = i + 1
                    nxt = nw
                else:
                    nxt = i + 1
                if nxt < end:
                    wake_l[s], wake_g[s] = nxt, int(gidx[s][nxt])
                else:
                    wake_l[s], wake_g[s] = -1, _NEVER
            cur = g + 1
            if progress is not None and g >= next_progress:
                progress(g - g0, total)
                next_progress = g + 5000
        if progress is not None:
            progress(total, total)
        if defer:
            self._mark_all(g0, g1)

        # finish
        if g1 > g0:
            st.last_time = int(G[g1 - 1])
        st.portfolio = self._pf.to_dict()
        st.open_orders = [o.to_dict() for s in syms for o in self._open[s]]
        st.strategy = strategy.state_to_dict(self._sstate)
        if self.risk is not None:
            st.risk = self.risk.state_dict()
        st.last_equity = self._eq_now
        eq = self._eq
        res = RunResult(
            state=st,
            orders=list(self._touched.values()),
            fills=self._fills,
            trades=self._trades,
            decisions=self._decisions,
            equity_time=(G[g0:g1] + self._tf).astype(np.int64),
            equity=eq,
            open_deals=[],
            candles_processed=total,
            candle_steps=sum(
                int(np.searchsorted(cands[s].time, t_hi, side="right") - np.searchsorted(cands[s].time, t_lo))
                for s in syms
            )
            if total
            else 0,
        )
        res.visits = visits
        res.open_deals = self.open_deals(st)
        self._ctx = None
        return res

    # -- equity & risk --------------------------------------------------------------------
    def _refresh_held(self) -> None:
        """``_held_k``: ``(k, symbol)`` of the non-flat positions, in symbol order (the order in
        which equity sums them, so every equity value is the same IEEE sum)."""
        pos = self._pf.positions
        self._held_k = [(k, s) for k, s in enumerate(self.symbols) if (p := pos.get(s)) is not None and p.amount != 0.0]
        self._held_set = {k for k, _ in self._held_k}

    def _held_changed(self, s: str) -> None:
        """Update ``_held_k`` and the deferred equity events after fills of ``s``."""
        k = self._kof[s]
        amt = self._pf.positions[s].amount
        if (amt != 0.0) != (k in self._held_set):
            if amt != 0.0:
                self._held_set.add(k)
            else:
                self._held_set.discard(k)
            self._held_k = [(kk, self.symbols[kk]) for kk in sorted(self._held_set)]
        if self._defer:
            self._ev_cash.append((self._g, self._pf.cash))
            self._ev_amt[k].append((self._g, amt))

    def _mark_all(self, g0: int, g1: int) -> None:
        """The whole equity curve ``[g0, g1)`` at once from the cash and position changes
        recorded during the run: per candle ``cash + sum_k amount_k x close_k``, summed in
        symbol order with the same IEEE operations as :meth:`_mark` (a flat symbol adds an
        exact 0.0), then peak / day-start / last equity folded as :meth:`_mark` does."""
        n = g1 - g0
        if n <= 0:
            return
        gg = np.arange(g0, g1)

        def timeline(first: float, ev: list[tuple[int, float]]) -> np.ndarray:
            if not ev:
                return np.full(n, first)
            at = np.fromiter((e[0] for e in ev), dtype=np.int64, count=len(ev))
            vals = np.empty(len(ev) + 1)
            vals[0] = first
            vals[1:] = [e[1] for e in ev]
            return vals[np.searchsorted(at, gg, side="right")]

        eq = timeline(self._cash0, self._ev_cash)
        for k in range(len(self.symbols)):
            ev = self._ev_amt[k]
            if not ev and self._amt0[k] == 0.0:
                continue
            eq += timeline(self._amt0[k], ev) * self._C[k, g0:g1]
        self._eq = eq
        self._fold_stats(eq, self._G[g0:g1] + self._tf)
        self._eq_now = self._st.last_equity

    def _fold_stats(self, eq: np.ndarray, ct: np.ndarray) -> None:
        """Peak equity, UTC-day start equity and last equity after the points ``eq`` (closing at ``ct``)."""
        st = self._st
        m = float(eq.max())
        if m > st.peak_equity:
            st.peak_equity = m
        days = ct // DAY_MS
        if days[-1] != st.day_index:
            prev = np.concatenate(([st.last_equity], eq[:-1]))
            for k in np.flatnonzero(np.diff(np.concatenate(([st.day_index], days))) != 0):
                st.day_index = int(days[k])
                st.day_start_equity = float(eq[k] if ct[k] % DAY_MS == 0 else prev[k])
        st.last_equity = float(eq[-1])

    def _mark(self, a: int, b: int) -> None:
        """Equity points for global candles ``[a, b)`` with the current cash and positions."""
        pf = self._pf
        st = self._st
        positions = pf.positions
        held = [(k, positions[s].amount) for k, s in self._held_k]
        if b - a == 1 and self.risk is None:
            # scalar path: the same IEEE operations in the same order as the vector path below
            e = pf.cash
            for k, amt in held:
                e = e + amt * float(self._C[k, a])
            self._eq[a - self._g0] = e
            if e > st.peak_equity:
                st.peak_equity = e
            ct = int(self._G[a]) + self._tf
            d = ct // DAY_MS
            if d != st.day_index:
                st.day_index = d
                st.day_start_equity = e if ct % DAY_MS == 0 else st.last_equity
            st.last_equity = e
            self._eq_now = e
            return
        eq = np.full(b - a, pf.cash)
        for k, amt in held:
            eq += amt * self._C[k, a:b]
        self._eq[a - self._g0 : b - self._g0] = eq
        ct = self._G[a:b] + self._tf
        if self.risk is None:
            self._fold_stats(eq, ct)
        else:
            for k in range(b - a):
                e = float(eq[k])
                if e > st.peak_equity:
                    st.peak_equity = e
                d = int(ct[k] // DAY_MS)
                if d != st.day_index:
                    st.day_index = d
                    st.day_start_equity = e if ct[k] % DAY_MS == 0 else st.last_equity
                st.last_equity = e
                self._eq_now = e
                t = int(self._G[a + k])
                for dec in self.risk.on_candle(t, self._portfolio_view(t, e)) or ():
                    self._record(dec)
        self._eq_now = st.last_equity

    def _equity_at_now(self) -> float:
        """Equity (quote) at the close of the current candle (same sum as :meth:`_mark`)."""
        if not self._defer:
            return self._eq_now
        a = self._g
        e = self._pf.cash
        positions = self._pf.positions
        for k, s in self._held_k:
            e = e + positions[s].amount * float(self._C[k, a])
        return e

    def _portfolio_view(self, t: int, equity: float):
        _, PortfolioView, OpenPosition = _risk_types()
        pf = self._pf
        positions = []
        g = self._g
        for k, s in enumerate(self.symbols):
            p = pf.positions.get(s)
            if p is None or p.amount == 0.0:
                # A flat symbol with a resting entry order (a base order placed this candle,
                # filling at the next open) is a position for the risk rules already, or two
                # entries decided on the same candle would both pass a max-positions limit.
                for o in self._open[s]:
                    if not o.reduce_only:
                        price = o.price if o.price is not None else float(self._C[k, g])
                        side = "long" if o.side == Side.BUY else "short"
                        positions.append(OpenPosition(s, side, o.amount * price, price, None))
                        break
                continue
            stop = None
            for o in self._open[s]:
                if o.type == OrderType.STOP and o.reduce_only:
                    stop = o.stop_price
            positions.append(
                OpenPosition(
                    s, "long" if p.amount > 0 else "short", abs(p.amount) * float(self._C[k, g]), p.entry_price, stop
                )
            )
        st = self._st
        return PortfolioView(
            time_ms=t,
            equity=equity,
            cash=pf.cash,
            peak_equity=st.peak_equity,
            day_start_equity=st.day_start_equity,
            positions=positions,
            closed_pnls=list(st.closed_pnls),
            closed_pnl_pcts=list(st.closed_pnl_pcts),
            market=FeedView(self.feed, t),
        )

    def _check_entry(self, ctx: StepContext, side, quote_amount, price, stop_price, confidence):
        if self.risk is None:
            return True, quote_amount
        EntryRequest, _, _ = _risk_types()
        req = EntryRequest(
            time_ms=ctx.time,
            symbol=ctx.symbol,
            side=side,
            quote_amount=quote_amount,
            price=price,
            stop_price=stop_price,
            confidence=confidence,
        )
        rd = self.risk.check_entry(req, self._portfolio_view(ctx.time, self._eq_now))
        for d in rd.decisions or ():
            self._record(d)
        return bool(rd.approved), float(rd.quote_amount)

    # -- decisions, ids, waiters ----------------------------------------------------------
    def _record(self, d: Decision) -> None:
        if d.outcome == Outcome.ALLOW and not self.record_allow:
            return
        self._decisions.append(d)

    def _new_deal_id(self) -> str:
        self._st.deal_seq += 1
        return f"{self.order_prefix}-d{self._st.deal_seq}"

    def _notify(self, kind: str, from_symbol: str) -> None:
        if not self._waiters:
            return
        if kind == "funds" and not self._funds_waiting:
            return
        g = self._g
        for s, k in list(self._waiters.items()):
            if kind == "funds" and k != "funds":
                continue
            # a waiter whose turn in this candle's decision phase has not come yet wakes now,
            # the others on their next candle
            target = g if self._kof[s] > self._phase2_pos else g + 1
            wg = self._wake_g[s]
            self._notified[s] = (k, self._wake_l[s], wg)
            off = self._goff.get(s)
            if off is not None:
                j = target - off if target > off else 0
                gj = j + off
            else:
                gi = self._gidx[s]
                j = int(gi.searchsorted(target))
                gj = int(gi[j]) if j < len(gi) else _NEVER
            if j < self._li1[s] and gj < wg:
                self._wake_l[s], self._wake_g[s] = j, gj
            del self._waiters[s]
            if k == "funds":
                self._funds_waiting -= 1

    def _recall(self, kind: str) -> None:
        if not self._notified:
            return
        for s, (k, wl, wg) in list(self._notified.items()):
            if k != kind:
                continue
            self._wake_l[s], self._wake_g[s] = wl, wg
            self._waiters[s] = k
            if k == "funds":
                self._funds_waiting += 1
            del self._notified[s]

    # -- orders ---------------------------------------------------------------------------
    def _place(self, ctx: StepContext, it: OrderIntent) -> Order:
        s = it.symbol
        if s != ctx.symbol:
            raise ValueError(f"on_candle for {ctx.symbol} placed an order for {s}; orders are per symbol")
        m = self.markets[s]
        ref = float(ctx.candles.close[ctx.i])
        price = m.round_price(it.price) if it.price is not None else None
        stop = m.round_price(it.stop_price) if it.stop_price is not None else None
        if it.amount is not None:
            amount = m.trunc_amount(it.amount)
        elif it.quote_amount is not None:
            qp = price if it.type == OrderType.LIMIT else stop if it.type == OrderType.STOP else ref
            amount = m.trunc_amount(it.quote_amount / qp) if qp else 0.0
        elif it.reduce_only:
            amount = abs(self._pf.amount(s))
        else:
            raise ValueError("OrderIntent needs amount or quote_amount (or reduce_only to close all)")
        if it.type not in _ORDER_TYPES:
            raise ValueError(f"unknown order type {it.type!r}")
        if it.side not in _SIDES:
            raise ValueError(f"unknown side {it.side!r}")
        st = self._st
        st.order_seq += 1
        ct = ctx.close_time
        # positional, in Order's field order: client_order_id, symbol, side, type, amount, price,
        # stop_price, filled, average, status, reject_reason, cancel_reason, tag, so_index,
        # deal_id, reduce_only, created_at, updated_at
        od = Order(
            f"{self.order_prefix}-{st.order_seq}",
            s,
            it.side,
            it.type,
            amount,
            price,
            stop,
            0.0,
            None,
            OrderStatus.NEW,
            "",
            "",
            it.tag,
            it.so_index,
            it.deal_id,
            it.reduce_only,
            ct,
            ct,
        )
        self.broker.submit(od, ref, self._pf)
        self._touched[od.client_order_id] = od
        if od.is_open:
            self._open[s].append(od)
            self._ver[s] += 1
            if od.deal_id:
                deal = self._pf.deals.get(od.deal_id)
                if deal is not None and od.client_order_id not in deal.orders:
                    deal.orders.append(od.client_order_id)
        return od

    def _cancel_id(self, symbol: str, coid: str, reason: str, time: int) -> None:
        for od in self._open[symbol]:
            if od.client_order_id == coid:
                self._cancel(od, reason, time)
                self._notify("funds", symbol)
                return

    def _cancel(self, od: Order, reason: str, time: int) -> None:
        self.broker.cancel(od, self._pf)
        od.status = OrderStatus.CANCELED
        od.cancel_reason = reason
        od.updated_at = time
        self._open[od.symbol].remove(od)
        self._ver[od.symbol] += 1
        self._touched[od.client_order_id] = od

    def _execute(self, s: str, i: int) -> list[Fill]:
        pf = self._pf
        m = self.markets[s]
        fills: list[Fill] = []
        open_s = self._open[s]
        fast = getattr(self.broker, "fills_at", None)
        events = fast(s, i, list(open_s), pf.amount(s)) if fast is not None else None
        if events is None:
            events = self.broker.iter_fills(s, i, list(open_s), lambda: pf.amount(s))
        for od, price, liq, ftime in events:
            if not od.is_open:
                continue
            amount = od.amount - od.filled
            if od.reduce_only:
                pa = pf.amount(s)
                if pa == 0.0 or (pa > 0) == (od.side == Side.BUY):
                    self._cancel(od, "reduce_only: no position to reduce", ftime)
                    continue
                if amount > abs(pa):
                    amount = abs(pa)
            fee = price * amount * (m.maker_fee_bps if liq == "maker" else m.taker_fee_bps) / 1e4
            if od.reserved:
                pf.reserved -= od.reserved
                od.reserved = 0.0
            fill = Fill(od.client_order_id, s, od.side, price, amount, fee, liq, ftime, od.tag, od.deal_id)
            od.filled += amount
            od.average = price
            od.fee += fee
            od.status = OrderStatus.FILLED
            od.updated_at = ftime
            open_s.remove(od)
            self._touched[od.client_order_id] = od
            closed = pf.apply_fill(fill, od, self._new_deal_id)
            self._ver[s] += 1
            fills.append(fill)
            self._fills.append(fill)
            if closed is not None:
                self._trades.append(closed)
                st = self._st
                st.closed_pnls.append(closed.pnl)
                st.closed_pnl_pcts.append(closed.pnl_pct)
                if len(st.closed_pnls) > _CLOSED_PNL_KEEP:
                    del st.closed_pnls[0], st.closed_pnl_pcts[0]
                for other in list(open_s):
                    if other.deal_id and other.deal_id == closed.deal_id:
                        self._cancel(other, "deal_closed", ftime)
        if fills:
            self._held_changed(s)
        return fills
