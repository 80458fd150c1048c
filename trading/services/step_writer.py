"""Writes one bot step's engine result into the database, and its websocket events.

:class:`StepWriter` turns an ``EngineResult`` (float64, the pure core's) into ``Decimal`` rows
rounded to each market's precision (``trading.brokers``' helpers): trades (upsert by
``(bot, deal_id)``), orders (upsert by the unique ``client_order_id``, so a re-run duplicates
nothing), fills, the decision log (``BotEvent``), paper balances and equity snapshots. It runs
inside the step's transaction (``trading.services.runner``) and publishes the step's events
with ``market7.events.publish`` (sent on commit). Event schema: ``docs/bots.md``.
"""

from __future__ import annotations

from decimal import Decimal
from typing import Any

import numpy as np
from django.db.models import Sum

from market7.events import publish
from market7.timeframes import ms_to_dt
from trading.brokers import amount_dec, avg_price_dec, money_dec, price_dec
from trading.models import Bot, BotEvent, EquitySnapshot, Fill, Market, Order, PaperBalance, Trade
from trading.selectors.bots import trade_data

MAX_EVENTS_PER_KIND = 50  # websocket pushes per step and kind (a catch-up step can fill a lot)
ROUTINE_CANCELS = frozenset({"replaced", "deal_closed"})

_ORDER_STATUS = {
    "new": Order.Status.OPEN,
    "open": Order.Status.OPEN,
    "partially_filled": Order.Status.OPEN,
    "filled": Order.Status.CLOSED,
    "canceled": Order.Status.CANCELED,
    "rejected": Order.Status.REJECTED,
}


def _field_differs(row, name: str, value) -> bool:
    """Whether ``row.<name>`` differs from ``value`` (a foreign key by id: no query)."""
    field = row._meta.get_field(name)
    if field.is_relation:
        return getattr(row, field.attname) != (value.pk if value is not None else None)
    return getattr(row, name) != value


class StepWriter:
    """Writes one step's engine result as Decimal rows (inside the step's transaction).

    ``StepWriter(bot, markets={symbol: Market}, specs={symbol: MarketSpec}, result, feed)``; call
    ``write_trades``, ``write_orders``, ``write_fills``, ``write_events([])``,
    ``write_balances_and_equity`` in that order, then ``publish(status_changed)``.
    """

    def __init__(self, bot: Bot, markets: dict[str, Market], specs: dict, result, feed) -> None:
        self.bot, self.markets, self.specs, self.result = bot, markets, specs, result
        # last close of each market the step saw: {symbol: (open time ms, close)}
        self.price_points: dict[str, tuple[int, float]] = {}
        for symbol in markets:
            c = feed.candles(symbol)
            if len(c):
                self.price_points[symbol] = (int(c.time[-1]), float(c.close[-1]))
        self.trades: dict[str, Trade] = {}
        self.orders: dict[str, Order] = {}
        self.opened: int = 0
        self.placed: int = 0  # orders created (not updated) by this step: market7_orders_total
        self.new_trades: list[Trade] = []
        self.closed_trades: list[Trade] = []
        self.fills: list[tuple[Fill, Order]] = []
        self.realized_delta = Decimal("0")
        self.max_safety_orders = int((bot.params or {}).get("max_safety_orders") or 0)

    # trades first, so orders can point at them
    def write_trades(self) -> None:
        bot, specs = self.bot, self.specs
        open_deals = self.result.open_deals
        # the open deals' rows in one query; a row whose values did not change is not written
        # (most steps fill nothing, and update_or_create cost a locking SELECT and an UPDATE per
        # open deal per step)
        stored = (
            {t.deal_id: t for t in Trade.objects.filter(bot=bot, deal_id__in=[d["deal_id"] for d in open_deals])}
            if open_deals
            else {}
        )
        for deal in open_deals:
            spec = specs[deal["symbol"]]
            values = {
                "market": self.markets[deal["symbol"]],
                "side": deal["side"],
                "status": Trade.Status.OPEN,
                "opened_at": ms_to_dt(int(deal["opened_at"])),
                "closed_at": None,
                "avg_entry": avg_price_dec(deal["entry_price"]),
                "amount": amount_dec(spec, abs(deal["amount"])),
                "cost": money_dec(deal["cost"]),
                "fees": money_dec(deal["fees"]),
                "take_profit_price": price_dec(spec, deal.get("take_profit_price")),
                "stop_loss_price": price_dec(spec, deal.get("stop_loss_price")),
                "safety_orders_filled": int(deal.get("safety_orders_filled") or 0),
                "safety_orders_max": int(deal.get("max_safety_orders") or 0) or self.max_safety_orders,
                "tags": list(deal.get("tags") or []),
                "info": json_safe({k: deal[k] for k in ("ladder", "next_so_price") if k in deal}),
                **self._perpetual_open(deal),
            }
            trade = stored.get(deal["deal_id"])
            if trade is None:
                trade = Trade.objects.create(bot=bot, deal_id=deal["deal_id"], **values)
                self.new_trades.append(trade)
            else:
                changed = [name for name, value in values.items() if _field_differs(trade, name, value)]
                if changed:
                    for name in changed:
                        setattr(trade, name, values[name])
                    trade.save(update_fields=[*changed, "updated_at"])
            self.trades[trade.deal_id] = trade
        for ct in self.result.trades:
            spec = specs[ct.symbol]
            existing = (
                Trade.objects.filter(bot=bot, deal_id=ct.deal_id)
                .only("safety_orders_max", "info", "take_profit_price")
                .first()
            )
            values = {
                "market": self.markets[ct.symbol],
                "side": ct.side,
                "status": Trade.Status.CLOSED,
                "opened_at": ms_to_dt(int(ct.opened_at)),
                "closed_at": ms_to_dt(int(ct.closed_at)),
                "avg_entry": avg_price_dec(ct.entry_price),
                "amount": amount_dec(spec, ct.amount),
                "cost": money_dec(ct.cost),
                "fees": money_dec(ct.fees),
                "realized_pnl": money_dec(ct.pnl),
                "exit_price": avg_price_dec(ct.exit_price),
                "exit_reason": ct.exit_reason,
                "safety_orders_filled": int(ct.safety_orders_filled),
                # a deal opened and closed in one step has no open row to inherit it from
                "safety_orders_max": (existing.safety_orders_max if existing else 0) or self.max_safety_orders,
                "tags": list(ct.tags or []),
                **self._perpetual_closed(ct, existing),
            }
            trade, created = Trade.objects.update_or_create(bot=bot, deal_id=ct.deal_id, defaults=values)
            if existing is None:
                self.new_trades.append(trade)
            self.trades[trade.deal_id] = trade
            self.closed_trades.append(trade)
            self.realized_delta += trade.realized_pnl
        self.opened = len(self.new_trades)

    def _perpetual_open(self, deal: dict) -> dict[str, Any]:
        """A perpetual bot's open-deal fields: leverage, margin (cost / leverage), the engine's
        last liquidation price and funding paid (from the state's deal, as the backtest report
        reads them); the minimum distance to liquidation so far in ``info``. Spot: {}."""
        lev = self.bot.leverage
        if lev is None:
            return {}
        d = self.result.state.portfolio.get("deals", {}).get(deal["deal_id"], {})
        lp = float(d.get("liquidation_price") or 0.0)
        info = {k: deal[k] for k in ("ladder", "next_so_price") if k in deal}
        info["min_liquidation_distance_pct"] = float(d.get("min_liq_distance_pct", 100.0))
        return {
            "leverage": lev,
            "margin": money_dec(float(deal["cost"]) / lev),
            "liquidation_price": price_dec(self.specs[deal["symbol"]], lp) if lp > 0 else None,
            "funding_paid": money_dec(float(d.get("funding", 0.0))),
            "info": json_safe(info),
        }

    def _perpetual_closed(self, ct, existing: Trade | None) -> dict[str, Any]:
        """A perpetual bot's closed-trade fields (the engine's ``ClosedTrade``); spot: {}."""
        if self.bot.leverage is None:
            return {}
        info = dict(existing.info) if existing is not None else {}
        info["min_liquidation_distance_pct"] = float(ct.min_liquidation_distance_pct)
        lp = float(ct.liquidation_price)
        return {
            "leverage": self.bot.leverage,
            "margin": money_dec(ct.margin),
            "liquidation_price": price_dec(self.specs[ct.symbol], lp) if lp > 0 else None,
            "funding_paid": money_dec(ct.funding),
            "info": json_safe(info),
        }

    def write_orders(self) -> None:
        bot = self.bot
        for od in self.result.orders:
            spec = self.specs[od.symbol]
            trade = self.trades.get(od.deal_id) if od.deal_id else None
            if od.deal_id and trade is None:
                trade = Trade.objects.filter(bot=bot, deal_id=od.deal_id).first()
            values = {
                "bot": bot,
                "market": self.markets[od.symbol],
                "trade": trade,
                "side": od.side,
                "type": od.type,
                "price": price_dec(spec, od.price),
                "stop_price": price_dec(spec, od.stop_price),
                "amount": amount_dec(spec, od.amount),
                "filled": amount_dec(spec, od.filled),
                "average": price_dec(spec, od.average),
                "status": _ORDER_STATUS.get(od.status, Order.Status.OPEN),
                "tag": (od.tag or "")[:64],
                "deal_id": od.deal_id or "",
                "reject_reason": (od.reject_reason or od.cancel_reason or "")[:300],
                "placed_at": ms_to_dt(int(od.created_at)),
            }
            order, created = Order.objects.update_or_create(client_order_id=od.client_order_id, defaults=values)
            self.placed += created
            self.orders[od.client_order_id] = order

    def write_fills(self) -> None:
        seqs: dict[int, int] = {}
        rows = []
        for f in self.result.fills:
            order = self.orders.get(f.client_order_id) or Order.objects.get(client_order_id=f.client_order_id)
            if order.pk not in seqs:
                seqs[order.pk] = Fill.objects.filter(order=order).count()
            spec = self.specs[f.symbol]
            fill = Fill(
                order=order,
                seq=seqs[order.pk],
                price=price_dec(spec, f.price),
                amount=amount_dec(spec, f.amount),
                fee=money_dec(f.fee),
                fee_currency=spec.quote,
                time=ms_to_dt(int(f.time)),
            )
            seqs[order.pk] += 1
            rows.append(fill)
            self.fills.append((fill, order))
        if rows:
            Fill.objects.bulk_create(rows)

    def write_events(self, extra: list[BotEvent]) -> None:
        bot = self.bot
        events = list(extra)
        for d in self.result.decisions:
            events.append(
                BotEvent(
                    bot=bot,
                    time=ms_to_dt(int(d.time)),
                    kind=BotEvent.Kind.DECISION,
                    rule=d.rule[:64],
                    outcome=d.outcome[:16],
                    reason=d.reason,
                    symbol=d.symbol,
                    payload=json_safe(d.payload),
                )  # fmt: skip
            )
        for od in self.result.orders:
            # Rejections always; cancels only when not routine (a TP replaced by a new one, the
            # rest of a deal's orders canceled when it closes).
            if od.status == "rejected" or (od.status == "canceled" and od.cancel_reason not in ROUTINE_CANCELS):
                events.append(
                    BotEvent(
                        bot=bot,
                        time=ms_to_dt(int(od.updated_at or od.created_at)),
                        kind=BotEvent.Kind.ORDER,
                        rule=od.tag or od.type,
                        outcome=od.status,
                        reason=f"{od.side} {od.symbol} {od.client_order_id} {od.status}: {od.reject_reason or od.cancel_reason}",
                        symbol=od.symbol,
                        payload={"client_order_id": od.client_order_id},
                    )  # fmt: skip
                )
        for fill, order in self.fills:
            events.append(
                BotEvent(
                    bot=bot,
                    time=fill.time,
                    kind=BotEvent.Kind.FILL,
                    rule=order.tag or order.type,
                    outcome="filled",
                    reason=f"{order.side} {fill.amount} {order.market.symbol} @ {fill.price} ({order.tag or order.type})",
                    symbol=order.market.symbol,
                    payload={"client_order_id": order.client_order_id, "fee": str(fill.fee)},
                )  # fmt: skip
            )
        for trade in self.new_trades:
            events.append(
                BotEvent(
                    bot=bot,
                    time=trade.opened_at,
                    kind=BotEvent.Kind.TRADE_OPENED,
                    rule="deal",
                    outcome="opened",
                    reason=f"opened {trade.side} {trade.market.symbol} deal {trade.deal_id} at {trade.avg_entry}",
                    symbol=trade.market.symbol,
                    payload={"deal_id": trade.deal_id},
                )  # fmt: skip
            )
        for trade in self.closed_trades:
            events.append(
                BotEvent(
                    bot=bot,
                    time=trade.closed_at,
                    kind=BotEvent.Kind.TRADE_CLOSED,
                    rule=trade.exit_reason or "deal",
                    outcome="closed",
                    reason=f"closed {trade.market.symbol} deal {trade.deal_id} ({trade.exit_reason}): P&L {trade.realized_pnl} {bot.quote}",
                    symbol=trade.market.symbol,
                    payload={"deal_id": trade.deal_id, "pnl": str(trade.realized_pnl)},
                )  # fmt: skip
            )
        if events:
            BotEvent.objects.bulk_create(events)

    def write_balances_and_equity(self) -> None:
        bot, result = self.bot, self.result
        realized_before = bot.realized_pnl
        bot.realized_pnl = realized_before + self.realized_delta
        times, equity = result.equity_time, result.equity
        if len(equity):
            bot.equity = money_dec(float(equity[-1]))
            # realized P&L at each equity point: closed deals whose exit filled before its close
            closed = sorted((int(ct.closed_at), money_dec(ct.pnl)) for ct in result.trades)
            closed_t = np.array([c[0] for c in closed], dtype=np.int64)
            cum = [realized_before]
            for _, pnl in closed:
                cum.append(cum[-1] + pnl)
            idx = np.searchsorted(closed_t, times, side="left") if len(closed) else np.zeros(len(times), dtype=np.int64)
            snaps = []
            for t, e, k in zip(times.tolist(), equity.tolist(), idx.tolist(), strict=True):
                eq = money_dec(e)
                snaps.append(
                    EquitySnapshot(
                        bot=bot,
                        time=ms_to_dt(t),
                        equity=eq,
                        realized_pnl=cum[k],
                        unrealized_pnl=eq - bot.capital - cum[k],
                    )
                )
            EquitySnapshot.objects.bulk_create(snaps, ignore_conflicts=True)
        equity_now = bot.equity if bot.equity is not None else bot.capital
        bot.unrealized_pnl = equity_now - bot.capital - bot.realized_pnl

        pf = result.state.portfolio
        reserved = sum(float(o.get("reserved") or 0.0) for o in result.state.open_orders)
        cash = float(pf.get("cash", float(bot.capital)))
        positions = pf.get("positions", {})
        prices = self.last_closes()
        realized_by_market = dict(
            Trade.objects.filter(bot=bot, status=Trade.Status.CLOSED)
            .values_list("market_id")
            .annotate(s=Sum("realized_pnl"))
        )
        deals_by_symbol = {d["symbol"]: d for d in result.open_deals}
        rows = [
            PaperBalance(
                bot=bot,
                asset=bot.quote,
                free=money_dec(cash - reserved),
                used=money_dec(reserved),
                equity=equity_now,
                realized_pnl=bot.realized_pnl,
                unrealized_pnl=bot.unrealized_pnl,
            )  # fmt: skip
        ]
        for symbol, market in self.markets.items():
            amount = float(positions.get(symbol, {}).get("amount", 0.0))
            price = prices.get(symbol)
            value = money_dec(amount * price) if price is not None else Decimal("0")
            deal = deals_by_symbol.get(symbol)
            unreal = (
                money_dec(amount * price - deal["cost"] - deal["fees"])
                if (deal and price is not None and amount > 0)
                else Decimal("0")
            )
            rows.append(
                PaperBalance(
                    bot=bot,
                    asset=market.base,
                    free=amount_dec(self.specs[symbol], amount),
                    used=Decimal("0"),
                    equity=value,
                    realized_pnl=realized_by_market.get(market.pk) or Decimal("0"),
                    unrealized_pnl=unreal,
                )  # fmt: skip
            )
        PaperBalance.objects.bulk_create(
            rows, update_conflicts=True, unique_fields=["bot", "asset"],
            update_fields=["free", "used", "equity", "realized_pnl", "unrealized_pnl", "updated_at"],
        )  # fmt: skip

    def last_closes(self) -> dict[str, float]:
        return {s: close for s, (_, close) in self.price_points.items()}

    def publish(self, status_changed: bool) -> None:
        """Websocket events of this step (sent on commit). Schema: docs/bots.md."""
        from trading.selectors.bots import bot_today_pnl
        from trading.services.bots import bot_status_data

        bot, owner = self.bot, self.bot.owner_id
        for fill, order in self.fills[-MAX_EVENTS_PER_KIND:]:
            publish(owner, "order_filled", {
                "bot_id": bot.pk, "order_id": order.pk, "client_order_id": order.client_order_id, "symbol": order.market.symbol,
                "side": order.side, "type": order.type, "tag": order.tag, "deal_id": order.deal_id, "price": _s(fill.price),
                "amount": _s(fill.amount), "fee": _s(fill.fee), "fee_currency": fill.fee_currency, "time": fill.time.isoformat(),
            })  # fmt: skip
        closed_ids = {t.deal_id for t in self.closed_trades}
        for trade in self.new_trades[-MAX_EVENTS_PER_KIND:]:
            data = trade_data(trade)
            if trade.deal_id in closed_ids:  # opened and closed in one step: announce the opening as it was
                data.update(
                    {
                        "status": "open",
                        "closed_at": None,
                        "exit_price": None,
                        "exit_reason": "",
                        "realized_pnl": None,
                        "pnl_pct": None,
                    }
                )
            publish(owner, "trade_opened", data)
        for trade in self.closed_trades[-MAX_EVENTS_PER_KIND:]:
            publish(owner, "trade_closed", trade_data(trade))
        market_time = bot.last_candle_at
        for symbol, (t, close) in self.price_points.items():
            publish(
                owner,
                "price",
                {
                    "bot_id": bot.pk,
                    "symbol": symbol,
                    "price": _s(Decimal(repr(close))),
                    "time": ms_to_dt(t).isoformat(),
                    "time_ms": t,
                },
            )
        publish(owner, "pnl", {
            "bot_id": bot.pk, "equity": _s(bot.equity), "realized": _s(bot.realized_pnl), "unrealized": _s(bot.unrealized_pnl),
            "today": _s(bot_today_pnl(bot)), "capital": _s(bot.capital), "currency": bot.quote,
            "time": market_time.isoformat() if market_time else None, "time_ms": bot.last_candle_ms,
            "open_trades": len(self.result.open_deals),
        })  # fmt: skip
        if status_changed:
            publish(owner, "bot_status", bot_status_data(bot))


def _s(value: Decimal | None) -> str | None:
    if value is None:
        return None
    text = format(value.normalize(), "f")
    return "0" if text == "-0" else text


def json_safe(value: Any) -> Any:
    """``value`` with numpy scalars as Python numbers, non-finite floats as None and dict keys
    as strings, so it can be stored in a JSONField."""
    if isinstance(value, dict):
        return {str(k): json_safe(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [json_safe(v) for v in value]
    if isinstance(value, np.generic):
        return value.item()
    if isinstance(value, float) and not np.isfinite(value):
        return None
    return value
