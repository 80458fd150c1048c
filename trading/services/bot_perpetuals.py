"""Paper bots on USDT-M perpetuals: validate a bot's leverage settings, and build the engine
specs and feed extras of its step the way a swap backtest builds them.

A bot trades perpetuals when its markets are swap markets named ``XXX/USDT:USDT``; its
settings are stored on the bot (``Bot.leverage``, ``Bot.margin_mode``,
``Bot.liquidation_buffer_pct``; ``Bot.perpetual`` gives them as the dict the backtests keep in
``params["perpetual"]``). The checks are those of a swap backtest
(:func:`trading.services.perpetuals.perpetual_settings_validate`), reported per field:

* ``leverage`` — a whole number 1..125, at most the first-tier maximum of every market
  (bundled tier tables); default 1 on a swap bot;
* ``margin_mode`` — ``isolated`` (default) or ``cross``;
* ``liquidation_buffer_pct`` — percent, 0 (default, off) .. < 100;
* ``markets`` — all spot or all swap; a swap market needs a bundled tier table; a replay
  bot's swap markets need stored funding rates covering its start (± 8 h).

A spot bot refuses the three settings. Errors are :class:`BotValidationError` with
``{field: message}``; nothing is written here.
"""

from __future__ import annotations

from decimal import Decimal
from typing import Any

from market7.timeframes import dt_to_ms
from strategies.engine import MarketSpec
from trading.brokers import market_spec
from trading.models import Bot, Market
from trading.services.bot_validation import BotValidationError

__all__ = [
    "PERPETUAL_FIELDS",
    "bot_perpetual_apply",
    "bot_perpetual_validate",
    "bot_specs",
    "preset_perpetual_validate",
]

PERPETUAL_FIELDS = ("leverage", "margin_mode", "liquidation_buffer_pct")
_SPOT_REFUSAL = "only a USDT-M perpetual bot takes {field} (markets named like BTC/USDT:USDT)"


def _given(value: Any) -> bool:
    return value not in (None, "")


def bot_perpetual_validate(
    *, markets: list[Market], perpetual: dict | None, replay_start_ms: int | None = None
) -> dict[str, Any]:
    """Validate ``perpetual`` (``{"leverage", "margin_mode", "liquidation_buffer_pct"}``, any
    subset; None = none given) for a bot trading ``markets``. Returns the Bot field values to
    set: ``{"leverage": int, "margin_mode": str, "liquidation_buffer_pct": Decimal}`` for swap
    markets, ``{"leverage": None, "margin_mode": "", "liquidation_buffer_pct": 0}`` for spot.
    ``replay_start_ms``: a replay bot's first candle, whose funding must be stored.
    Raises :class:`BotValidationError`."""
    from trading.services.perpetuals import PerpetualError, funding_coverage_check, perpetual_settings_validate

    perpetual = dict(perpetual or {})
    unknown = sorted(set(perpetual) - set(PERPETUAL_FIELDS))
    if unknown:
        return _raise({k: "unknown perpetual setting" for k in unknown})
    swaps = [m for m in markets if m.type == Market.Type.SWAP]
    if not swaps:
        # a spot bot refuses any setting but the form's defaults (isolated, buffer 0)
        given = {
            k: _SPOT_REFUSAL.format(field=k.replace("_", " "))
            for k, v in perpetual.items()
            if _given(v)
            and not (k == "margin_mode" and v == "isolated")
            and not (k == "liquidation_buffer_pct" and _is_zero(v))
        }
        if given:
            return _raise(given)
        return {"leverage": None, "margin_mode": "", "liquidation_buffer_pct": Decimal("0")}
    if len(swaps) != len(markets):
        spot = ", ".join(m.symbol for m in markets if m.type != Market.Type.SWAP)
        return _raise({"markets": f"a bot trades spot or perpetual markets, not both (spot: {spot})"})

    leverage, margin_mode, buffer = _fields_validate(perpetual)
    try:
        settings = perpetual_settings_validate(
            markets=swaps, leverage=leverage, margin_mode=margin_mode, liquidation_buffer_pct=buffer
        )
        if replay_start_ms is not None:
            funding_coverage_check(swaps, replay_start_ms, replay_start_ms)
    except PerpetualError as exc:
        message = str(exc)
        field = "leverage" if ": leverage " in message else "markets"
        return _raise({field: message})
    return {
        "leverage": settings.leverage,
        "margin_mode": settings.margin_mode,
        "liquidation_buffer_pct": Decimal(str(settings.liquidation_buffer_pct)),
    }


def _fields_validate(perpetual: dict) -> tuple[Any, str, Any]:
    """Each of the three settings alone (no market: the tier cap is the bot's check), with the
    defaults (1x, isolated, buffer 0) for the missing ones; errors per field raised together."""
    from trading.services.perpetuals import PerpetualError, perpetual_settings_validate

    leverage = perpetual.get("leverage")
    margin_mode = perpetual.get("margin_mode") or "isolated"
    buffer = perpetual.get("liquidation_buffer_pct")
    leverage = 1 if not _given(leverage) else leverage
    buffer = 0 if not _given(buffer) else buffer
    errors: dict[str, str] = {}
    for field, kwargs in (
        ("leverage", {"leverage": leverage}),
        ("margin_mode", {"leverage": 1, "margin_mode": margin_mode}),
        ("liquidation_buffer_pct", {"leverage": 1, "liquidation_buffer_pct": buffer}),
    ):
        try:
            perpetual_settings_validate(markets=[], **kwargs)
        except PerpetualError as exc:
            errors[field] = str(exc)
    if errors:
        _raise(errors)
    return leverage, margin_mode, buffer


def preset_perpetual_validate(perpetual: dict | None) -> dict[str, Any] | None:
    """A preset's perpetual settings (``{"leverage", "margin_mode", "liquidation_buffer_pct"}``,
    any subset; None or ``{}`` = a spot preset) checked field by field without markets: the
    market's first-tier cap is checked when a bot is created from the preset. Returns the
    complete dict (``Bot.perpetual``'s shape: int, str, float percent) or None. Raises
    :class:`BotValidationError` (unknown keys, or the bot's per-field messages)."""
    perpetual = dict(perpetual or {})
    unknown = sorted(set(perpetual) - set(PERPETUAL_FIELDS))
    if unknown:
        _raise({k: "unknown perpetual setting" for k in unknown})
    if not _given(perpetual.get("leverage")):
        # no leverage: a spot preset; the form's defaults (isolated, buffer 0) pass
        if perpetual.get("margin_mode") not in (None, "", "isolated") or not _is_zero(
            perpetual.get("liquidation_buffer_pct") or 0
        ):
            _raise({"leverage": "a perpetual preset needs its leverage (1..125)"})
        return None
    leverage, margin_mode, buffer = _fields_validate(perpetual)
    return {"leverage": int(float(leverage)), "margin_mode": margin_mode, "liquidation_buffer_pct": float(buffer)}


def bot_perpetual_apply(bot: Bot, markets: list[Market], changes: dict[str, Any]) -> None:
    """``bot_update``'s part: when ``changes`` touch the perpetual settings, the markets or
    the replay start, re-validate (:func:`bot_perpetual_validate`) and set the bot's fields
    (not saved). ``changes["perpetual"]`` replaces the settings; otherwise the stored ones stay."""
    if not {"perpetual", "markets", "feed", "replay_start"} & set(changes):
        return
    start = dt_to_ms(bot.replay_start) if bot.feed == Bot.FeedKind.REPLAY and bot.replay_start else None
    perpetual = changes["perpetual"] if "perpetual" in changes else bot.perpetual
    for name, value in bot_perpetual_validate(markets=markets, perpetual=perpetual, replay_start_ms=start).items():
        setattr(bot, name, value)


def _is_zero(value: Any) -> bool:
    try:
        return float(value) == 0.0
    except (TypeError, ValueError):
        return False


def _raise(errors: dict[str, str]) -> dict[str, Any]:
    raise BotValidationError(errors)


def bot_specs(bot: Bot, markets: list[Market]) -> dict[str, MarketSpec]:
    """The engine spec of each traded market of ``bot``, by symbol: spot as stored
    (:func:`trading.brokers.market_spec`), or the swap spec with the bot's leverage, margin
    mode and buffer (:func:`trading.services.perpetuals.perpetual_spec`), as a swap backtest
    builds them (``strategies.services.backtests.backtest_specs``)."""
    perpetual = bot.perpetual
    if perpetual is None:
        return {m.symbol: market_spec(m) for m in markets}
    from trading.services.perpetuals import perpetual_spec

    return {m.symbol: perpetual_spec(m, perpetual) for m in markets}
