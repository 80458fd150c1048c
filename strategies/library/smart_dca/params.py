"""Smart DCA's own parameter schema (``_CORE_PARAMS``; the guards add theirs, see
:func:`strategies.library.guards.guard_params`). Pure Python (no Django).
"""

from __future__ import annotations

from strategies.base import Param

_CORE_PARAMS = (
    Param(
        "direction",
        "choice",
        "long",
        choices=("long", "short"),
        group="deal",
        help="Long: buy the dips. Short: sell the rips.",
    ),
    Param("base_order_size", "float", 20.0, 0.0, 1e12, "quote", "Size of the order that opens a deal.", group="deal"),
    Param(
        "safety_order_size", "float", 40.0, 0.0, 1e12, "quote", "Size of the first safety order.", group="safety orders"
    ),
    Param("max_safety_orders", "int", 5, 0, 200, "", "Safety orders per deal at most.", group="safety orders"),
    Param("active_safety_orders", "int", 3, 1, 200, "", "Safety orders resting at a time.", group="safety orders"),
    Param(
        "price_deviation",
        "float",
        1.0,
        0.01,
        100.0,
        "%",
        "Distance of safety order 1 from the base order price.",
        group="safety orders",
    ),
    Param(
        "step_scale",
        "float",
        1.0,
        0.1,
        10.0,
        "x",
        "Each next step is this multiple of the previous one.",
        group="safety orders",
    ),
    Param(
        "volume_scale",
        "float",
        1.0,
        0.1,
        10.0,
        "x",
        "Each next safety order is this multiple of the previous one.",
        group="safety orders",
    ),
    Param("take_profit", "float", 1.5, 0.01, 1000.0, "%", "Target profit.", group="take profit"),
    Param(
        "tp_type",
        "choice",
        "total",
        choices=("total", "base"),
        group="take profit",
        help="Percent of total volume (avg entry) or of the base order.",
    ),
    Param("trailing_enabled", "bool", False, group="take profit", help="Trail the take profit."),
    Param(
        "trailing_deviation",
        "float",
        0.5,
        0.01,
        100.0,
        "%",
        "Exit when the price retraces this much from the high since the TP was reached.",
        group="take profit",
    ),
    Param("stop_loss", "float", 0.0, 0.0, 100.0, "%", "Stop loss from the average entry (0 = off).", group="stop loss"),
    Param(
        "stop_loss_timeout",
        "int",
        0,
        0,
        100_000,
        "candles",
        "Closes beyond the stop loss needed before closing (0 = stop order).",
        group="stop loss",
    ),
    Param("cooldown", "float", 0.0, 0.0, 1e9, "", "Pause between deals on a symbol.", group="deal"),
    Param(
        "cooldown_unit", "choice", "candles", choices=("candles", "seconds"), group="deal", help="Unit of the cooldown."
    ),
    Param("max_active_deals", "int", 1, 1, 1000, "", "Open deals at most, across all symbols.", group="deal"),
    Param(
        "start_condition",
        "str",
        "asap",
        group="deal",
        help='"asap", "rsi", "fork_signal" (a passing fork_score signal, long only) or "strategy:<name>".',
    ),
    Param("rsi_period", "int", 14, 2, 500, "candles", "RSI period for the rsi start condition.", group="deal"),
    Param("rsi_below", "float", 30.0, 0.0, 100.0, "", "Long deals start when RSI is below this.", group="deal"),
    Param("rsi_above", "float", 70.0, 0.0, 100.0, "", "Short deals start when RSI is above this.", group="deal"),
)
