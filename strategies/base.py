"""The strategy API: typed parameters, JSON state, causal preparation and per-candle decisions.

Pure Python (no Django). A strategy is a class with

* ``name`` (registry key) and a parameter schema (``PARAMS``: :class:`Param` list) that the
  Django form generator renders from :meth:`BaseStrategy.schema` and that
  :meth:`BaseStrategy.validate_params` enforces (:class:`ParamError` with ``{field: message}``);
* ``prepare(feed)`` — pre-compute causal indicators over the whole feed (vectorized);
* ``on_candle(ctx)`` — called when a candle of one of its symbols closes; returns a list of
  :class:`~strategies.engine.orders.OrderIntent` / ``CancelIntent`` (or places them through
  ``ctx.place`` / ``ctx.cancel``);
* a state dataclass that round-trips through JSON (``initial_state``, ``state_to_dict``,
  ``state_from_dict``);
* optional ``next_wake(ctx)`` — the next candle index on which ``on_candle`` could act (the
  engine skips the candles in between); the default, ``ctx.i + 1``, never skips;
* optional ``entry_signals(candles, symbol)`` — a causal boolean array of entry signals, so
  other strategies (Smart DCA's ``start_condition="strategy:<name>"``) can use it;
* optional ``on_command(state, command, ctx)`` — a user's manual command on one of its open
  deals (``add_funds``, ``set_exits`` ...), applied between two steps through the engine
  (:mod:`strategies.engine.commands`); refuse with :class:`CommandRefused`.

See ``docs/strategies.md`` for a worked example.
"""

from __future__ import annotations

import dataclasses
import math
from dataclasses import dataclass, field
from typing import Any, ClassVar

import numpy as np

__all__ = ["Param", "ParamError", "CommandRefused", "BaseStrategy", "StrategyState"]

_TYPES = ("int", "float", "bool", "choice", "str")


class ParamError(ValueError):
    """Invalid strategy parameters. ``errors`` maps each bad field to a human message."""

    def __init__(self, errors: dict[str, str]) -> None:
        self.errors = dict(errors)
        super().__init__("; ".join(f"{k}: {v}" for k, v in sorted(self.errors.items())))


class CommandRefused(ValueError):
    """A strategy refuses a manual command; ``str(exc)`` is the reason shown to the user."""


@dataclass(frozen=True)
class Param:
    """One typed strategy parameter.

    Attributes:
        name: key in the params dict. type: ``int|float|bool|choice|str``.
        default: value used when the key is absent. min / max: inclusive bounds (numbers).
        unit: display unit (``"%"``, ``"quote"``, ``"candles"``, ``"hours"``, ``"x"``...).
        help: one-line explanation shown under the form field. choices: allowed values (choice).
        group: form section (``"deal"``, ``"safety orders"``, ``"guards"``...).
    """

    name: str
    type: str
    default: Any
    min: float | None = None
    max: float | None = None
    unit: str = ""
    help: str = ""
    choices: tuple[str, ...] = ()
    group: str = ""
    label: str = ""

    def __post_init__(self) -> None:
        if self.type not in _TYPES:
            raise ValueError(f"Param {self.name}: type must be one of {_TYPES}")
        if self.type == "choice" and self.default not in self.choices:
            raise ValueError(f"Param {self.name}: default {self.default!r} not in choices")

    def to_dict(self) -> dict[str, Any]:
        d = dataclasses.asdict(self)
        d["choices"] = list(self.choices)
        d["label"] = self.label or self.name.replace("_", " ").capitalize()
        return d

    def coerce(self, value: Any) -> Any:
        """Return ``value`` converted to this parameter's type; ``ValueError`` with a message."""
        t = self.type
        if t == "bool":
            if isinstance(value, bool):
                return value
            if isinstance(value, (int, float)) and value in (0, 1):
                return bool(value)
            if isinstance(value, str) and value.strip().lower() in (
                "true",
                "1",
                "yes",
                "on",
                "false",
                "0",
                "no",
                "off",
                "",
            ):
                return value.strip().lower() in ("true", "1", "yes", "on")
            raise ValueError("must be true or false")
        if t == "int":
            if isinstance(value, bool):
                raise ValueError("must be a whole number")
            try:
                f = float(value)
            except (TypeError, ValueError):
                raise ValueError("must be a whole number") from None
            if not f.is_integer():
                raise ValueError("must be a whole number")
            v: Any = int(f)
        elif t == "float":
            if isinstance(value, bool):
                raise ValueError("must be a number")
            try:
                v = float(value)
            except (TypeError, ValueError):
                raise ValueError("must be a number") from None
            if not math.isfinite(v):
                raise ValueError("must be a finite number")
        elif t == "choice":
            if value not in self.choices:
                raise ValueError(f"must be one of {', '.join(map(str, self.choices))}")
            return value
        else:
            if not isinstance(value, str):
                raise ValueError("must be text")
            return value
        unit = f" {self.unit}" if self.unit and self.unit != "%" else self.unit
        if self.min is not None and v < self.min:
            raise ValueError(f"must be >= {self.min:g}{unit}")
        if self.max is not None and v > self.max:
            raise ValueError(f"must be <= {self.max:g}{unit}")
        return v


@dataclass
class StrategyState:
    """Base for strategy states: a dataclass whose fields are JSON-safe (numbers, strings,
    bools, lists, dicts). Override ``from_dict`` for nested dataclasses."""

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> StrategyState:
        names = {f.name for f in dataclasses.fields(cls)}
        return cls(**{k: v for k, v in d.items() if k in names})


@dataclass
class _EmptyState(StrategyState):
    data: dict[str, Any] = field(default_factory=dict)


class BaseStrategy:
    """Base class of every strategy (see the module docstring for the contract).

    Instantiate with a params dict: ``SmartDCA({"take_profit": 1.5})``; it is validated and
    completed with defaults into ``self.params``.
    """

    name: ClassVar[str] = ""
    title: ClassVar[str] = ""
    description: ClassVar[str] = ""
    PARAMS: ClassVar[tuple[Param, ...]] = ()
    State: ClassVar[type[StrategyState]] = _EmptyState

    def __init__(self, params: dict[str, Any] | None = None) -> None:
        self.params: dict[str, Any] = self.validate_params(params or {})

    # -- parameters -----------------------------------------------------------------------
    @classmethod
    def param_specs(cls) -> list[Param]:
        return list(cls.PARAMS)

    @classmethod
    def schema(cls) -> dict[str, Any]:
        """JSON-able description: ``{name, title, description, params: [Param.to_dict()...]}``."""
        return {
            "name": cls.name,
            "title": cls.title or cls.name,
            "description": cls.description or (cls.__doc__ or "").strip().split("\n")[0],
            "params": [p.to_dict() for p in cls.param_specs()],
        }

    @classmethod
    def validate_params(cls, data: dict[str, Any]) -> dict[str, Any]:
        """Coerce ``data`` to the schema's types and fill defaults.

        Raises :class:`ParamError` with one message per bad field (unknown keys included).
        Subclasses add cross-field checks in :meth:`check_params`.
        """
        specs = {p.name: p for p in cls.param_specs()}
        errors: dict[str, str] = {}
        out: dict[str, Any] = {}
        for k in data:
            if k not in specs:
                errors[k] = "unknown parameter"
        for name, p in specs.items():
            if name in data and data[name] is not None:
                try:
                    out[name] = p.coerce(data[name])
                except ValueError as e:
                    errors[name] = str(e)
            else:
                out[name] = p.default
        if not errors:
            errors.update(cls.check_params(out))
        if errors:
            raise ParamError(errors)
        return out

    @classmethod
    def check_params(cls, params: dict[str, Any]) -> dict[str, str]:
        """Cross-field validation hook: return ``{field: message}`` for problems."""
        return {}

    # -- lifecycle ------------------------------------------------------------------------
    def prepare(self, feed) -> None:
        """Pre-compute causal indicators over ``feed`` (called at the start of every run)."""

    def initial_state(self) -> StrategyState:
        return self.State()

    def state_to_dict(self, state: StrategyState) -> dict[str, Any]:
        return state.to_dict()

    def state_from_dict(self, d: dict[str, Any] | None) -> StrategyState:
        return self.State.from_dict(d) if d else self.initial_state()

    def on_candle(self, ctx) -> list | None:
        """Decide on the closed candle ``ctx.i`` of ``ctx.symbol``; return order intents / cancels."""
        raise NotImplementedError

    def next_wake(self, ctx) -> int | None:
        """Next candle index (> ``ctx.i``) on which ``on_candle`` could act without an order
        filling, or ``None`` for never. Default: the next candle (no skipping)."""
        return ctx.i + 1

    def entry_signals(self, candles, symbol: str = "") -> np.ndarray:
        """Causal boolean array (one per candle) of entry signals; used by Smart DCA's
        ``strategy:<name>`` start condition. Not every strategy has one."""
        raise NotImplementedError(f"strategy {self.name!r} does not provide entry_signals()")

    def on_command(self, state: StrategyState, command: dict[str, Any], ctx) -> None:
        """Apply a user's manual ``command`` on an open deal (see :mod:`strategies.engine.commands`).

        ``command``: ``{"cmd": str, "deal_id": str, ...}`` (arguments of the command); ``state``
        is ``ctx.state``; ``ctx`` a ``StepContext`` on the last processed candle of the deal's
        symbol (``ctx.place`` / ``ctx.cancel`` / ``ctx.decide``; orders fill from the next
        candle). Record a decision with the reason; raise :class:`CommandRefused` (before
        acting, or the engine discards what was done) to refuse. Default: refuses everything.
        """
        raise CommandRefused(f"strategy {self.name!r} does not support {command.get('cmd')!r}")

    def deal_info(self, state: StrategyState, symbol: str) -> dict[str, Any]:
        """Extra live fields for an open deal of ``symbol`` (UI: DCA ladder). Default: none."""
        return {}
