"""Exchange accounts: encrypted credentials, services, key rotation, and "Test connection"
through ccxt against the fake Binance server's signed endpoints (tests/fakes/binance_private.py)."""

from __future__ import annotations

import logging
from decimal import Decimal

import pytest
from cryptography.fernet import Fernet
from django.core.management import call_command
from django.db import connection

from accounts.models import AuditLog
from market7 import secretbox
from trading.models import ExchangeAccount
from trading.services import exchange_accounts as svc

KEY = "vmPUZE6mv9SD5VNHk4HlWFsOr6aKE2zvsw0MuIgwCIPy6utIco14y7Ju91duEh8A"
SECRET = "NhqPtmdSJYdKjVHjA7PZj4Mge3R5YNiP1e3UZjInClVN65XAbvqqM6A7H5fATj0j"
PHRASE = "Passphrase-Secret-77"

pytest_plugins = ["tests.fakes.fixtures"]


@pytest.fixture(autouse=True)
def secrets_keys(settings):
    settings.MARKET7_SECRETS_KEYS = [Fernet.generate_key().decode()]
    return settings


def make_account(user, **kw):
    args = {"exchange": "binance", "label": "main", "api_key": KEY, "secret": SECRET, "sandbox": False} | kw
    return svc.account_create(user=user, **args)


def stored_text(account) -> str:
    """Every column of the row as the database holds it."""
    with connection.cursor() as cur:
        cur.execute(f"SELECT * FROM {ExchangeAccount._meta.db_table} WHERE id = %s", [account.pk])
        return " ".join(str(v) for v in cur.fetchone())


# --- encryption and services ---------------------------------------------------------------


def test_create_encrypts_at_rest_and_keeps_only_the_key_hint(user):
    acc = make_account(user, passphrase=PHRASE)
    raw = stored_text(acc)
    for plain in (KEY, SECRET, PHRASE):
        assert plain not in raw
    assert acc.key_hint == "Eh8A"
    fresh = ExchangeAccount.objects.get(pk=acc.pk)
    assert fresh.credentials() == {"apiKey": KEY, "secret": SECRET, "password": PHRASE}
    entry = AuditLog.objects.get(action="exchange_account_create")
    assert entry.message == "main (binance, key …Eh8A)" and entry.object_id == str(acc.pk)


def test_create_validates_and_writes_nothing(user):
    with pytest.raises(svc.AccountValidationError) as err:
        svc.account_create(user=user, exchange="nosuchx", label="", api_key="", secret="a b")
    assert err.value.errors == {
        "exchange": "'nosuchx' is not a ccxt exchange id (e.g. binance, binanceusdm, okx, kraken)",
        "label": "required, at most 64 characters",
        "api_key": "required",
        "secret": "must be one line without spaces, at most 512 characters",
    }
    make_account(user)
    with pytest.raises(svc.AccountValidationError) as err:
        make_account(user)
    assert err.value.errors == {"label": "you already have an account with this label"}
    assert (
        ExchangeAccount.objects.count() == 1 and AuditLog.objects.filter(action="exchange_account_create").count() == 1
    )


def test_viewer_cannot_create(viewer):
    with pytest.raises(svc.AccountPermissionDenied):
        make_account(viewer)
    assert ExchangeAccount.objects.count() == 0


def test_update_keeps_blank_credentials_and_resets_the_check(user):
    acc = make_account(user)
    ExchangeAccount.objects.filter(pk=acc.pk).update(last_check_ok=True, permissions=["read", "trade"])
    svc.account_update(user=user, account_id=acc.pk, label="renamed", api_key="", secret="")
    acc.refresh_from_db()
    assert acc.label == "renamed" and acc.credentials()["secret"] == SECRET and acc.last_check_ok is True
    svc.account_update(user=user, account_id=acc.pk, secret="NEWSECRET123")
    acc.refresh_from_db()
    assert acc.credentials() == {"apiKey": KEY, "secret": "NEWSECRET123", "password": ""}
    assert acc.last_check_ok is None and acc.permissions == []


def test_other_users_account_is_not_found(user, other_user):
    acc = make_account(user)
    with pytest.raises(ExchangeAccount.DoesNotExist):
        svc.account_update(user=other_user, account_id=acc.pk, label="x")
    with pytest.raises(ExchangeAccount.DoesNotExist):
        svc.account_delete(user=other_user, account_id=acc.pk)
    with pytest.raises(ExchangeAccount.DoesNotExist):
        svc.account_test(user=other_user, account_id=acc.pk)
    acc.refresh_from_db()
    assert acc.label == "main" and acc.last_check_at is None


def test_delete(user):
    acc = make_account(user)
    svc.account_delete(user=user, account_id=acc.pk)
    assert not ExchangeAccount.objects.filter(pk=acc.pk).exists()


def test_key_rotation_reencrypts_every_row(user, other_user, settings, capsys):
    old = settings.MARKET7_SECRETS_KEYS[0]
    a, b = make_account(user, passphrase=PHRASE), make_account(other_user, label="b")
    new = Fernet.generate_key().decode()
    settings.MARKET7_SECRETS_KEYS = [new, old]
    before = stored_text(a)
    call_command("exchange_accounts_rotate_keys")
    assert capsys.readouterr().out == "re-encrypted 2 exchange account(s) with the current key\n"
    assert stored_text(a) != before
    settings.MARKET7_SECRETS_KEYS = [new]  # the old key is gone: rows still open
    for acc in (a, b):
        acc.refresh_from_db()
        assert acc.credentials()["secret"] == SECRET
    assert ExchangeAccount.objects.get(pk=a.pk).credentials()["password"] == PHRASE


def test_undecryptable_is_reported_without_plaintext(user, settings):
    acc = make_account(user)
    settings.MARKET7_SECRETS_KEYS = [Fernet.generate_key().decode()]
    with pytest.raises(secretbox.SecretUndecryptable) as err:
        ExchangeAccount.objects.get(pk=acc.pk).credentials()
    assert str(err.value) == "a stored secret cannot be decrypted with the configured MARKET7_SECRETS_KEY"
    result = svc.account_test(user=user, account_id=acc.pk)
    assert (result.ok, result.reason) == (False, "undecryptable")


def test_parse_keys_fails_loudly_without_echoing_the_value():
    from django.core.exceptions import ImproperlyConfigured

    good = Fernet.generate_key().decode()
    assert secretbox.parse_keys(f" {good} , {good}") == [good, good]
    with pytest.raises(ImproperlyConfigured) as err:
        secretbox.parse_keys(f"{good},not-a-key-SECRETVALUE")
    assert "key #2 is not a Fernet key" in str(err.value) and "SECRETVALUE" not in str(err.value)


def test_default_key_file_is_created_once_with_mode_600(tmp_path):
    keys = secretbox.default_keys(tmp_path)
    assert secretbox.default_keys(tmp_path) == keys and len(keys) == 1
    assert (tmp_path / "secrets_key").stat().st_mode & 0o777 == 0o600


# --- test connection against the fake Binance ----------------------------------------------


@pytest.fixture
def binance_key(fake_binance_private):
    fake_binance_private.add_key(KEY, SECRET)
    fake_binance_private.balances = {"USDT": ("1000.50000000", "20.00000000"), "BTC": ("0.01000000", "0.00000000")}
    return fake_binance_private


def run_test(user, caplog, **kw):
    acc = make_account(user, **kw)
    with caplog.at_level(logging.DEBUG):
        result = svc.account_test(user=user, account_id=acc.pk)
    acc.refresh_from_db()
    text = caplog.text + result.message + acc.last_check_message + stored_text(acc)
    assert KEY not in text and SECRET not in text
    return result, acc


def test_connection_ok_reports_balance_and_permissions(user, binance_key, caplog):
    result, acc = run_test(user, caplog)
    assert result.ok and result.reason == "ok"
    assert result.balances == {"USDT": Decimal("1020.5"), "BTC": Decimal("0.01")}
    assert result.message == "connected; BTC 0.01, USDT 1020.5"
    assert acc.permissions == ["read", "trade"] and acc.last_check_ok is True and acc.last_check_at is not None
    account_calls = [r for r in binance_key.fake.requests if r.path == "/api/v3/account"]
    assert len(account_calls) == 1 and account_calls[0].status == 200 and "signature" in account_calls[0].params


def test_connection_sandbox_goes_through_the_testnet_urls(user, binance_key, caplog):
    result, acc = run_test(user, caplog, sandbox=True)
    assert result.ok and acc.sandbox
    assert "/api/v3/account" in binance_key.fake.paths()


def test_withdraw_permission_warns(user, binance_key, caplog):
    binance_key.add_key(KEY, SECRET, can_withdraw=True)
    result, acc = run_test(user, caplog)
    assert result.ok and acc.permissions == ["read", "trade", "withdraw"]
    assert result.message.endswith("— warning: the key may withdraw; a trading key should not")


def test_no_trade_permission(user, binance_key, caplog):
    binance_key.add_key(KEY, SECRET, can_trade=False)
    result, acc = run_test(user, caplog)
    assert (result.ok, result.reason, acc.permissions) == (False, "no_trade_permission", ["read"])
    assert result.message == "connected, but the key cannot trade: enable trading on it; BTC 0.01, USDT 1020.5"
    assert acc.last_check_ok is False


@pytest.mark.parametrize(
    ("setup", "reason", "message"),
    [
        (
            lambda f: f.keys.clear(),
            "ip_or_permission",
            "the exchange refused the key: it is unknown, this server's IP is not on its allow-list, "
            "or it lacks the permission [binance -2015]",
        ),
        (
            lambda f: f.add_key(KEY, SECRET, ip_allowed=False),
            "ip_or_permission",
            "the exchange refused the key: it is unknown, this server's IP is not on its allow-list, "
            "or it lacks the permission [binance -2015]",
        ),
        (
            lambda f: f.add_key(KEY, "another-secret"),
            "bad_secret",
            "the secret does not match the API key (signature rejected) [binance -1022]",
        ),
        (
            lambda f: setattr(f, "clock_offset_ms", -60_000),
            "clock_skew",
            "the exchange rejected the request time: this server's clock is off (sync it with NTP) [binance -1021]",
        ),
        (
            lambda f: f.fake.fail_next(503, times=5, after=1),
            "network",
            "cannot reach binance (ExchangeNotAvailable); try again later",
        ),
    ],
    ids=["unknown-key", "ip-not-allowed", "wrong-secret", "clock-skew", "5xx"],
)
def test_connection_errors_are_clear(user, binance_key, caplog, setup, reason, message):
    setup(binance_key)
    result, acc = run_test(user, caplog)
    assert (result.ok, result.reason, result.message) == (False, reason, message)
    assert acc.last_check_ok is False and acc.last_check_message == message and acc.permissions == []


def test_malformed_key(user, binance_key, caplog):
    result, _ = run_test(user, caplog, api_key="short")
    assert (result.reason, result.message) == (
        "bad_key",
        "the API key was rejected: check that it is copied whole [binance -2014]",
    )


def test_unreachable_exchange(user, binance_key, caplog):
    binance_key.fake.stop()
    result, _ = run_test(user, caplog)
    assert result.reason == "network" and result.message.startswith("cannot reach binance (")
