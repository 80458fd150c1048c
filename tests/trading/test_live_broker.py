"""The ccxt live broker against the fake Binance (signed order endpoints): deterministic client
ids, idempotent placing after a timeout that followed the exchange's accept, precision through
ccxt, fills from fetch_order, rejections as reasons."""

from __future__ import annotations

import time
from decimal import Decimal

import pytest

from strategies.engine.orders import Order, OrderStatus, OrderType, Side
from strategies.engine.portfolio import Portfolio
from trading.brokers.ccxt_live import CcxtBroker, ClientIdError, exchange_client_id, place_order
from trading.exchanges import exchange_client
from trading.services.exchange_accounts import account_options

pytest_plugins = ["tests.fakes.fixtures"]

KEY, SECRET = "LiveKey0123456789abcdefABCDEF", "LiveSecret0123456789"


@pytest.fixture
def exch(fake_binance_private):
    fake_binance_private.add_key(KEY, SECRET)
    return fake_binance_private


def client(timeout_ms=3000):
    c = exchange_client(
        "binance",
        options=account_options("binance"),
        credentials={"apiKey": KEY, "secret": SECRET},
        timeout_ms=timeout_ms,
    )
    c.load_markets()
    return c


def posts(exch, wait_for=0):
    """POSTs of orders the fake answered (a held answer is logged when it is sent: wait for it)."""
    for _ in range(60):
        found = [r for r in exch.fake.requests if r.method == "POST" and r.path == "/api/v3/order"]
        if len(found) >= wait_for:
            break
        time.sleep(0.05)
    return found


def test_exchange_client_id():
    assert exchange_client_id("bot42-17") == "bot42x17"
    with pytest.raises(ClientIdError):
        exchange_client_id("b" * 33)


def test_place_sends_precise_decimals_and_the_client_id(exch):
    od = place_order(
        client(), symbol="BTC/USDT", side="buy", type="limit", amount=0.0012345, price=60000.126, cid="bot1x1"
    )
    (req,) = posts(exch)
    assert (req.params["quantity"], req.params["price"], req.params["newClientOrderId"]) == (
        "0.00123",
        "60000.13",
        "bot1x1",
    )
    assert od["clientOrderId"] == "bot1x1" and od["status"] == "open"


def test_timeout_after_accept_is_looked_up_not_placed_twice(exch):
    exch.accept_then_hang(1.5)
    waits = []
    od = place_order(
        client(timeout_ms=500),
        symbol="BTC/USDT",
        side="buy",
        type="market",
        amount=0.001,
        price=None,
        cid="bot7x3",
        sleep=waits.append,
    )
    assert len(exch.orders) == 1 and len(posts(exch, wait_for=1)) == 1
    assert od["clientOrderId"] == "bot7x3" and od["status"] == "closed" and od["average"] == 60000.0
    lookups = [r for r in exch.fake.requests if r.method == "GET" and r.path == "/api/v3/order"]
    assert [r.params["origClientOrderId"] for r in lookups] == ["bot7x3"]


def test_network_error_before_accept_is_placed_once_after_lookup(exch):
    c = client()
    exch.fake.fail_next(503, times=1)  # the first POST never reached the order book
    od = place_order(
        c,
        symbol="BTC/USDT",
        side="buy",
        type="market",
        amount=0.001,
        price=None,
        cid="bot7x4",
        sleep=lambda s: None,
    )
    assert od["status"] == "closed" and len(exch.orders) == 1
    assert [r.status for r in posts(exch)] == [503, 200]


def make_order(cid="bot9-1", type=OrderType.MARKET, side=Side.BUY, amount=0.002, price=None):
    return Order(client_order_id=cid, symbol="BTC/USDT", side=side, type=type, amount=amount, price=price)


def test_broker_market_order_fills_from_fetch_order(exch):
    broker = CcxtBroker(client())
    broker.bind(None, {})
    od = make_order()
    broker.submit(od, 60000.0, Portfolio(cash=1000.0))
    assert od.status == OrderStatus.OPEN and exch.orders["bot9x1"]["status"] == "FILLED"
    fills = list(broker.iter_fills("BTC/USDT", 0, [od], lambda: 0.0))
    assert [(f[0].client_order_id, f[1], f[2]) for f in fills] == [("bot9-1", 60000.0, "taker")]


def test_broker_limit_order_fills_when_the_exchange_fills_it_and_cancels(exch):
    broker = CcxtBroker(client())
    broker.bind(None, {})
    a, b = make_order("bot9-2", OrderType.LIMIT, price=59000.0), make_order("bot9-3", OrderType.LIMIT, price=58000.0)
    for od in (a, b):
        broker.submit(od, 60000.0, Portfolio(cash=1000.0))
    assert list(broker.iter_fills("BTC/USDT", 0, [a, b], lambda: 0.0)) == []
    exch.fill("bot9x2", "0.002")
    assert [(f[0].client_order_id, f[1], f[2]) for f in broker.iter_fills("BTC/USDT", 1, [a, b], lambda: 0.0)] == [
        ("bot9-2", 59000.0, "maker")
    ]
    broker.cancel(b, Portfolio(cash=1000.0))
    assert b.status == OrderStatus.CANCELED and exch.orders["bot9x3"]["status"] == "CANCELED"
    assert Decimal(exch.trades[0]["commission"]) == Decimal("0.118")


def test_broker_rejections_are_reasons(exch):
    exch.add_key(KEY, SECRET, can_trade=False)
    broker = CcxtBroker(client())
    broker.bind(None, {})
    od = make_order("bot9-4")
    broker.submit(od, 60000.0, Portfolio(cash=1000.0))
    assert od.status == OrderStatus.REJECTED
    assert od.reject_reason.startswith('exchange_rejected: binance {"code":-2015,') and KEY not in od.reject_reason
    stop = Order(
        client_order_id="bot9-5", symbol="BTC/USDT", side=Side.SELL, type=OrderType.STOP, amount=0.001, stop_price=1.0
    )
    broker.submit(stop, 60000.0, Portfolio(cash=1000.0))
    assert stop.reject_reason == "unsupported_order_type: stop_market (live)"
