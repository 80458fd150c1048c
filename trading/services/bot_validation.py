"""Bot service errors, the acting-user checks and input validation (no writes).

Split out of :mod:`trading.services.bots` (which re-exports every public name here): the
error classes every bot service raises, :data:`SYSTEM` (the acting user of operator tools),
the permission check, and the validators of a bot's settings — strategy parameters, risk
block, capital, markets, order sizes and the replay window. Each validator raises
:class:`BotValidationError` (``.errors`` = ``{field: message}``) and writes nothing.
"""

from __future__ import annotations

from collections.abc import Iterable
from datetime import datetime
from decimal import Decimal, InvalidOperation
from typing import Any

from django.core.exceptions import PermissionDenied
from django.db.models import Max, Min
from django.utils import timezone

from market7.timeframes import TIMEFRAME_MS, dt_to_ms, ms_to_dt
from trading import brokers
from trading.models import Candle, Market

OPERATE_PERM = "trading.operate_bot"
ADD_PERM = "trading.add_bot"
CHANGE_PERM = "trading.change_bot"
MAX_CAPITAL = Decimal("1e15")


class _System:
    """The acting "user" of operator tools (management commands, Celery tasks): may operate any
    bot; audit entries have no user."""

    pk = None
    is_authenticated = True
    is_active = True
    username = "system"

    def has_perm(self, perm: str) -> bool:
        return True

    def __repr__(self) -> str:
        return "SYSTEM"


SYSTEM = _System()


class BotError(Exception):
    """Base of the bot service errors; ``str(exc)`` is a sentence for the user."""


class BotValidationError(BotError):
    """Invalid input. ``errors`` maps a field name (``params.take_profit`` for a strategy
    parameter, ``__all__`` for the whole) to a message."""

    def __init__(self, errors: dict[str, str]):
        self.errors = dict(errors)
        super().__init__("; ".join(f"{k}: {v}" for k, v in self.errors.items()))


class BotTransitionError(BotError):
    """The bot's status does not allow the operation."""


class LiveTradingDisabled(BotError, brokers.LiveTradingDisabled):
    """Live mode is not enabled in this version: a live bot refuses to start."""


class BotPermissionDenied(PermissionDenied, BotError):
    """The user's role lacks the permission (viewer trying to operate a bot)."""


# --- helpers --------------------------------------------------------------------------------


def _is_system(user) -> bool:
    return user is SYSTEM


def _require(user, perm: str, action: str) -> None:
    if user is None or not getattr(user, "is_authenticated", False) or not user.is_active:
        raise BotPermissionDenied(f"log in to {action}")
    if not user.has_perm(perm):
        raise BotPermissionDenied(f"your role cannot {action} (needs {perm})")


# --- validation -----------------------------------------------------------------------------


def strategy_validate_params(strategy: str, params: dict | None) -> dict:
    """Validate ``params`` with the strategy's schema; returns the validated (defaulted) dict.

    Unknown strategy: ``BotValidationError({"strategy": ...})``; invalid parameters:
    ``BotValidationError({"params.<field>": message, ...})``.
    """
    from strategies.registry import get_strategy, list_strategies

    # Only registered names: get_strategy() also imports dotted paths, which users must not reach.
    known = [s["name"] for s in list_strategies()]
    if strategy not in known:
        raise BotValidationError(
            {"strategy": f"unknown strategy {strategy!r}; known strategies: {', '.join(known) or 'none'}"}
        )
    cls = get_strategy(strategy)
    if params is not None and not isinstance(params, dict):
        raise BotValidationError({"params": "must be a JSON object"})
    try:
        validated = cls.validate_params(dict(params or {}))
    except Exception as exc:  # ParamError({field: message}) and friends
        errors = getattr(exc, "errors", None)
        if errors is None and exc.args and isinstance(exc.args[0], dict):
            errors = exc.args[0]
        if isinstance(errors, dict) and errors:
            raise BotValidationError({f"params.{k}": str(v) for k, v in errors.items()}) from None
        if type(exc).__name__ == "ParamError" or isinstance(exc, ValueError | TypeError):
            raise BotValidationError({"params": str(exc)}) from None
        raise
    return _json_safe(validated)


def bot_validate_risk(risk: dict | None) -> dict | None:
    """Validate a bot's ``risk`` block with the schema the backtest uses
    (``strategies.risk.risk_config_validate``); returns it complete (defaults filled in), or
    ``None`` for no portfolio risk. Errors: ``BotValidationError({"risk.<field>": message})``.
    """
    from strategies.risk import risk_config_validate

    if risk is None:
        return None
    if not isinstance(risk, dict):
        raise BotValidationError({"risk": "must be a JSON object (or null for no portfolio risk)"})
    try:
        return risk_config_validate(risk)
    except ValueError as exc:
        field, sep, message = str(exc).partition(": ")
        raise BotValidationError({f"risk.{field}" if sep else "risk": message if sep else str(exc)}) from None


def params_and_risk_validate(
    strategy: str, params: dict | None, risk: dict | None, errors: dict
) -> tuple[dict, dict | None]:
    """:func:`strategy_validate_params` and :func:`bot_validate_risk` together, as a bot and a
    preset both take them: returns ``(params, risk)`` validated and adds every field error of
    either to ``errors`` (the caller raises once with all its own errors too); on errors the
    returned parts are ``{}`` / ``None``."""
    validated, validated_risk = {}, None
    try:
        validated = strategy_validate_params(strategy, params)
    except BotValidationError as exc:
        errors.update(exc.errors)
    try:
        validated_risk = bot_validate_risk(risk)
    except BotValidationError as exc:
        errors.update(exc.errors)
    return validated, validated_risk


def scan_strategy_names() -> list[str]:
    """The scan detectors' names (``strategies.signals.DETECTORS``), sorted."""
    from strategies.signals import DETECTORS, get_detector

    try:  # the registry fills itself on the first lookup (built-in detectors register on import)
        get_detector("fork_score")
    except KeyError:
        pass
    return sorted(DETECTORS)


def signal_settings_validate(strategies: Any, min_score: Any) -> tuple[list[str], float]:
    """A bot's signal starts: ``strategies`` (a list of scan detector names of
    ``strategies.signals.DETECTORS``, or a comma-separated string; duplicates dropped, order
    kept; ``None`` = none) and ``min_score`` (a number 0..1; ``None`` = 0). Returns
    ``(strategies, min_score)``. Errors: ``BotValidationError({"signal_strategies" |
    "signal_min_score": message})``, every bad field at once."""
    known = scan_strategy_names()
    errors: dict[str, str] = {}
    names: list[str] = []
    if isinstance(strategies, str):
        strategies = [s.strip() for s in strategies.split(",") if s.strip()]
    if strategies is None:
        strategies = []
    if not isinstance(strategies, list | tuple) or not all(isinstance(s, str) for s in strategies):
        errors["signal_strategies"] = 'must be a list of strategy names, e.g. ["fork_score"]'
    else:
        names = list(dict.fromkeys(s.strip() for s in strategies if s.strip()))
        if unknown := [s for s in names if s not in known]:
            errors["signal_strategies"] = (
                f"unknown scan strateg{'y' if len(unknown) == 1 else 'ies'} {', '.join(unknown)}; use {', '.join(known)}"
            )
    score = 0.0
    try:
        if isinstance(min_score, bool):
            raise ValueError
        score = 0.0 if min_score is None or min_score == "" else float(min_score)
    except (TypeError, ValueError):
        errors["signal_min_score"] = "must be a number from 0 to 1"
    else:
        if not 0.0 <= score <= 1.0:  # NaN fails too
            errors["signal_min_score"] = "must be from 0 to 1 (a signal score)"
    if errors:
        raise BotValidationError(errors)
    return names, score


def _json_safe(value: Any) -> Any:
    if isinstance(value, dict):
        return {str(k): _json_safe(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_json_safe(v) for v in value]
    if isinstance(value, Decimal):
        return float(value)
    if hasattr(value, "item") and callable(value.item):  # numpy scalars
        return value.item()
    return value


def _parse_capital(value: Any) -> Decimal:
    try:
        capital = value if isinstance(value, Decimal) else Decimal(str(value).strip())
    except (InvalidOperation, ValueError):
        raise BotValidationError({"capital": f"{value!r} is not a number"}) from None
    if not capital.is_finite() or capital <= 0:
        raise BotValidationError({"capital": "must be greater than 0"})
    if capital >= MAX_CAPITAL:
        raise BotValidationError({"capital": "is too large"})
    return capital


def fmt_minute(when: datetime) -> str:
    """``YYYY-MM-DD HH:MM`` with a four-digit year (``strftime("%Y")`` gives ``1`` for year 1)."""
    return f"{when.year:04d}-{when:%m-%d %H:%M}"


SYMBOL_HINT = "give ccxt symbols such as BTC/USDT (BTC/USDT:USDT for a USDT-M perpetual)"


def _resolve_markets(markets: Iterable[Market | str | int], exchange: str) -> list[Market]:
    """Market rows for ccxt symbols (``"BTC/USDT"``; what users and the API give), Market rows
    or integer Market ids (Python callers only), in the order given, deduplicated.

    A string is always a symbol: ``"12"`` is refused, not read as an id. Errors:
    ``BotValidationError({"markets": ...})`` naming the unknown entries and the expected form.
    """
    if isinstance(markets, str | bytes) or not isinstance(markets, Iterable):
        raise BotValidationError({"markets": f"must be a list of market symbols; {SYMBOL_HINT}"})
    out: list[Market] = []
    missing: list[str] = []
    not_symbols: list[str] = []
    for item in markets:
        market = None
        if isinstance(item, Market):
            market = item
        elif isinstance(item, int) and not isinstance(item, bool):
            if 0 < item < 2**63:
                market = Market.objects.filter(pk=item).select_related("exchange").first()
        elif isinstance(item, str) and "/" in item.strip():
            market = (
                Market.objects.filter(exchange__code=exchange, symbol=item.strip()).select_related("exchange").first()
            )
        else:
            not_symbols.append(repr(item) if not isinstance(item, str) else item)
            continue
        if market is None:
            missing.append(str(item))
        elif market not in out:
            out.append(market)
    if not_symbols:
        raise BotValidationError(
            {"markets": f"not a market symbol: {', '.join(not_symbols)}; {SYMBOL_HINT} (market ids are not accepted)"}
        )
    if missing:
        raise BotValidationError({"markets": f"unknown market(s) on {exchange}: {', '.join(missing)}"})
    if not out:
        raise BotValidationError({"markets": "choose at least one market"})
    if len({m.exchange_id for m in out}) > 1:
        raise BotValidationError({"markets": "all markets of a bot must be on one exchange"})
    if len({m.quote for m in out}) > 1:
        raise BotValidationError({"markets": "all markets of a bot must share one quote currency"})
    return out


ORDER_SIZE_PARAMS = ("base_order_size", "safety_order_size")


def _check_order_sizes(params: dict, markets: list[Market]) -> None:
    """Order sizes of the params (quote currency: ``base_order_size``; ``safety_order_size``
    when the bot places safety orders) must be > 0 and at least each market's minimum order:
    its min cost and its min amount at the last stored close (``Market.limits``; the broker's
    defaults when unknown, as ``trading.brokers.market_spec`` applies them). Raises
    ``BotValidationError({"params.<name>": ...})``."""
    from trading.brokers import market_spec

    errors: dict[str, str] = {}
    for name in ORDER_SIZE_PARAMS:
        if name not in params or (name == "safety_order_size" and not params.get("max_safety_orders", 1)):
            continue
        size = float(params[name])
        if size <= 0:
            errors[f"params.{name}"] = "must be greater than 0"
            continue
        for market in markets:
            spec = market_spec(market)
            minimum, why = spec.min_cost, "min cost"
            if spec.min_amount:
                close = (
                    Candle.objects.filter(market=market).order_by("-open_time").values_list("close", flat=True).first()
                )
                if close is not None and spec.min_amount * float(close) > minimum:
                    minimum, why = spec.min_amount * float(close), f"min amount {spec.min_amount:g} at {float(close):g}"
            if size < minimum:
                errors[f"params.{name}"] = (
                    f"{size:g} {market.quote} is below the minimum order of {market.symbol} "
                    f"({minimum:g} {market.quote}, {why}); the exchange would reject every order"
                )
                break
    if errors:
        raise BotValidationError(errors)


def _check_replay(
    markets: list[Market], timeframe: str, replay_start: datetime | None, replay_speed: Any
) -> tuple[datetime, float]:
    errors = {}
    if replay_start is None:
        errors["replay_start"] = "a replay bot needs a start time"
    elif timezone.is_naive(replay_start):
        errors["replay_start"] = "must be timezone-aware (UTC)"
    try:
        speed = float(replay_speed)
        if not (speed > 0) or speed > 1e9:
            raise ValueError
    except (TypeError, ValueError):
        errors["replay_speed"] = "must be a number of market seconds per wall second, > 0"
        speed = 0.0
    if errors:
        raise BotValidationError(errors)
    tf = TIMEFRAME_MS[timeframe]
    start_ms = dt_to_ms(replay_start)
    start_ms -= start_ms % tf  # align to a candle open
    try:
        start = ms_to_dt(start_ms)
    except (OverflowError, ValueError):  # aligning year 1 can fall before datetime.min
        raise BotValidationError({"replay_start": "is out of range"}) from None
    for market in markets:
        span = Candle.objects.filter(market=market, timeframe=timeframe).aggregate(
            first=Min("open_time"), last=Max("open_time")
        )
        if span["last"] is None or span["last"] < start:
            raise BotValidationError(
                {
                    "replay_start": f"no stored {market.symbol} {timeframe} candles at or after {start:%Y-%m-%d %H:%M} UTC"
                }
            )
        if start < span["first"]:
            # A replay from before the data would step through years of missing candles.
            raise BotValidationError(
                {
                    "replay_start": f"{fmt_minute(start)} UTC is before the first stored {market.symbol} {timeframe} "
                    f"candle; stored: {fmt_minute(span['first'])} .. {fmt_minute(span['last'])} UTC"
                }
            )
    return start, speed


def watched_symbols_check(params: dict, given: dict | None, exchange_id: int | None, exchange: str) -> dict[str, str]:
    """Check the market-naming strategy parameters (Smart DCA's ``btc_symbol``, the BTC market
    filter's market) against the stored markets of the exchange (``exchange_id``; ``None``:
    by code ``exchange``). Checked when the filter is enabled or the user gave the parameter
    (``given``: the params before defaults). Returns ``{"params.btc_symbol": message}`` or ``{}``.
    """
    symbol = params.get("btc_symbol")
    if not isinstance(symbol, str) or not (params.get("btc_market_filter_enabled") or "btc_symbol" in (given or {})):
        return {}
    markets = Market.objects.filter(symbol=symbol.strip())
    markets = (
        markets.filter(exchange_id=exchange_id) if exchange_id is not None else markets.filter(exchange__code=exchange)
    )
    if markets.exists():
        return {}
    return {"params.btc_symbol": f"unknown market {symbol!r} on {exchange}; {SYMBOL_HINT}"}
