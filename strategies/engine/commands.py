"""Manual commands on a saved engine state: how a user's button reaches the engine.

Pure Python (no Django). A bot's user can ask for things between two steps — close a deal at
market, add funds to it (a manual safety order), change its take profit / stop loss. None of
them edits the state from outside: :func:`apply_commands` (``Engine.apply_commands``) turns each
command into **orders** placed through the engine's own order path (the broker's checks, the
id counters, the reservations) and into changes the **strategy** makes to its own state in
:meth:`~strategies.base.BaseStrategy.on_command`. Every command, applied or refused, leaves at
least one :class:`~strategies.engine.types.Decision` with a reason.

Commands are JSON dicts (the bot's ``commands`` list), applied in order:

* ``{"cmd": "close", "deal_id": "bot7-d3"}`` / ``{"cmd": "close_all"}`` — reduce-only market
  orders for the whole position (:meth:`Engine.close_deals`, tag ``manual_close``), decided by
  the engine itself (every strategy can be closed);
* any other ``cmd`` with a ``deal_id`` (``add_funds``, ``set_exits`` ...) — handed to the
  strategy's ``on_command(state, command, ctx)`` with a :class:`StepContext` on the last
  processed candle of the deal's symbol (``ctx.time`` = the state's ``last_time``, orders are
  created at its close and fill from the next candle on, like any order a strategy places).
  The strategy refuses with :class:`~strategies.base.CommandRefused`; its orders and state
  changes are then discarded and the refusal is recorded.

Commands from outside signals (the scanner, TradingView webhooks), without a ``deal_id``:

* ``{"cmd": "start_deal", "symbol": "BTC/USDT", "side": "long"|"short", "source":
  "scan"|"tradingview", "score": 0.72 | None, "reason": "...", "signal_time": epoch_ms | None}``
  — handed to the strategy's ``on_command`` with a :class:`StepContext` on the last processed
  candle of ``symbol`` (decision rule ``start_deal``). The engine refuses first when the symbol
  is not one of the bot's markets, the side is not long/short, the score is not None or in
  [0, 1], a deal is already open on the symbol, or no candle of it was processed yet; the
  strategy refuses when it does not trade that side, ``max_active_deals`` are active, it has a
  deal (or a pending entry) on the symbol, it has no exit plan, or the portfolio risk check
  (``ctx.check_entry``) refuses — the risk rules' own BLOCK decisions are kept before the
  refusal. Smart DCA and the signal strategies implement it;
* ``{"cmd": "close_symbol", "symbol": "BTC/USDT", "source": "tradingview"}`` — closes that
  symbol's open deal exactly like ``close`` (rule ``close_symbol``, order tag ``manual_close``),
  refused when no deal is open on it.

Refused without reaching the strategy: no candle processed yet (``last_time`` is ``None``), a
deal that is not open (closed meanwhile, unknown), a deal with a manual close pending.
Decision times are the state's ``last_time`` (candle open time, epoch ms), or — before any
candle — the newest candle of the feed.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from strategies.base import CommandRefused

from .orders import Order
from .types import Decision, Outcome

if TYPE_CHECKING:  # pragma: no cover
    from .engine import Engine, EngineState
    from .feed import Feed

__all__ = ["CLOSE_TAG", "CommandResult", "apply_commands", "command_rule"]

CLOSE_TAG = "manual_close"
_ENGINE_COMMANDS = frozenset({"close", "close_all"})
_SIGNAL_COMMANDS = frozenset({"start_deal", "close_symbol"})


@dataclass
class CommandResult:
    """What :func:`apply_commands` produced.

    ``state``: the new :class:`EngineState` (the given one is not modified); ``orders``: the
    orders placed or changed (final status: ``open`` for new ones, ``canceled`` for the ones
    they replaced), in first-touch order; ``decisions``: one or more per command, in order.
    """

    state: EngineState
    orders: list[Order] = field(default_factory=list)
    decisions: list[Decision] = field(default_factory=list)


def command_rule(command: dict[str, Any]) -> str:
    """The decision rule name of a command: ``"manual_<cmd>"`` (``close_all`` -> ``manual_close``;
    the outside-signal commands keep their name: ``start_deal``, ``close_symbol``)."""
    cmd = str(command.get("cmd") or "unknown")
    if cmd in _SIGNAL_COMMANDS:
        return cmd
    return CLOSE_TAG if cmd in _ENGINE_COMMANDS else f"manual_{cmd}"[:64]


def apply_commands(
    engine: Engine, state: EngineState | None, commands: list[dict[str, Any]], feed: Feed
) -> CommandResult:
    """Apply ``commands`` to ``state`` (``None``: the engine's initial state) on ``feed``.

    ``feed`` must hold the candle at the state's ``last_time`` for the symbols the commands are
    about (the runner's step feed does). Returns a :class:`CommandResult`; never raises for a
    bad or stale command (it is refused with a decision instead), so one stale command cannot
    wedge a bot.
    """
    from .engine import EngineState

    st = EngineState.from_json(state.to_json()) if state is not None else engine.initial_state()
    out = CommandResult(state=st)
    touched: dict[str, Order] = {}
    for command in commands:
        if st.last_time is None:
            t = _newest_time(engine, feed)
            out.decisions.append(
                Decision(
                    t,
                    command_rule(command),
                    Outcome.BLOCK,
                    f"{_describe(command)} refused: the bot has not processed a candle yet; try again after its first step",
                    command.get("symbol", ""),
                    {"command": dict(command)},
                )
            )
            continue
        cmd = command.get("cmd")
        if cmd in _ENGINE_COMMANDS:
            st, orders, decisions = _close(engine, st, command, feed.tf_ms)
        elif cmd == "close_symbol":
            st, orders, decisions = _close_symbol(engine, st, command, feed.tf_ms)
        elif cmd == "start_deal":
            st, orders, decisions = _start_deal(engine, st, command, feed)
        else:
            st, orders, decisions = _strategy_command(engine, st, command, feed)
        for od in orders:
            touched[od.client_order_id] = od
        out.decisions.extend(decisions)
    out.state = st
    out.orders = list(touched.values())
    return out


def _describe(command: dict[str, Any]) -> str:
    cmd = command.get("cmd") or "?"
    src = command.get("source") or "manual"
    if cmd == "start_deal":
        return f"start_deal {command.get('side')} {command.get('symbol')} ({src})"
    if cmd == "close_symbol":
        return f"close_symbol {command.get('symbol')} ({src})"
    deal = command.get("deal_id")
    return f"{cmd} of deal {deal}" if deal else str(cmd)


def _newest_time(engine: Engine, feed: Feed) -> int:
    times = [int(feed.candles(s).time[-1]) for s in engine.symbols if len(feed.candles(s))]
    return max(times) if times else 0


def _close(engine: Engine, st: EngineState, command: dict[str, Any], tf_ms: int, who: str = "manual", rule=CLOSE_TAG):
    deals = st.portfolio.get("deals", {})
    t = int(st.last_time)
    if command.get("cmd") == "close_all":
        ids = None
    else:
        deal_id = command.get("deal_id")
        if deal_id not in deals:
            reason = f"close refused: deal {deal_id} is not open (closed meanwhile or unknown)"
            return (
                st,
                [],
                [Decision(t, CLOSE_TAG, Outcome.BLOCK, reason, command.get("symbol", ""), {"deal_id": deal_id})],
            )
        ids = [deal_id]
    new, placed = engine.close_deals(st, tf_ms, ids, tag=CLOSE_TAG)
    decisions = [
        Decision(
            t,
            rule,
            Outcome.EXIT,
            f"close {od.symbol} deal {od.deal_id} at market ({who}): {od.side} {od.amount:g} at the next open",
            od.symbol,
            {"deal_id": od.deal_id, "amount": od.amount, "client_order_id": od.client_order_id},
        )
        for od in placed
    ]
    done = {od.deal_id for od in placed}
    for deal_id in sorted(deals) if ids is None else ids:
        if deal_id not in done:
            decisions.append(
                Decision(
                    t,
                    rule,
                    Outcome.INFO,
                    f"close of deal {deal_id} already requested (or its position is flat): nothing more placed",
                    deals[deal_id]["symbol"],
                    {"deal_id": deal_id},
                )
            )
    return new, placed, decisions


def _refused(engine: Engine, st: EngineState, command: dict[str, Any], t: int, rule: str, reason: str):
    """``(state unchanged, no orders, [the BLOCK decision])`` of a refused symbol command."""
    symbol = command.get("symbol")
    sym = symbol if symbol in engine.markets else ""
    return (
        st,
        [],
        [Decision(t, rule, Outcome.BLOCK, f"{_describe(command)} refused: {reason}", sym, {"command": dict(command)})],
    )


def _close_symbol(engine: Engine, st: EngineState, command: dict[str, Any], tf_ms: int):
    t = int(st.last_time)
    symbol = command.get("symbol")
    rule = command_rule(command)

    def refuse(reason: str):
        return _refused(engine, st, command, t, rule, reason)

    if symbol not in engine.markets:
        return refuse(f"{symbol} is not one of the bot's markets")
    ids = sorted(d for d, v in st.portfolio.get("deals", {}).items() if v["symbol"] == symbol)
    if not ids:
        return refuse(f"no deal is open on {symbol}")
    close = {"cmd": "close", "deal_id": ids[0], "symbol": symbol}
    return _close(engine, st, close, tf_ms, who=str(command.get("source") or "manual"), rule=rule)


def _start_deal(engine: Engine, st: EngineState, command: dict[str, Any], feed: Feed):
    t = int(st.last_time)
    symbol, side, score = command.get("symbol"), command.get("side"), command.get("score")
    rule = command_rule(command)

    def refuse(reason: str):
        return _refused(engine, st, command, t, rule, reason)

    if symbol not in engine.markets:
        return refuse(f"{symbol} is not one of the bot's markets")
    if side not in ("long", "short"):
        return refuse(f"side must be long or short, got {side!r}")
    if score is not None and not (isinstance(score, int | float) and not isinstance(score, bool) and 0 <= score <= 1):
        return refuse(f"score must be null or a number in [0, 1], got {score!r}")
    open_ = sorted(d for d, v in st.portfolio.get("deals", {}).items() if v["symbol"] == symbol)
    if open_:
        return refuse(f"a deal is already open on {symbol} ({open_[0]})")
    i = int(feed.candles(symbol).time.searchsorted(t, side="right")) - 1 if symbol in feed else -1
    if i < 0:
        return refuse(f"no candle of {symbol} processed yet")
    return _on_command(engine, st, command, feed, symbol, i, t, rule, refuse)


def _strategy_command(engine: Engine, st: EngineState, command: dict[str, Any], feed: Feed):
    t = int(st.last_time)
    deal_id = command.get("deal_id")
    rule = command_rule(command)
    deal = st.portfolio.get("deals", {}).get(deal_id) if deal_id else None

    def refuse(reason: str, symbol: str = ""):
        return (
            st,
            [],
            [Decision(t, rule, Outcome.BLOCK, reason, symbol, {"deal_id": deal_id, "command": dict(command)})],
        )

    if deal is None:
        return refuse(f"{_describe(command)} refused: the deal is not open (closed meanwhile or unknown)")
    symbol = deal["symbol"]
    if any(o.get("deal_id") == deal_id and o.get("tag") == CLOSE_TAG for o in st.open_orders):
        return refuse(f"{_describe(command)} refused: the deal is being closed at market", symbol)
    candles = feed.candles(symbol)
    i = int(candles.time.searchsorted(t, side="right")) - 1
    if i < 0:
        return refuse(f"{_describe(command)} refused: no candle of {symbol} at the bot's market time", symbol)
    return _on_command(
        engine, st, command, feed, symbol, i, t, rule, lambda r: refuse(f"{_describe(command)} refused: {r}", symbol)
    )


def _on_command(engine: Engine, st: EngineState, command, feed: Feed, symbol: str, i: int, t: int, rule: str, refuse):
    """Hand ``command`` to the strategy's ``on_command`` on candle ``i`` of ``symbol``; on
    :class:`CommandRefused` return ``refuse(str(exc))``'s result, preceded by the BLOCK decisions
    recorded before the refusal (the risk rules' reasons), everything else discarded."""
    from .engine import EngineState

    work = EngineState.from_json(st.to_json())
    ctx = _prime(engine, work, feed, symbol, i, t)
    try:
        engine.strategy.on_command(ctx.state, dict(command), ctx)
    except CommandRefused as exc:
        kept = [d for d in engine._decisions if d.outcome == Outcome.BLOCK]
        _release(engine)
        st2, orders, decisions = refuse(str(exc))
        return st2, orders, kept + decisions
    work.portfolio = engine._pf.to_dict()
    work.open_orders = [o.to_dict() for s in engine.symbols for o in engine._open[s]]
    work.strategy = engine.strategy.state_to_dict(ctx.state)
    if engine.risk is not None:
        work.risk = engine.risk.state_dict()
    orders = list(engine._touched.values())
    decisions = list(engine._decisions)
    if not decisions:
        payload = {"deal_id": command.get("deal_id")} if command.get("deal_id") else {}
        decisions.append(Decision(t, rule, Outcome.INFO, f"{_describe(command)} applied", symbol, payload))
    _release(engine)
    return work, orders, decisions


def _prime(engine: Engine, st: EngineState, feed: Feed, symbol: str, i: int, t: int):
    """Set the engine's run-level fields the way :meth:`Engine.run` does (for ``st`` and
    ``feed``), so a command goes through the one order path (``_place`` / ``_cancel``) and the
    one :class:`StepContext`; returns the context on candle ``i`` of ``symbol``."""
    import numpy as np

    from .engine import StepContext
    from .portfolio import Portfolio

    engine.feed = feed
    engine.strategy.prepare(feed)
    engine.broker.bind(feed, engine.markets)
    if engine.risk is not None and st.risk is not None:
        engine.risk.load_state(st.risk)
    # what the risk seam (ctx.check_entry -> _portfolio_view) reads: the aligned closes at t
    engine._G = feed.global_times(engine.symbols)
    engine._C = feed.aligned_closes(engine.symbols)
    engine._g = max(0, int(np.searchsorted(engine._G, t, side="right")) - 1)
    engine._pf = Portfolio.from_dict(st.portfolio, {s: m.amount_tick for s, m in engine.markets.items()})
    engine._open = {s: [] for s in engine.symbols}
    for od in st.open_orders:
        o = Order.from_dict(od)
        engine._open[o.symbol].append(o)
    engine._pf.reserved = sum(o.reserved for lst in engine._open.values() for o in lst)
    engine._touched = {}
    engine._st = st
    engine._decisions = []
    engine._ver = dict.fromkeys(engine.symbols, 0)
    engine._nt = {}
    engine._waiters, engine._funds_waiting, engine._notified = {}, 0, {}
    engine._defer = False  # ctx.equity() is the equity at the last processed close
    engine._eq_now = st.last_equity
    ctx = StepContext(engine)
    ctx.feed = feed
    ctx.state = engine.strategy.state_from_dict(st.strategy)
    ctx.symbol = symbol
    ctx.candles = feed.candles(symbol)
    ctx.i = i
    ctx.time = t
    ctx.close_time = t + feed.tf_ms
    ctx.market = engine.markets[symbol]
    ctx.fills = []
    ctx.end = len(ctx.candles)
    ctx._wait = ""
    engine._ctx = ctx
    return ctx


def _release(engine: Engine) -> None:
    engine._ctx = None
    engine._touched, engine._decisions = {}, []
