""" "Test connection" of an exchange account: balance and key permissions through ccxt, with
every failure told in one clear line that never carries a credential.

:func:`check_connection` takes a ccxt client that already holds the credentials
(``trading.exchanges.exchange_client(..., credentials=..., sandbox=...)``), calls
``fetch_balance`` (on Binance spot ``GET /api/v3/account``, which also says whether the key may
trade and withdraw) and returns a :class:`CheckResult`. Error mapping (ccxt classes; Binance
codes in brackets):

- ``AuthenticationError`` [-2014 malformed key, -2015 unknown key / IP not allowed / missing
  permission, -1022 wrong secret] -> ``bad_key`` / ``ip_or_permission`` / ``bad_secret``;
- ``PermissionDenied`` (OKX, Kraken, ... IP allow-lists and key scopes) -> ``ip_or_permission``;
- ``InvalidNonce`` [-1021 timestamp outside recvWindow] -> ``clock_skew``;
- ``NetworkError`` (timeout, refused, 5xx, 429) -> ``network``; any other ccxt error -> ``exchange_error``.

A key that connects but cannot trade is a failed check too (``no_trade_permission``); a key
that may withdraw passes with a warning (a trading key should not withdraw).
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass, field
from decimal import Decimal

import ccxt

BINANCE_FAMILY = {"binance", "binanceusdm", "binancecoinm"}


@dataclass(frozen=True)
class CheckResult:
    ok: bool
    reason: str  # ok | bad_key | bad_secret | ip_or_permission | no_trade_permission | clock_skew | network | exchange_error
    message: str  # one line, for users
    permissions: list[str] = field(default_factory=list)
    balances: dict[str, Decimal] = field(default_factory=dict)  # total per asset, non-zero only


def _exchange_code(text: str) -> int | None:
    """The ``code`` of a JSON error body inside a ccxt message (``binance {"code":-2015,...}``)."""
    match = re.search(r"\{.*\}", text)
    if not match:
        return None
    try:
        code = json.loads(match.group(0)).get("code")
    except (ValueError, AttributeError):
        return None
    return int(code) if isinstance(code, int | str) and str(code).lstrip("-").isdigit() else None


def _scrub(text: str, secrets: list[str]) -> str:
    for s in secrets:
        if s:
            text = text.replace(s, "***")
    return text


def describe_error(code: str, exc: Exception, secrets: list[str]) -> tuple[str, str]:
    """``(reason, message)`` for a ccxt error raised by a private call to exchange ``code``."""
    ex_code = _exchange_code(str(exc))
    tag = f" [{code} {ex_code}]" if ex_code is not None else f" [{code}]"
    if isinstance(exc, ccxt.InvalidNonce) or ex_code == -1021:
        return "clock_skew", (
            "the exchange rejected the request time: this server's clock is off (sync it with NTP)" + tag
        )
    if isinstance(exc, ccxt.PermissionDenied):
        return "ip_or_permission", (
            "the exchange refused the key: this server's IP is not on the key's allow-list "
            "or the key lacks the permission" + tag
        )
    if isinstance(exc, ccxt.AuthenticationError):
        if ex_code == -1022:
            return "bad_secret", "the secret does not match the API key (signature rejected)" + tag
        if ex_code == -2015:
            return "ip_or_permission", (
                "the exchange refused the key: it is unknown, this server's IP is not on its "
                "allow-list, or it lacks the permission" + tag
            )
        return "bad_key", "the API key was rejected: check that it is copied whole" + tag
    if isinstance(exc, ccxt.NetworkError):
        name = type(exc).__name__
        return "network", f"cannot reach {code} ({name}); try again later"
    text = _scrub(str(exc), secrets)[:160]
    return "exchange_error", f"{code} rejected the request: {text}"


def _permissions(code: str, info: dict) -> list[str] | None:
    """Permissions a balance answer shows, or None when the exchange does not say."""
    if code in BINANCE_FAMILY and isinstance(info, dict) and "canTrade" in info:
        perms = ["read"]
        if info.get("canTrade"):
            perms.append("trade")
        if info.get("canWithdraw"):
            perms.append("withdraw")
        return perms
    return None


def check_connection(client: ccxt.Exchange, code: str) -> CheckResult:
    """Fetch the balance with ``client`` (credentials set) and judge the key (module doc)."""
    secrets = [client.apiKey, client.secret, client.password]
    try:
        balance = client.fetch_balance()
    except ccxt.BaseError as exc:
        reason, message = describe_error(code, exc, secrets)
        return CheckResult(False, reason, _scrub(message, secrets))
    totals = {
        asset: Decimal(str(amount))
        for asset, amount in (balance.get("total") or {}).items()
        if amount not in (None, 0, 0.0)
    }
    perms = _permissions(code, balance.get("info") or {})
    shown = ", ".join(f"{a} {v.normalize():f}" for a, v in sorted(totals.items())[:6]) or "no balances"
    if perms is None:
        return CheckResult(
            True, "ok", f"connected; {shown} (the exchange does not report key permissions)", ["read"], totals
        )
    if "trade" not in perms:
        return CheckResult(
            False,
            "no_trade_permission",
            f"connected, but the key cannot trade: enable trading on it; {shown}",
            perms,
            totals,
        )
    warn = " — warning: the key may withdraw; a trading key should not" if "withdraw" in perms else ""
    return CheckResult(True, "ok", f"connected; {shown}{warn}", perms, totals)
