"""Smart DCA (``smart_dca``): the 3Commas DCA bot, long and short, with the Market7 guards.

Pure numpy + TA-Lib (no Django). Terms are 3Commas':

* **base order** — a market order of ``base_order_size`` quote opens a deal when the deal
  start condition holds (``asap``, ``rsi`` — RSI(``rsi_period``) below ``rsi_below`` for longs /
  above ``rsi_above`` for shorts — or ``strategy:<name>``: another registered strategy's
  ``entry_signals``), subject to ``max_active_deals`` (across symbols), the cooldown since the
  last deal on the symbol, the BTC market filter and the portfolio risk manager.
* **safety orders** (SO) — limit orders resting below (long) / above (short) the base order
  price. SO ``n`` (1-based) sits at a **cumulative** deviation from the base order fill price

      D_n = sum_{k=1..n} price_deviation x step_scale^(k-1)   (percent)
      price_n = base_price x (1 - D_n / 100)     (long;  x (1 + D_n / 100) for short)

  and its size is ``safety_order_size x volume_scale^(n-1)`` quote. At most
  ``active_safety_orders`` rest at a time; the ladder is refilled as they fill, up to
  ``max_safety_orders``.
* **take profit** — after each entry fill a reduce-only limit order closes the whole position
  at ``avg_entry x (1 + take_profit / 100)`` (``tp_type="total"``: % of total volume, 3Commas'
  default) or at the price where the profit equals ``take_profit`` % of the base order's cost
  (``tp_type="base"``: ``(entry_cost + base_cost x tp/100) / amount``). Mirrored for shorts.
* **trailing take profit** — instead of the limit order: armed when a candle's high reaches
  the TP price; the deal is closed at market when a candle closes ``trailing_deviation`` %
  below the highest high since arming (mirrored for shorts).
* **stop loss** — ``stop_loss`` % from the average entry: a reduce-only stop-market order, or
  with ``stop_loss_timeout`` N > 0 a market close once N consecutive closes stayed beyond it.
* **manual commands** (the deal page) — ``add_funds``: a market order of ``quote`` quote in
  the deal's direction (tag ``manual_safety_order``), filled at the next open; it moves the
  average entry, TP and SL like a safety order and shows on the ladder as a manual row, but
  does not use one of the ``max_safety_orders`` (3Commas' "add funds"). ``set_exits``: a new
  ``take_profit`` and/or ``stop_loss`` in percent **from the average entry** for this deal
  only (``stop_loss`` 0 removes it); the TP / SL orders are replaced at once.
* **cooldown** — ``cooldown`` candles (or seconds, ``cooldown_unit``) after a deal closes
  before the next deal on the same symbol.

Guards (:mod:`strategies.library.guards`) hold, resize, tag or exit and record a ``Decision``
with a reason each time they act. Decisions are taken on closed candles only; an order placed
on the close of candle ``i`` fills from candle ``i + 1`` (fill model: ``strategies.engine.broker``).
Counting of time-based rules (SL timeout, zombie age, trailing arming) starts on the candle
after the last entry fill, when the new average entry is known.

The package: :mod:`.formulas` (the 3Commas ladder / take-profit formulas, pure),
:mod:`.params` (the parameter schema), :mod:`.state` (JSON-safe state dataclasses and
per-symbol caches), :mod:`.strategy` (:class:`SmartDCA`: entries, per-candle flow, skipping),
:mod:`.ladder` (the safety-order ladder and its guards), :mod:`.exits` (trailing TP,
SL timeout, zombie and SAFU exits, vectorized searches) and :mod:`.commands` (manual
``add_funds`` / ``set_exits``). Everything public is re-exported here.
"""

from .formulas import so_deviations, so_prices, so_sizes, take_profit_price
from .state import DcaState, DcaSymbolState
from .strategy import SmartDCA

__all__ = ["SmartDCA", "DcaState", "DcaSymbolState", "so_deviations", "so_prices", "so_sizes", "take_profit_price"]
