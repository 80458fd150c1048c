"""The emergency stop of all of a user's bots — paper and live — with the live kill switch.

:func:`emergency_stop` is what the "Emergency stop all" page, ``POST
/api/v1/trading/emergency-stop/`` and ``manage.py bots emergency-stop`` call:

- **Paper bots** keep their behaviour (``bots_emergency_stop(mode="paper")``): stopped now, or
  with ``close_positions`` told to close their deals on their next step, then stop.
- **Live bots**, in three steps so that no exchange call runs inside a transaction:

  1. one transaction: every live bot of the user is locked in pk order; the running and
     paused ones are stopped at once (no step can place another order); their open orders
     and, with ``close_positions``, their open deals are read;
  2. no transaction, one exchange account at a time: the kill switch
     (:func:`trading.brokers.kill_switch.kill_account`) cancels the orders by client id
     (plus stray orders carrying a bot's prefix) and closes the deals at market — every
     failure is that order's result, never an exception;
  3. one transaction: the orders the exchange confirmed cancelled become ``canceled``; each
     result is a ``BotEvent`` (kind ``order``, rule ``emergency_stop``) in the bot's log; the
     bot's status message sums it up; one ``AuditLog`` entry (``emergency_stop_live``) holds
     every result.

  Deals closed at the exchange stay open in our books until the bot is reconciled with its
  account (the next start's reconciliation adopts the close fills by their client id,
  ``m7b<bot>xk<trade>``); the status message says so.

Which account a live bot trades on: ``Bot.exchange_account`` when the model has it; otherwise
the owner's only exchange account on the bot's exchange (none, or several: that bot's orders
fail with ``no_account: ...`` — nothing is guessed).
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Callable
from dataclasses import dataclass, field

from django.db import transaction
from django.utils import timezone

from accounts.models import AuditLog
from market7 import secretbox
from trading.brokers.kill_switch import KillResult, OrderToCancel, PositionToClose, kill_account
from trading.models import Bot, BotEvent, ExchangeAccount, Order, Trade
from trading.services.bot_closing import bots_emergency_stop
from trading.services.bot_validation import OPERATE_PERM, _is_system, _require
from trading.services.bots import _status_changed
from trading.services.exchange_accounts import account_client

ACTIVE = (Bot.Status.RUNNING, Bot.Status.PAUSED)


@dataclass
class EmergencyReport:
    """What an emergency stop did. ``results``: one dict per live order / close
    (:class:`trading.brokers.kill_switch.KillResult` fields plus ``account_id``)."""

    close_positions: bool
    paper_bot_ids: list[int] = field(default_factory=list)
    live_bot_ids: list[int] = field(default_factory=list)
    results: list[dict] = field(default_factory=list)

    @property
    def failed(self) -> int:
        return sum(1 for r in self.results if r["outcome"] == "failed")

    def as_dict(self) -> dict:
        return {
            "close_positions": self.close_positions,
            "paper_bots": self.paper_bot_ids,
            "live_bots": self.live_bot_ids,
            "results": self.results,
            "failed": self.failed,
        }


@dataclass
class _Work:
    orders: list[OrderToCancel] = field(default_factory=list)
    positions: list[PositionToClose] = field(default_factory=list)
    bots: dict[int, tuple[str, list[str]]] = field(default_factory=dict)


def _account_of(bot: Bot, accounts: list[ExchangeAccount]) -> ExchangeAccount | str:
    """The bot's exchange account, or a ``no_account: ...`` reason (module doc)."""
    account_id = getattr(bot, "exchange_account_id", None)
    mine = [a for a in accounts if a.owner_id == bot.owner_id]
    if account_id is not None:
        return next((a for a in mine if a.pk == account_id), "no_account: the bot's exchange account is gone")
    codes = {m.exchange.code for m in bot.markets.all()}
    found = [a for a in mine if a.exchange in codes]
    if len(found) == 1:
        return found[0]
    which = ", ".join(sorted(codes)) or "?"
    if not found:
        return f"no_account: no exchange account on {which}"
    return f"no_account: several exchange accounts on {which}; link the bot to one"


def _live_stop(user, close_positions: bool) -> tuple[list[int], dict, list[dict]]:
    """Step 1 (one transaction). Returns ``(bot ids concerned, {account: _Work}, failures)``."""
    qs = Bot.objects.all() if _is_system(user) else Bot.objects.for_user(user)
    now = timezone.now()
    with transaction.atomic():
        bots = list(
            qs.filter(mode=Bot.Mode.LIVE)
            .select_for_update(of=("self",))
            .order_by("pk")
            .prefetch_related("markets__exchange")
        )
        open_orders = list(
            Order.objects.filter(bot__in=bots, status=Order.Status.OPEN).select_related("market").order_by("pk")
        )
        trades = (
            list(Trade.objects.filter(bot__in=bots, status=Trade.Status.OPEN).select_related("market").order_by("pk"))
            if close_positions
            else []
        )
        busy = {o.bot_id for o in open_orders} | {t.bot_id for t in trades}
        concerned = [b for b in bots if b.status in ACTIVE or b.pk in busy]
        for bot in concerned:
            if bot.status in ACTIVE:
                bot.status, bot.stopped_at = Bot.Status.STOPPED, now
                bot.status_message = "emergency stop: cancelling open orders at the exchange"
                _status_changed(user, bot, "bot_emergency_stop", bot.status_message)
        owners = {b.owner_id for b in concerned}
        accounts = list(ExchangeAccount.objects.filter(owner_id__in=owners).order_by("pk"))
    work: dict[ExchangeAccount, _Work] = defaultdict(_Work)
    failures: list[dict] = []
    by_bot = {b.pk: b for b in concerned}
    for bot in concerned:
        account = _account_of(bot, accounts)
        mine_o = [o for o in open_orders if o.bot_id == bot.pk]
        mine_t = [t for t in trades if t.bot_id == bot.pk]
        if isinstance(account, str):
            failures += [
                KillResult(bot.pk, "cancel", o.market.symbol, o.client_order_id, "failed", account, o.pk).as_dict()
                for o in mine_o
            ] + [
                KillResult(bot.pk, "close", t.market.symbol, "", "failed", account, trade_id=t.pk, deal_id=t.deal_id).as_dict()
                for t in mine_t
            ]  # fmt: skip
            continue
        w = work[account]
        w.bots[bot.pk] = (bot.order_prefix, sorted({m.symbol for m in by_bot[bot.pk].markets.all()}))
        w.orders += [OrderToCancel(bot.pk, o.market.symbol, o.client_order_id, o.pk) for o in mine_o]
        w.positions += [
            PositionToClose(bot.pk, t.pk, t.deal_id, t.market.symbol, t.side, t.amount) for t in mine_t if t.amount > 0
        ]
    return [b.pk for b in concerned], dict(work), failures


def _run(account: ExchangeAccount, w: _Work, client_for: Callable) -> list[dict]:
    """Step 2 for one account (no transaction); never raises."""
    try:
        client = client_for(account)
    except (secretbox.SecretUndecryptable, ValueError) as exc:
        why = f"no_client: {exc}"
        out = [KillResult(o.bot_id, "cancel", o.symbol, o.client_order_id, "failed", why, o.order_id) for o in w.orders]
        out += [KillResult(p.bot_id, "close", p.symbol, "", "failed", why, trade_id=p.trade_id) for p in w.positions]
    else:
        out = kill_account(client, orders=w.orders, positions=w.positions, bots=w.bots)
    return [{**r.as_dict(), "account_id": account.pk} for r in out]


def _summary(rows: list[dict]) -> str:
    count = defaultdict(int)
    for r in rows:
        count[(r["action"], r["outcome"])] += 1
    parts = [f"{n} {action} {outcome}" for (action, outcome), n in sorted(count.items())]
    text = "emergency stop: " + (", ".join(parts) if parts else "nothing open at the exchange")
    if any(r["action"] == "close" and r["outcome"] in ("closed", "placed") for r in rows):
        text += "; deals closed at the exchange stay open here until the bot is reconciled"
    if any(r["outcome"] == "failed" for r in rows):
        text += "; some failed — check the exchange and press emergency stop again"
    return text


@transaction.atomic
def _record(user, bot_ids: list[int], results: list[dict], close_positions: bool) -> None:
    """Step 3 (one transaction): orders, bot log, status messages, the audit entry."""
    now = timezone.now()
    canceled = [
        r["order_id"] for r in results if r["action"] == "cancel" and r["outcome"] == "canceled" and r["order_id"]
    ]
    Order.objects.filter(pk__in=canceled, status=Order.Status.OPEN).update(status=Order.Status.CANCELED, updated_at=now)
    BotEvent.objects.bulk_create(
        BotEvent(
            bot_id=r["bot_id"],
            time=now,
            kind=BotEvent.Kind.ORDER,
            rule="emergency_stop",
            outcome=r["outcome"],
            reason=f"{r['action']} {r['client_order_id'] or r['deal_id']}: {r['outcome']}"
            + (f" — {r['reason']}" if r["reason"] else ""),
            symbol=r["symbol"],
            payload=r,
        )  # fmt: skip
        for r in results
    )
    for bot in Bot.objects.filter(pk__in=bot_ids).select_for_update().order_by("pk"):
        mine = [r for r in results if r["bot_id"] == bot.pk]
        bot.status_message = _summary(mine)
        _status_changed(user, bot, "bot_emergency_stop", bot.status_message)
    AuditLog.objects.create(
        user=None if _is_system(user) else user,
        action="emergency_stop_live",
        object_type="user",
        object_id="" if _is_system(user) else str(user.pk),
        message=_summary(results) + f" ({len(bot_ids)} live bot{'s' if len(bot_ids) != 1 else ''})",
        payload={"close_positions": close_positions, "bots": bot_ids, "results": results},
    )


def emergency_stop(*, user, close_positions: bool = False, client_for: Callable = account_client) -> EmergencyReport:
    """Stop every bot of ``user`` (:data:`~trading.services.bot_validation.SYSTEM`: every
    user's) now; live bots' open orders are cancelled at the exchange and, with
    ``close_positions``, their deals closed at market (module doc). ``client_for(account)``
    builds the signed ccxt client (tests point it at a fake exchange). Raises
    ``BotPermissionDenied`` (nothing done) for a user who may not operate bots."""
    _require(user, OPERATE_PERM, "stop bots")
    report = EmergencyReport(close_positions=bool(close_positions))
    report.paper_bot_ids = bots_emergency_stop(user=user, close_positions=close_positions, mode=Bot.Mode.PAPER)
    bot_ids, work, failures = _live_stop(user, bool(close_positions))
    report.live_bot_ids = bot_ids
    if not bot_ids:
        return report
    results = list(failures)
    for account in sorted(work, key=lambda a: a.pk):
        results += _run(account, work[account], client_for)
    report.results = results
    _record(user, bot_ids, results, bool(close_positions))
    return report
