"""Where trained models plug into the bots: two hooks the ML app registers at start-up.

The bot runner (``trading``) must not import the ML app (``mlops`` sits above it: it reads
bots' outcomes and backtests strategies), so the dependency is inverted: ``mlops`` registers

* a **provider factory** — ``factory(*, owner_id, strategy, params)`` returning the models
  that serve this user's bots of ``strategy``: a dict ``{"confidence_provider": ...,
  "exit_scorer": ..., "spend_model": ...}`` (keys present only where a model serves; they are
  :func:`strategies.registry.create_strategy`'s keywords), or — the older form — a single
  ``ConfidenceProvider`` or None (the strategy's rule-based defaults), and
* a **step observer** — ``observer(*, bot, provider, result, feed[, providers]) -> None``:
  called after a bot step's writes, in its transaction (feature snapshots of the decisions a
  model scored, outcomes of closed deals, the fallback reasons when a model failed);
  ``providers`` (the dict) is passed when the runner has it.

Without a registered hook (the ML app not installed) both calls are no-ops. A hook that raises
is logged and ignored: a model can never stop a bot.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from typing import Any

log = logging.getLogger(__name__)

__all__ = [
    "PROVIDER_KEYS",
    "confidence_provider_for",
    "providers_for",
    "register_provider_factory",
    "register_step_observer",
    "step_observed",
]

PROVIDER_KEYS = ("confidence_provider", "exit_scorer", "spend_model")

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


def providers_for(*, owner_id: int, strategy: str, params: dict[str, Any]) -> dict[str, Any]:
    """The registered factory's models for this owner's ``strategy`` bots as
    ``{key: provider}`` (keys from :data:`PROVIDER_KEYS`; empty: the rules serve)."""
    if _factory is None:
        return {}
    try:
        got = _factory(owner_id=owner_id, strategy=strategy, params=params)
    except Exception:  # a broken registry must not stop a bot: rules serve
        log.exception("provider factory failed for owner %s / %s", owner_id, strategy)
        return {}
    if got is None:
        return {}
    if not isinstance(got, dict):
        return {"confidence_provider": got}
    return {k: v for k, v in got.items() if k in PROVIDER_KEYS and v is not None}


def confidence_provider_for(*, owner_id: int, strategy: str, params: dict[str, Any]):
    """The registered factory's confidence provider for this owner's ``strategy`` bots, or None."""
    return providers_for(owner_id=owner_id, strategy=strategy, params=params).get("confidence_provider")


def step_observed(*, bot, provider, result, feed, providers: dict[str, Any] | None = None) -> None:
    """Tell the registered observer about a finished bot step (no-op without one)."""
    if _observer is None:
        return
    kw = {} if providers is None else {"providers": providers}
    try:
        _observer(bot=bot, provider=provider, result=result, feed=feed, **kw)
    except Exception:
        log.exception("step observer failed for bot %s", getattr(bot, "pk", None))
