"""The strategy ``manager`` (issue 11 §3): several signal strategies in one bot on one account.

Pure Python (no Django). The managed strategies are the :class:`SignalStrategy` subclasses
(``fork_score``, ``scalping``, ``dca_detector``, ``swing``, ``channel``) run by composition:
their detectors give the signals and their entry / exit-plan code trades them; the manager only
chooses which signals to trade.

Parameters (see ``PARAMS``):

* ``alloc_<name>``: percent of the capital allocated to strategy ``<name>`` (0 = not run;
  default ``dca_detector`` 40, ``swing`` 30, ``channel`` 30; the sum is at most 100);
* ``min_conf_<name>``: the minimum signal score (confidence, [0, 1]) the manager trades;
  default = the detector's own threshold (``min_confidence`` / ``min_score`` /
  ``min_strength``) — the detector's gate still applies, so only a higher value filters more;
* ``deal_fraction`` f (0, 1]: **quote per deal = C × alloc ÷ 100 × f**, with C = ``capital``
  (quote) or, when 0, the account equity at the candle's close; a strategy holds at most
  ``floor(1 ÷ f)`` deals at once (its allocation is then full);
* ``max_active_deals`` (all strategies together) and ``entry_timeout`` (candles, passed to the
  managed strategies);
* ``<name>.<param>``: strategy ``<name>``'s own detector parameter ``<param>`` (e.g.
  ``swing.volume_mult``, ``dca_detector.drop_pct``), one per parameter of its schema, same type,
  default, bounds and unit (form group ``<name>``). Each is validated like the strategy's own
  field, and the strategy's cross-field checks run on its set; an error is keyed by
  ``<name>.<param>`` and its message names the strategy (``swing: must be >= 0.1x``). The
  sub-strategy runs with these values (``base_order_size``, ``max_active_deals`` and
  ``entry_timeout`` stay the manager's).

At each candle time t the first symbol that runs builds the **plan** of t from the state at
the end of t − 1 (so the plan does not depend on which symbol runs first): for every traded
symbol, the passing signals of every managed strategy on the candle of t, then

1. a signal with score < ``min_conf_<name>`` is refused (*below min confidence*);
2. one position per symbol: on a symbol with several signals the highest score wins, then the
   highest expected value **EV = p·TP% − (1 − p)·SL%** (p = score, TP% / SL% = distance from
   the entry to the take profit / stop loss in percent of the entry; without a take profit
   TP% = SL%), then the strategy name; the others are refused (*lost conflict*); a symbol with
   a deal open refuses all (*deal open*);
3. the winners are ranked by EV (descending, then symbol) and accepted in that order while
   their strategy's allocation and ``max_active_deals`` have room (else *allocation full* /
   *max active deals*).

Each symbol then records its refusals (rule ``manager``, payload ``{"strategy": name}``) and
enters its accepted signal through the managed strategy's ``_enter`` — i.e. through
``ctx.check_entry``, the engine's portfolio risk rules and regime circuit breaker. Deals are
tagged ``strategy:<name>`` (:data:`TAG`) when their entry fills. Slots freed during t are used
from t + 1. :func:`strategy_report` gives the per-strategy performance of a run.
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass, field, replace
from typing import Any

import numpy as np

from strategies.base import BaseStrategy, Param, ParamError
from strategies.engine.types import Outcome
from strategies.library.confidence import CandleAt, SignalConfidence
from strategies.library.signal_strategy import SignalState, SignalStrategy, SymbolDeal, detector_params
from strategies.metrics import max_drawdown_pct, sharpe, win_rate_pct
from strategies.registry import get_strategy, register
from strategies.signals import Signal, get_detector

__all__ = ["MANAGED", "TAG", "ManagerState", "ManagerStrategy", "expected_value", "strategy_report", "sub_params_of"]

MANAGED = ("fork_score", "scalping", "dca_detector", "swing", "channel")
DEFAULT_ALLOC = {"dca_detector": 40.0, "swing": 30.0, "channel": 30.0}
TAG = "strategy:"


SEP = "."


def _sub_params() -> tuple[Param, ...]:
    """``<name>.<param>`` for every detector parameter of every managed strategy."""
    out = []
    for n in MANAGED:
        for p in detector_params(get_detector(n)):
            label = p.label or p.name.replace("_", " ")
            out.append(replace(p, name=f"{n}{SEP}{p.name}", group=n, label=f"{n}: {label}"))
    return tuple(out)


def sub_params_of(params: dict[str, Any], name: str) -> dict[str, Any]:
    """Strategy ``name``'s own parameters out of the manager's ``<name>.<param>`` keys."""
    pre = name + SEP
    return {k[len(pre) :]: v for k, v in params.items() if k.startswith(pre)}


def _own_min(name: str) -> float:
    """The detector's own pass threshold (its ``min_confidence``/``min_score``/``min_strength``)."""
    ps = {p.name: p for p in detector_params(get_detector(name))}
    for key in ("min_confidence", "min_score", "min_strength"):
        if key in ps:
            return float(ps[key].default)
    return 0.0


def expected_value(sig: Signal, p: float | None = None) -> float:
    """EV in percent of the entry: ``p·TP% − (1 − p)·SL%``, p = the confidence (default
    ``sig.score``), TP% = |TP − entry| ÷ entry × 100, SL% = |entry − SL| ÷ entry × 100 (TP% =
    SL% without a take profit)."""
    p = sig.score if p is None else p
    sl = abs(sig.entry - sig.stop_loss) / sig.entry * 100.0
    tp = sl if sig.take_profit is None else abs(sig.take_profit - sig.entry) / sig.entry * 100.0
    return p * tp - (1.0 - p) * sl


@dataclass
class ManagedDeal(SymbolDeal):
    strategy: str = ""  # the managed strategy that opened the deal


@dataclass
class ManagerState(SignalState):
    """Per-symbol deals plus the plan of the last candle time (``plan_time``, epoch ms):
    ``plan[symbol] = {"enter": [strategy, quote] | None, "refusals": [[strategy, reason]...]}``."""

    symbols: dict[str, ManagedDeal] = field(default_factory=dict)
    plan_time: int = -1
    plan: dict[str, dict[str, Any]] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        return {
            "symbols": {k: asdict(v) for k, v in sorted(self.symbols.items())},
            "plan_time": self.plan_time,
            "plan": self.plan,
        }

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> ManagerState:
        return cls(
            {k: ManagedDeal(**v) for k, v in (d.get("symbols") or {}).items()},
            int(d.get("plan_time", -1)),
            dict(d.get("plan") or {}),
        )


@register
class ManagerStrategy(BaseStrategy):
    """Several signal strategies in one bot: allocation, conflicts, EV ranking (module doc)."""

    name = "manager"
    title = "Strategy manager"
    description = "Runs several signal strategies on one account: allocation, conflicts, EV ranking."
    State = ManagerState
    PARAMS = (
        *(
            Param(
                f"alloc_{n}",
                "float",
                DEFAULT_ALLOC.get(n, 0.0),
                0.0,
                100.0,
                "%",
                f"Capital for {n}.",
                group="allocation",
            )
            for n in MANAGED
        ),
        *(
            Param(f"min_conf_{n}", "float", _own_min(n), 0.0, 1.0, "", f"Min score {n} trades.", group="confidence")
            for n in MANAGED
        ),
        Param("deal_fraction", "float", 0.25, 0.001, 1.0, "", "Quote per deal = allocation × this.", group="deal"),
        Param("capital", "float", 0.0, 0.0, 1e12, "quote", "Capital allocated (0 = equity).", group="deal"),
        Param("max_active_deals", "int", 5, 1, 1000, "", "Deals open at once, all strategies.", group="deal"),
        Param(
            "entry_timeout", "int", 24, 1, 100000, "candles", "Cancel unfilled limit entries after this.", group="deal"
        ),
        *_sub_params(),
    )

    @classmethod
    def validate_params(cls, data: dict[str, Any]) -> dict[str, Any]:
        """:meth:`BaseStrategy.validate_params`, with the message of a bad ``<name>.<param>``
        prefixed by the strategy's name (``{"swing.volume_mult": "swing: must be >= 0.1 x"}``)."""
        try:
            return super().validate_params(data)
        except ParamError as exc:
            errors = {}
            for k, v in exc.errors.items():
                n = k.split(SEP, 1)[0] if SEP in k else ""
                errors[k] = f"{n}: {v}" if n in MANAGED and not v.startswith(f"{n}: ") else v
            raise ParamError(errors) from None

    @classmethod
    def check_params(cls, params: dict[str, Any]) -> dict[str, str]:
        total = sum(params[f"alloc_{n}"] for n in MANAGED)
        if total <= 0:
            return {"alloc_dca_detector": "allocate capital to at least one strategy"}
        if total > 100.0 + 1e-9:
            return {"alloc_dca_detector": f"allocations sum to {total:g}% (max 100%)"}
        errors = {}
        for n in MANAGED:
            try:
                get_strategy(n).validate_params(sub_params_of(params, n))
            except ParamError as exc:
                errors.update({f"{n}{SEP}{k}": f"{n}: {v}" for k, v in exc.errors.items()})
        return errors

    def __init__(self, params: dict[str, Any] | None = None, confidence_provider=None) -> None:
        super().__init__(params)
        self.confidence_provider = confidence_provider
        self.alloc = {n: self.params[f"alloc_{n}"] for n in MANAGED if self.params[f"alloc_{n}"] > 0}
        sub = {"max_active_deals": 1000, "entry_timeout": self.params["entry_timeout"]}
        self.subs: dict[str, SignalStrategy] = {
            n: get_strategy(n)({**sub_params_of(self.params, n), **sub}, confidence_provider=confidence_provider)
            for n in self.alloc
        }
        self.per_strategy_max = int(math.floor(1.0 / self.params["deal_fraction"] + 1e-9))

    def prepare(self, feed) -> None:
        for s in self.subs.values():
            s.prepare(feed)

    def initial_state(self) -> ManagerState:
        return ManagerState()

    def state_from_dict(self, d):
        return ManagerState.from_dict(d) if d else ManagerState()

    # -- the plan of one candle time ----------------------------------------------------------
    def signals_at(self, feed, symbol: str, t: int) -> list[tuple[str, Signal]]:
        """``[(strategy, Signal)]``: the managed strategies' passing signals (with a confidence
        provider: their candidates, see ``SignalStrategy._signals``) on ``symbol``'s candle
        opening at ``t`` (epoch ms)."""
        i = self._index(feed, symbol, t)
        if i is None:
            return []
        out = []
        for n, s in self.subs.items():
            sig = s._signals(feed, symbol)[0].get(i)
            if sig is not None:
                out.append((n, sig))
        return out

    @staticmethod
    def _index(feed, symbol: str, t: int) -> int | None:
        times = feed.candles(symbol).time
        i = int(np.searchsorted(times, t))
        return i if i < len(times) and int(times[i]) == t else None

    def _at(self, ctx, symbol: str):
        """``ctx`` itself for the stepping symbol, else a :class:`CandleAt` on ``symbol``'s
        candle at ``ctx.time`` (what a confidence provider reads)."""
        if symbol == ctx.symbol:
            return ctx
        i = self._index(ctx.feed, symbol, ctx.time)
        return CandleAt(symbol, i, ctx.time, ctx.feed.candles(symbol), ctx.feed)

    def _min_conf(self, n: str) -> float:
        """Strategy ``n``'s min confidence: ``min_conf_<n>``; with a confidence provider also at
        least the sub-strategy's own ``min_*`` (its detector no longer gates the candidates)."""
        m = self.params[f"min_conf_{n}"]
        return max(m, self.subs[n].min_confidence) if self.confidence_provider is not None else m

    def plan(self, state: ManagerState, cands: dict[str, list[tuple]], capital: float) -> dict:
        """The plan (see :class:`ManagerState`) for ``cands`` (symbol → ``[(strategy, Signal)]``
        or ``[(strategy, Signal, SignalConfidence)]``; without the confidence: the signal's
        score) given the deals in ``state`` and ``capital`` (quote) — pure, the heart of the
        manager. Min confidence, conflicts and EV use the confidence."""
        p = self.params
        out: dict[str, dict[str, Any]] = {}
        winners = []
        for sym in sorted(cands):
            ref: list[list[str]] = []
            ok = []
            for n, sig, *rest in cands[sym]:
                conf = rest[0] if rest else SignalConfidence(sig.score)
                lo = self._min_conf(n) if n in self.subs else p[f"min_conf_{n}"]
                if conf.value < lo:
                    ref.append([n, f"below min confidence: {_says(conf)} < {lo:.2f}"])
                else:
                    ok.append((n, sig, expected_value(sig, conf.value), conf))
            ok.sort(key=lambda x: (-x[3].value, -x[2], x[0]))
            st = state.symbols.get(sym)
            if st is not None and st.phase != "idle":
                ref += [[n, f"a deal is open on {sym} ({st.strategy})"] for n, *_ in ok]
                ok = []
            if ok:
                w = ok[0]
                for n, _sig, ev, conf in ok[1:]:
                    ref.append(
                        [
                            n,
                            f"lost conflict on {sym} to {w[0]}: {_says(conf)} vs {_says(w[3], False)}, "
                            f"EV {ev:.2f}% vs {w[2]:.2f}%",
                        ]
                    )
                winners.append((sym, *w[:3]))
            out[sym] = {"enter": None, "refusals": ref}
        active = state.active()
        held = {n: 0 for n in self.alloc}
        for st in state.symbols.values():
            if st.phase != "idle" and st.strategy in held:
                held[st.strategy] += 1
        winners.sort(key=lambda x: (-x[3], x[0]))
        for rank, (sym, n, _sig, ev) in enumerate(winners, 1):
            if held[n] >= self.per_strategy_max:
                why = f"allocation full: {n} holds {held[n]} deals of its {self.alloc[n]:g}%"
            elif active >= p["max_active_deals"]:
                why = f"{p['max_active_deals']} deals active (max)"
            else:
                held[n] += 1
                active += 1
                quote = capital * self.alloc[n] / 100.0 * p["deal_fraction"]
                out[sym]["enter"] = [n, quote, rank, ev]
                continue
            out[sym]["refusals"].append([n, f"{why}; EV {ev:.2f}% ranked {rank} of {len(winners)}"])
        return {s: v for s, v in out.items() if v["enter"] or v["refusals"]}

    def _plan_now(self, ctx, state: ManagerState) -> None:
        cands = {}
        for s in ctx.symbols:
            c = self.signals_at(ctx.feed, s, ctx.time)
            if c:
                cands[s] = [(n, sig, self.subs[n].confidence(self._at(ctx, s), sig)) for n, sig in c]
        capital = self.params["capital"] or ctx.equity()
        state.plan_time, state.plan = ctx.time, self.plan(state, cands, capital)

    # -- per candle -------------------------------------------------------------------------
    def on_candle(self, ctx) -> None:
        state: ManagerState = ctx.state
        if state.plan_time != ctx.time:
            self._plan_now(ctx, state)
        st = state.symbols.get(ctx.symbol)
        if st is None:
            st = state.symbols[ctx.symbol] = ManagedDeal()
        if st.phase != "idle":
            self.subs[st.strategy]._manage(ctx, st)
            if st.phase != "idle" and ctx.position.amount != 0.0:
                ctx.tag_deal(st.deal_id, TAG + st.strategy)
        mine = state.plan.get(ctx.symbol)
        if not mine:
            return
        for n, why in mine["refusals"]:
            ctx.decide(self.name, Outcome.BLOCK, f"{n} signal refused: {why}", {"strategy": n})
        if mine["enter"] and st.phase == "idle":
            n, quote, rank, ev = mine["enter"]
            sig = dict(self.signals_at(ctx.feed, ctx.symbol, ctx.time))[n]
            ctx.decide(self.name, Outcome.INFO, f"{n} chosen: EV {ev:.2f}% ranked {rank}", {"strategy": n})
            self.subs[n]._enter(ctx, st, sig, quote, self.subs[n].confidence(ctx, sig))
            if st.phase != "idle":
                st.strategy = n

    def next_wake(self, ctx) -> int | None:
        st = ctx.state.symbols.get(ctx.symbol)
        if st is not None and st.phase != "idle":
            return ctx.i + 1
        nxt = []
        for s in self.subs.values():
            idx = s._signals(ctx.feed, ctx.symbol)[1]
            k = int(np.searchsorted(idx, ctx.i + 1))
            if k < len(idx):
                nxt.append(int(idx[k]))
        return min(nxt) if nxt else None


def _says(conf: SignalConfidence, name: bool = True) -> str:
    """``score 0.70`` for a rule score, ``confidence 0.71 (model)`` otherwise (``name=False``:
    without the leading word, for the second half of a comparison)."""
    if conf.source == "rule" and not conf.error:
        return f"score {conf.value:.2f}" if name else f"{conf.value:.2f}"
    return f"confidence {conf.label()}" if name else conf.label()


def strategy_report(trades, params: dict[str, Any], capital: float) -> dict[str, dict[str, Any]]:
    """Per-strategy performance of a manager run from its closed trades (tagged ``strategy:<name>``).

    For each allocated strategy (allocation A %, capital share C·A/100 quote): ``trades``,
    ``wins`` (pnl > 0), ``win_rate_pct``, ``pnl`` (quote, sum), ``pnl_pct`` (of its capital
    share), ``sharpe`` = mean(r) ÷ std(r, ddof 1) over the per-trade returns r = pnl ÷ cost (not
    annualised; None with < 2 trades or std 0) and ``max_drawdown_pct`` of its equity C·A/100 +
    cumulative P&L in close-time order. Trades of no managed strategy are ignored.
    """
    p = ManagerStrategy.validate_params(params)
    out: dict[str, dict[str, Any]] = {}
    for n in MANAGED:
        a = p[f"alloc_{n}"]
        if a <= 0:
            continue
        mine = sorted((t for t in trades if TAG + n in t.tags), key=lambda t: (t.closed_at, t.deal_id))
        pnls = [float(t.pnl) for t in mine]
        share = capital * a / 100.0
        equity = share + np.cumsum(pnls) if pnls else np.array([share])
        sh = sharpe([t.pnl / t.cost for t in mine], 1.0) if mine else None
        out[n] = {
            "allocation_pct": a,
            "trades": len(mine),
            "wins": sum(1 for x in pnls if x > 0),
            "win_rate_pct": win_rate_pct(pnls),
            "pnl": math.fsum(pnls),
            "pnl_pct": math.fsum(pnls) / share * 100.0 if share else None,
            "sharpe": sh,
            "max_drawdown_pct": max_drawdown_pct(equity, share) if share else None,
        }
    return out
