"""Clone a bot and the user's parameter presets (strategy + params + risk block + perpetual
settings: leverage, margin mode, liquidation buffer).

One transaction per function, keyword-only arguments, the acting ``user``. Bots and presets
are reached through their ownership gate (``Model.objects.for_user(user)``): another user's
object raises ``DoesNotExist`` (a 404), never a leak. Validation is the bots' own
(``strategy_validate_params``, ``bot_validate_risk``): errors are ``BotValidationError`` and
nothing is saved.
"""

from __future__ import annotations

from django.db import IntegrityError, transaction

from trading.models import Bot, BotPreset
from trading.services.bot_perpetuals import preset_perpetual_validate
from trading.services.bots import (
    ADD_PERM,
    BotValidationError,
    _audit,
    _require,
    bot_create,
    params_and_risk_validate,
)

COPY_SUFFIX = " (copy)"


@transaction.atomic
def bot_clone(*, user, bot: Bot | int) -> Bot:
    """A new paper bot (status ``created``: never started, every field editable) with the
    same strategy, parameters, risk block, signal starts, markets, timeframe, capital, feed and
    perpetual settings (leverage, margin mode, liquidation buffer), named
    ``"<name> (copy)"``. Needs ``trading.add_bot``. Raises Bot.DoesNotExist for another
    user's bot, BotValidationError when the source no longer validates."""
    _require(user, ADD_PERM, "create bots")
    pk = bot.pk if isinstance(bot, Bot) else int(bot)
    src = Bot.objects.for_user(user).prefetch_related("markets__exchange").get(pk=pk)
    markets = list(src.markets.all())
    name = src.name[: 120 - len(COPY_SUFFIX)] + COPY_SUFFIX
    clone = bot_create(
        user=user, name=name, strategy=src.strategy, params=dict(src.params or {}), risk=src.risk,
        markets=markets, capital=src.capital, timeframe=src.timeframe, mode=Bot.Mode.PAPER, feed=src.feed,
        replay_start=src.replay_start, replay_speed=src.replay_speed,
        signal_strategies=list(src.signal_strategies or []), signal_min_score=src.signal_min_score,
        perpetual=src.perpetual, exchange=markets[0].exchange.code if markets else "binance",
    )  # fmt: skip
    _audit(user, "bot_clone", clone, f"cloned from #{src.pk} {src.name}", {"source": src.pk})
    return clone


def presets_for_user(user):
    """The user's presets, by name."""
    return BotPreset.objects.for_user(user).order_by("name", "pk")


@transaction.atomic
def preset_create(
    *,
    user,
    name: str,
    strategy: str,
    params: dict | None = None,
    risk: dict | None = None,
    perpetual: dict | None = None,
) -> BotPreset:
    """Save a preset (params, risk and perpetual settings validated and stored complete).
    Names are unique per user. ``perpetual``: ``{"leverage", "margin_mode",
    "liquidation_buffer_pct"}`` or None (spot), see
    :func:`~trading.services.bot_perpetuals.preset_perpetual_validate`. Raises
    BotValidationError ({"name": ...}, {"params.<x>": ...}, {"risk.<x>": ...}, {"leverage": ...})."""
    _require(user, ADD_PERM, "save presets")
    name = (name or "").strip()
    errors: dict[str, str] = {}
    if not name or len(name) > 120:
        errors["name"] = "give the preset a name of at most 120 characters"
    validated_params, validated_risk = params_and_risk_validate(strategy, params, risk, errors)
    try:
        validated_perpetual = preset_perpetual_validate(perpetual)
    except BotValidationError as exc:
        errors.update(exc.errors)
    if not errors and BotPreset.objects.for_user(user).filter(name=name).exists():
        errors["name"] = f"you already have a preset called {name!r}"
    if errors:
        raise BotValidationError(errors)
    try:
        with transaction.atomic():
            preset = BotPreset.objects.create(
                owner=user, name=name, strategy=strategy, params=validated_params, risk=validated_risk,
                perpetual=validated_perpetual,
            )  # fmt: skip
    except IntegrityError:  # a concurrent save of the same name
        raise BotValidationError({"name": f"you already have a preset called {name!r}"}) from None
    return preset


def preset_from_bot(*, user, bot: Bot | int, name: str) -> BotPreset:
    """Save ``bot``'s strategy, parameters, risk block and perpetual settings as a preset
    called ``name``."""
    pk = bot.pk if isinstance(bot, Bot) else int(bot)
    src = Bot.objects.for_user(user).get(pk=pk)
    return preset_create(
        user=user, name=name, strategy=src.strategy, params=src.params, risk=src.risk, perpetual=src.perpetual
    )


@transaction.atomic
def preset_delete(*, user, preset: BotPreset | int) -> None:
    """Delete one of the user's presets (another user's: BotPreset.DoesNotExist)."""
    _require(user, ADD_PERM, "delete presets")
    pk = preset.pk if isinstance(preset, BotPreset) else int(preset)
    BotPreset.objects.for_user(user).get(pk=pk).delete()
