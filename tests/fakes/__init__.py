"""Local fake servers that speak real exchange REST shapes, for tests (nothing leaves the machine).

- :mod:`tests.fakes.binance`: :class:`~tests.fakes.binance.FakeBinance`, a Binance REST server
  on 127.0.0.1 serving the bundled real candles.
- :mod:`tests.fakes.fixtures`: the ``fake_binance`` pytest fixture (register with
  ``pytest_plugins = ["tests.fakes.fixtures"]`` in ``tests/conftest.py``).
"""

from tests.fakes.binance import FakeBinance, LoggedRequest

__all__ = ["FakeBinance", "LoggedRequest"]
