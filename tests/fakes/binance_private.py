"""Signed (private) Binance spot endpoints for :class:`~tests.fakes.binance.FakeBinance`.

Attach with ``fake.private = FakeBinancePrivate(fake)`` (the ``fake_binance_private`` fixture
does). Requests are authenticated as Binance does: header ``X-MBX-APIKEY``, HMAC-SHA256 of the
query string (GET/DELETE) or form body (POST) up to ``&signature=``, ``timestamp`` within
``recvWindow`` of the server clock. Real error shapes:

- unknown key, key used from an IP not on its allow-list, or a trading call on a key without
  trading: HTTP 401 ``{"code": -2015, "msg": "Invalid API-key, IP, or permissions for action."}``
- malformed key: HTTP 401 ``-2014 API-key format invalid.``
- wrong secret: HTTP 400 ``-1022 Signature for this request is not valid.``
- clock skew: HTTP 400 ``-1021 Timestamp for this request is outside of the recvWindow.``

Endpoints: ``GET /api/v3/account`` (balances, ``canTrade``/``canWithdraw``/``canDeposit``,
``permissions``), ``POST/GET/DELETE /api/v3/order``, ``GET /api/v3/openOrders``,
``GET /api/v3/myTrades``. Market orders fill at once at ``prices[symbol]`` (taker fee 0.1 % in
the quote asset); limit orders rest (``NEW``) until :meth:`FakeBinancePrivate.fill` fills them,
wholly or partly. A ``newClientOrderId`` equal to an *open* order's is ``-2010 Duplicate order
sent.`` (Binance reuses ids of closed orders, so a client must look an id up before re-placing).

Knobs: ``add_key(key, secret, can_trade=True, can_withdraw=False, ip_allowed=True)``,
``balances``, ``prices``, ``clock_offset_ms`` (server clock minus real clock),
``accept_then_hang(seconds)`` (the next order is recorded, then the answer is held that long:
a client timeout after the exchange accepted), ``fail_cancel(client_order_id, status, body)``
(cancelling that order answers with this error, e.g. a 503 or ``-1003`` rate limit), ``orders``
(by clientOrderId). Fills move ``balances`` (``free``): a buy spends the quote and receives the
base less nothing (the fee is charged in the quote), a sell (e.g. the kill switch's market sell
of the base) spends the base and receives the quote less the fee; a sell of more base than is
free is ``-2010 Account has insufficient balance for requested action.``
"""

from __future__ import annotations

import hashlib
import hmac
import itertools
import time
from decimal import Decimal

from tests.fakes.binance import SPOT_SYMBOLS, _dec8

ERR_2015 = {"code": -2015, "msg": "Invalid API-key, IP, or permissions for action."}
ERR_2014 = {"code": -2014, "msg": "API-key format invalid."}
ERR_1022 = {"code": -1022, "msg": "Signature for this request is not valid."}
ERR_1021 = {"code": -1021, "msg": "Timestamp for this request is outside of the recvWindow."}
ERR_2013 = {"code": -2013, "msg": "Order does not exist."}
ERR_2010 = {"code": -2010, "msg": "Duplicate order sent."}
ERR_2010_FUNDS = {"code": -2010, "msg": "Account has insufficient balance for requested action."}
FEE = Decimal("0.001")


class FakeBinancePrivate:
    def __init__(self, fake):
        self.fake = fake
        self.keys: dict[str, dict] = {}
        self.balances: dict[str, tuple[str, str]] = {"USDT": ("1000.00000000", "0.00000000")}
        self.prices: dict[str, str] = {"BTCUSDT": "60000.00"}
        self.clock_offset_ms = 0
        self.orders: dict[str, dict] = {}
        self.trades: list[dict] = []
        self._hang_next = 0.0
        self._cancel_faults: dict[str, tuple[int, dict]] = {}
        self._ids = itertools.count(1000)
        self.signed: list[tuple[str, str, str]] = []  # (method, path, API key) of signed requests

    # --- knobs -----------------------------------------------------------------------------
    def add_key(self, key: str, secret: str, *, can_trade=True, can_withdraw=False, ip_allowed=True) -> None:
        self.keys[key] = {"secret": secret, "can_trade": can_trade, "can_withdraw": can_withdraw, "ip": ip_allowed}

    def accept_then_hang(self, seconds: float) -> None:
        self._hang_next = seconds

    def fail_cancel(self, client_order_id: str, status: int = 503, body: dict | None = None) -> None:
        """Every cancel of ``client_order_id`` answers ``status`` with ``body`` (the order stays)."""
        self._cancel_faults[client_order_id] = (status, body or {"code": -1001, "msg": "Internal error."})

    def fill(self, client_order_id: str, qty: str, price: str | None = None) -> None:
        """Fill ``qty`` more of a resting order (at its limit price unless ``price``)."""
        o = self.orders[client_order_id]
        self._execute(o, Decimal(qty), Decimal(price or o["price"]), maker=True)

    # --- routing (called by FakeBinance._handle) -----------------------------------------------
    ROUTES = {
        ("GET", "/api/v3/account"),
        ("POST", "/api/v3/order"),
        ("GET", "/api/v3/order"),
        ("DELETE", "/api/v3/order"),
        ("GET", "/api/v3/openOrders"),
        ("GET", "/api/v3/myTrades"),
    }

    def route(self, method: str, path: str, raw: str, params: dict[str, str], headers) -> tuple | None:
        if (method, path) not in self.ROUTES:
            return None
        key = headers.get("X-MBX-APIKEY", "")
        self.signed.append((method, path, key))
        account = self.keys.get(key)
        if not key or len(key) < 8 or not key.isalnum():
            return 401, ERR_2014, {}
        if account is None or not account["ip"]:
            return 401, ERR_2015, {}
        payload, _, signature = raw.rpartition("&signature=")
        good = hmac.new(account["secret"].encode(), payload.encode(), hashlib.sha256).hexdigest()
        if not hmac.compare_digest(good, signature):
            return 400, ERR_1022, {}
        now = int(time.time() * 1000) + self.clock_offset_ms
        stamp, window = int(params.get("timestamp", 0)), int(params.get("recvWindow", 5000))
        if stamp > now + 1000 or now - stamp > window:
            return 400, ERR_1021, {}
        if path == "/api/v3/account":
            return 200, self._account(account, now), {}
        if path == "/api/v3/myTrades":
            return 200, [t for t in self.trades if t["symbol"] == params.get("symbol")], {}
        if path == "/api/v3/openOrders":
            open_ = [o for o in self.orders.values() if o["status"] in ("NEW", "PARTIALLY_FILLED")]
            if "symbol" in params:
                open_ = [o for o in open_ if o["symbol"] == params["symbol"]]
            return 200, [self._view(o) for o in open_], {}
        if method == "POST":
            if not account["can_trade"]:
                return 401, ERR_2015, {}
            return self._place(params, now)
        o = self._find(params)
        if o is None:
            return 400, ERR_2013, {}
        if method == "DELETE":
            if o["clientOrderId"] in self._cancel_faults:
                status, body = self._cancel_faults[o["clientOrderId"]]
                return status, body, {}
            if o["status"] not in ("NEW", "PARTIALLY_FILLED"):
                return 400, {"code": -2011, "msg": "Unknown order sent."}, {}
            o["status"] = "CANCELED"
        return 200, self._view(o), {}

    # --- state -------------------------------------------------------------------------------
    def _account(self, account: dict, now: int) -> dict:
        return {
            "makerCommission": 10,
            "takerCommission": 10,
            "buyerCommission": 0,
            "sellerCommission": 0,
            "commissionRates": {
                "maker": "0.00100000",
                "taker": "0.00100000",
                "buyer": "0.00000000",
                "seller": "0.00000000",
            },
            "canTrade": account["can_trade"],
            "canWithdraw": account["can_withdraw"],
            "canDeposit": True,
            "brokered": False,
            "requireSelfTradePrevention": False,
            "preventSor": False,
            "updateTime": now - 60_000,
            "accountType": "SPOT",
            "balances": [{"asset": a, "free": f, "locked": lk} for a, (f, lk) in self.balances.items()],
            "permissions": ["SPOT"],
            "uid": 354937868,
        }

    def _find(self, params: dict[str, str]) -> dict | None:
        if "origClientOrderId" in params:
            return self.orders.get(params["origClientOrderId"])
        return next((o for o in self.orders.values() if str(o["orderId"]) == params.get("orderId")), None)

    def _place(self, params: dict[str, str], now: int):
        symbol = params.get("symbol", "")
        if symbol not in SPOT_SYMBOLS:
            return 400, {"code": -1121, "msg": "Invalid symbol."}, {}
        cid = params.get("newClientOrderId") or f"x-fake{next(self._ids)}"
        old = self.orders.get(cid)
        if old is not None and old["status"] in ("NEW", "PARTIALLY_FILLED"):
            return 400, ERR_2010, {}
        o = {
            "symbol": symbol,
            "orderId": next(self._ids),
            "clientOrderId": cid,
            "price": params.get("price", "0"),
            "origQty": params["quantity"],
            "executedQty": Decimal("0"),
            "cummulativeQuoteQty": Decimal("0"),
            "status": "NEW",
            "timeInForce": params.get("timeInForce", "GTC"),
            "type": params["type"],
            "side": params["side"],
            "time": now,
            "updateTime": now,
            "fills": [],
        }
        if o["type"] == "MARKET" and o["side"] == "SELL":
            base = SPOT_SYMBOLS[symbol][0]
            if Decimal(self.balances.get(base, ("0", "0"))[0]) < Decimal(o["origQty"]):
                return 400, ERR_2010_FUNDS, {}
        self.orders[cid] = o
        if o["type"] == "MARKET":
            self._execute(o, Decimal(o["origQty"]), Decimal(self.prices[symbol]), maker=False)
        if self._hang_next:
            hang, self._hang_next = self._hang_next, 0.0
            time.sleep(hang)  # accepted and recorded; the client has timed out by now
        return 200, {**self._view(o), "transactTime": now, "fills": o["fills"]}, {}

    def _execute(self, o: dict, qty: Decimal, price: Decimal, *, maker: bool) -> None:
        base, quote = SPOT_SYMBOLS[o["symbol"]][:2]
        fee = (qty * price * FEE).quantize(Decimal("1e-8"))
        trade_id = next(self._ids)
        o["executedQty"] += qty
        o["cummulativeQuoteQty"] += qty * price
        o["status"] = "FILLED" if o["executedQty"] >= Decimal(o["origQty"]) else "PARTIALLY_FILLED"
        sign = 1 if o["side"] == "BUY" else -1
        self._credit(base, sign * qty)
        self._credit(quote, -sign * qty * price - fee)
        o["fills"].append(
            {
                "price": _dec8(price),
                "qty": _dec8(qty),
                "commission": _dec8(fee),
                "commissionAsset": quote,
                "tradeId": trade_id,
            }
        )
        self.trades.append(
            {
                "symbol": o["symbol"],
                "id": trade_id,
                "orderId": o["orderId"],
                "orderListId": -1,
                "price": _dec8(price),
                "qty": _dec8(qty),
                "quoteQty": _dec8(qty * price),
                "commission": _dec8(fee),
                "commissionAsset": quote,
                "time": int(time.time() * 1000),
                "isBuyer": o["side"] == "BUY",
                "isMaker": maker,
                "isBestMatch": True,
            }
        )

    def _credit(self, asset: str, delta: Decimal) -> None:
        free, locked = self.balances.get(asset, ("0", "0"))
        self.balances[asset] = (_dec8(Decimal(free) + delta), locked)

    def _view(self, o: dict) -> dict:
        return {
            "symbol": o["symbol"],
            "orderId": o["orderId"],
            "orderListId": -1,
            "clientOrderId": o["clientOrderId"],
            "price": _dec8(o["price"]),
            "origQty": _dec8(o["origQty"]),
            "executedQty": _dec8(o["executedQty"]),
            "cummulativeQuoteQty": _dec8(o["cummulativeQuoteQty"]),
            "status": o["status"],
            "timeInForce": o["timeInForce"],
            "type": o["type"],
            "side": o["side"],
            "stopPrice": "0.00000000",
            "icebergQty": "0.00000000",
            "time": o["time"],
            "updateTime": o["updateTime"],
            "isWorking": True,
            "workingTime": o["time"],
            "origQuoteOrderQty": "0.00000000",
            "selfTradePreventionMode": "EXPIRE_MAKER",
        }
