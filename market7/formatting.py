"""Display formatting shared by every page: prices at the market's precision with thousands
separators, money with its currency, percents, on/off, and human labels for setting names.

Pure functions (no Django imports) so selectors, views, templates (the builtin template library
``market7.templatetags.m7``) and CSV exports format the same value the same way.
"""

from __future__ import annotations

from decimal import Decimal, InvalidOperation
from math import floor, isfinite, log10
from typing import Any

__all__ = [
    "price_decimals",
    "format_number",
    "format_price",
    "format_money",
    "format_pct",
    "format_duration",
    "human_label",
]

# Words shown in capitals (or a fixed spelling) wherever a setting name becomes a label.
ACRONYMS = {
    "tp": "TP",
    "sl": "SL",
    "so": "SO",
    "btc": "BTC",
    "eth": "ETH",
    "rsi": "RSI",
    "ema": "EMA",
    "sma": "SMA",
    "macd": "MACD",
    "atr": "ATR",
    "pnl": "P&L",
    "cagr": "CAGR",
    "rrr": "RRR",
    "dca": "DCA",
    "safu": "SAFU",
    "bps": "bps",
    "pct": "%",
    "usdt": "USDT",
    "id": "ID",
    "var": "VaR",
    "ml": "ML",
    "api": "API",
    "ws": "WS",
}
# Whole names whose label is not a word-by-word translation.
LABELS = {
    "cagr_pct": "CAGR",
    "max_drawdown_pct": "Max drawdown",
    "total_return_pct": "Total return",
    "win_rate_pct": "Win rate",
    "exposure_pct": "Exposure",
    "profit_factor": "Profit factor",
    "fees_paid": "Fees paid",
    "final_equity": "Final equity",
    "sharpe": "Sharpe",
    "sortino": "Sortino",
}


def _to_float(value: Any) -> float | None:
    if value is None or value == "":
        return None
    try:
        f = float(value)
    except (TypeError, ValueError, InvalidOperation):
        return None
    return f if isfinite(f) else None


def price_decimals(value: Any = None, precision: dict | float | None = None) -> int:
    """Decimals to show a price with: from the market's price tick when ccxt gave one
    (``{"price": 0.01}`` or ``0.01`` -> 2), else about 6 significant digits with at least 2
    decimals and at most 8 (108246.35 -> 2, 0.81234 -> 6)."""
    tick = precision.get("price") if isinstance(precision, dict) else precision
    tick = _to_float(tick)
    if tick is not None and 0 < tick < 1:
        return max(0, -floor(log10(tick) + 1e-9))
    if tick is not None and tick >= 1:
        return 0
    v = _to_float(value)
    if not v:
        return 2
    return min(8, max(2, 5 - floor(log10(abs(v)))))


def format_number(value: Any, decimals: int = 2, *, sign: bool = False) -> str:
    """``1234567.891`` -> ``"1,234,567.89"`` (thousands separators, fixed decimals, half-even
    rounding of the Decimal value); ``None``/non-numbers -> ``"—"``; ``-0.00`` -> ``"0.00"``."""
    if value is None or value == "":
        return "—"
    try:
        d = value if isinstance(value, Decimal) else Decimal(str(value))
    except (InvalidOperation, ValueError):
        return "—"
    if not d.is_finite():
        return "—"
    q = d.quantize(Decimal(1).scaleb(-decimals)) if decimals > 0 else d.quantize(Decimal(1))
    if q == 0:
        q = abs(q)
    text = f"{q:,.{decimals}f}"
    if sign and q > 0:
        text = "+" + text
    return text


def format_price(value: Any, precision: dict | float | None = None) -> str:
    """A price at the market's precision with thousands separators (``"108,246.35"``)."""
    return format_number(value, price_decimals(value, precision))


def format_money(value: Any, currency: str = "", *, sign: bool = False, decimals: int = 2) -> str:
    """Quote-currency money: ``"1,234.56 USDT"``; ``sign=True`` prefixes gains with ``+``."""
    text = format_number(value, decimals, sign=sign)
    return f"{text} {currency}" if currency and text != "—" else text


def format_pct(value: Any, decimals: int = 2, *, sign: bool = False) -> str:
    """A percent number (``5.0`` means 5 %) -> ``"5.00 %"``."""
    text = format_number(value, decimals, sign=sign)
    return f"{text} %" if text != "—" else text


def format_duration(seconds: Any) -> str:
    """A duration in seconds as its two largest units: ``93784`` -> ``"1d 2h"``, ``8100`` ->
    ``"2h 15m"``, ``2700`` -> ``"45m"``, ``42`` -> ``"42s"``; ``None``/non-numbers -> ``"—"``."""
    s = _to_float(seconds)
    if s is None or s < 0:
        return "—"
    s = int(round(s))
    if s < 60:
        return f"{s}s"
    parts = [(s // 86400, "d"), (s % 86400 // 3600, "h"), (s % 3600 // 60, "m")]
    while parts and parts[0][0] == 0:
        parts.pop(0)
    shown = [f"{n}{unit}" for n, unit in parts[:2] if n]
    return " ".join(shown)


def human_label(name: str) -> str:
    """A setting or metric name as a label: ``"tp_type"`` -> ``"TP type"``,
    ``"btc_market_filter_enabled"`` -> ``"BTC market filter"``, ``"cagr_pct"`` -> ``"CAGR"``."""
    name = str(name or "")
    if name in LABELS:
        return LABELS[name]
    words = [w for w in name.split("_") if w]
    if len(words) > 1 and words[-1] == "enabled":
        words = words[:-1]
    if len(words) > 1 and words[-1] == "pct":
        words = words[:-1]
    out = [ACRONYMS.get(w.lower(), w) for w in words]
    if out and out[0] == out[0].lower():
        out[0] = out[0][:1].upper() + out[0][1:]
    return " ".join(out)
