"""Live bots and their exchange account: which account a live bot may trade on, and whether it
may start.

A bot in ``live`` mode trades on one of its owner's :class:`~trading.models.ExchangeAccount`
rows (``Bot.exchange_account``). The account must

- belong to the bot's owner (looked up through ``ExchangeAccount.objects.for_user(owner)``:
  another user's account is "no such account", never a leak),
- be on the exchange of the bot's markets (``binance`` markets need a ``binance`` account), and
- have passed its last connection test with the ``trade`` permission
  (``trading.services.exchange_accounts.account_test``).

:func:`live_account_resolve` turns a form/API value (an id, a row or None) into the row or a
``{"exchange_account": message}`` error; :func:`live_account_problem` says in one line what keeps
an account from trading (None when nothing). :func:`live_start_check` is what ``bot_start`` /
``bot_resume`` / ``bot_restart`` run for live bots: it raises ``LiveTradingDisabled`` with the
reason, so the bot does not start.
"""

from __future__ import annotations

from trading.models import Bot, ExchangeAccount
from trading.services.bot_validation import BotValidationError, LiveTradingDisabled

NO_ACCOUNT = "a live bot needs an exchange account: add one under Exchange accounts, test it, and choose it"


def live_account_resolve(*, owner, value) -> ExchangeAccount | None:
    """The owner's account named by ``value`` (an id, an ``ExchangeAccount`` or None/"" = none).
    Raises BotValidationError ``{"exchange_account": ...}`` when ``owner`` has no such account."""
    if value in (None, ""):
        return None
    pk = value.pk if isinstance(value, ExchangeAccount) else value
    try:
        pk = int(pk)
    except (TypeError, ValueError):
        raise BotValidationError({"exchange_account": "give the id of one of your exchange accounts"}) from None
    account = ExchangeAccount.objects.for_user(owner).filter(pk=pk).first()
    if account is None:
        raise BotValidationError({"exchange_account": f"you have no exchange account {pk}"})
    return account


def live_account_problem(*, account: ExchangeAccount | None, exchange_code: str | None) -> str | None:
    """Why ``account`` cannot trade the markets of exchange ``exchange_code`` (one line), or None."""
    if account is None:
        return NO_ACCOUNT
    if exchange_code is not None and account.exchange != exchange_code:
        return f"account {account.label!r} is on {account.exchange}, the bot's markets are on {exchange_code}"
    permissions = account.permissions or []
    if permissions and "trade" not in permissions:
        return f"account {account.label!r} has no trade permission (its key can only read)"
    if account.last_check_ok is not True or "trade" not in permissions:
        return f"account {account.label!r} has not passed a connection test: press Test connection first"
    return None


def live_start_check(bot: Bot) -> None:
    """Raise ``LiveTradingDisabled`` with the reason when a live ``bot`` cannot trade; paper
    bots pass. The account is re-read (its last test may have changed since the bot was saved)."""
    if bot.mode != Bot.Mode.LIVE:
        return
    account = ExchangeAccount.objects.filter(pk=bot.exchange_account_id, owner_id=bot.owner_id).first()
    market = bot.markets.select_related("exchange").first()
    problem = live_account_problem(account=account, exchange_code=market.exchange.code if market else None)
    if problem:
        raise LiveTradingDisabled(f"cannot start live: {problem}")


def live_account_validate(*, owner, value, mode: str, markets) -> ExchangeAccount | None:
    """The account a bot being created or edited gets (``bot_create`` / ``bot_update``): None
    for none; for a live bot the owner's account, usable on the markets' exchange
    (:func:`live_account_problem`); a paper bot takes none. Raises BotValidationError
    ``{"exchange_account": ...}``; a live bot without an account is valid but cannot start."""
    account = live_account_resolve(owner=owner, value=value)
    if account is None:
        return None
    if mode != Bot.Mode.LIVE:
        raise BotValidationError({"exchange_account": "only a live bot trades on an exchange account"})
    markets = list(markets)
    problem = live_account_problem(account=account, exchange_code=markets[0].exchange.code if markets else None)
    if problem:
        raise BotValidationError({"exchange_account": problem})
    return account
