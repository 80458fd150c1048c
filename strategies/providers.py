"""Where trained models plug into the bots: two hooks the ML app registers at start-up.

The bot runner (``trading``) must not import the ML app (``mlops`` sits above it: it reads
bots' outcomes and backtests strategies), so the dependency is inverted: ``mlops`` registers

* a **provider factory** — ``factory(*, owner_id, strategy, params) -> ConfidenceProvider |
  None``: the model that serves this user's bots of ``strategy`` (None: the strategy's
  rule-based default), and
* a **step observer** — ``observer(*, bot, provider, result, feed) -> None``: called after a
  bot step's writes, in its transaction (feature snapshots of the decisions a model scored,
  outcomes of closed deals, the fallback reason when a model failed).

Without a registered hook (the ML app not installed) both calls are no-ops. A hook that raises
is logged and ignored: a model can never stop a bot.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from typing import Any

log = logging.getLogger(__name__)

__all__ = ["confidence_provider_for", "register_provider_factory", "register_step_observer", "step_observed"]

_factory: Callable[..., Any] | None = None
_observer: Callable[..., None] | None = None


def register_provider_factory(fn: Callable[..., Any] | None) -> None:
    """Install (or with None remove) the provider factory (module doc)."""
    global _factory
    _factory = fn


def register_step_observer(fn: Callable[..., None] | None) -> None:
    """Install (or with None remove) the step observer (module doc)."""
    global _observer
    _observer = fn


def confidence_provider_for(*, owner_id: int, strategy: str, params: dict[str, Any]):
    """The registered factory's provider for this owner's ``strategy`` bots, or None."""
    if _factory is None:
        return None
    try:
        return _factory(owner_id=owner_id, strategy=strategy, params=params)
    except Exception:  # a broken registry must not stop a bot: rules serve
        log.exception("confidence provider factory failed for owner %s / %s", owner_id, strategy)
        return None


def step_observed(*, bot, provider, result, feed) -> None:
    """Tell the registered observer about a finished bot step (no-op without one)."""
    if _observer is None:
        return
    try:
        _observer(bot=bot, provider=provider, result=result, feed=feed)
    except Exception:
        log.exception("step observer failed for bot %s", getattr(bot, "pk", None))
