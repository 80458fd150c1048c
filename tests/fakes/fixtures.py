"""pytest fixtures for the fake exchanges. Register in tests/conftest.py:

pytest_plugins = ["tests.fakes.fixtures"]
"""

from __future__ import annotations

import pytest

from tests.fakes.binance import FakeBinance


@pytest.fixture
def fake_binance(settings, monkeypatch):
    """A running :class:`FakeBinance` on 127.0.0.1 with ccxt's binance URLs pointed at it.

    ``settings.MARKET7_EXCHANGE_URLS["binance"]`` is its ``base_url`` for the test (so
    :func:`trading.exchanges.exchange_client` talks to it), the request timeout is short, and
    the 429 retry delays are zero. Stopped (connection refused) after the test.
    """
    from trading import exchanges

    server = FakeBinance().start()
    settings.MARKET7_EXCHANGE_URLS = {"binance": server.base_url}
    settings.MARKET7_EXCHANGE_TIMEOUT_MS = 3000
    monkeypatch.setattr(exchanges, "RATE_LIMIT_RETRY_DELAYS", (0.0, 0.0))
    try:
        yield server
    finally:
        server.stop()


@pytest.fixture
def fake_binance_private(fake_binance):
    """:class:`FakeBinance` with its signed endpoints on (``fake_binance.private``): returns the
    :class:`~tests.fakes.binance_private.FakeBinancePrivate` (``.fake`` is the server)."""
    from tests.fakes.binance_private import FakeBinancePrivate

    fake_binance.private = FakeBinancePrivate(fake_binance)
    return fake_binance.private
