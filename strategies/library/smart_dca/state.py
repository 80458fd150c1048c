"""Smart DCA's state: :class:`DcaSymbolState` / :class:`DcaState` (JSON round-trip) and the
per-run caches ``_Arrays`` (pre-computed causal arrays per symbol) and ``_Scan`` (a cached
forward search of one exit rule). Pure Python (no Django).
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from typing import Any

from strategies.base import StrategyState

__all__ = ["DcaState", "DcaSymbolState"]


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
