"""ccxt exchange clients, configured from settings, and ccxt errors turned into clear ones.

:func:`exchange_client` builds a synchronous ccxt client with rate limiting on and a short
timeout. When ``settings.MARKET7_EXCHANGE_URLS`` has an entry for the exchange (env
``MARKET7_BINANCE_URL`` for binance), every REST base URL of the client is re-pointed at that
origin, keeping ccxt's paths: ``https://api.binance.com/api/v3`` becomes
``http://127.0.0.1:PORT/api/v3`` and ``https://fapi.binance.com/fapi/v1`` becomes
``http://127.0.0.1:PORT/fapi/v1``. Tests use this to talk to the fake Binance server in
``tests/fakes/``; production leaves it unset and ccxt's own URLs are used.

:func:`exchange_call` runs one ccxt call and maps its errors:

- HTTP 429 (ccxt ``RateLimitExceeded``, or binance's ``DDoSProtection`` "binance 429 ..."): retried after :data:`RATE_LIMIT_RETRY_DELAYS`
  seconds, then :class:`ExchangeUnavailable` ``"binance rate limit exceeded: ..."``;
- ccxt ``DDoSProtection`` (HTTP 418, IP banned): :class:`ExchangeUnavailable` at once;
- any other ccxt ``NetworkError`` (connection refused, timeout, HTTP 5xx
  ``ExchangeNotAvailable``): :class:`ExchangeUnavailable` ``"cannot reach binance: ..."``;
- any other ccxt error (bad symbol, bad request): :class:`ExchangeRequestError`.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from typing import Any, TypeVar
from urllib.parse import urlsplit, urlunsplit

import ccxt
from django.conf import settings

from market7.metrics import observe_exchange_call

T = TypeVar("T")

# ccxt logs every request at DEBUG with its headers — the API key among them (X-MBX-APIKEY,
# OK-ACCESS-KEY, ...). Its loggers stay at INFO whatever the root level, so a DEBUG log
# configuration never writes a credential.
for _name in ("ccxt", "ccxt.base.exchange"):
    logging.getLogger(_name).setLevel(logging.INFO)

# Seconds to wait before each retry of a call answered with HTTP 429 (tests set it to zeros).
RATE_LIMIT_RETRY_DELAYS: tuple[float, ...] = (1.0, 3.0)
DEFAULT_TIMEOUT_MS = 10_000


class ExchangeUnavailable(Exception):
    """The exchange cannot be reached (network, timeout, 5xx) or refuses us (rate limit / ban)."""


class ExchangeRequestError(Exception):
    """The exchange answered but rejected the request (unknown symbol, bad parameter, ...)."""


def exchange_base_url(code: str) -> str | None:
    """The origin that replaces ccxt's URLs for ``code`` (``http://127.0.0.1:8123``), or None."""
    urls = getattr(settings, "MARKET7_EXCHANGE_URLS", None) or {}
    url = urls.get(code)
    return url.rstrip("/") if url else None


def _rebase(value: Any, origin: str) -> Any:
    """Replace scheme and host of every URL string in ``value`` (str / dict / list) by ``origin``."""
    if isinstance(value, str):
        if not value.startswith(("http://", "https://")):
            return value
        parts = urlsplit(value)
        new = urlsplit(origin)
        return urlunsplit((new.scheme, new.netloc, parts.path, parts.query, parts.fragment))
    if isinstance(value, dict):
        return {key: _rebase(item, origin) for key, item in value.items()}
    if isinstance(value, list):
        return [_rebase(item, origin) for item in value]
    return value


def exchange_client(
    code: str,
    *,
    options: dict | None = None,
    timeout_ms: int | None = None,
    credentials: dict[str, str] | None = None,
    sandbox: bool = False,
) -> ccxt.Exchange:
    """A synchronous ccxt client for exchange ``code`` (ccxt id, e.g. ``binance``).

    ``options`` become ccxt's ``options`` (e.g. ``{"defaultType": "spot", "fetchMarkets":
    {"types": ["spot"]}}``). Rate limiting is on (``enableRateLimit``); the request timeout is
    ``timeout_ms`` or ``settings.MARKET7_EXCHANGE_TIMEOUT_MS`` (default 10 s). ``credentials``
    (``{"apiKey", "secret", "password"}``, from ``ExchangeAccount.credentials()``) sign private
    calls; ``sandbox`` switches to the exchange's testnet (ccxt ``set_sandbox_mode``; an
    exchange without one: ValueError). No request is made here. Unknown exchange: ValueError.
    """
    if code not in ccxt.exchanges:
        raise ValueError(f"unknown exchange {code!r}: not a ccxt exchange id (e.g. binance, kraken, okx)")
    timeout = timeout_ms or getattr(settings, "MARKET7_EXCHANGE_TIMEOUT_MS", DEFAULT_TIMEOUT_MS)
    config: dict[str, Any] = {"enableRateLimit": True, "timeout": int(timeout), "options": dict(options or {})}
    config.update({k: v for k, v in (credentials or {}).items() if v})
    client = getattr(ccxt, code)(config)
    if sandbox:
        try:
            client.set_sandbox_mode(True)
        except ccxt.NotSupported:
            raise ValueError(f"{code} has no testnet/sandbox in ccxt") from None
    origin = exchange_base_url(code)
    if origin:
        client.urls["api"] = _rebase(client.urls["api"], origin)
        # Test/sandbox URL sets must not leak a real host either.
        for key in ("test", "demo", "apiBackup"):
            if key in client.urls:
                client.urls[key] = _rebase(client.urls[key], origin)
    return client


@observe_exchange_call  # market7_exchange_request_seconds, market7_exchange_errors_total
def exchange_call(code: str, func: Callable[..., T], *args: Any, **kwargs: Any) -> T:
    """``func(*args, **kwargs)`` (a ccxt client method) with ccxt errors mapped (module doc).

    Raises :class:`ExchangeUnavailable` or :class:`ExchangeRequestError`; the message starts
    with the exchange code and carries ccxt's own text.
    """
    delays = list(RATE_LIMIT_RETRY_DELAYS)
    while True:
        try:
            return func(*args, **kwargs)
        except ccxt.DDoSProtection as exc:
            # ccxt's binance raises DDoSProtection for both 418 and 429 ("binance 429 Too Many
            # Requests {...}"); other exchanges raise RateLimitExceeded for 429.
            if not (isinstance(exc, ccxt.RateLimitExceeded) or str(exc).startswith(f"{code} 429 ")):
                raise ExchangeUnavailable(f"{code} refused the request (HTTP 418, IP banned for now): {exc}") from exc
            if not delays:
                raise ExchangeUnavailable(
                    f"{code} rate limit exceeded (HTTP 429), gave up after retries: {exc}"
                ) from exc
            time.sleep(delays.pop(0))
        except ccxt.NetworkError as exc:
            raise ExchangeUnavailable(f"cannot reach {code}: {exc}") from exc
        except ccxt.BaseError as exc:
            raise ExchangeRequestError(f"{code} rejected the request: {exc}") from exc
