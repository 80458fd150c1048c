"""Fixtures of the kill-switch tests (``pytest_plugins = ["tests.trading.kill_switch_world"]``):
a user's live bot with orders at the fake Binance, a paper bot, another user's live bot."""

from __future__ import annotations

from decimal import Decimal

import pytest
from cryptography.fernet import Fernet

from tests.trading.conftest import T0, make_bot
from trading.exchanges import exchange_client
from trading.models import Order, Trade
from trading.services import exchange_accounts as accounts

KEY, SECRET = "KillKey0123456789abcdefABCDEF", "KillSecret0123456789xyz"
OTHER_KEY, OTHER_SECRET = "OtherKey0123456789abcdefABCD", "OtherSecret0123456789xyz"


@pytest.fixture(autouse=True)
def secrets_keys(settings):
    settings.MARKET7_SECRETS_KEYS = [Fernet.generate_key().decode()]


@pytest.fixture
def exch(fake_binance_private):
    fake_binance_private.add_key(KEY, SECRET)
    fake_binance_private.add_key(OTHER_KEY, OTHER_SECRET)
    return fake_binance_private


def place(cid: str, price: str = "50000", key=KEY, secret=SECRET) -> None:
    c = exchange_client(
        "binance", options=accounts.account_options("binance"), credentials={"apiKey": key, "secret": secret}
    )
    c.load_markets()
    c.create_order("BTC/USDT", "limit", "buy", "0.001", price, {"clientOrderId": cid})


def db_order(bot, market, seq: int, status=Order.Status.OPEN) -> Order:
    return Order.objects.create(
        bot=bot, market=market, client_order_id=f"{bot.order_prefix}-{seq}", side="buy", type="limit",
        price=Decimal("50000"), amount=Decimal("0.001"), status=status, placed_at=T0,
    )  # fmt: skip


@pytest.fixture
def world(user, other_user, market, exch, no_kick):
    """alice: a running live bot with 3 open orders (1 cancels, 2 fails at the exchange, 3 was
    filled there) + a stray order at the exchange + one open deal; a running paper bot.
    bob: a running live bot with one open order."""
    accounts.account_create(user=user, exchange="binance", label="main", api_key=KEY, secret=SECRET)
    accounts.account_create(user=other_user, exchange="binance", label="bob", api_key=OTHER_KEY, secret=OTHER_SECRET)
    live = make_bot(user, market, name="live", mode="live", feed="live", status="running")
    paper = make_bot(user, market, name="paper", status="running")
    bobs = make_bot(other_user, market, name="bobs", mode="live", feed="live", status="running")
    p = live.order_prefix
    for seq in (1, 2, 3):
        db_order(live, market, seq)
        place(f"{p}x{seq}")
    place(f"{p}x4")  # accepted at the exchange, never recorded (a crash before our commit)
    place("manual1")  # the user's own order on the same account: not ours, not touched
    exch.fail_cancel(f"{p}x2", 503, {"code": -1001, "msg": "Internal error; unable to process your request."})
    exch.fill(f"{p}x3", "0.001")
    db_order(bobs, market, 1)
    place(f"{bobs.order_prefix}x1", key=OTHER_KEY, secret=OTHER_SECRET)
    trade = Trade.objects.create(
        bot=live, market=market, deal_id=f"{p}-d1", opened_at=T0, avg_entry=Decimal("50000"),
        amount=Decimal("0.002"), cost=Decimal("100"),
    )  # fmt: skip
    # the deal bought 0.002 BTC; a fee in BTC and a manual sale left 0.0015 free
    exch.balances = {"USDT": ("1000.00000000", "0.00000000"), "BTC": ("0.00150000", "0.00000000")}
    return {"live": live, "paper": paper, "bobs": bobs, "trade": trade, "exch": exch}
