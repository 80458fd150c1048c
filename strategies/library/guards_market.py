"""Market and exit guards of Smart DCA: the zombie tag, the BTC market filter and the SAFU
exit (pure numpy + TA-Lib, no Django). The deal-sizing guards live in
:mod:`strategies.library.guards`, which re-exports these and lists them all in ``GUARDS``."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np
import talib

from strategies.base import Param
from strategies.engine.types import Decision, Outcome

from .guards_base import _d, fmt

__all__ = ["BtcMarketFilter", "SafuExit", "ZombieTag"]


# ---------------------------------------------------------------------------------------------
@dataclass(frozen=True)
class ZombieTag:
    """Tag a deal whose close stayed below ``-drawdown_pct`` % of its average entry (above for
    shorts) for ``hours`` hours without recovering; then ``keep`` it, ``stop_averaging``
    (cancel safety orders) or ``close`` it at market (exit reason ``zombie``)."""

    hours: float = 72.0
    drawdown_pct: float = 10.0
    action: str = "keep"
    NAME = "zombie_tag"
    PARAMS = (
        Param("zombie_tag_enabled", "bool", False, group="guards", help="Tag deals stuck deep in loss."),
        Param("zombie_hours", "float", 72.0, 0.0, 100_000.0, "hours", "How long below the threshold.", group="guards"),
        Param("zombie_drawdown_pct", "float", 10.0, 0.0, 100.0, "%", "Loss from the average entry.", group="guards"),
        Param(
            "zombie_action",
            "choice",
            "keep",
            choices=("keep", "stop_averaging", "close"),
            group="guards",
            help="What to do with a zombie deal.",
        ),
    )

    @classmethod
    def from_params(cls, p: dict[str, Any]) -> ZombieTag | None:
        return cls(p["zombie_hours"], p["zombie_drawdown_pct"], p["zombie_action"]) if p["zombie_tag_enabled"] else None

    def threshold(self, entry_price: float, side: str) -> float:
        return (
            entry_price * (1.0 - self.drawdown_pct / 100.0)
            if side == "long"
            else entry_price * (1.0 + self.drawdown_pct / 100.0)
        )

    def tag(self, time: int, symbol: str, hours_below: float, loss_pct: float) -> Decision:
        return _d(
            self.NAME,
            Outcome.EXIT if self.action == "close" else Outcome.TAG,
            f"deal {loss_pct:.2f}% in loss, below -{fmt(self.drawdown_pct)}% for {fmt(hours_below)}h >= {fmt(self.hours)}h; action {self.action}",
            time,
            symbol,
            hours=hours_below,
            loss_pct=loss_pct,
            action=self.action,
        )


# ---------------------------------------------------------------------------------------------
@dataclass(frozen=True)
class BtcMarketFilter:
    """No new deals and no safety orders while BTC is bearish (longs) / bullish (shorts).

    Rules on BTC's closed stepping candles (from the feed, traded or not): ``ema``: close below
    (above) EMA(``ema_period``); ``change``: change over the last 24 h below ``-change_pct`` %
    (above ``+change_pct`` %); ``either``: one of the two.
    """

    rule: str = "ema"
    ema_period: int = 200
    change_pct: float = 5.0
    symbol: str = "BTC/USDT"
    NAME = "btc_market_filter"
    PARAMS = (
        Param(
            "btc_market_filter_enabled",
            "bool",
            False,
            group="guards",
            help="Pause new deals and safety orders in a BTC down-move.",
        ),
        Param(
            "btc_filter_rule",
            "choice",
            "ema",
            choices=("ema", "change", "either"),
            group="guards",
            help="BTC below its EMA, a 24h drop, or either.",
        ),
        Param("btc_filter_ema_period", "int", 200, 2, 2000, "candles", "EMA period on BTC closes.", group="guards"),
        Param(
            "btc_filter_change_pct",
            "float",
            5.0,
            0.0,
            100.0,
            "%",
            "24h BTC move that counts as bearish (bullish for shorts).",
            group="guards",
        ),
        Param("btc_symbol", "str", "BTC/USDT", group="guards", help="The BTC market in the feed."),
    )

    @classmethod
    def from_params(cls, p: dict[str, Any]) -> BtcMarketFilter | None:
        if not p["btc_market_filter_enabled"]:
            return None
        return cls(p["btc_filter_rule"], p["btc_filter_ema_period"], p["btc_filter_change_pct"], p["btc_symbol"])

    def series(self, btc, side: str, tf_ms: int) -> dict[str, np.ndarray]:
        """Per BTC candle: ``block`` (bool), ``close``, ``ema``, ``change`` (%, NaN unknown)."""
        c = btc.close
        ema = talib.EMA(c, self.ema_period) if len(c) >= self.ema_period else np.full(len(c), np.nan)
        j = np.searchsorted(btc.time, btc.time - 86_400_000)
        ok = (j < np.arange(len(c))) & (btc.time[np.minimum(j, len(c) - 1)] == btc.time - 86_400_000)
        change = np.where(ok, (c / c[np.minimum(j, len(c) - 1)] - 1.0) * 100.0, np.nan)
        with np.errstate(invalid="ignore"):
            if side == "long":
                e_bad = c < ema
                ch_bad = change < -self.change_pct
            else:
                e_bad = c > ema
                ch_bad = change > self.change_pct
        block = e_bad if self.rule == "ema" else ch_bad if self.rule == "change" else (e_bad | ch_bad)
        return {"block": block, "close": c, "ema": ema, "change": change}

    def check(
        self, time: int, symbol: str, side: str, blocked: bool, btc_close: float, ema: float, change: float, what: str
    ) -> Decision:
        """``what``: ``"new deal"`` or ``"safety orders"`` (for the reason text)."""
        parts = []
        long = side == "long"
        if self.rule in ("ema", "either") and not np.isnan(ema):
            op = ("<" if btc_close < ema else ">=") if long else (">" if btc_close > ema else "<=")
            parts.append(f"BTC close {btc_close:,.2f} {op} EMA{self.ema_period} {ema:,.2f}")
        if self.rule in ("change", "either") and not np.isnan(change):
            lim = -self.change_pct if long else self.change_pct
            op = ("<" if change < lim else ">=") if long else (">" if change > lim else "<=")
            parts.append(f"BTC 24h change {change:+.2f}% {op} {lim:+g}%")
        text = "; ".join(parts) or "no BTC data"
        mood = "bearish" if side == "long" else "bullish"
        payload = {
            "btc_close": btc_close,
            "ema": None if np.isnan(ema) else ema,
            "change_pct": None if np.isnan(change) else change,
        }
        if blocked:
            return Decision(time, self.NAME, Outcome.BLOCK, f"BTC {mood}: {text}; {what} blocked", symbol, payload)
        return Decision(time, self.NAME, Outcome.ALLOW, f"BTC not {mood}: {text}", symbol, payload)


# ---------------------------------------------------------------------------------------------
@dataclass(frozen=True)
class SafuExit:
    """Close a deal at market when the ``ExitScorer`` score reaches ``threshold`` (0..1)."""

    threshold: float = 0.8
    drawdown_ref_pct: float = 20.0
    NAME = "safu_exit"
    PARAMS = (
        Param("safu_exit_enabled", "bool", False, group="guards", help="Close a deal when the exit score says so."),
        Param("safu_threshold", "float", 0.8, 0.0, 1.0, group="guards", help="Exit when score >= threshold (0..1)."),
        Param(
            "safu_drawdown_ref_pct",
            "float",
            20.0,
            0.1,
            100.0,
            "%",
            "Drawdown that counts as full score in the rule-based scorer.",
            group="guards",
        ),
    )

    @classmethod
    def from_params(cls, p: dict[str, Any]) -> SafuExit | None:
        return cls(p["safu_threshold"], p["safu_drawdown_ref_pct"]) if p["safu_exit_enabled"] else None

    def check(self, time: int, symbol: str, score: float, drawdown_pct: float, source: str = "") -> Decision:
        """``source``: what scored (an ML model's ``safu_exit v3``), shown as ``exit score 0.93
        (safu_exit v3)``; empty for the rule-based scorer."""
        by = f" ({source})" if source else ""
        extra = {"source": source} if source else {}
        if score >= self.threshold:
            return _d(
                self.NAME,
                Outcome.EXIT,
                f"exit score {score:.2f}{by} >= {fmt(self.threshold)} (drawdown {drawdown_pct:.2f}%); deal closed",
                time,
                symbol,
                score=score,
                threshold=self.threshold,
                **extra,
            )
        return _d(
            self.NAME,
            Outcome.ALLOW,
            f"exit score {score:.2f}{by} < {fmt(self.threshold)}",
            time,
            symbol,
            score=score,
            **extra,
        )
