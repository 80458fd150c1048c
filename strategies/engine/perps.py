"""USDⓈ-M perpetual futures: leverage, margin, tiered maintenance, liquidation price, funding.

Pure Python (no Django), float64, quote currency (USDT) for every money value, base units for
amounts, fractions for rates (``0.004`` = 0.4 %).

Formulas (Binance, "How to Calculate Liquidation Price of USDⓈ-M Futures Contracts",
https://www.binance.com/en/support/faq/b3c689c1f50a44cabb3a84e663b81d93, and "Leverage and
Margin of USDⓈ-M Futures"):

* **Initial margin** = notional ÷ leverage (notional = |amount| × price).
* **Maintenance margin** = notional × MMR − cum, where MMR (maintenance margin rate) and cum
  (maintenance amount) are those of the position bracket (tier) the notional falls in. The
  maintenance amount of tier n is ``floor_n × (MMR_n − MMR_{n−1}) + cum_{n−1}`` (FAQ: "Level 3
  = 250,000 × (1% − 0.5%) + 50 USDT = 1,300 USDT"), which makes maintenance margin continuous
  across tier boundaries; :func:`maintenance_amounts` computes it.
* **Liquidation price** (one contract, cross margin; the FAQ's formula)::

      LP = (WB − TMM1 + UPNL1 + cumB + cumL + cumS
            − Side1BOTH × Position1BOTH × EP1BOTH
            − Position1LONG × EP1LONG + Position1SHORT × EP1SHORT)
           / (Position1BOTH × MMR_B + Position1LONG × MMR_L + Position1SHORT × MMR_S
              − Side1BOTH × Position1BOTH − Position1LONG + Position1SHORT)

  WB is the cross wallet balance; TMM1 / UPNL1 the maintenance margin and unrealised P&L of
  all *other* contracts. In **isolated** mode WB is the position's isolated wallet balance
  (its margin) and TMM1 = UPNL1 = 0. One-way mode uses the BOTH leg; **hedge mode** the LONG
  and SHORT legs (in cross margin both share one liquidation price; in isolated mode each leg
  is computed alone). The FAQ's note: when the notional *at the liquidation price* lies in
  another tier than assumed, recompute with that tier's MMR and cum — :func:`liquidation_price`
  iterates until the tier is stable.
* **Funding payment** (Binance "Introduction to Binance Futures Funding Rates") = position
  notional at the mark price × funding rate; longs pay positive rates and shorts receive them
  (:func:`funding_payment`, signed: positive = paid).

Tier tables for the bundled futures markets are in ``data/leverage_tiers.json`` (source named
there); :func:`tiers_from_ccxt` converts ccxt ``fetch_leverage_tiers`` output when online.
"""

from __future__ import annotations

import json
import math
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path
from typing import Any

__all__ = [
    "MAX_LEVERAGE",
    "Leg",
    "Tier",
    "TierTable",
    "bundled_tiers",
    "funding_payment",
    "initial_margin",
    "liquidation_price",
    "maintenance_amounts",
    "maintenance_margin",
    "tiers_from_ccxt",
    "validate_leverage",
]

MAX_LEVERAGE = 125
_TIERS_FILE = Path(__file__).with_name("data") / "leverage_tiers.json"


@dataclass(frozen=True, slots=True)
class Tier:
    """One position bracket: notional in ``[min_notional, max_notional)`` (quote)."""

    min_notional: float
    max_notional: float
    mmr: float
    max_leverage: float
    cum: float


@dataclass(frozen=True, slots=True)
class TierTable:
    """A market's brackets, lowest notional first."""

    tiers: tuple[Tier, ...]

    def tier_for(self, notional: float) -> Tier:
        """The bracket holding ``notional`` (quote); beyond the last one, the last one."""
        for t in self.tiers:
            if notional < t.max_notional:
                return t
        return self.tiers[-1]

    def max_leverage(self, notional: float = 0.0) -> float:
        return self.tier_for(notional).max_leverage

    def to_rows(self) -> tuple[tuple[float, float, float, float, float], ...]:
        return tuple((t.min_notional, t.max_notional, t.mmr, t.max_leverage, t.cum) for t in self.tiers)

    @classmethod
    def from_rows(cls, rows) -> TierTable:
        """From ``[[min_notional, max_notional, mmr, max_leverage, cum], ...]``. ValueError when
        empty, unsorted, or a cum does not follow Binance's maintenance-amount recurrence."""
        tiers = tuple(Tier(*(float(x) for x in r)) for r in rows)
        if not tiers:
            raise ValueError("a tier table needs at least one tier")
        expected = maintenance_amounts([(t.min_notional, t.mmr) for t in tiers])
        for k, (t, cum) in enumerate(zip(tiers, expected, strict=True)):
            if k and t.min_notional != tiers[k - 1].max_notional:
                raise ValueError(
                    f"tier {k + 1} starts at {t.min_notional:g}, previous ends at {tiers[k - 1].max_notional:g}"
                )
            if not math.isclose(t.cum, cum, rel_tol=0, abs_tol=1e-6 * max(1.0, cum)):
                raise ValueError(f"tier {k + 1}: cum {t.cum:g} != floor x (MMR_n - MMR_n-1) + cum_n-1 = {cum:g}")
        return cls(tiers)


def maintenance_amounts(brackets: list[tuple[float, float]]) -> list[float]:
    """Maintenance amounts (cum, quote) of ``[(floor_notional, mmr), ...]`` by Binance's
    recurrence ``cum_n = floor_n × (MMR_n − MMR_{n−1}) + cum_{n−1}``, ``cum_1 = 0``."""
    out: list[float] = []
    for k, (floor, mmr) in enumerate(brackets):
        out.append(0.0 if k == 0 else floor * (mmr - brackets[k - 1][1]) + out[-1])
    return out


@lru_cache(maxsize=1)
def _bundled() -> dict[str, Any]:
    return json.loads(_TIERS_FILE.read_text())


def bundled_tiers(symbol: str) -> TierTable | None:
    """The bundled tier table of ccxt ``symbol`` (``BTC/USDT:USDT``), or None when not bundled."""
    rows = _bundled().get(symbol)
    return TierTable.from_rows(rows) if rows else None


def tiers_from_ccxt(tiers: list[dict[str, Any]]) -> TierTable:
    """From ccxt ``fetch_leverage_tiers()[symbol]`` (``minNotional``, ``maxNotional``,
    ``maintenanceMarginRate``, ``maxLeverage``; ``info.cum`` when present, else computed)."""
    brackets = [(float(t["minNotional"]), float(t["maintenanceMarginRate"])) for t in tiers]
    cums = maintenance_amounts(brackets)
    rows = []
    for t, cum in zip(tiers, cums, strict=True):
        info_cum = (t.get("info") or {}).get("cum")
        rows.append(
            (
                t["minNotional"],
                t["maxNotional"],
                t["maintenanceMarginRate"],
                t["maxLeverage"],
                cum if info_cum is None else float(info_cum),
            )
        )
    return TierTable.from_rows(rows)


def validate_leverage(leverage: float, tiers: TierTable | None = None, notional: float = 0.0) -> None:
    """ValueError unless ``1 <= leverage <= 125`` and, with ``tiers``, ``<=`` the bracket's
    maximum leverage at ``notional`` (quote)."""
    if not (1 <= leverage <= MAX_LEVERAGE):
        raise ValueError(f"leverage {leverage:g} out of range 1..{MAX_LEVERAGE}")
    if tiers is not None:
        cap = tiers.max_leverage(notional)
        if leverage > cap:
            raise ValueError(f"leverage {leverage:g} > {cap:g}, the maximum for a notional of {notional:,.2f}")


def initial_margin(notional: float, leverage: float) -> float:
    """Initial margin (quote) = notional ÷ leverage."""
    return notional / leverage


def maintenance_margin(notional: float, tiers: TierTable) -> float:
    """Maintenance margin (quote) = notional × MMR − cum of the bracket ``notional`` is in."""
    t = tiers.tier_for(notional)
    return notional * t.mmr - t.cum


@dataclass(frozen=True, slots=True)
class Leg:
    """One position of a contract: ``side`` +1 long / −1 short, ``amount`` > 0 (base),
    ``entry_price`` (quote). ``hedge``: a LONG/SHORT leg of hedge mode (else one-way BOTH)."""

    side: int
    amount: float
    entry_price: float
    hedge: bool = False


def liquidation_price(
    *,
    wallet_balance: float,
    legs: list[Leg],
    tiers: TierTable,
    other_maintenance: float = 0.0,
    other_upnl: float = 0.0,
) -> float | None:
    """Binance's USDⓈ-M liquidation price (quote) of one contract (see the module docstring).

    ``wallet_balance``: cross wallet balance (cross) or the isolated wallet balance (isolated);
    ``other_maintenance`` / ``other_upnl``: TMM1 / UPNL1 of the other contracts (0 isolated).
    ``legs``: one BOTH leg (one-way), or hedge legs (one long and/or one short). Each leg's
    MMR and cum come from ``tiers`` at its notional at the liquidation price, iterated from
    the entry notional until stable (FAQ note). Returns 0.0 when the computed price is <= 0
    (a long that cannot be liquidated; Binance shows "--"), None when the legs cancel out
    (no price liquidates them) or there is no position.
    """
    legs = [leg for leg in legs if leg.amount > 0]
    if not legs:
        return None
    chosen = [tiers.tier_for(leg.amount * leg.entry_price) for leg in legs]
    lp = None
    for _ in range(len(tiers.tiers) + 2):
        num = wallet_balance - other_maintenance + other_upnl
        den = 0.0
        for leg, t in zip(legs, chosen, strict=True):
            num += t.cum - leg.side * leg.amount * leg.entry_price
            den += leg.amount * t.mmr - leg.side * leg.amount
        if den == 0.0:
            return None
        lp = num / den
        if lp <= 0.0:
            return 0.0
        again = [tiers.tier_for(leg.amount * lp) for leg in legs]
        if again == chosen:
            break
        chosen = again
    return lp


def funding_payment(*, amount: float, mark_price: float, rate: float) -> float:
    """Funding paid (quote, signed: > 0 paid, < 0 received) by a position of signed ``amount``
    (base; long > 0, short < 0) at ``mark_price`` for funding ``rate`` (fraction per event):
    ``amount × mark × rate``. A long pays a positive rate, a short receives it."""
    return amount * mark_price * rate
