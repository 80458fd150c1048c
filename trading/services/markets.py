"""Market services: exchange rows, markets from exchange symbols, market discovery via ccxt.

- :func:`split_exchange_symbol` maps an exchange id such as ``BTCUSDT`` to the ccxt unified
  symbol (``BTC/USDT``, or ``BTC/USDT:USDT`` for a USDT-M perpetual swap) by the longest
  known quote-asset suffix (:data:`QUOTE_ASSETS`).
- :func:`market_ensure` gets or creates the Exchange and Market rows for such an id
  (precision and limits left empty: a file does not know them).
- :func:`market_upsert_ccxt` writes one ccxt market (precision and limits exactly as ccxt gives
  them).
- :func:`markets_discover` loads an exchange's markets through ccxt (``load_markets`` +
  ``fetch_tickers``) or offline from a saved markets JSON file (``set_markets``, no network),
  filters them by quote, type and 24 h quote volume, and upserts them.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from decimal import Decimal
from pathlib import Path
from typing import Any

import ccxt
from django.db import transaction

from trading.exchanges import exchange_call, exchange_client
from trading.models.market import Exchange, Market

# Longest suffix wins, so FDUSD beats USD-like shorter matches and USDCUSDT is USDC/USDT.
QUOTE_ASSETS: tuple[str, ...] = ("USDT", "USDC", "FDUSD", "BUSD", "BTC", "ETH", "BNB", "EUR", "TRY")
MARKET_TYPES = ("spot", "swap")


@dataclass(frozen=True)
class SymbolParts:
    """A market's names: ``symbol`` is ccxt-unified, ``exchange_symbol`` the exchange's id."""

    symbol: str
    exchange_symbol: str
    base: str
    quote: str
    settle: str  # "" for spot
    type: str  # "spot" | "swap"


def split_exchange_symbol(exchange_symbol: str, *, market_type: str = "spot") -> SymbolParts:
    """``BTCUSDT`` -> ``BTC/USDT`` (spot) or ``BTC/USDT:USDT`` (swap, settled in the quote).

    The quote is the longest of :data:`QUOTE_ASSETS` that the id ends with; the base is the rest
    (``1000PEPEUSDT`` -> ``1000PEPE/USDT``, ``ETHBTC`` -> ``ETH/BTC``). Raises ValueError for an
    unknown market type, an id that is not upper-case alphanumeric, or one with no known quote.
    """
    if market_type not in MARKET_TYPES:
        raise ValueError(f"unknown market type {market_type!r}; use spot or swap")
    if not exchange_symbol or not exchange_symbol.isalnum() or exchange_symbol.upper() != exchange_symbol:
        raise ValueError(f"{exchange_symbol!r} is not an exchange symbol like BTCUSDT")
    for quote in sorted(QUOTE_ASSETS, key=len, reverse=True):
        if exchange_symbol.endswith(quote) and len(exchange_symbol) > len(quote):
            base = exchange_symbol[: -len(quote)]
            if market_type == "swap":
                return SymbolParts(f"{base}/{quote}:{quote}", exchange_symbol, base, quote, quote, "swap")
            return SymbolParts(f"{base}/{quote}", exchange_symbol, base, quote, "", "spot")
    raise ValueError(f"cannot split {exchange_symbol!r}: no known quote asset suffix ({', '.join(QUOTE_ASSETS)})")


def exchange_ensure(*, code: str) -> Exchange:
    """The Exchange row for ccxt id ``code``, created (named as ccxt names it) when missing.

    Unknown ccxt id: ValueError.
    """
    if code not in ccxt.exchanges:
        raise ValueError(f"unknown exchange {code!r}: not a ccxt exchange id (e.g. binance, kraken, okx)")
    exchange = Exchange.objects.filter(code=code).first()
    if exchange is None:
        name = getattr(ccxt, code)().name or code
        exchange, _ = Exchange.objects.get_or_create(code=code, defaults={"name": name})
    return exchange


@transaction.atomic
def market_ensure(*, exchange: str, exchange_symbol: str, market_type: str = "spot") -> Market:
    """The Market for ``exchange_symbol`` (``BTCUSDT``) on ``exchange`` (ccxt id), created when missing.

    A new row gets base/quote/settle/type from :func:`split_exchange_symbol`; precision and
    limits stay empty until :func:`markets_discover` fills them. Errors: ValueError.
    """
    parts = split_exchange_symbol(exchange_symbol, market_type=market_type)
    exchange_row = exchange_ensure(code=exchange)
    market, _ = Market.objects.get_or_create(
        exchange=exchange_row,
        symbol=parts.symbol,
        defaults={
            "exchange_symbol": parts.exchange_symbol,
            "base": parts.base,
            "quote": parts.quote,
            "settle": parts.settle,
            "type": parts.type,
        },
    )
    return market


def _fee(value: Any) -> Decimal | None:
    return None if value is None else Decimal(str(value)).quantize(Decimal("0.000001"))


def _ccxt_market_type(market: dict) -> str | None:
    """Market7's type for a ccxt market: spot, swap (linear perpetual), or None (unsupported)."""
    if market.get("spot"):
        return "spot"
    if market.get("swap") and market.get("linear"):
        return "swap"
    return None


def _market_values(market: dict) -> dict:
    info_keys = ("contractSize", "linear", "inverse", "subType", "margin", "created")
    return {
        "exchange_symbol": market.get("id") or "",
        "base": market["base"],
        "quote": market["quote"],
        "settle": market.get("settle") or "",
        "type": _ccxt_market_type(market),
        "precision": market.get("precision") or {},
        "limits": market.get("limits") or {},
        "maker_fee": _fee(market.get("maker")),
        "taker_fee": _fee(market.get("taker")),
        "active": market.get("active") is not False,
        "info": {key: market.get(key) for key in info_keys if market.get(key) is not None},
    }


@transaction.atomic
def market_upsert_ccxt(*, exchange: Exchange, market: dict) -> tuple[Market, str]:
    """Create or update the Market for one ccxt market dict (``client.markets[symbol]``).

    ``precision`` and ``limits`` are stored exactly as ccxt gives them. Returns the row and
    ``"added"``, ``"updated"`` or ``"unchanged"``. A market that is neither spot nor a linear
    swap: ValueError.
    """
    values = _market_values(market)
    if values["type"] is None:
        raise ValueError(f"{market.get('symbol')}: only spot and linear swap markets are supported")
    row = Market.objects.select_for_update().filter(exchange=exchange, symbol=market["symbol"]).first()
    if row is None:
        return Market.objects.create(exchange=exchange, symbol=market["symbol"], **values), "added"
    # JSON round-trip so stored dicts compare equal to fresh ones (tuples, key order, ...).
    changed = [
        name
        for name, value in values.items()
        if (json.loads(json.dumps(value)) if isinstance(value, dict) else value) != getattr(row, name)
    ]
    if not changed:
        return row, "unchanged"
    for name in changed:
        setattr(row, name, values[name])
    row.save(update_fields=[*changed, "updated_at"])
    return row, "updated"


@dataclass
class DiscoveredMarket:
    """One row of the discover table. ``quote_volume`` is the 24 h volume in quote currency."""

    symbol: str
    action: str  # added | updated | unchanged
    precision: dict
    limits: dict
    quote_volume: float | None


@dataclass
class DiscoverReport:
    exchange: str
    offline: bool
    tickers_used: bool
    considered: int = 0  # markets of the requested type and quote
    markets: list[DiscoveredMarket] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)

    def count(self, action: str) -> int:
        return sum(1 for m in self.markets if m.action == action)


def load_markets_file(path: Path) -> tuple[dict | list, dict | None]:
    """Read a saved markets JSON: ``{"markets": ..., "tickers": ...}`` or a bare markets dict/list.

    ``markets`` is what ccxt's ``client.markets`` holds (symbol -> market) or a list of
    markets; ``tickers`` (optional) is ``client.fetch_tickers()``'s result. Errors: ValueError
    naming the file.
    """
    try:
        data = json.loads(Path(path).read_text())
    except FileNotFoundError:
        raise ValueError(f"{path}: no such markets file") from None
    except json.JSONDecodeError as exc:
        raise ValueError(f"{path}: not valid JSON ({exc})") from None
    if isinstance(data, dict) and "markets" in data:
        markets, tickers = data["markets"], data.get("tickers")
    else:
        markets, tickers = data, None
    if not isinstance(markets, dict | list) or not markets:
        raise ValueError(f"{path}: no markets in the file")
    return markets, tickers


def markets_discover(
    *,
    exchange: str,
    quote: str | None = None,
    market_type: str = "spot",
    min_quote_volume: float | None = None,
    markets_file: Path | str | None = None,
    save_markets_file: Path | str | None = None,
) -> DiscoverReport:
    """Find ``exchange``'s markets of ``market_type`` (spot | swap) quoted in ``quote`` and upsert them.

    Online: ccxt ``load_markets`` then ``fetch_tickers`` (24 h ``quoteVolume``, quote currency);
    ``min_quote_volume`` keeps markets whose quote volume is >= it. Offline (``markets_file``):
    ccxt ``set_markets`` with the file's markets and no request at all; tickers come from the
    file when it has them, otherwise the volume filter cannot apply and asking for it is a
    ValueError. Inactive markets are skipped. ``save_markets_file`` writes what was loaded
    (markets + tickers) for later offline use. Each market is upserted in its own transaction.

    Errors: ValueError (bad arguments or file), ExchangeUnavailable / ExchangeRequestError
    (:mod:`trading.exchanges`).
    """
    if market_type not in MARKET_TYPES:
        raise ValueError(f"unknown market type {market_type!r}; use spot or swap")
    if min_quote_volume is not None and min_quote_volume < 0:
        raise ValueError("--min-quote-volume must be >= 0")
    ccxt_types = ["spot"] if market_type == "spot" else ["linear"]
    client = exchange_client(exchange, options={"defaultType": market_type, "fetchMarkets": {"types": ccxt_types}})
    report = DiscoverReport(exchange=exchange, offline=markets_file is not None, tickers_used=False)
    tickers: dict | None
    if markets_file is not None:
        markets, tickers = load_markets_file(Path(markets_file))
        client.set_markets(markets)
        if tickers is None:
            if min_quote_volume is not None:
                raise ValueError(
                    f"{markets_file}: the file has no tickers, so --min-quote-volume cannot apply offline "
                    "(save the file with tickers, or drop the option)"
                )
            report.notes.append("offline: markets from file, no tickers in it (24 h volume unknown)")
        else:
            report.notes.append("offline: markets and tickers from file, no network call")
    else:
        exchange_call(exchange, client.load_markets)
        tickers = exchange_call(exchange, client.fetch_tickers)
    report.tickers_used = tickers is not None
    if save_markets_file is not None:
        Path(save_markets_file).write_text(json.dumps({"markets": client.markets, "tickers": tickers}, default=str))

    selected = []
    for symbol in sorted(client.markets):
        market = client.markets[symbol]
        if _ccxt_market_type(market) != market_type:
            continue
        if quote and market.get("quote") != quote.upper():
            continue
        if market.get("active") is False:
            continue
        report.considered += 1
        volume = None
        if tickers is not None:
            volume = (tickers.get(symbol) or {}).get("quoteVolume")
        if min_quote_volume is not None and (volume is None or float(volume) < min_quote_volume):
            continue
        selected.append((market, None if volume is None else float(volume)))

    exchange_row = exchange_ensure(code=exchange)
    for market, volume in selected:
        row, action = market_upsert_ccxt(exchange=exchange_row, market=market)
        report.markets.append(DiscoveredMarket(row.symbol, action, row.precision, row.limits, volume))
    return report
