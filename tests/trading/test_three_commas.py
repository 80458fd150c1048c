"""The 3Commas adapter against a fake custom-signal receiver on loopback: the exact JSON
shapes, the token encrypted at rest and never stored in a payload or shown, idempotency by
our deal id (a retried start never starts twice), failures classified."""

from __future__ import annotations

import logging
from decimal import Decimal

import pytest
from cryptography.fernet import Fernet
from django.db import connection as db

from accounts.models import AuditLog
from strategies.engine.orders import Order
from tests.fakes.three_commas import FakeThreeCommas
from trading.brokers import three_commas as tc
from trading.models import ThreeCommasConnection, ThreeCommasSignal
from trading.services import three_commas as svc
from trading.services.bot_validation import SYSTEM

TOKEN = "3cTokenSecret-a1b2c3d4e5f6-XYZ9"


@pytest.fixture(autouse=True)
def secrets_keys(settings):
    settings.MARKET7_SECRETS_KEYS = [Fernet.generate_key().decode()]


@pytest.fixture
def receiver(settings):
    fake = FakeThreeCommas().start()
    settings.MARKET7_THREECOMMAS_URL = fake.url
    settings.MARKET7_THREECOMMAS_TIMEOUT_S = 0.5
    yield fake
    fake.stop()


@pytest.fixture
def conn(user):
    return svc.three_commas_connection_create(user=user, label="dca", bot_id=4242, email_token=TOKEN)


START = tc.Decision(tc.START, "m7b1-d1", "BTC/USDT")


def msg(**extra) -> dict:
    return {"message_type": "bot", "bot_id": 4242, "email_token": TOKEN, "delay_seconds": 0, "pair": "USDT_BTC"} | extra


def test_message_shapes():
    kw = {"bot_id": 7, "email_token": "t", "delay_seconds": 3}
    base = {"message_type": "bot", "bot_id": 7, "email_token": "t", "delay_seconds": 3, "pair": "USDT_ETH"}
    assert tc.signal_message(tc.Decision(tc.START, "d", "ETH/USDT"), **kw) == base
    assert tc.signal_message(tc.Decision(tc.ADD_FUNDS, "d", "ETH/USDT", 2, Decimal("25.50")), **kw) == base | {
        "action": "add_funds_in_quote",
        "volume": "25.5",
    }
    assert tc.signal_message(tc.Decision(tc.CLOSE, "d", "ETH/USDT:USDT"), **kw) == base | {
        "action": "close_at_market_price"
    }
    with pytest.raises(ValueError):
        tc.signal_message(tc.Decision(tc.ADD_FUNDS, "d", "ETH/USDT", 1, None), **kw)
    assert tc.redacted(base) == base | {"email_token": "…"}


def test_engine_orders_map_to_decisions():
    def od(**kw):
        return Order(client_order_id="m7b1-1", symbol="BTC/USDT", side="buy", type="market", amount=0.001, **kw)

    assert tc.decision_for_order(od(deal_id="m7b1-d1", tag="base_order"), 60000.0) == START
    assert tc.decision_for_order(od(deal_id="m7b1-d1", so_index=2), 59000.0) == tc.Decision(
        tc.ADD_FUNDS, "m7b1-d1", "BTC/USDT", 2, Decimal("59.00")
    )
    assert tc.decision_for_order(od(deal_id="m7b1-d1", reduce_only=True), 61000.0) == tc.Decision(
        tc.CLOSE, "m7b1-d1", "BTC/USDT"
    )
    assert tc.decision_for_order(od(), 60000.0) is None


def test_connection_token_encrypted_at_rest(user, conn):
    with db.cursor() as cur:
        cur.execute(f"SELECT * FROM {ThreeCommasConnection._meta.db_table} WHERE id = %s", [conn.pk])
        row = " ".join(str(v) for v in cur.fetchone())
    assert TOKEN not in row and conn.token_hint == "-XYZ9"[-4:] and conn.email_token() == TOKEN
    entry = AuditLog.objects.get(action="threecommas_connection_create")
    assert entry.message == "dca (bot 4242, token …XYZ9)"


def test_connection_validation_and_roles(user, viewer):
    with pytest.raises(svc.ThreeCommasValidationError) as e:
        svc.three_commas_connection_create(user=user, label="", bot_id="x", email_token="a b")
    assert e.value.errors == {
        "label": "required, at most 64 characters",
        "bot_id": "the 3Commas bot id, a positive whole number",
        "email_token": "required: the bot's email_token, one word",
    }
    with pytest.raises(svc.ThreeCommasPermissionDenied):
        svc.three_commas_connection_create(user=viewer, label="v", bot_id=1, email_token=TOKEN)
    assert ThreeCommasConnection.objects.count() == 0


def test_start_is_sent_once_and_a_retry_never_starts_twice(user, conn, receiver, caplog):
    with caplog.at_level(logging.DEBUG):
        sig = svc.three_commas_send(user=user, connection=conn, decision=START)
        again = svc.three_commas_send(user=user, connection=conn, decision=START)
    assert receiver.received == [msg()]
    assert (sig.state, sig.http_status, sig.attempts, sig.pk) == ("sent", 200, 1, again.pk)
    assert sig.payload == msg() | {"email_token": "…"} and sig.sent_at is not None
    assert TOKEN not in caplog.text and ThreeCommasSignal.objects.count() == 1


def test_add_funds_steps_and_close_are_separate_decisions(user, conn, receiver):
    for d in (
        START,
        tc.Decision(tc.ADD_FUNDS, "m7b1-d1", "BTC/USDT", 1, Decimal("20")),
        tc.Decision(tc.ADD_FUNDS, "m7b1-d1", "BTC/USDT", 2, Decimal("40")),
        tc.Decision(tc.ADD_FUNDS, "m7b1-d1", "BTC/USDT", 1, Decimal("20")),  # retried step 1
        tc.Decision(tc.CLOSE, "m7b1-d1", "BTC/USDT"),
    ):
        svc.three_commas_send(user=SYSTEM, connection=conn.pk, decision=d)
    assert receiver.received == [
        msg(),
        msg(action="add_funds_in_quote", volume="20"),
        msg(action="add_funds_in_quote", volume="40"),
        msg(action="close_at_market_price"),
    ]


def test_a_5xx_is_unknown_a_start_is_not_resent_a_close_is(user, conn, receiver):
    receiver.fail_next(502, "Bad Gateway")
    receiver.fail_next(502, "Bad Gateway")
    sig = svc.three_commas_send(user=user, connection=conn, decision=START)
    assert (sig.state, sig.http_status, sig.detail) == ("unknown", 502, "Bad Gateway")
    close = tc.Decision(tc.CLOSE, "m7b1-d1", "BTC/USDT")
    assert svc.three_commas_send(user=user, connection=conn, decision=close).state == "unknown"
    assert svc.three_commas_send(user=user, connection=conn, decision=START).state == "unknown"
    resent = svc.three_commas_send(user=user, connection=conn, decision=close)
    assert (resent.state, resent.attempts) == ("sent", 2)
    assert receiver.received == [msg(), msg(action="close_at_market_price"), msg(action="close_at_market_price")]


def test_a_timeout_after_3commas_got_it_never_restarts(user, conn, receiver):
    receiver.hang_next(1.5)
    sig = svc.three_commas_send(user=user, connection=conn, decision=START)
    assert (sig.state, sig.detail) == ("unknown", "timeout after the request was sent")
    assert svc.three_commas_send(user=user, connection=conn, decision=START).attempts == 1
    assert receiver.received == [msg()]


def test_unreachable_is_not_sent_and_is_sent_on_retry(user, conn, settings, receiver):
    url = receiver.url
    settings.MARKET7_THREECOMMAS_URL = "http://127.0.0.1:9/trade_signal/trading_view"  # discard port: refused
    sig = svc.three_commas_send(user=user, connection=conn, decision=START)
    assert (sig.state, sig.detail) == ("not_sent", "unreachable: ConnectionError")
    settings.MARKET7_THREECOMMAS_URL = url
    sig = svc.three_commas_send(user=user, connection=conn, decision=START)
    assert (sig.state, sig.attempts) == ("sent", 2) and receiver.received == [msg()]


def test_a_rejection_is_kept_and_not_resent(user, conn, receiver):
    receiver.fail_next(422, "bot is disabled " + TOKEN)
    sig = svc.three_commas_send(user=user, connection=conn, decision=START)
    assert (sig.state, sig.http_status, sig.detail) == ("rejected", 422, "bot is disabled …")
    svc.three_commas_send(user=user, connection=conn, decision=START)
    assert len(receiver.received) == 1


def test_another_users_connection_is_not_found(other_user, conn, receiver):
    with pytest.raises(ThreeCommasConnection.DoesNotExist):
        svc.three_commas_send(user=other_user, connection=conn.pk, decision=START)
    assert receiver.received == [] and ThreeCommasSignal.objects.count() == 0
