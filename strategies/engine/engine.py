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

Module layout: the state and result types live in :mod:`.state`, :class:`StepContext` in
:mod:`.context`, mark to market and the risk seam in :mod:`.marking`, order placement and
fill execution in :mod:`.execution`, perpetuals (funding, liquidation on the mark price, the
liquidation-buffer guard; step 0 of each candle) in :mod:`.margin`; all are re-exported here.
"""

from __future__ import annotations

import gc
import json
from collections.abc import Callable
from typing import Any

import numpy as np

from .broker import Broker, SimulatedBroker
from .context import StepContext
from .execution import ExecutionMixin
from .feed import Candles, Feed
from .margin import PerpsMixin
from .market import MarketSpec
from .marking import DAY_MS as DAY_MS
from .marking import MarkingMixin
from .orders import CancelIntent, ClosedTrade, Fill, Order, OrderStatus, OrderType, Side
from .portfolio import Portfolio
from .state import EngineState, RunResult
from .types import Decision, Outcome

__all__ = ["Engine", "EngineState", "RunResult", "StepContext"]

_NEVER = 1 << 62


class Engine(MarkingMixin, ExecutionMixin, PerpsMixin):
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
        self._pf = Portfolio.from_dict(
            st.portfolio,
            {s: m.amount_tick for s, m in self.markets.items()},
            {s: m.leverage for s, m in self.markets.items() if m.market_type == "swap"},
        )
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
        self._perps_setup(feed, g0)
        swap = self._swap
        ctx = StepContext(self)
        ctx.feed = feed
        ctx.state = self._sstate
        self._ctx = ctx
        strategy = self.strategy
        on_candle = strategy.on_candle
        next_wake = strategy.next_wake
        broker = self.broker
        # perpetuals: isolated positions skip to their next funding event or liquidation
        # (PerpsMixin._perps_bound); cross margin reads every candle
        skip = self.skip and not (swap and self._perps_no_skip())
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
        defer = self.risk is None  # perpetuals record their funding cash moves too (margin.py)
        self._defer = defer
        visits = 0
        self._cash0 = self._pf.cash
        self._amt0 = [self._pf.amount(s) for s in syms]
        self._ev_cash: list[tuple[int, float]] = []
        self._ev_amt: list[list[tuple[int, float]]] = [[] for _ in syms]

        pending = self._pending_funding  # funding queued by skipping perpetuals (margin.py)
        cur = g0
        while True:
            g = min(wake_g.values()) if wake_g else _NEVER
            if pending and pending[0][0] < g:
                g = pending[0][0]
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
            if swap:
                if pending and pending[0][0] == g:
                    # queued funding and the due symbols' own steps, in symbol order
                    self._apply_funding(g, {s for s in due if s in swap}, wake_l, t)
                else:
                    for s in due:
                        if s in swap:
                            self._perps_step(s, wake_l[s], t)
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
                    if swap and s in swap and nxt > i + 1:
                        nxt = self._perps_bound(s, i, nxt)
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
        if swap:
            self._perps_finish()
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
