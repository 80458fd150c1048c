"""The :class:`Signal` record, the :class:`Detector` protocol and the detector registry.

Units: times are candle **open** times in epoch ms UTC (the candle whose close the signal was
seen at); prices are quote currency; ``score`` is a fraction in [0, 1]; a component's
``points`` is its contribution to the score (fraction, may be negative) and ``value`` the
measured input it came from (in the indicator's own unit: RSI points, percent, ratio ...).
"""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping
from dataclasses import asdict, dataclass, field
from typing import Any, Protocol

from strategies.engine.feed import Candles

__all__ = [
    "DETECTORS",
    "Component",
    "Detector",
    "DetectorBase",
    "DetectorInput",
    "Signal",
    "detect",
    "get_detector",
    "json_safe",
    "register",
    "rrr",
]

SIDES = ("long", "short")


@dataclass(frozen=True, slots=True)
class Component:
    """One input of a score: ``value`` measured, ``points`` it added to the score (fraction)."""

    value: float
    points: float


@dataclass(frozen=True, slots=True)
class Signal:
    """A scored setup on one market at the close of one candle.

    ``time``: open time of that candle (epoch ms UTC). ``side``: ``"long"`` or ``"short"``.
    ``score``: [0, 1]. ``components``: name -> :class:`Component`. ``entry`` / ``stop_loss`` /
    ``take_profit``: proposed prices (quote currency; ``take_profit`` may be None when the exit
    is the strategy's own, e.g. a trailing stop). ``rrr``: risk-reward ratio = distance to TP ÷
    distance to SL (None without a TP). ``reason``: one line a trader reads. ``passed``: whether
    the strategy's thresholds (min score, min RRR ...) are met — a scan with ``--all`` lists the
    ones that did not pass too. ``extra``: detector-specific details (e.g. a DCA grid).

    Raises ``ValueError`` on a side other than long/short, a score outside [0, 1] or a
    non-finite price.
    """

    symbol: str
    timeframe: str
    time: int
    strategy: str
    side: str
    score: float
    components: Mapping[str, Component]
    entry: float
    stop_loss: float
    take_profit: float | None
    rrr: float | None
    reason: str
    passed: bool = True
    extra: Mapping[str, Any] = field(default_factory=dict)

    def __post_init__(self) -> None:
        if self.side not in SIDES:
            raise ValueError(f"Signal.side must be one of {SIDES}, got {self.side!r}")
        if not (0.0 <= self.score <= 1.0):
            raise ValueError(f"Signal.score must be in [0, 1], got {self.score!r}")
        for name in ("entry", "stop_loss"):
            if not math.isfinite(getattr(self, name)):
                raise ValueError(f"Signal.{name} must be finite, got {getattr(self, name)!r}")

    def to_dict(self) -> dict[str, Any]:
        """JSON-safe dict: the ``scan --json`` shape, ``components`` as
        ``{name: {"value", "points"}}``, plus ``timeframe``, ``passed`` and ``extra``; a
        non-finite number (an input that could not be measured, e.g. no BTC candles: NaN)
        becomes None, as JSON has no NaN."""
        d = asdict(self)
        d["components"] = self.components_json()
        d["extra"] = json_safe(dict(self.extra))
        return json_safe(d)

    def components_json(self) -> dict[str, dict[str, float | None]]:
        """``{name: {"value", "points"}}`` with non-finite numbers as None (JSON-safe)."""
        return {k: {"value": _finite(c.value), "points": _finite(c.points)} for k, c in self.components.items()}


def _finite(x: Any) -> Any:
    return None if isinstance(x, float) and not math.isfinite(x) else x


def json_safe(obj: Any) -> Any:
    """``obj`` (dicts, lists, tuples, numbers, strings) with every non-finite float replaced by
    None, so ``json.dumps`` and JSON columns accept it."""
    if isinstance(obj, dict):
        return {k: json_safe(v) for k, v in obj.items()}
    if isinstance(obj, list | tuple):
        return [json_safe(v) for v in obj]
    return _finite(obj)


def rrr(entry: float, stop_loss: float, take_profit: float | None) -> float | None:
    """Risk-reward ratio: |take_profit − entry| ÷ |entry − stop_loss|; None without a TP or with
    a zero risk distance."""
    if take_profit is None:
        return None
    risk = abs(entry - stop_loss)
    return abs(take_profit - entry) / risk if risk > 0 else None


@dataclass(frozen=True, slots=True)
class DetectorInput:
    """What a detector reads: the market's closed candles (oldest first), its symbol and
    timeframe, and BTC's candles on the same timeframe (same open times where both traded;
    None when the detector needs no market condition or BTC is the symbol itself)."""

    symbol: str
    timeframe: str
    candles: Candles
    btc: Candles | None = None


class Detector(Protocol):
    """A strategy's signal detector.

    ``name``: the strategy name. ``schema()``: its parameters (the ``Param`` dicts of
    :mod:`strategies.base`), defaults = the seed's values. ``detect(data, params, *, since_ms=None,
    all_=False)``: the signals at every candle with open time ≥ ``since_ms`` (every candle when
    None), oldest first; with ``all_`` also the evaluated candles that did not pass
    (``passed=False``) — used by ``scan --all`` for the newest candle only. Must be causal.
    """

    name: str

    def schema(self) -> list[dict[str, Any]]: ...

    def detect(
        self,
        data: DetectorInput,
        params: Mapping[str, Any] | None = None,
        *,
        since_ms: int | None = None,
        all_: bool = False,
    ) -> list[Signal]: ...


class DetectorBase:
    """What every built-in detector shares: its ``name`` and ``PARAMS`` (a tuple of
    :class:`~strategies.base.Param`, the seed's defaults) and the :meth:`schema` made of them."""

    name: str = ""
    PARAMS: tuple = ()

    def schema(self) -> list[dict[str, Any]]:
        """The parameter schema: one ``Param.to_dict()`` per parameter."""
        return [p.to_dict() for p in self.PARAMS]


DETECTORS: dict[str, Detector] = {}


def register(detector: Detector) -> Detector:
    """Add ``detector`` to :data:`DETECTORS` under its name (ValueError on a duplicate)."""
    if detector.name in DETECTORS:
        raise ValueError(f"detector {detector.name!r} is already registered")
    DETECTORS[detector.name] = detector
    return detector


def get_detector(name: str) -> Detector:
    """The registered detector ``name``; ``KeyError`` naming the known ones otherwise."""
    _load_builtin()
    try:
        return DETECTORS[name]
    except KeyError:
        raise KeyError(f"unknown detector {name!r}; known: {', '.join(sorted(DETECTORS))}") from None


def detect(name: str, data: DetectorInput, params: Mapping[str, Any] | None = None, **kw: Any) -> list[Signal]:
    """``get_detector(name).detect(data, params, **kw)``."""
    return get_detector(name).detect(data, params, **kw)


_BUILTIN_MODULES: tuple[str, ...] = (  # detector modules that register on import
    "strategies.signals.fork_score",
    "strategies.signals.scalping",
    "strategies.signals.dca_detector",
    "strategies.signals.swing",
    "strategies.signals.channel",
)
_loaded = False


def _load_builtin(importer: Callable[[str], Any] | None = None) -> None:
    global _loaded
    if _loaded:
        return
    import importlib

    for module in _BUILTIN_MODULES:
        (importer or importlib.import_module)(module)
    _loaded = True
