"""Exchange account services: a user adds, edits, deletes and tests the API keys of their
exchange accounts (:class:`trading.models.ExchangeAccount`), secrets encrypted at rest.

Every function takes keyword-only arguments and the acting ``user``; an account is only read
or written through ``ExchangeAccount.objects.for_user(user)`` (another user's account is
``ExchangeAccount.DoesNotExist``: a 404 in views and API). Writes need the ``trader`` role
(``trading.add/change/delete_exchangeaccount``): :class:`AccountPermissionDenied`. Bad input:
:class:`AccountValidationError` ``{field: one line}``; nothing is written. No message, audit
entry or log line ever holds a credential; the audit log names the account and its key hint.
"""

from __future__ import annotations

import ccxt
from django.db import IntegrityError, transaction
from django.utils import timezone

from accounts.models import AuditLog
from market7 import secretbox
from trading.account_check import CheckResult, check_connection
from trading.exchanges import exchange_client
from trading.models import ExchangeAccount


class AccountValidationError(ValueError):
    def __init__(self, errors: dict[str, str]):
        super().__init__("; ".join(f"{k}: {v}" for k, v in errors.items()))
        self.errors = errors


class AccountPermissionDenied(PermissionError):
    """The user's role may not change exchange accounts."""


def _require(user, action: str) -> None:
    if user is None or not getattr(user, "is_authenticated", False) or not user.is_active:
        raise AccountPermissionDenied("sign in to manage exchange accounts")
    if not user.has_perm(f"trading.{action}_exchangeaccount"):
        raise AccountPermissionDenied("your role cannot manage exchange accounts (trader role needed)")


def _clean_secret(name: str, value: str | None, errors: dict, *, required: bool) -> str | None:
    value = (value or "").strip()
    if not value:
        if required:
            errors[name] = "required"
        return None
    if len(value) > 512 or any(c.isspace() for c in value):
        errors[name] = "must be one line without spaces, at most 512 characters"
    return value


def _audit(user, action: str, account: ExchangeAccount, message: str = "") -> None:
    AuditLog.objects.create(
        user=user,
        action=action,
        object_type="exchange_account",
        object_id=str(account.pk),
        message=message or f"{account.label} ({account.exchange}, key …{account.key_hint})",
    )


@transaction.atomic
def account_create(
    *, user, exchange: str, label: str, api_key: str, secret: str, passphrase: str = "", sandbox: bool = False
) -> ExchangeAccount:
    """A new account of ``user`` on ``exchange`` (a ccxt id) with its credentials encrypted."""
    _require(user, "add")
    errors: dict[str, str] = {}
    exchange = (exchange or "").strip().lower()
    label = (label or "").strip()
    if exchange not in ccxt.exchanges:
        errors["exchange"] = f"{exchange!r} is not a ccxt exchange id (e.g. binance, binanceusdm, okx, kraken)"
    if not label or len(label) > 64:
        errors["label"] = "required, at most 64 characters"
    key = _clean_secret("api_key", api_key, errors, required=True)
    sec = _clean_secret("secret", secret, errors, required=True)
    phrase = _clean_secret("passphrase", passphrase, errors, required=False)
    if label and ExchangeAccount.objects.for_user(user).filter(label=label).exists():
        errors["label"] = "you already have an account with this label"
    if errors:
        raise AccountValidationError(errors)
    account = ExchangeAccount(
        owner=user,
        exchange=exchange,
        label=label,
        api_key_enc=secretbox.encrypt(key),
        secret_enc=secretbox.encrypt(sec),
        passphrase_enc=secretbox.encrypt(phrase or ""),
        key_hint=key[-4:],
        sandbox=bool(sandbox),
    )
    try:
        with transaction.atomic():
            account.save()
    except IntegrityError:  # a concurrent create with the same label
        raise AccountValidationError({"label": "you already have an account with this label"}) from None
    _audit(user, "exchange_account_create", account)
    return account


@transaction.atomic
def account_update(
    *,
    user,
    account_id: int,
    label: str | None = None,
    api_key: str | None = None,
    secret: str | None = None,
    passphrase: str | None = None,
    clear_passphrase: bool = False,
    sandbox: bool | None = None,
) -> ExchangeAccount:
    """Change the given fields of the user's account ``account_id``; a blank credential keeps the
    stored one. A new key, secret, passphrase or testnet flag clears the last check."""
    _require(user, "change")
    account = ExchangeAccount.objects.for_user(user).select_for_update().get(pk=account_id)
    errors: dict[str, str] = {}
    key = _clean_secret("api_key", api_key, errors, required=False)
    sec = _clean_secret("secret", secret, errors, required=False)
    phrase = _clean_secret("passphrase", passphrase, errors, required=False)
    if label is not None:
        label = label.strip()
        if not label or len(label) > 64:
            errors["label"] = "required, at most 64 characters"
        elif ExchangeAccount.objects.for_user(user).filter(label=label).exclude(pk=account.pk).exists():
            errors["label"] = "you already have an account with this label"
    if errors:
        raise AccountValidationError(errors)
    changed_creds = False
    if label is not None:
        account.label = label
    if key:
        account.api_key_enc, account.key_hint, changed_creds = secretbox.encrypt(key), key[-4:], True
    if sec:
        account.secret_enc, changed_creds = secretbox.encrypt(sec), True
    if phrase:
        account.passphrase_enc, changed_creds = secretbox.encrypt(phrase), True
    elif clear_passphrase and account.passphrase_enc:
        account.passphrase_enc, changed_creds = "", True
    if sandbox is not None and bool(sandbox) != account.sandbox:
        account.sandbox, changed_creds = bool(sandbox), True
    if changed_creds:
        account.permissions, account.last_check_at, account.last_check_ok, account.last_check_message = (
            [],
            None,
            None,
            "",
        )
    account.save()
    _audit(
        user,
        "exchange_account_update",
        account,
        f"{account.label}: credentials {'changed' if changed_creds else 'kept'}",
    )
    return account


@transaction.atomic
def account_delete(*, user, account_id: int) -> None:
    """Delete the user's account ``account_id`` (its encrypted credentials go with it)."""
    _require(user, "delete")
    account = ExchangeAccount.objects.for_user(user).select_for_update().get(pk=account_id)
    _audit(user, "exchange_account_delete", account)
    account.delete()


def account_options(code: str) -> dict:
    """ccxt options of an account's client: Binance spot/USDT-M load only their own markets and
    skip the private currencies and margin-pairs calls."""
    if code == "binance":
        return {
            "defaultType": "spot",
            "fetchMarkets": {"types": ["spot"]},
            "fetchCurrencies": False,
            "fetchMargins": False,
        }
    if code == "binanceusdm":
        return {"fetchMarkets": {"types": ["linear"]}, "fetchCurrencies": False, "fetchMargins": False}
    return {}


def account_client(account: ExchangeAccount) -> ccxt.Exchange:
    """A ccxt client signed with the account's decrypted credentials (never log it)."""
    return exchange_client(
        account.exchange,
        options=account_options(account.exchange),
        credentials=account.credentials(),
        sandbox=account.sandbox,
    )


def account_test(*, user, account_id: int) -> CheckResult:
    """Test the connection of the user's account ``account_id`` (balance and key permissions,
    ``trading.account_check``) and store the outcome. The exchange is called outside any
    transaction; the result is saved in one short transaction afterwards."""
    _require(user, "change")
    account = ExchangeAccount.objects.for_user(user).get(pk=account_id)
    try:
        result = check_connection(account_client(account), account.exchange)
    except secretbox.SecretUndecryptable as exc:
        result = CheckResult(False, "undecryptable", f"{exc}; enter the key and secret again")
    except ValueError as exc:  # no sandbox for this exchange
        result = CheckResult(False, "exchange_error", str(exc))
    with transaction.atomic():
        updated = (
            ExchangeAccount.objects.for_user(user)
            .filter(pk=account_id)
            .update(
                last_check_at=timezone.now(),
                last_check_ok=result.ok,
                last_check_message=result.message[:300],
                permissions=result.permissions if result.ok or result.permissions else [],
            )
        )
        if updated:
            _audit(user, "exchange_account_test", account, f"{account.label}: {result.reason}")
    return result


def accounts_reencrypt() -> int:
    """Re-encrypt every stored credential with the first ``MARKET7_SECRETS_KEY`` key (key
    rotation, ``market7.secretbox``). Rows are locked in pk order, in batches of 200, one
    transaction per batch. Returns the number of accounts rewritten."""
    done, last = 0, 0
    while True:
        with transaction.atomic():
            batch = list(ExchangeAccount.objects.select_for_update().filter(pk__gt=last).order_by("pk")[:200])
            for acc in batch:
                acc.api_key_enc = secretbox.reencrypt(acc.api_key_enc)
                acc.secret_enc = secretbox.reencrypt(acc.secret_enc)
                acc.passphrase_enc = secretbox.reencrypt(acc.passphrase_enc)
            ExchangeAccount.objects.bulk_update(batch, ["api_key_enc", "secret_enc", "passphrase_enc"])
        if not batch:
            return done
        done += len(batch)
        last = batch[-1].pk
