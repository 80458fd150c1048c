"""The portfolio risk manager: the one object the engine asks before opening a position.

Pure Python + numpy (no Django). :class:`RiskManager` keeps a small JSON-safe state (UTC day
and its start equity, daily-loss halt, equity peak, drawdown pause, market regime) that it
updates in :meth:`RiskManager.on_candle` and consults in :meth:`RiskManager.check_entry`.

Order of application in :meth:`RiskManager.check_entry` (the one place it is defined; also in
``docs/risk.md``). Every step that blocks or changes the size records a :class:`Decision` with
the rule name below; a plain allow records nothing.

1. state catch-up (the same idempotent update :meth:`on_candle` does; INFO decisions it
   produces — e.g. a regime change — are returned with the answer)
2. blocks: ``drawdown_pause`` → ``daily_loss_limit`` → ``circuit_breaker`` (regime multiplier 0
   for this side, e.g. PANIC for longs)
3. ``position_sizing`` — the base size from ``sizing_mode``
4. multipliers, in this order: ``drawdown_size``, ``circuit_breaker`` (regime), ``symbol_multiplier``,
   ``confidence_scaling``, ``volatility_scaling``
5. ``correlation_limit`` — shrink or block
6. ``max_positions`` — block
7. ``capital_at_risk`` — resize down to the headroom or block
8. ``min_size`` — block below ``min_quote``, any size <= 0, and below the market's minimum
   order (``market_minimums``: min cost, min amount x price)

Units: money USDT float64; config percents are percent numbers (5.0 = 5 %); times epoch ms UTC
(candle open times).
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from strategies.engine.types import Decision, Outcome

from .config import RiskConfig
from .correlation import rolling_correlation
from .drawdown import DAY_MS, drawdown_pct, loss_pct
from .entry_size import base_size, vol_step
from .limits import capital_at_risk, entry_risk
from .regime import Regime, RegimeMetrics, classify, compute_metrics, next_regime
from .sizing import (
    confidence_multiplier,
    stop_distance_fraction,
)
from .types import LONG, SHORT, EntryRequest, PortfolioView, RiskDecision

__all__ = ["RiskManager"]

STATE_VERSION = 1

_STATE_KEYS = (
    "version",
    "day",
    "day_start_equity",
    "daily_halted",
    "last_time",
    "last_equity",
    "peak_equity",
    "pause_peak",
    "paused",
    "regime",
    "regime_since",
    "regime_bucket",
    "regime_metrics",
    "pending",
)


def _utc(ms: int) -> str:
    return datetime.fromtimestamp(ms / 1000, tz=UTC).strftime("%Y-%m-%d %H:%M UTC")


class RiskManager:
    """Portfolio risk rules around a strategy's entries (see the module docstring for the order).

    State and authority:
        * **UTC day**: the manager tracks the day itself from :meth:`on_candle` and its own state
          is authoritative. A candle belongs to the UTC day of its **close** time (open time +
          timeframe), because decisions are taken at the close. When the day changes, the day's
          start equity is the equity at the candle closing exactly at 00:00 UTC (or, after a
          gap, the last equity seen). ``view.day_start_equity`` only seeds the very first call.
        * **Peak equity**: the larger of its own running maximum and ``view.peak_equity``.
        * **Regime**: recomputed at most once per ``regime_update_minutes`` bucket of candle
          open time (default hourly), so :meth:`on_candle` costs a few float operations on most
          candles; on a 1m backtest that is one regime computation per 60 candles.

    :meth:`check_entry` runs the same idempotent update first, so calling it without (or
    before) :meth:`on_candle` for that candle is safe.
    """

    def __init__(self, config: RiskConfig | None = None, *, market_minimums: dict | None = None) -> None:
        """``market_minimums``: ``{symbol: (min_cost USDT, min_amount base units)}`` — the
        exchange's order limits; an entry sized below them is refused (``min_size``)."""
        self.config = config if config is not None else RiskConfig()
        self.market_minimums: dict[str, tuple[float, float]] = {
            str(k): (float(v[0] or 0.0), float(v[1] or 0.0)) for k, v in (market_minimums or {}).items()
        }
        self._reset_state()

    # -- state ------------------------------------------------------------------------------
    def _reset_state(self) -> None:
        self._day: int | None = None
        self._day_start: float | None = None
        self._daily_halted = False
        self._last_time: int | None = None
        self._last_equity: float | None = None
        self._peak = 0.0
        self._pause_peak: float | None = None  # reference peak after a manual resume
        self._paused = False
        self._regime = Regime.NORMAL
        self._regime_since: int | None = None
        self._regime_bucket: int | None = None
        self._regime_metrics: dict[str, Any] | None = None
        self._pending: list[Decision] = []

    def state_dict(self) -> dict[str, Any]:
        """The manager's state as a JSON-safe dict (ints, floats, bools, strings, None, lists).

        ``load_state(json.loads(json.dumps(state_dict())))`` restores it exactly.
        """
        return {
            "version": STATE_VERSION,
            "day": self._day,
            "day_start_equity": self._day_start,
            "daily_halted": self._daily_halted,
            "last_time": self._last_time,
            "last_equity": self._last_equity,
            "peak_equity": self._peak,
            "pause_peak": self._pause_peak,
            "paused": self._paused,
            "regime": self._regime,
            "regime_since": self._regime_since,
            "regime_bucket": self._regime_bucket,
            "regime_metrics": dict(self._regime_metrics) if self._regime_metrics is not None else None,
            "pending": [d.to_dict() for d in self._pending],
        }

    def load_state(self, d: dict[str, Any]) -> None:
        """Restore a :meth:`state_dict`. Raises ``ValueError`` on a missing key, an unknown
        version or an unknown regime."""
        missing = [k for k in _STATE_KEYS if k not in d]
        if missing:
            raise ValueError(f"risk state: missing {', '.join(missing)}")
        if d["version"] != STATE_VERSION:
            raise ValueError(f"risk state: unsupported version {d['version']!r}")
        if d["regime"] not in (Regime.PANIC, Regime.CAUTION, Regime.NORMAL, Regime.EUPHORIA):
            raise ValueError(f"risk state: unknown regime {d['regime']!r}")
        self._day = d["day"]
        self._day_start = d["day_start_equity"]
        self._daily_halted = bool(d["daily_halted"])
        self._last_time = d["last_time"]
        self._last_equity = d["last_equity"]
        self._peak = float(d["peak_equity"])
        self._pause_peak = d["pause_peak"]
        self._paused = bool(d["paused"])
        self._regime = d["regime"]
        self._regime_since = d["regime_since"]
        self._regime_bucket = d["regime_bucket"]
        self._regime_metrics = dict(d["regime_metrics"]) if d["regime_metrics"] is not None else None
        self._pending = [Decision.from_dict(dict(x)) for x in d["pending"]]

    # -- read-only views for the UI -------------------------------------------------------
    @property
    def regime(self) -> str:
        """The current market regime (``"panic"``, ``"caution"``, ``"normal"``, ``"euphoria"``)."""
        return self._regime

    @property
    def regime_metrics(self) -> RegimeMetrics | None:
        """The signals behind the current regime, or ``None`` before the first classification."""
        return RegimeMetrics.from_dict(self._regime_metrics) if self._regime_metrics is not None else None

    @property
    def paused(self) -> bool:
        """``True`` while the drawdown pause blocks new entries."""
        return self._paused

    @property
    def blocked(self) -> bool:
        """``True`` while a drawdown pause or a daily-loss halt blocks new entries."""
        return self._paused or self._daily_halted

    @property
    def daily_halted(self) -> bool:
        """``True`` while the daily loss limit blocks new entries (until the next UTC day)."""
        return self._daily_halted

    @property
    def day_start_equity(self) -> float | None:
        """Equity at the start of the current UTC day, USDT (authoritative for the daily limit)."""
        return self._day_start

    @property
    def peak_equity(self) -> float:
        """Highest equity seen, USDT."""
        return self._peak

    # -- per-candle update ----------------------------------------------------------------
    def on_candle(self, time_ms: int, view: PortfolioView) -> list[Decision]:
        """Update daily-loss, drawdown and regime state at the close of the stepping candle
        that opened at ``time_ms`` (epoch ms UTC). Idempotent for a repeated ``time_ms``.

        Returns INFO decisions for state changes: daily-loss halt and its lifting at the next
        UTC day (``daily_loss_limit``), drawdown pause / auto-resume (``drawdown_pause``),
        regime change (``circuit_breaker``), and a queued manual :meth:`resume`.
        """
        return self._advance(time_ms, view)

    def _advance(self, time_ms: int, view: PortfolioView) -> list[Decision]:
        cfg = self.config
        out: list[Decision] = []
        if self._pending:
            out.extend(self._pending)
            self._pending = []
        eq = float(view.equity)
        market = view.market

        # UTC day of the candle's close; the day start equity is the equity at 00:00 UTC
        tf = market.timeframe_ms() if market is not None else 0
        close_ms = time_ms + tf
        day = close_ms // DAY_MS
        if self._day is None:
            self._day = day
            seed = view.day_start_equity
            self._day_start = float(seed) if seed is not None and seed > 0 else eq
        elif day != self._day:
            self._day = day
            at_midnight = close_ms % DAY_MS == 0 or self._last_equity is None
            self._day_start = eq if at_midnight else self._last_equity
            if self._daily_halted:
                self._daily_halted = False
                out.append(
                    Decision(
                        time_ms,
                        "daily_loss_limit",
                        Outcome.INFO,
                        f"new UTC day {_utc(day * DAY_MS)[:10]}: new entries allowed again "
                        f"(day start equity {self._day_start:.2f})",
                        payload={"day_start_equity": self._day_start},
                    )
                )
        if cfg.daily_loss_limit_pct is not None and not self._daily_halted:
            lp = loss_pct(self._day_start, eq)
            if lp >= cfg.daily_loss_limit_pct:
                self._daily_halted = True
                out.append(
                    Decision(
                        time_ms,
                        "daily_loss_limit",
                        Outcome.INFO,
                        f"day loss {lp:.2f}% (equity {eq:.2f} vs day start {self._day_start:.2f}) reached limit "
                        f"{cfg.daily_loss_limit_pct:.2f}%; new entries blocked until {_utc((self._day + 1) * DAY_MS)}",
                        payload={
                            "loss_pct": lp,
                            "limit_pct": cfg.daily_loss_limit_pct,
                            "day_start_equity": self._day_start,
                        },
                    )
                )

        # peak and drawdown pause
        peak = self._peak
        if view.peak_equity > peak:
            peak = float(view.peak_equity)
        if eq > peak:
            peak = eq
        self._peak = peak
        if self._pause_peak is not None:
            if eq > self._pause_peak:
                self._pause_peak = eq
            if self._pause_peak >= peak:
                self._pause_peak = None
        if cfg.drawdown_pause_pct is not None:
            ref = self._pause_peak if self._pause_peak is not None else peak
            pdd = drawdown_pct(ref, eq)
            if not self._paused and pdd >= cfg.drawdown_pause_pct:
                self._paused = True
                until = (
                    "resumed"
                    if cfg.drawdown_auto_resume_pct is None
                    else (f"resumed or drawdown < {cfg.drawdown_auto_resume_pct:.2f}%")
                )
                out.append(
                    Decision(
                        time_ms,
                        "drawdown_pause",
                        Outcome.INFO,
                        f"drawdown {pdd:.2f}% from peak {ref:.2f} reached pause level {cfg.drawdown_pause_pct:.2f}%; "
                        f"new entries paused until {until}",
                        payload={"drawdown_pct": pdd, "peak": ref, "pause_pct": cfg.drawdown_pause_pct},
                    )
                )
            elif self._paused and cfg.drawdown_auto_resume_pct is not None and pdd < cfg.drawdown_auto_resume_pct:
                self._paused = False
                out.append(
                    Decision(
                        time_ms,
                        "drawdown_pause",
                        Outcome.INFO,
                        f"drawdown {pdd:.2f}% from peak {ref:.2f} back below {cfg.drawdown_auto_resume_pct:.2f}%; "
                        "new entries resumed automatically",
                        payload={"drawdown_pct": pdd, "peak": ref, "resume_pct": cfg.drawdown_auto_resume_pct},
                    )
                )

        # market regime, once per bucket
        if cfg.regime_enabled:
            bucket = time_ms // (cfg.regime_update_minutes * 60_000)
            if bucket != self._regime_bucket:
                self._regime_bucket = bucket
                m = compute_metrics(market, cfg, time_ms)
                self._regime_metrics = m.to_dict()
                new = next_regime(
                    self._regime, self._regime_since, classify(m, cfg), time_ms, cfg.regime_min_hold_hours
                )
                if new != self._regime:
                    out.append(
                        Decision(
                            time_ms,
                            "circuit_breaker",
                            Outcome.INFO,
                            f"regime {self._regime.upper()} -> {new.upper()} "
                            f"({m.describe(cfg.regime_symbol, cfg.regime_return_hours)})",
                            payload={"from": self._regime, "to": new, **m.to_dict()},
                        )
                    )
                    self._regime = new
                    self._regime_since = time_ms
                elif self._regime_since is None:
                    self._regime_since = time_ms

        self._last_time = time_ms
        self._last_equity = eq
        return out

    def resume(self, time_ms: int | None = None, *, by: str = "user", daily: bool = False) -> Decision | None:
        """Lift a drawdown pause and, with ``daily=True``, a daily-loss halt too (otherwise it
        lifts itself at the next UTC day). Returns the INFO decision (``drawdown_pause``, else
        ``daily_loss_limit``; ``None`` when nothing was lifted) and also queues every decision,
        so the next :meth:`on_candle` / :meth:`check_entry` reports them — log decisions from
        those calls only, to avoid a duplicate. ``by`` names who resumed (a username) and
        appears in the reason.

        After a resume the pause re-arms relative to the equity at resume time: a further
        ``drawdown_pause_pct`` fall from the best equity since then (or from the old peak once
        it is regained) pauses again. A lifted daily halt re-arms from the equity at resume
        time for the rest of the UTC day. ``time_ms`` defaults to the last candle seen.
        """
        lift_daily = daily and self._daily_halted
        if not self._paused and not lift_daily:
            return None
        t = time_ms if time_ms is not None else (self._last_time or 0)
        daily = None
        if lift_daily:
            self._daily_halted = False
            eq = self._last_equity
            if eq is not None:
                self._day_start = eq
            limit = self.config.daily_loss_limit_pct
            reason = f"daily loss halt lifted by {by}"
            if eq is not None and limit is not None:
                reason += f"; the limit {limit:.2f}% re-arms from equity {eq:.2f} for the rest of the UTC day"
            daily = Decision(t, "daily_loss_limit", Outcome.INFO, reason, payload={"by": by, "day_start_equity": eq})
            self._pending.append(daily)
        if not self._paused:
            return daily
        self._paused = False
        eq = self._last_equity
        dd = drawdown_pct(self._peak, eq) if eq is not None else 0.0
        if eq is not None and eq < self._peak:
            self._pause_peak = eq
        reason = f"resumed by {by} at drawdown {dd:.2f}% from peak {self._peak:.2f}"
        if eq is not None and self.config.drawdown_pause_pct is not None:
            reason += f"; pause re-arms at {self.config.drawdown_pause_pct:.2f}% below {eq:.2f} or a later high"
        dec = Decision(
            t, "drawdown_pause", Outcome.INFO, reason, payload={"drawdown_pct": dd, "peak": self._peak, "by": by}
        )
        self._pending.append(dec)
        return dec

    # -- entry check ------------------------------------------------------------------------
    def check_entry(self, req: EntryRequest, view: PortfolioView) -> RiskDecision:
        """Approve, resize or refuse a NEW position (not DCA safety orders).

        ``req.quote_amount`` and the returned ``quote_amount`` are USDT notionals. Steps and
        rule names are listed in the module docstring. Raises ``ValueError`` when ``req.side``
        is not ``"long"``/``"short"``.
        """
        if req.side not in (LONG, SHORT):
            raise ValueError(f"side: {req.side!r} is not 'long' or 'short'")
        cfg = self.config
        out = self._advance(req.time_ms, view)
        t, sym = req.time_ms, req.symbol
        eq = float(view.equity)

        def block(rule: str, reason: str, **payload: Any) -> RiskDecision:
            out.append(Decision(t, rule, Outcome.BLOCK, reason, sym, payload))
            return RiskDecision(False, 0.0, out)

        # 2. blocks
        if self._paused:
            ref = self._pause_peak if self._pause_peak is not None else self._peak
            pdd = drawdown_pct(ref, eq)
            return block(
                "drawdown_pause",
                f"new entries paused: drawdown reached {cfg.drawdown_pause_pct:.2f}% "
                f"(now {pdd:.2f}% from peak {ref:.2f}); resume to lift",
                drawdown_pct=pdd,
                peak=ref,
            )
        if self._daily_halted:
            lp = loss_pct(self._day_start, eq)
            return block(
                "daily_loss_limit",
                f"daily loss limit {cfg.daily_loss_limit_pct:.2f}% reached (day start equity {self._day_start:.2f}, "
                f"loss now {lp:.2f}%); no new entries until {_utc((self._day + 1) * DAY_MS)}",
                loss_pct=lp,
                limit_pct=cfg.daily_loss_limit_pct,
            )
        regime_mult = 1.0
        if cfg.regime_enabled:
            mults = cfg.regime_long_multipliers if req.side == LONG else cfg.regime_short_multipliers
            regime_mult = mults[self._regime]
            if regime_mult == 0.0:
                return block(
                    "circuit_breaker",
                    f"regime {self._regime.upper()}: new {req.side} entries blocked",
                    regime=self._regime,
                    multiplier=0.0,
                )

        # 3. base size
        if eq <= 0.0:
            return block("position_sizing", f"equity {eq:.2f} <= 0", equity=eq)
        try:
            frac = stop_distance_fraction(req.price, req.stop_price, req.side)
        except ValueError as exc:
            return block("position_sizing", str(exc), price=req.price, stop_price=req.stop_price)
        sized = base_size(cfg, req, view, frac)
        if isinstance(sized, str):
            return block("position_sizing", sized, mode=cfg.sizing_mode)
        amount, how = sized
        if how:
            if amount != req.quote_amount:
                out.append(
                    Decision(
                        t,
                        "position_sizing",
                        Outcome.RESIZE,
                        f"{how} (requested {req.quote_amount:.2f})",
                        sym,
                        {"mode": cfg.sizing_mode, "requested": req.quote_amount, "size": amount},
                    )
                )
            else:
                out.append(
                    Decision(t, "position_sizing", Outcome.INFO, how, sym, {"mode": cfg.sizing_mode, "size": amount})
                )

        # 4. multipliers
        mult_steps: list[tuple[str, float, str]] = []
        if cfg.drawdown_reduce_pct is not None:
            dd = drawdown_pct(self._peak, eq)
            if dd >= cfg.drawdown_reduce_pct:
                mult_steps.append(
                    (
                        "drawdown_size",
                        cfg.drawdown_size_mult,
                        f"drawdown {dd:.2f}% from peak {self._peak:.2f} >= {cfg.drawdown_reduce_pct:.2f}%",
                    )
                )
        if regime_mult != 1.0:
            mult_steps.append(("circuit_breaker", regime_mult, f"regime {self._regime.upper()}, {req.side}"))
        sm = cfg.symbol_multipliers.get(sym)
        if sm is not None and sm != 1.0:
            mult_steps.append(("symbol_multiplier", sm, f"{sym} multiplier"))
        if cfg.confidence_scaling and req.confidence is not None:
            cm = confidence_multiplier(req.confidence, cfg.confidence_min_mult, cfg.confidence_max_mult)
            if cm != 1.0:
                mult_steps.append(("confidence_scaling", cm, f"confidence {req.confidence:.2f}"))
        if cfg.vol_target_pct is not None and view.market is not None:
            vm = vol_step(cfg, req, view)
            if vm is not None:
                mult_steps.append(vm)
        for rule, m, what in mult_steps:
            new = amount * m
            text = f"{what}: size x{m:.4g}, {amount:.2f} -> {new:.2f} USDT"
            if new <= 0.0:
                return block(rule, text, multiplier=m)
            out.append(Decision(t, rule, Outcome.RESIZE, text, sym, {"multiplier": m, "before": amount, "after": new}))
            amount = new

        # 5. correlation with open positions
        if cfg.correlation_action != "off" and view.positions and view.market is not None:
            best: tuple[float, Any] | None = None
            for pos in view.positions:
                c = rolling_correlation(view.market, sym, pos.symbol, t, cfg.correlation_window)
                if c is None:
                    continue
                eff = c if pos.side == req.side else -c  # an opposite-side position hedges
                if best is None or eff > best[0]:
                    best = (eff, pos)
            if best is not None and best[0] > cfg.correlation_max:
                eff, pos = best
                what = (
                    f"correlation {eff:.2f} with open {pos.side} {pos.symbol} "
                    f"({cfg.correlation_window} candles) > max {cfg.correlation_max:.2f}"
                )
                payload = {"correlation": eff, "with": pos.symbol, "max": cfg.correlation_max}
                if cfg.correlation_action == "block":
                    return block("correlation_limit", what, **payload)
                new = amount * cfg.correlation_shrink_mult
                text = f"{what}: size x{cfg.correlation_shrink_mult:.4g}, {amount:.2f} -> {new:.2f} USDT"
                if new <= 0.0:
                    return block("correlation_limit", text, **payload)
                out.append(
                    Decision(
                        t, "correlation_limit", Outcome.RESIZE, text, sym, {**payload, "before": amount, "after": new}
                    )
                )
                amount = new

        # 6. concurrent positions
        if cfg.max_positions is not None and len(view.positions) >= cfg.max_positions:
            return block(
                "max_positions",
                f"{len(view.positions)} open positions >= max {cfg.max_positions}",
                open=len(view.positions),
                max=cfg.max_positions,
            )

        # 7. capital at risk
        if cfg.max_capital_at_risk_pct is not None:
            cap = eq * cfg.max_capital_at_risk_pct / 100.0
            existing = capital_at_risk(view.positions)
            new_risk = entry_risk(amount, frac)
            if existing + new_risk > cap:
                headroom = cap - existing
                if headroom <= 0.0:
                    return block(
                        "capital_at_risk",
                        f"capital at risk {existing:.2f} USDT already >= cap {cap:.2f} "
                        f"({cfg.max_capital_at_risk_pct:.2f}% of equity {eq:.2f})",
                        at_risk=existing,
                        cap=cap,
                    )
                new = headroom if frac is None else headroom / frac
                out.append(
                    Decision(
                        t,
                        "capital_at_risk",
                        Outcome.RESIZE,
                        f"capital at risk would be {existing + new_risk:.2f} USDT > cap {cap:.2f} "
                        f"({cfg.max_capital_at_risk_pct:.2f}% of equity {eq:.2f}): size {amount:.2f} -> {new:.2f} USDT",
                        sym,
                        {"at_risk": existing, "entry_risk": new_risk, "cap": cap, "before": amount, "after": new},
                    )
                )
                amount = new

        # 8. minimum size: the configured one, then the market's (exchange order limits)
        if amount <= 0.0 or amount < cfg.min_quote:
            return block(
                "min_size", f"size {amount:.2f} USDT < minimum {cfg.min_quote:.2f}", size=amount, min=cfg.min_quote
            )
        min_cost, min_amount = self.market_minimums.get(sym, (0.0, 0.0))
        market_min = max(min_cost, min_amount * req.price if req.price > 0 else 0.0)
        if amount < market_min:
            what = "min cost" if min_cost >= min_amount * req.price else f"min amount {min_amount:g}"
            return block(
                "min_size",
                f"size {amount:.2f} USDT < market minimum {market_min:.2f} USDT ({sym} {what})",
                size=amount,
                min=market_min,
            )
        return RiskDecision(True, amount, out)
