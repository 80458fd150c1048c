"""Strategy registry: look strategies up by name, or load one from another package by path.

Pure Python (no Django). Built-in strategies (``strategies.library``) register themselves
with :func:`register`; :func:`get_strategy` also accepts a dotted path
(``"mypkg.mod:MyStrategy"`` or ``"mypkg.mod.MyStrategy"``) to a ``BaseStrategy`` subclass.
"""

from __future__ import annotations

import importlib
import inspect
from typing import Any

from .base import BaseStrategy

__all__ = [
    "StrategyNotFound",
    "register",
    "get_strategy",
    "list_strategies",
    "create_strategy",
    "takes_confidence_provider",
]

_REGISTRY: dict[str, type[BaseStrategy]] = {}
_loaded = False


class StrategyNotFound(KeyError):
    """No strategy with that name or path (a ``KeyError`` with a readable message)."""

    def __str__(self) -> str:
        return str(self.args[0]) if self.args else "strategy not found"


def register(cls: type[BaseStrategy]) -> type[BaseStrategy]:
    """Class decorator: add ``cls`` to the registry under ``cls.name``."""
    if not cls.name:
        raise ValueError(f"{cls.__qualname__} needs a non-empty `name` to be registered")
    other = _REGISTRY.get(cls.name)
    if other is not None and other is not cls and other.__qualname__ != cls.__qualname__:
        raise ValueError(f"strategy name {cls.name!r} already registered by {other.__module__}.{other.__qualname__}")
    _REGISTRY[cls.name] = cls
    return cls


def _load_builtins() -> None:
    global _loaded
    if not _loaded:
        _loaded = True
        importlib.import_module("strategies.library")


def _from_path(path: str) -> type[BaseStrategy]:
    if ":" in path:
        mod, _, attr = path.partition(":")
    else:
        mod, _, attr = path.rpartition(".")
    try:
        obj = getattr(importlib.import_module(mod), attr)
    except (ImportError, AttributeError) as e:
        raise StrategyNotFound(f"cannot load strategy {path!r}: {e}") from None
    if not (isinstance(obj, type) and issubclass(obj, BaseStrategy)):
        raise StrategyNotFound(f"{path!r} is not a BaseStrategy subclass")
    return obj


def get_strategy(name: str) -> type[BaseStrategy]:
    """The strategy class for a registered ``name`` or a dotted path.

    Raises :class:`StrategyNotFound` (a ``KeyError``) naming the known strategies.
    """
    _load_builtins()
    if name in _REGISTRY:
        return _REGISTRY[name]
    if "." in name or ":" in name:
        return _from_path(name)
    known = ", ".join(sorted(_REGISTRY)) or "none"
    raise StrategyNotFound(f"unknown strategy {name!r}; known strategies: {known}")


def takes_confidence_provider(cls: type[BaseStrategy]) -> bool:
    """Whether strategy class ``cls`` accepts a ``confidence_provider`` (Smart DCA, the five
    signal strategies, the manager)."""
    return "confidence_provider" in inspect.signature(cls.__init__).parameters


def create_strategy(
    name: str,
    params: dict[str, Any] | None = None,
    *,
    confidence_provider=None,
    exit_scorer=None,
    spend_model=None,
) -> BaseStrategy:
    """Instantiate ``get_strategy(name)`` with validated ``params`` (``ParamError`` if bad).

    ``confidence_provider``: a :class:`~strategies.library.confidence.ConfidenceProvider` (e.g.
    an ML model's) the strategy gates and ranks on instead of its rule-based default;
    ``exit_scorer`` (:class:`~strategies.library.confidence.ExitScorer`) and ``spend_model``
    (:class:`~strategies.library.confidence.SpendModel`): Smart DCA's SAFU exit score and spend
    guard model. None keeps the default. ``TypeError`` when one is given to a strategy that
    takes none (:func:`takes_confidence_provider`; the keyword in its ``__init__``).
    """
    cls = get_strategy(name)
    given = {
        k: v
        for k, v in (
            ("confidence_provider", confidence_provider),
            ("exit_scorer", exit_scorer),
            ("spend_model", spend_model),
        )
        if v is not None
    }
    if not given:
        return cls(params or {})
    accepted = inspect.signature(cls.__init__).parameters
    for k in given:
        if k not in accepted:
            what = "a confidence provider" if k == "confidence_provider" else f"an {k}" if k[0] == "e" else f"a {k}"
            raise TypeError(f"strategy {name!r} does not take {what}")
    return cls(params or {}, **given)


def list_strategies() -> list[dict[str, Any]]:
    """``[{name, title, description}]`` of the registered strategies, sorted by name."""
    _load_builtins()
    return [
        {"name": n, "title": c.title or n, "description": c.schema()["description"]}
        for n, c in sorted(_REGISTRY.items())
    ]
