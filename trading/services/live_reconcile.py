"""Reconciliation of a live bot with its exchange account, before every live step (so on every
start, resume and restart, and after any crash).

The bot's orders carry deterministic client ids (``m7b42-17`` -> ``m7b42x17`` at the exchange,
``trading.brokers.ccxt_live.exchange_client_id``), and the engine's id counter
(``state["order_seq"]``) moves only when a step commits. So every order at the exchange with the
bot's prefix is one of:

- **ours**: a row of ``trading.models.Order`` with that client id. Open at the exchange and open
  here: fine (its fills are read by the step, ``CcxtBroker.iter_fills``). Open at the exchange
  but closed, canceled or rejected here, or filled at the exchange while canceled or rejected
  here (a fill we missed): a **difference**.
- **in flight**: no row, and its number is above the committed counter — placed by a step that
  never committed (worker killed after the exchange accepted the order). Deterministic ids make
  the re-run of that step submit the same id, and ``CcxtBroker.submit`` looks it up and adopts
  it instead of placing it again. :func:`live_check_adopted` checks after the run that each one
  was adopted; one that was not is a difference.
- **unknown**: no row and a number at or below the counter: a difference.

Orders on the bot's markets without the bot's prefix (placed by hand or another bot) are
**foreign**: reported once as a ``reconcile`` event, never touched.

A difference raises :class:`ReconcileError` with the differences in its message: the step does
not run (or rolls back) and the runner puts the bot in ``error`` with that message, so the user
sees what disagrees. Nothing at the exchange is changed by reconciliation.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import timedelta

from django.utils import timezone

from market7.timeframes import dt_to_ms
from trading.brokers.ccxt_live import CcxtBroker, exchange_client_id
from trading.models import Bot, BotEvent, Market, Order

RECENT_TRADES = timedelta(days=1)  # how far back fetch_my_trades looks for fills we missed


class ReconcileError(RuntimeError):
    """The exchange account disagrees with the bot's records (message: the differences)."""


@dataclass
class Reconciliation:
    """What :func:`live_reconcile` found. ``inflight``: exchange client id -> ccxt order placed by a
    step that did not commit; ``foreign``: one line per order not placed by this bot."""

    inflight: dict[str, dict] = field(default_factory=dict)
    foreign: list[str] = field(default_factory=list)
    differences: list[str] = field(default_factory=list)


def _describe(o: dict) -> str:
    return (
        f"{o.get('clientOrderId') or o.get('id')} ({o.get('side')} {o.get('amount')} {o.get('symbol')}, "
        f"{o.get('status')}, filled {o.get('filled')})"
    )


def live_reconcile(*, bot: Bot, broker: CcxtBroker, markets: list[Market]) -> Reconciliation:
    """Match the exchange's open orders and recent trades on ``markets`` to the bot's orders by
    client id (module doc). Network outside any transaction; every call with backoff (raises
    ``LiveExchangeDown`` when the exchange does not answer). Raises :class:`ReconcileError` on a
    difference; returns the :class:`Reconciliation` otherwise."""
    prefix = exchange_client_id(f"{bot.order_prefix}-")
    seq = int((bot.state or {}).get("order_seq") or 0)
    rows = {
        exchange_client_id(cid): (status, exid)
        for cid, status, exid in Order.objects.filter(bot=bot).values_list(
            "client_order_id", "status", "exchange_order_id"
        )
    }
    by_exchange_id = {exid: cid for cid, (_, exid) in rows.items() if exid}
    rec = Reconciliation()
    client = broker.client
    since = dt_to_ms(max(bot.started_at or timezone.now(), timezone.now() - RECENT_TRADES))

    def classify(o: dict, *, open_: bool) -> None:
        cid = o.get("clientOrderId") or ""
        number = cid[len(prefix) :]
        if not cid.startswith(prefix) or not number.isdigit():
            rec.foreign.append(f"order not placed by this bot: {_describe(o)}")
            return
        if cid in rows:
            status = rows[cid][0]
            if open_ and status != Order.Status.OPEN:
                rec.differences.append(f"{_describe(o)} is open at the exchange but {status} here")
            elif not open_ and status in (Order.Status.CANCELED, Order.Status.REJECTED) and o.get("filled"):
                rec.differences.append(f"{_describe(o)} filled at the exchange but {status} here")
            return
        if int(number) > seq:
            rec.inflight[cid] = o
        else:
            rec.differences.append(f"{_describe(o)} is unknown to this bot")

    for market in markets:
        for o in broker.call(client.fetch_open_orders, market.symbol):
            classify(o, open_=True)
        seen: set[str] = set()
        for t in broker.call(client.fetch_my_trades, market.symbol, since):
            exid = str(t.get("order") or "")
            if not exid or exid in seen or exid in by_exchange_id:
                continue
            seen.add(exid)
            o = broker.call(client.fetch_order, exid, market.symbol)
            if (o.get("clientOrderId") or "") not in rec.inflight:
                classify(o, open_=False)
    if rec.differences:
        raise ReconcileError(
            "the exchange account disagrees with this bot (nothing was changed at the exchange): "
            + "; ".join(rec.differences)
        )
    return rec


def live_report_foreign(*, bot: Bot, rec: Reconciliation) -> None:
    """Write a ``reconcile`` event per foreign order not reported before (inside the step)."""
    for line in rec.foreign:
        if not BotEvent.objects.filter(bot=bot, rule="reconcile", reason=line).exists():
            BotEvent.objects.create(
                bot=bot, time=timezone.now(), kind=BotEvent.Kind.ERROR, rule="reconcile", outcome="unknown_order",
                reason=line,
            )  # fmt: skip


def live_check_adopted(*, bot: Bot, broker: CcxtBroker, rec: Reconciliation) -> None:
    """After the engine ran (inside the step's transaction): every in-flight order must have
    been adopted by the re-run, else :class:`ReconcileError` (the step rolls back). Then store
    the exchange's order ids on the bot's order rows (they match trades to orders next time)."""
    missing = [o for cid, o in rec.inflight.items() if cid not in broker.adopted]
    if missing:
        raise ReconcileError(
            "the exchange has orders of this bot that a step which did not commit placed and this "
            "step did not place again: " + "; ".join(_describe(o) for o in missing)
        )
    for cid, o in broker.exchange_orders.items():
        if o.get("id"):
            Order.objects.filter(bot=bot, client_order_id=cid, exchange_order_id="").update(
                exchange_order_id=str(o["id"])
            )
