"""The detectors as tradable strategies (issue 11 §1–2): a signal plus an exit plan, on the ONE engine.

Pure Python + numpy (no Django). :class:`SignalStrategy` runs its detector
(:mod:`strategies.signals`) causally in batch over each symbol's feed arrays (element ``i``
depends only on candles ``0..i``, so a backtest, a paper bot stepped many times and the
scanner see the same signals) and trades every **passing** signal through the engine's order
path:

* **entry** at the close of the signal candle ``i``: a market order of ``base_order_size``
  quote (buy for a long, sell for a short; it fills at the open of candle ``i + 1``), or for
  ``dca_detector`` the grid ``extra["grid"]``: one limit buy per level at its price with
  ``base_order_size × weight`` quote; unfilled grid levels are cancelled after
  ``entry_timeout`` candles when none filled, and with the deal otherwise;
* **exits**, placed on the candle the entry fills (live from the next candle; a level the
  price already crossed fills at that candle's open): a reduce-only limit at the signal's
  ``take_profit`` (tag ``take_profit``) and a reduce-only stop-market at its ``stop_loss``
  (tag ``stop_loss``), both re-placed when a grid level adds to the position; where the signal
  gives percentages (``extra["take_profit_pct"]`` / ``extra["stop_loss_pct"]``, the
  ``dca_detector`` grid: "TP 10 % and SL −8 % on the average") they are recomputed from the
  **actual** average entry of the levels filled so far, ``avg × (1 ± pct ÷ 100)`` rounded to
  the price tick, each time a level fills (decision ``exits on the average entry ...``);
* a **trailing stop** where the signal has ``extra["trailing_stop_pct"]`` > 0 (``swing``): at
  each close the stop moves to ``peak × (1 − pct ÷ 100)`` (short: ``trough × (1 + pct ÷
  100)``), peak = highest high since the entry fill, when that is tighter than the current
  stop (tag ``trailing_stop`` once above the initial stop loss);
* a **range-break exit** where the signal has ``extra["exit_on_break"]`` (``channel``): a
  close below ``extra["support"]`` or above ``extra["resistance"]`` closes the deal at market
  (tag ``range_break``).

**Confidence** (the ``ConfidenceProvider`` protocol of :mod:`.confidence`, which Smart DCA
uses too): ``SignalStrategy(params, confidence_provider=None)``. Without a provider the
confidence of a signal is its detector's score and the detector's own gate (``min_confidence``
/ ``min_score`` / ``min_strength``) decides — the rule-based default. With one, the detector
runs with that minimum at 0 (every other rule still applies) and each such candidate at candle
``i`` is gated on the provider's value — ``series(symbol, candles)[i]`` when the provider has a
batched ``series`` (called once per symbol and feed), else ``confidence(symbol, ctx)`` on that
candle — against the same minimum: below it the decision is ``signal refused: confidence 0.41
(model) < min 0.65; <signal reason>``; entries say ``confidence 0.71 (model)`` and pass it to
the risk check. A provider that raises or returns NaN / a value outside [0, 1] never stops the
bot: that candle falls back to the rule score, and the decision says so (``confidence 0.55
(rule; model returned nan)``). :func:`strategies.registry.create_strategy` passes a provider
through (keyword ``confidence_provider``).

One deal per symbol; at most ``max_active_deals`` deals at once. Every entry, skipped signal
and exit is a :class:`~strategies.engine.types.Decision` carrying the signal's reason.
State is data (:class:`SignalState`, JSON round-trip). The five registered strategies
(``fork_score``, ``scalping``, ``dca_detector``, ``swing``, ``channel``) take the detector's
parameters plus ``base_order_size`` (quote), ``max_active_deals`` and ``entry_timeout``
(candles).
"""

from __future__ import annotations

import sys
from dataclasses import asdict, dataclass, field
from typing import Any

import numpy as np

from strategies.base import BaseStrategy, Param, StrategyState
from strategies.engine.orders import OrderIntent, OrderStatus, OrderType, Side
from strategies.engine.types import Outcome
from strategies.registry import register
from strategies.signals import DetectorInput, Signal, get_detector

from .confidence import SignalConfidence, provider_series, signal_confidence
from .signal_commands import SignalCommandsMixin

__all__ = ["BTC_SYMBOL", "SignalState", "SignalStrategy", "SymbolDeal", "detector_input", "passing_signals"]

BTC_SYMBOL = "BTC/USDT"

TRADING_PARAMS = (
    Param("base_order_size", "float", 100.0, 0.0, 1e12, "quote", "Quote spent on each deal.", group="deal"),
    Param("max_active_deals", "int", 1, 1, 1000, "", "Deals open at once (one per symbol).", group="deal"),
    Param("entry_timeout", "int", 24, 1, 100000, "candles", "Cancel unfilled limit entries after this.", group="deal"),
)


def detector_input(feed, symbol: str) -> DetectorInput:
    """The detector's view of ``symbol`` in ``feed``: its candles, and BTC/USDT's as the market
    condition when the feed holds them (None for BTC itself)."""
    btc = feed.candles(BTC_SYMBOL) if symbol != BTC_SYMBOL and BTC_SYMBOL in feed else None
    return DetectorInput(symbol, feed.timeframe, feed.candles(symbol), btc)


def detector_params(det) -> tuple[Param, ...]:
    """The detector's :class:`Param` schema (its ``PARAMS``, or its module's)."""
    return tuple(getattr(det, "PARAMS", None) or sys.modules[type(det).__module__].PARAMS)


MIN_KEYS = ("min_confidence", "min_score", "min_strength")


def min_key(name: str) -> str | None:
    """The detector's minimum-confidence parameter (``min_confidence`` / ``min_score`` /
    ``min_strength``), or None."""
    own = {p.name for p in detector_params(get_detector(name))}
    return next((k for k in MIN_KEYS if k in own), None)


def passing_signals(name: str, params: dict[str, Any], feed, symbol: str) -> dict[int, Signal]:
    """``{candle index: Signal}`` of the passing signals of detector ``name`` over ``symbol``'s
    candles in ``feed`` (``params``: the detector's own; other keys are ignored)."""
    det = get_detector(name)
    own = {p.name for p in detector_params(det)}
    data = detector_input(feed, symbol)
    sigs = det.detect(data, {k: v for k, v in params.items() if k in own})
    idx = np.searchsorted(data.candles.time, [s.time for s in sigs])
    return {int(i): s for i, s in zip(idx, sigs, strict=True) if s.passed}


@dataclass
class SymbolDeal:
    """One symbol's deal (JSON-safe). Prices in quote, ``signal_time`` epoch ms (candle open)."""

    phase: str = "idle"  # idle | entering | open | closing
    deal_id: str = ""
    side: str = ""  # long | short
    signal_time: int = 0
    signal_i: int = 0  # index of the signal candle in the feed it was seen on
    reason: str = ""
    take_profit: float | None = None
    stop_loss: float = 0.0
    tp_pct: float = 0.0  # > 0: TP this % from the actual average entry (dca_detector's grid)
    sl_pct: float = 0.0  # > 0: SL this % from the actual average entry
    trailing_pct: float = 0.0
    exit_on_break: bool = False
    support: float = 0.0
    resistance: float = 0.0
    amount: float = 0.0  # position the exits were placed for (base units)
    peak: float = 0.0  # highest high (long) / lowest low (short) since the entry fill
    stop: float = 0.0  # price of the live stop order
    tp_id: str = ""
    sl_id: str = ""


@dataclass
class SignalState(StrategyState):
    symbols: dict[str, SymbolDeal] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        return {"symbols": {k: asdict(v) for k, v in sorted(self.symbols.items())}}

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> SignalState:
        return cls({k: SymbolDeal(**v) for k, v in (d.get("symbols") or {}).items()})

    def active(self) -> int:
        return sum(1 for v in self.symbols.values() if v.phase != "idle")


class SignalStrategy(SignalCommandsMixin, BaseStrategy):
    """A detector's passing signals traded with the signal's exit plan (see the module doc).
    Subclasses set ``name`` (= the detector's name) and ``PARAMS``."""

    State = SignalState

    def __init__(self, params: dict[str, Any] | None = None, confidence_provider=None) -> None:
        super().__init__(params)
        self.confidence_provider = confidence_provider
        self.min_key = min_key(self.name)
        self._feed = None
        self._sig: dict[str, tuple[dict[int, Signal], np.ndarray]] = {}
        self._series: dict[str, tuple[np.ndarray | None, str]] = {}

    @classmethod
    def check_params(cls, params: dict[str, Any]) -> dict[str, str]:
        """The detector's own cross-field checks (e.g. ``scalping``: sma_fast < sma_mid < sma_slow)."""
        check = getattr(sys.modules[type(get_detector(cls.name)).__module__], "_check", None)
        if check is None:
            return {}
        own = {p.name for p in detector_params(get_detector(cls.name))}
        return check({k: v for k, v in params.items() if k in own})

    @property
    def min_confidence(self) -> float:
        """The minimum confidence this strategy trades (its detector's ``min_*`` parameter)."""
        return float(self.params[self.min_key]) if self.min_key else 0.0

    @classmethod
    def for_detector(cls, name: str, title: str) -> type[SignalStrategy]:
        """A registered subclass trading detector ``name``."""
        det = get_detector(name)
        doc = (sys.modules[type(det).__module__].__doc__ or "").strip()
        sub = type(
            f"{name.title().replace('_', '')}Strategy",
            (cls,),
            {
                "name": name,
                "title": title,
                "description": doc.split("\n")[0].replace("``", ""),
                "PARAMS": detector_params(det) + TRADING_PARAMS,
                "__module__": __name__,
            },
        )
        return register(sub)

    # -- signals ----------------------------------------------------------------------------
    def prepare(self, feed) -> None:
        if feed is not self._feed:
            self._feed, self._sig, self._series = feed, {}, {}

    def _signals(self, feed, symbol: str) -> tuple[dict[int, Signal], np.ndarray]:
        """``({candle index: Signal}, sorted indexes)``: the passing signals, or with a confidence
        provider the *candidates* — the signals passing every rule but the min-confidence one
        (detected with the ``min_*`` parameter at 0), gated later on the provider's value."""
        x = self._sig.get(symbol)
        if x is None:
            params = self.params
            if self.confidence_provider is not None and self.min_key:
                params = {**params, self.min_key: 0.0}
            by_i = passing_signals(self.name, params, feed, symbol)
            x = self._sig[symbol] = (by_i, np.array(sorted(by_i), dtype=np.int64))
        return x

    def confidence(self, ctx, sig: Signal) -> SignalConfidence:
        """The confidence of ``sig`` at candle ``ctx.i`` of ``ctx.symbol`` (``ctx``: a
        ``StepContext`` or a :class:`~strategies.library.confidence.CandleAt`): the detector's
        score without a provider, else the provider's (module doc; never raises)."""
        prov = self.confidence_provider
        if prov is None:
            return SignalConfidence(sig.score)
        ser = self._series.get(ctx.symbol)
        if ser is None:
            ser = self._series[ctx.symbol] = provider_series(prov, ctx.symbol, ctx.feed.candles(ctx.symbol), ctx.feed)
        return signal_confidence(sig.score, prov, ctx.symbol, ctx, ser)

    def entry_signals(self, candles, symbol: str = "") -> np.ndarray:
        """Causal boolean array of the passing signals on ``candles`` (no BTC condition)."""
        det = get_detector(self.name)
        own = {p.name for p in detector_params(det)}
        sigs = det.detect(
            DetectorInput(symbol, self._feed.timeframe if self._feed else "1h", candles),
            {k: v for k, v in self.params.items() if k in own},
        )
        out = np.zeros(len(candles), dtype=bool)
        idx = np.searchsorted(candles.time, [s.time for s in sigs if s.passed and s.side == "long"])
        out[idx.astype(np.int64)] = True
        return out

    # -- state ------------------------------------------------------------------------------
    def initial_state(self) -> SignalState:
        return SignalState()

    def state_from_dict(self, d):
        return SignalState.from_dict(d) if d else SignalState()

    # -- per candle -------------------------------------------------------------------------
    def on_candle(self, ctx) -> None:
        state: SignalState = ctx.state
        st = state.symbols.get(ctx.symbol)
        if st is None:
            st = state.symbols[ctx.symbol] = SymbolDeal()
        sigs, _ = self._signals(ctx.feed, ctx.symbol)
        if st.phase != "idle":
            self._manage(ctx, st)
        sig = sigs.get(ctx.i)
        if sig is None:
            return
        conf = self.confidence(ctx, sig)
        if self.confidence_provider is not None and conf.value < self.min_confidence:
            ctx.decide(
                self.name,
                Outcome.BLOCK,
                f"signal refused: confidence {conf.label()} < min {self.min_confidence:.2f}; {sig.reason}",
                {"confidence": conf.value, "confidence_source": conf.source, "error": conf.error},
            )
            return
        if st.phase != "idle":
            ctx.decide(self.name, Outcome.BLOCK, f"signal skipped: a deal is open on {ctx.symbol}; {sig.reason}")
            return
        if state.active() >= self.params["max_active_deals"]:
            ctx.decide(
                self.name,
                Outcome.BLOCK,
                f"signal skipped: {self.params['max_active_deals']} deals active (max); {sig.reason}",
            )
            return
        self._enter(ctx, st, sig, conf=conf)

    def _enter(
        self,
        ctx,
        st: SymbolDeal,
        sig: Signal,
        quote: float | None = None,
        conf: SignalConfidence | None = None,
        outside: bool = False,
    ) -> None:
        """Enter ``sig`` with ``quote`` (default ``base_order_size``) through the risk check,
        which sees the confidence ``conf`` (default: the signal's score; None for an
        ``outside`` signal without a score)."""
        quote = self.params["base_order_size"] if quote is None else quote
        cval = conf.value if conf is not None else (None if outside else sig.score)
        conf = SignalConfidence(sig.score) if conf is None else conf
        ok, quote = ctx.check_entry(sig.side, quote, sig.entry, sig.stop_loss, cval)
        if not ok:
            return
        deal_id = ctx.new_deal_id()
        long = sig.side == "long"
        grid = sig.extra.get("grid") if long else None
        if grid:
            intents = [
                OrderIntent(
                    ctx.symbol,
                    Side.BUY,
                    OrderType.LIMIT,
                    quote_amount=quote * lvl["weight"],
                    price=lvl["price"],
                    tag="grid" if k else "entry",
                    so_index=k,
                    deal_id=deal_id,
                )
                for k, lvl in enumerate(grid)
            ]
        else:
            intents = [
                OrderIntent(
                    ctx.symbol,
                    Side.BUY if long else Side.SELL,
                    OrderType.MARKET,
                    quote_amount=quote,
                    tag="entry",
                    deal_id=deal_id,
                )
            ]
        placed = [ctx.place(it) for it in intents]
        rejected = [o for o in placed if o.status == OrderStatus.REJECTED]
        if len(rejected) == len(placed):
            ctx.decide(self.name, Outcome.BLOCK, f"entry rejected: {rejected[0].reject_reason}; {sig.reason}")
            return
        x = sig.extra
        st.__init__(
            phase="entering",
            deal_id=deal_id,
            side=sig.side,
            signal_time=sig.time,
            signal_i=ctx.i,
            reason=sig.reason,
            take_profit=sig.take_profit,
            stop_loss=sig.stop_loss,
            tp_pct=float(x.get("take_profit_pct") or 0.0),
            sl_pct=float(x.get("stop_loss_pct") or 0.0),
            trailing_pct=float(x.get("trailing_stop_pct") or 0.0),
            exit_on_break=bool(x.get("exit_on_break")),
            support=float(x.get("support") or 0.0),
            resistance=float(x.get("resistance") or 0.0),
        )
        what = f"grid of {len(grid)} limit buys" if grid else f"market {'buy' if long else 'sell'}"
        tp = "none" if sig.take_profit is None else f"{sig.take_profit:g}"
        cf = "" if self.confidence_provider is None else f", confidence {conf.label()}"
        ctx.decide(
            self.name,
            Outcome.INFO,
            f"{sig.side} entry ({what}, {quote:g} quote, score {sig.score:.2f}{cf}): {sig.reason}; "
            f"TP {tp}, SL {sig.stop_loss:g}",
            {"deal_id": deal_id, "signal": sig.to_dict(), "confidence": conf.value, "confidence_source": conf.source},
        )

    def _manage(self, ctx, st: SymbolDeal) -> None:
        amt = abs(ctx.position.amount)
        if st.phase == "entering" and amt == 0.0:
            if ctx.i - st.signal_i >= self.params["entry_timeout"]:
                for o in list(ctx.orders):
                    ctx.cancel(o, "entry_timeout")
                ctx.decide(self.name, Outcome.INFO, f"entry expired after {self.params['entry_timeout']} candles")
                self._done(ctx, st)
            return
        if amt == 0.0:  # an exit filled: the engine closed the deal and cancelled its orders
            fill = next((f for f in reversed(ctx.fills) if f.deal_id == st.deal_id), None)
            how = f"by {fill.tag.replace('_', ' ')} at {fill.price:g}" if fill is not None else "outside the strategy"
            ctx.decide(self.name, Outcome.EXIT, f"deal closed {how}; it was opened on: {st.reason}")
            self._done(ctx, st)
            return
        if st.phase == "closing":
            return
        long = st.side == "long"
        if st.phase == "entering":
            st.phase = "open"
            st.peak = ctx.position.entry_price
        i = ctx.i
        close = ctx.close
        if st.exit_on_break and (close < st.support or close > st.resistance):
            for o in list(ctx.orders):
                ctx.cancel(o, "range_break")
            ctx.place(
                OrderIntent(
                    ctx.symbol,
                    Side.SELL if long else Side.BUY,
                    OrderType.MARKET,
                    tag="range_break",
                    deal_id=st.deal_id,
                    reduce_only=True,
                )
            )
            side = "below support" if close < st.support else "above resistance"
            ctx.decide(
                self.name,
                Outcome.EXIT,
                f"range break: close {close:g} {side} ({st.support:g}..{st.resistance:g}); closing at market",
            )
            st.phase = "closing"
            return
        if amt != st.amount:
            stop = st.stop or st.stop_loss
            if st.tp_pct > 0 or st.sl_pct > 0:
                stop = self._exits_on_average(ctx, st, amt)
            self._place_exits(ctx, st, amt, stop)
        if st.trailing_pct > 0:
            m = ctx.market
            if long:
                st.peak = max(st.peak, float(ctx.candles.high[i]))
                trail = m.round_price(st.peak * (1.0 - st.trailing_pct / 100.0))
                tighter = trail > st.stop
            else:
                st.peak = min(st.peak, float(ctx.candles.low[i]))
                trail = m.round_price(st.peak * (1.0 + st.trailing_pct / 100.0))
                tighter = trail < st.stop
            if tighter:
                self._place_exits(ctx, st, amt, trail, only_stop=True)

    def _exits_on_average(self, ctx, st: SymbolDeal, amt: float) -> float:
        """TP / SL of a percentage-exit deal (``dca_detector``'s grid) from the ACTUAL average
        entry of what filled: ``TP = avg × (1 ± tp_pct ÷ 100)``, ``SL = avg × (1 ∓ sl_pct ÷ 100)``
        (upper sign long), rounded to the market's price tick; records the decision and returns
        the stop price."""
        avg = ctx.position.entry_price
        sign = 1.0 if st.side == "long" else -1.0
        m = ctx.market
        if st.tp_pct > 0:
            st.take_profit = m.round_price(avg * (1.0 + sign * st.tp_pct / 100.0))
        if st.sl_pct > 0:
            st.stop_loss = m.round_price(avg * (1.0 - sign * st.sl_pct / 100.0))
        tp = "none" if st.take_profit is None else f"{st.take_profit:g}"
        ctx.decide(
            self.name,
            Outcome.INFO,
            f"exits on the average entry {avg:.6g} of {amt:.10g} filled: TP {tp} ({st.tp_pct:g}%), "
            f"SL {st.stop_loss:g} ({st.sl_pct:g}%)",
            {"deal_id": st.deal_id, "average_entry": avg, "amount": amt},
        )
        return st.stop_loss

    def _place_exits(self, ctx, st: SymbolDeal, amt: float, stop: float, only_stop: bool = False) -> None:
        long = st.side == "long"
        side = Side.SELL if long else Side.BUY
        for o in list(ctx.orders):
            if o.client_order_id == st.sl_id or (not only_stop and o.client_order_id == st.tp_id):
                ctx.cancel(o, "exits_moved")
        if not only_stop and st.take_profit is not None:
            tp = ctx.place(
                OrderIntent(
                    ctx.symbol,
                    side,
                    OrderType.LIMIT,
                    amount=amt,
                    price=st.take_profit,
                    tag="take_profit",
                    deal_id=st.deal_id,
                    reduce_only=True,
                )
            )
            st.tp_id = tp.client_order_id
        trailing = (stop > st.stop_loss) if long else (stop < st.stop_loss)
        sl = ctx.place(
            OrderIntent(
                ctx.symbol,
                side,
                OrderType.STOP,
                amount=amt,
                stop_price=stop,
                tag="trailing_stop" if trailing else "stop_loss",
                deal_id=st.deal_id,
                reduce_only=True,
            )
        )
        st.sl_id, st.stop, st.amount = sl.client_order_id, float(sl.stop_price or stop), amt

    def _done(self, ctx, st: SymbolDeal) -> None:
        st.__init__()
        ctx.notify("slot")

    def next_wake(self, ctx) -> int | None:
        st = ctx.state.symbols.get(ctx.symbol)
        if st is not None and st.phase != "idle":
            return ctx.i + 1
        idx = self._signals(ctx.feed, ctx.symbol)[1]
        k = int(np.searchsorted(idx, ctx.i + 1))
        return int(idx[k]) if k < len(idx) else None


for _name, _title in (
    ("fork_score", "Fork score"),
    ("scalping", "Scalping (ULTIMATE)"),
    ("dca_detector", "DCA dip grid"),
    ("swing", "Swing breakout"),
    ("channel", "Channel range"),
):
    SignalStrategy.for_detector(_name, _title)
