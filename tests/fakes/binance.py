"""A fake Binance REST server on loopback that speaks Binance's real response shapes.

It serves the bundled real candles (``trading/data/bundled``) and static market metadata for
exactly the endpoints ccxt's ``binance`` class calls for spot and USDT-M perpetuals:

========================================  ===================================================
``GET /api/v3/ping``, ``/fapi/v1/ping``   ``{}``
``GET /api/v3/time``, ``/fapi/v1/time``   ``{"serverTime": ms}`` (the simulated clock)
``GET /api/v3/exchangeInfo``              spot symbols with PRICE_FILTER, LOT_SIZE, NOTIONAL
``GET /fapi/v1/exchangeInfo``             PERPETUAL contracts with PRICE_FILTER, LOT_SIZE, MIN_NOTIONAL
``GET /api/v3/ticker/24hr`` (+ fapi)      24 h statistics from the last 24 h of candles
``GET /api/v3/klines`` (+ fapi)           ``[openTime, "o", "h", "l", "c", "v", closeTime,
                                          "quoteVolume", trades, "takerBase", "takerQuote", "0"]``;
                                          fapi: ``<data>/futures/<SYM>-<tf>.csv.gz`` then the spot file
``GET /fapi/v1/markPriceKlines``          mark candles of ``<data>/futures/<SYM>-<tf>-mark.csv.gz``
                                          (klines shape, volume fields ``"0"``)
``GET /fapi/v1/fundingRate``              ``[{"symbol", "fundingTime", "fundingRate", "markPrice"}]``
                                          from ``<data>/futures/<SYM>-funding.csv.gz``
========================================  ===================================================

klines honour ``symbol``, ``interval``, ``startTime``, ``endTime`` and ``limit`` as Binance
does: default limit 500, maximum 1000 (more: HTTP 400 code -1130); with ``startTime`` the
first ``limit`` candles opening at or after it (and at or before ``endTime``); with only
``endTime`` the last ``limit`` candles opening at or before it; with neither the latest
``limit``. Unknown symbol: HTTP 400 ``{"code": -1121, "msg": "Invalid symbol."}``.

Knobs for tests:

- ``now_ms``: the server clock (``/time``); candles opening after it are not served and the
  one containing it is the still-open candle. None (default) = the real clock.
- ``fail_next(status, times=1, after=0)``: the next requests (after ``after`` good ones) answer HTTP 503 (HTML), 429 / 418 (Binance's
  JSON with ``Retry-After``) or any other status.
- ``fail_route(method, path, status, times=1)``: the same for one route only (``POST /api/v3/order``).
- ``delay``: seconds to sleep before answering (timeouts).
- ``set_klines(symbol, interval, rows)``: serve these candles instead of the bundled ones.
- ``stop()``: closes the socket, so connecting is refused.
- ``requests``: every request received (:class:`LoggedRequest`), ``klines_requests()``.
- ``private``: signed account and order endpoints (``tests/fakes/binance_private.py``).
"""

from __future__ import annotations

import json
import threading
import time
from dataclasses import dataclass, field
from decimal import Decimal
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from urllib.parse import parse_qsl, urlsplit

from django.conf import settings

from market7.timeframes import TIMEFRAME_MS

# symbol: (base, quote, tickSize, stepSize, minNotional, status)
SPOT_SYMBOLS: dict[str, tuple[str, str, str, str, str, str]] = {
    "BTCUSDT": ("BTC", "USDT", "0.01", "0.00001", "5", "TRADING"),
    "ETHUSDT": ("ETH", "USDT", "0.01", "0.0001", "5", "TRADING"),
    "SOLUSDT": ("SOL", "USDT", "0.01", "0.001", "5", "TRADING"),
    "BNBUSDT": ("BNB", "USDT", "0.01", "0.001", "5", "TRADING"),
    "XRPUSDT": ("XRP", "USDT", "0.0001", "0.1", "5", "TRADING"),
    "ADAUSDT": ("ADA", "USDT", "0.0001", "0.1", "5", "TRADING"),
    "DOGEUSDT": ("DOGE", "USDT", "0.00001", "1", "1", "TRADING"),
    "LINKUSDT": ("LINK", "USDT", "0.01", "0.01", "5", "TRADING"),
    "AVAXUSDT": ("AVAX", "USDT", "0.01", "0.01", "5", "TRADING"),
    "LTCUSDT": ("LTC", "USDT", "0.01", "0.001", "5", "TRADING"),
    "PEPEUSDT": ("PEPE", "USDT", "0.00000001", "1", "1", "TRADING"),
    "ETHBTC": ("ETH", "BTC", "0.00001", "0.0001", "0.0001", "TRADING"),
    "LUNAUSDT": ("LUNA", "USDT", "0.0001", "0.01", "5", "BREAK"),
}
# Fixed 24 h quote volumes (quote currency) for symbols without bundled candles.
STATIC_QUOTE_VOLUME = {"PEPEUSDT": "12345678.90000000", "ETHBTC": "1234.50000000", "LUNAUSDT": "0.00000000"}
SWAP_SYMBOLS = ("BTCUSDT", "ETHUSDT", "SOLUSDT")

ERROR_BODIES = {
    429: {
        "code": -1003,
        "msg": "Too many requests; current limit of IP(127.0.0.1) is 6000 requests per minute. "
        "Please use the websocket for live updates to avoid polling the API.",
    },
    418: {
        "code": -1003,
        "msg": "Way too many requests; IP(127.0.0.1) banned until 1900000000000. "
        "Please use the websocket for live updates to avoid bans.",
    },
}


def _dec8(value: str | Decimal) -> str:
    """Binance writes spot decimals with 8 places: ``87281.98`` -> ``87281.98000000``."""
    return f"{Decimal(value):.8f}"


@dataclass(frozen=True)
class LoggedRequest:
    method: str
    path: str
    params: dict[str, str]
    status: int
    at: float = field(compare=False)


class _Klines:
    """Candles of one (symbol, interval): open times (ms) and the rows' decimal strings."""

    def __init__(self, rows: list[tuple[int, str, str, str, str, str]]):
        self.rows = rows
        self.times = [row[0] for row in rows]


def _load_file(path: Path) -> _Klines:
    import gzip

    with gzip.open(path, "rt") as handle:
        lines = handle.read().splitlines()[1:]
    rows = []
    for line in lines:
        t, o, h, lo, c, v = line.split(",")
        rows.append((int(t), o, h, lo, c, v))
    return _Klines(rows)


class FakeBinance:
    """A running fake (after :meth:`start`); see the module docstring for the knobs."""

    def __init__(self, *, data_dir: Path | str | None = None, now_ms: int | None = None):
        self.data_dir = Path(data_dir or settings.MARKET7_BUNDLED_DATA)
        self.now_ms = now_ms
        self.delay = 0.0
        self.requests: list[LoggedRequest] = []
        self.private = None  # tests.fakes.binance_private.FakeBinancePrivate: signed endpoints
        self._failures: list[int | None] = []  # per upcoming request: a status to fail with, or None
        self._route_failures: dict[tuple[str, str], list[int]] = {}  # (method, path) -> statuses
        self._klines: dict[tuple[str, str], _Klines] = {}
        self._overridden: set[tuple[str, str]] = set()  # (symbol, interval) given by set_klines
        self._lock = threading.Lock()
        self._server: ThreadingHTTPServer | None = None
        self._thread: threading.Thread | None = None
        self.base_url = ""

    # --- lifecycle ---------------------------------------------------------------------------

    def start(self) -> FakeBinance:
        fake = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.0"  # one request per connection: stop() refuses at once

            def do_GET(self):  # noqa: N802 (http.server API)
                fake._handle(self)

            do_POST = do_DELETE = do_GET  # noqa: N815 (signed endpoints: tests/fakes/binance_private.py)

            def log_message(self, *args):  # keep test output clean
                pass

        self._server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self._server.daemon_threads = True
        self.port = self._server.server_address[1]
        self.base_url = f"http://127.0.0.1:{self.port}"
        self._thread = threading.Thread(
            target=self._server.serve_forever, args=(0.05,), name="fake-binance", daemon=True
        )
        self._thread.start()
        return self

    def stop(self) -> None:
        """Stop serving and close the socket: connections to ``base_url`` are refused afterwards."""
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()
            self._server = None

    def __enter__(self) -> FakeBinance:
        return self.start()

    def __exit__(self, *exc) -> None:
        self.stop()

    # --- knobs ---------------------------------------------------------------------------------

    def fail_next(self, status: int, times: int = 1, *, after: int = 0) -> None:
        """Answer ``times`` requests with HTTP ``status`` (503, 429, 418, ...), after letting
        the next ``after`` requests through normally."""
        with self._lock:
            self._failures.extend([None] * after + [status] * times)

    def fail_route(self, method: str, path: str, status: int, times: int = 1) -> None:
        """Answer the next ``times`` requests to ``method path`` (e.g. ``POST /api/v3/order``)
        with HTTP ``status``; other requests go through."""
        with self._lock:
            self._route_failures.setdefault((method, path), []).extend([status] * times)

    def set_klines(self, symbol: str, interval: str, rows: list[list | tuple]) -> None:
        """Serve ``rows`` (``[open_ms, open, high, low, close, volume]``) for symbol/interval."""
        self._klines[(symbol, interval)] = _Klines([(int(r[0]), *(str(x) for x in r[1:6])) for r in rows])
        self._overridden.add((symbol, interval))

    def klines_requests(self) -> list[dict[str, str]]:
        """Query parameters of every klines request, in order (spot and futures)."""
        return [r.params for r in self.requests if r.path.endswith("/klines")]

    def paths(self) -> list[str]:
        return [r.path for r in self.requests]

    # --- data ----------------------------------------------------------------------------------

    def server_time(self) -> int:
        return self.now_ms if self.now_ms is not None else int(time.time() * 1000)

    def klines(self, symbol: str, interval: str) -> _Klines | None:
        key = (symbol, interval)
        if key not in self._klines:
            path = self.data_dir / f"{symbol}-{interval}.csv.gz"
            if not path.exists():
                return None
            self._klines[key] = _load_file(path)
        return self._klines[key]

    # --- HTTP ----------------------------------------------------------------------------------

    def _handle(self, handler: BaseHTTPRequestHandler) -> None:
        parts = urlsplit(handler.path)
        length = int(handler.headers.get("Content-Length") or 0)
        raw = handler.rfile.read(length).decode() if length else parts.query
        params = dict(parse_qsl(raw, keep_blank_values=True))
        if self.delay:
            time.sleep(self.delay)
        with self._lock:
            failure = self._failures.pop(0) if self._failures else None
            queued = self._route_failures.get((handler.command, parts.path))
            if failure is None and queued:
                failure = queued.pop(0)
        routed = None
        if failure is not None:
            routed = self._failure(failure)
        elif self.private is not None:
            routed = self.private.route(handler.command, parts.path, raw, params, handler.headers)
        status, body, headers = routed or self._route(parts.path, params)
        self.requests.append(LoggedRequest(handler.command, parts.path, params, status, time.time()))
        data = body if isinstance(body, bytes) else json.dumps(body, separators=(",", ":")).encode()
        handler.send_response(status)
        content_type = "text/html" if isinstance(body, bytes) else "application/json;charset=UTF-8"
        handler.send_header("Content-Type", content_type)
        handler.send_header("Content-Length", str(len(data)))
        for name, value in headers.items():
            handler.send_header(name, value)
        handler.end_headers()
        handler.wfile.write(data)

    def _failure(self, status: int):
        if status in ERROR_BODIES:
            return status, ERROR_BODIES[status], {"Retry-After": "1"}
        if status >= 500:
            return status, b"<html><body><h1>503 Service Temporarily Unavailable</h1></body></html>", {}
        return status, {"code": -1000, "msg": "An unknown error occurred while processing the request."}, {}

    def _route(self, path: str, params: dict[str, str]):
        futures = path.startswith("/fapi/")
        tail = path.split("/", 3)[-1] if path.count("/") >= 3 else ""
        if path not in {f"/api/v3/{tail}", f"/fapi/v1/{tail}"}:
            return 404, b"<html><body>Not Found</body></html>", {}
        if tail == "ping":
            return 200, {}, {}
        if tail == "time":
            return 200, {"serverTime": self.server_time()}, {}
        if tail == "exchangeInfo":
            return 200, self._exchange_info(futures), {}
        if tail == "ticker/24hr":
            return self._tickers(params, futures)
        if tail == "klines":
            return self._klines_response(params, futures)
        if futures and tail == "markPriceKlines":
            return self._klines_response(params, futures, mark=True)
        if futures and tail == "fundingRate":
            return self._funding_response(params)
        return 404, b"<html><body>Not Found</body></html>", {}

    def _error(self, code: int, msg: str):
        return 400, {"code": code, "msg": msg}, {}

    def _exchange_info(self, futures: bool) -> dict:
        now = self.server_time()
        limits = [
            {"rateLimitType": "REQUEST_WEIGHT", "interval": "MINUTE", "intervalNum": 1, "limit": 6000},
            {"rateLimitType": "ORDERS", "interval": "SECOND", "intervalNum": 10, "limit": 100},
        ]
        symbols = []
        for symbol, (base, quote, tick, step, notional, status) in SPOT_SYMBOLS.items():
            if futures:
                if symbol not in SWAP_SYMBOLS:
                    continue
                symbols.append(
                    {
                        "symbol": symbol,
                        "pair": symbol,
                        "contractType": "PERPETUAL",
                        "deliveryDate": 4133404800000,
                        "onboardDate": 1569398400000,
                        "status": status,
                        "maintMarginPercent": "2.5000",
                        "requiredMarginPercent": "5.0000",
                        "baseAsset": base,
                        "quoteAsset": quote,
                        "marginAsset": quote,
                        "pricePrecision": 2,
                        "quantityPrecision": 3,
                        "baseAssetPrecision": 8,
                        "quotePrecision": 8,
                        "underlyingType": "COIN",
                        "settlePlan": 0,
                        "triggerProtect": "0.0500",
                        "liquidationFee": "0.012500",
                        "marketTakeBound": "0.05",
                        "filters": [
                            {
                                "filterType": "PRICE_FILTER",
                                "minPrice": "0.10",
                                "maxPrice": "4529764",
                                "tickSize": "0.10",
                            },
                            {"filterType": "LOT_SIZE", "stepSize": "0.001", "maxQty": "1000", "minQty": "0.001"},
                            {"filterType": "MARKET_LOT_SIZE", "stepSize": "0.001", "maxQty": "120", "minQty": "0.001"},
                            {"filterType": "MAX_NUM_ORDERS", "limit": 200},
                            {"filterType": "MIN_NOTIONAL", "notional": "100"},
                        ],
                        "orderTypes": [
                            "LIMIT",
                            "MARKET",
                            "STOP",
                            "STOP_MARKET",
                            "TAKE_PROFIT",
                            "TAKE_PROFIT_MARKET",
                            "TRAILING_STOP_MARKET",
                        ],
                        "timeInForce": ["GTC", "IOC", "FOK", "GTX", "GTD"],
                    }
                )
                continue
            symbols.append(
                {
                    "symbol": symbol,
                    "status": status,
                    "baseAsset": base,
                    "baseAssetPrecision": 8,
                    "quoteAsset": quote,
                    "quotePrecision": 8,
                    "quoteAssetPrecision": 8,
                    "baseCommissionPrecision": 8,
                    "quoteCommissionPrecision": 8,
                    "orderTypes": [
                        "LIMIT",
                        "LIMIT_MAKER",
                        "MARKET",
                        "STOP_LOSS",
                        "STOP_LOSS_LIMIT",
                        "TAKE_PROFIT",
                        "TAKE_PROFIT_LIMIT",
                    ],
                    "icebergAllowed": True,
                    "ocoAllowed": True,
                    "otoAllowed": True,
                    "quoteOrderQtyMarketAllowed": True,
                    "allowTrailingStop": True,
                    "cancelReplaceAllowed": True,
                    "isSpotTradingAllowed": True,
                    "isMarginTradingAllowed": quote == "USDT",
                    "filters": [
                        {
                            "filterType": "PRICE_FILTER",
                            "minPrice": _dec8(tick),
                            "maxPrice": "1000000.00000000",
                            "tickSize": _dec8(tick),
                        },
                        {
                            "filterType": "LOT_SIZE",
                            "minQty": _dec8(step),
                            "maxQty": "9000000.00000000",
                            "stepSize": _dec8(step),
                        },
                        {"filterType": "ICEBERG_PARTS", "limit": 10},
                        {
                            "filterType": "MARKET_LOT_SIZE",
                            "minQty": "0.00000000",
                            "maxQty": "100000.00000000",
                            "stepSize": "0.00000000",
                        },
                        {
                            "filterType": "TRAILING_DELTA",
                            "minTrailingAboveDelta": 10,
                            "maxTrailingAboveDelta": 2000,
                            "minTrailingBelowDelta": 10,
                            "maxTrailingBelowDelta": 2000,
                        },
                        {
                            "filterType": "PERCENT_PRICE_BY_SIDE",
                            "bidMultiplierUp": "5",
                            "bidMultiplierDown": "0.2",
                            "askMultiplierUp": "5",
                            "askMultiplierDown": "0.2",
                            "avgPriceMins": 5,
                        },
                        {
                            "filterType": "NOTIONAL",
                            "minNotional": _dec8(notional),
                            "applyMinToMarket": True,
                            "maxNotional": "9000000.00000000",
                            "applyMaxToMarket": False,
                            "avgPriceMins": 5,
                        },
                        {"filterType": "MAX_NUM_ORDERS", "maxNumOrders": 200},
                        {"filterType": "MAX_NUM_ALGO_ORDERS", "maxNumAlgoOrders": 5},
                    ],
                    "permissions": [],
                    "permissionSets": [["SPOT", "MARGIN"]],
                    "defaultSelfTradePreventionMode": "EXPIRE_MAKER",
                    "allowedSelfTradePreventionModes": ["EXPIRE_TAKER", "EXPIRE_MAKER", "EXPIRE_BOTH"],
                }
            )
        info = {"timezone": "UTC", "serverTime": now, "rateLimits": limits, "exchangeFilters": [], "symbols": symbols}
        if futures:
            info["assets"] = [{"asset": "USDT", "marginAvailable": True, "autoAssetExchange": "-10000"}]
        return info

    def _ticker(self, symbol: str) -> dict:
        now = self.server_time()
        data = self.klines(symbol, "1h")
        base = {
            "symbol": symbol,
            "firstId": 1,
            "lastId": 1000,
            "count": 1000,
            "closeTime": now,
            "openTime": now - 86_400_000,
        }
        rows = [] if data is None else [r for r in data.rows if r[0] + 3_600_000 <= now][-24:]
        if not rows:
            volume = STATIC_QUOTE_VOLUME.get(symbol, "0")
            return {
                **base,
                "priceChange": "0.00000000",
                "priceChangePercent": "0.000",
                "weightedAvgPrice": "0.00000000",
                "prevClosePrice": "0.00000000",
                "lastPrice": "0.00000000",
                "lastQty": "0.00000000",
                "bidPrice": "0.00000000",
                "bidQty": "0.00000000",
                "askPrice": "0.00000000",
                "askQty": "0.00000000",
                "openPrice": "0.00000000",
                "highPrice": "0.00000000",
                "lowPrice": "0.00000000",
                "volume": "0.00000000",
                "quoteVolume": _dec8(volume),
            }
        open_, last = Decimal(rows[0][1]), Decimal(rows[-1][4])
        volume = sum(Decimal(r[5]) for r in rows)
        quote_volume = sum(Decimal(r[4]) * Decimal(r[5]) for r in rows)
        return {
            **base,
            "priceChange": _dec8(last - open_),
            "priceChangePercent": f"{(last / open_ - 1) * 100:.3f}",
            "weightedAvgPrice": _dec8(quote_volume / volume if volume else 0),
            "prevClosePrice": _dec8(rows[-2][4] if len(rows) > 1 else rows[0][1]),
            "lastPrice": _dec8(last),
            "lastQty": "0.01000000",
            "bidPrice": _dec8(last),
            "bidQty": "1.00000000",
            "askPrice": _dec8(last),
            "askQty": "1.00000000",
            "openPrice": _dec8(open_),
            "highPrice": _dec8(max(Decimal(r[2]) for r in rows)),
            "lowPrice": _dec8(min(Decimal(r[3]) for r in rows)),
            "volume": _dec8(volume),
            "quoteVolume": _dec8(quote_volume),
            "openTime": rows[0][0],
            "closeTime": rows[-1][0] + 3_600_000 - 1,
        }

    def _tickers(self, params: dict[str, str], futures: bool):
        universe = [s for s in SPOT_SYMBOLS if not futures or s in SWAP_SYMBOLS]
        if "symbol" in params:
            if params["symbol"] not in universe:
                return self._error(-1121, "Invalid symbol.")
            return 200, self._ticker(params["symbol"]), {}
        if "symbols" in params:
            wanted = json.loads(params["symbols"])
            unknown = [s for s in wanted if s not in universe]
            if unknown:
                return self._error(-1121, "Invalid symbol.")
            universe = wanted
        return 200, [self._ticker(s) for s in universe], {}

    def futures_file(self, symbol: str, suffix: str) -> _Klines | None:
        """Rows of ``<data_dir>/futures/<symbol><suffix>.csv.gz`` (mark candles, funding), cached."""
        key = (symbol, suffix)
        if key not in self._klines:
            path = self.data_dir / "futures" / f"{symbol}{suffix}.csv.gz"
            if not path.exists():
                return None
            import gzip

            with gzip.open(path, "rt") as handle:
                rows = [line.split(",") for line in handle.read().splitlines()[1:]]
            self._klines[key] = _Klines([(int(r[0]), *r[1:]) for r in rows])
        return self._klines[key]

    def futures_klines(self, symbol: str, interval: str) -> _Klines | None:
        """Last-price candles of the futures API (``/fapi/v1/klines``): the USDT-M file
        ``<data_dir>/futures/<symbol>-<interval>.csv.gz`` (BTC: 2024-07-22 .. 08-18), then the
        spot file's later candles (2025-03 .. 08), so the perpetual subset and the spot period
        are both served; candles given by ``set_klines`` replace both."""
        if (symbol, interval) in self._overridden:
            return self._klines[(symbol, interval)]
        key = (symbol, f"{interval}:futures")
        if key not in self._klines:
            futures = self.futures_file(symbol, f"-{interval}")
            spot = self.klines(symbol, interval)
            rows = list(futures.rows) if futures else []
            last = rows[-1][0] if rows else -1
            rows += [r for r in (spot.rows if spot else []) if r[0] > last]
            self._klines[key] = _Klines(rows)
        return self._klines[key]

    def _funding_response(self, params: dict[str, str]):
        """``GET /fapi/v1/fundingRate``: ``[{"symbol", "fundingRate", "fundingTime", "markPrice"}]``,
        ascending; default limit 100, maximum 1000. Every other event carries Binance's few ms of
        ``fundingTime`` jitter (+8 ms), as the raw API does."""
        symbol = params.get("symbol", "")
        if symbol not in SWAP_SYMBOLS:
            return self._error(-1121, "Invalid symbol.")
        limit = int(params.get("limit", 100))
        if limit < 1 or limit > 1000:
            return self._error(-1130, "Invalid data sent for a parameter.")
        start = int(params["startTime"]) if "startTime" in params else None
        end = int(params["endTime"]) if "endTime" in params else None
        data = self.futures_file(symbol, "-funding")
        marks = self.futures_file(symbol, "-1h-mark")
        mark_at = {r[0]: r[1] for r in marks.rows} if marks else {}
        events = [(t + (8 if k % 2 else 0), rate) for k, (t, rate) in enumerate(data.rows if data else [])]
        events = [e for e in events if e[0] <= self.server_time()]
        if end is not None:
            events = [e for e in events if e[0] <= end]
        events = [e for e in events if e[0] >= start][:limit] if start is not None else events[-limit:]
        return (
            200,
            [
                {
                    "symbol": symbol,
                    "fundingTime": t,
                    "fundingRate": f"{Decimal(rate):.8f}",
                    "markPrice": _dec8(mark_at[t - t % 3_600_000]) if t - t % 3_600_000 in mark_at else "",
                }
                for t, rate in events
            ],
            {},
        )

    def _klines_response(self, params: dict[str, str], futures: bool, mark: bool = False):
        symbol, interval = params.get("symbol"), params.get("interval")
        if not symbol:
            return self._error(-1102, "Mandatory parameter 'symbol' was not sent, was empty/null, or malformed.")
        if not interval:
            return self._error(-1102, "Mandatory parameter 'interval' was not sent, was empty/null, or malformed.")
        if interval not in TIMEFRAME_MS:
            return self._error(-1120, "Invalid interval.")
        if symbol not in SPOT_SYMBOLS or (futures and symbol not in SWAP_SYMBOLS):
            return self._error(-1121, "Invalid symbol.")
        try:
            limit = int(params.get("limit", 500))
            start = int(params["startTime"]) if "startTime" in params else None
            end = int(params["endTime"]) if "endTime" in params else None
        except ValueError:
            return self._error(-1100, "Illegal characters found in a parameter.")
        max_limit = 1500 if futures else 1000
        if limit < 1 or limit > max_limit:
            return self._error(-1130, "Invalid data sent for a parameter.")
        tf = TIMEFRAME_MS[interval]
        now = self.server_time()
        if mark:
            data = self.futures_file(symbol, f"-{interval}-mark")
        elif futures:
            data = self.futures_klines(symbol, interval)
        else:
            data = self.klines(symbol, interval)
        rows = [] if data is None else [r for r in data.rows if r[0] <= now]
        if end is not None:
            rows = [r for r in rows if r[0] <= end]
        if start is not None:
            rows = [r for r in rows if r[0] >= start][:limit]
        else:
            rows = rows[-limit:]
        out = []
        if mark:  # Binance markPriceKlines: no volume, the volume-like fields are "0"
            return 200, [[t, o, h, lo, c, "0", t + tf - 1, "0", 0, "0", "0", "0"] for t, o, h, lo, c, _ in rows], {}
        for t, o, h, lo, c, v in rows:
            quote_volume = Decimal(c) * Decimal(v)
            out.append(
                [
                    t,
                    _dec8(o),
                    _dec8(h),
                    _dec8(lo),
                    _dec8(c),
                    _dec8(v),
                    t + tf - 1,
                    _dec8(quote_volume),
                    1000,
                    _dec8(Decimal(v) / 2),
                    _dec8(quote_volume / 2),
                    "0",
                ]
            )
        return 200, out, {}
