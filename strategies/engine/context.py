""":class:`StepContext`: what a strategy sees and acts through when one of its candles closes.

A thin view over the running :class:`~strategies.engine.engine.Engine` (pure Python, no
Django). Re-exported by :mod:`strategies.engine.engine`.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from .feed import FeedView
from .orders import Fill, Order, OrderIntent
from .portfolio import Portfolio, Position
from .types import Decision

if TYPE_CHECKING:
    from .engine import Engine

__all__ = ["StepContext"]


class StepContext:
    """What a strategy sees when one of its symbols' candles closes.

    Read: ``symbol``, ``i`` (index of the closed candle in ``candles``), ``time`` (its open
    time, ms), ``close_time``, ``candles`` (whole arrays — ``on_candle`` must read only
    ``[: i + 1]``; ``next_wake`` may scan forward to find its next event), ``end`` (the run
    stops before this index), ``market`` (:class:`MarketSpec`), ``fills`` (this symbol's fills
    during this candle), ``state`` (the strategy's state), ``feed``, ``position``, ``orders``
    (this symbol's open orders), ``view`` (causal ``MarketDataView``), ``symbols`` (the traded symbols, sorted).

    Act: :meth:`place`, :meth:`cancel`, :meth:`record` / :meth:`decide`, :meth:`new_deal_id`,
    :meth:`tag_deal`, :meth:`check_entry` (portfolio risk), :meth:`wait_for` / :meth:`notify`.
    """

    __slots__ = (
        "_eng",
        "symbol",
        "i",
        "time",
        "close_time",
        "candles",
        "market",
        "fills",
        "state",
        "feed",
        "end",
        "record_allow",
        "_wait",
    )

    def __init__(self, eng: Engine) -> None:
        self._eng = eng
        self.record_allow = eng.record_allow  # False: ALLOW decisions are dropped, skip building them
        self.fills: list[Fill] = []
        self._wait = ""

    @property
    def position(self) -> Position:
        return self._eng._pf.position(self.symbol)

    @property
    def symbols(self) -> list[str]:
        """The symbols this run trades (sorted)."""
        return self._eng.symbols

    @property
    def orders(self) -> list[Order]:
        return self._eng._open[self.symbol]

    @property
    def portfolio(self) -> Portfolio:
        return self._eng._pf

    @property
    def view(self) -> FeedView:
        return FeedView(self.feed, self.time)

    @property
    def close(self) -> float:
        return float(self.candles.close[self.i])

    def equity(self) -> float:
        """Equity (quote) at this candle's close."""
        return self._eng._equity_at_now()

    def free(self) -> float:
        """Buying power in quote (see :meth:`Portfolio.free`)."""
        return self._eng._pf.free()

    def place(self, intent: OrderIntent) -> Order:
        """Submit an order now; returns it ``open`` or ``rejected`` (with ``reject_reason``)."""
        return self._eng._place(self, intent)

    def cancel(self, order: Order | str, reason: str = "") -> None:
        self._eng._cancel_id(
            self.symbol, order if isinstance(order, str) else order.client_order_id, reason, self.close_time
        )

    def record(self, decision: Decision) -> None:
        self._eng._record(decision)

    def decide(self, rule: str, outcome: str, reason: str, payload: dict | None = None) -> Decision:
        d = Decision(self.time, rule, outcome, reason, self.symbol, payload or {})
        self._eng._record(d)
        return d

    def new_deal_id(self) -> str:
        return self._eng._new_deal_id()

    def tag_deal(self, deal_id: str, tag: str) -> None:
        deal = self._eng._pf.deals.get(deal_id)
        if deal is not None and tag not in deal.tags:
            deal.tags.append(tag)

    def check_entry(
        self,
        side: str,
        quote_amount: float,
        price: float,
        stop_price: float | None = None,
        confidence: float | None = None,
    ) -> tuple[bool, float]:
        """Ask the portfolio risk manager before a NEW deal (not for safety orders).

        Returns ``(approved, quote_amount)`` (possibly resized); its decisions are recorded.
        Without a risk manager: ``(True, quote_amount)``.
        """
        return self._eng._check_entry(self, side, quote_amount, price, stop_price, confidence)

    def wait_for(self, kind: str) -> None:
        """Sleep this symbol until ``notify(kind)``: ``"slot"`` (a deal slot freed) or
        ``"funds"`` (any fill or cancel). ``next_wake`` should then return ``None``."""
        self._wait = kind

    def notify(self, kind: str) -> None:
        """Wake the symbols waiting for ``kind`` (``"slot"`` also wakes ``"funds"`` waiters)."""
        self._eng._notify(kind, self.symbol)

    def recall(self, kind: str) -> None:
        """Put back to sleep the symbols that a ``notify(kind)`` woke and that have not run yet
        (their wake-up is restored to what it was before the notify).

        Call it when the resource is gone again (e.g. this symbol took the last deal slot): a
        woken waiter would only find nothing and ``wait_for(kind)`` again, so skipping its
        call changes nothing but time. Only waiters of exactly ``kind`` are recalled.
        """
        self._eng._recall(kind)
