"""Hyperopt building blocks (pure core, no Django): search spaces, samplers, objectives, constraints.

An optimisation searches the parameters of one strategy (and of its risk block) for the best
value of one objective over a backtest window. This module holds what does not touch the
database: ``strategies.services.optimisations`` stores the run, asks Optuna (RDB storage on our
database) for trials and runs :func:`strategies.backtest.run_backtest` for each.

Search space (JSON, validated by :func:`space_validate`)::

    {"take_profit":        {"low": 0.5, "high": 3.0, "step": 0.25},   # float param: range
     "max_safety_orders":  {"low": 0, "high": 6},                     # int param: range (step 1)
     "price_deviation":    {"low": 0.2, "high": 5.0, "log": true},    # log-uniform
     "tp_type":            {"choices": ["total", "base"]},            # choice / bool / str
     "risk.max_positions": {"low": 1, "high": 3}}                     # a RiskConfig field

Keys are the strategy schema's parameter names or ``risk.<RiskConfig field>``. Ranges must lie
inside the schema's ``min``/``max``; ``step`` (> 0) and ``log`` (low > 0) exclude each other.
Normalised entries carry ``type`` (``int|float|choice``) and ``low, high, step, log`` or
``choices``.

Objectives (all maximised; ``None`` = undefined for that run, e.g. Sharpe of flat equity):
``sharpe``, ``sortino``, ``profit`` (``total_return_pct``, %), ``profit_factor``, ``calmar``
(``cagr_pct / max_drawdown_pct``, Young 1991; undefined with no drawdown).
Constraints: ``{"max_drawdown_pct": percent (≥ 0), "min_trades": int (≥ 0)}``; a run breaking
one is *infeasible*: recorded with its reasons and never chosen as the best.
"""

from __future__ import annotations

import dataclasses
import math
import typing
from typing import Any

__all__ = [
    "CONSTRAINT_KEYS",
    "OBJECTIVES",
    "SAMPLERS",
    "SpaceError",
    "constraints_check",
    "constraints_validate",
    "make_sampler",
    "objective_value",
    "space_defaults",
    "space_split",
    "space_suggest",
    "space_validate",
]

OBJECTIVES = ("sharpe", "sortino", "calmar", "profit", "profit_factor")
SAMPLERS = ("tpe", "random", "cmaes")
CONSTRAINT_KEYS = ("max_drawdown_pct", "min_trades")
RISK_PREFIX = "risk."


class SpaceError(ValueError):
    """A bad search space, objective, sampler or constraint. ``errors``: ``{key: message}``."""

    def __init__(self, errors: dict[str, str]) -> None:
        self.errors = dict(errors)
        super().__init__("; ".join(f"{k}: {v}" for k, v in sorted(self.errors.items())))


def _risk_types() -> dict[str, str]:
    """``{RiskConfig field: "int"|"float"|"bool"|"str"}`` for the scalar fields (tuples and
    dicts such as ``regime_universe`` cannot be searched)."""
    from strategies.risk import RiskConfig

    hints = typing.get_type_hints(RiskConfig)
    out = {}
    for f in dataclasses.fields(RiskConfig):
        args = set(typing.get_args(hints[f.name])) - {type(None)} or {hints[f.name]}
        for t, name in ((bool, "bool"), (int, "int"), (float, "float"), (str, "str")):
            if args == {t}:
                out[f.name] = name
    return out


def _number(value: Any) -> float | None:
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value):
        return None
    return float(value)


def _range(key: str, entry: dict, kind: str, lo_bound, hi_bound) -> dict[str, Any]:
    low, high = _number(entry.get("low")), _number(entry.get("high"))
    if low is None or high is None:
        raise ValueError("needs numbers low and high")
    if low >= high:
        raise ValueError(f"low {low:g} must be below high {high:g}")
    if lo_bound is not None and low < lo_bound:
        raise ValueError(f"low {low:g} is below the schema's min {lo_bound:g}")
    if hi_bound is not None and high > hi_bound:
        raise ValueError(f"high {high:g} is above the schema's max {hi_bound:g}")
    step, log = entry.get("step"), bool(entry.get("log", False))
    if step is not None and log:
        raise ValueError("step and log cannot be combined")
    if log and low <= 0:
        raise ValueError("log scale needs low > 0")
    if step is not None and ((_number(step) or 0) <= 0):
        raise ValueError("step must be a positive number")
    if kind == "int":
        if not (low.is_integer() and high.is_integer() and (step is None or float(step).is_integer())):
            raise ValueError("an int parameter needs whole low, high and step")
        return {"type": "int", "low": int(low), "high": int(high), "step": int(step or 1), "log": log}
    return {"type": "float", "low": low, "high": high, "step": None if step is None else float(step), "log": log}


def _choices(entry: dict, allowed: tuple | None) -> dict[str, Any]:
    choices = entry.get("choices")
    if not isinstance(choices, list) or not choices:
        raise ValueError("choices must be a non-empty list")
    if any(not isinstance(c, (str, bool, int, float)) for c in choices) or len(set(map(repr, choices))) != len(choices):
        raise ValueError("choices must be distinct strings, numbers or booleans")
    if allowed is not None:
        bad = [c for c in choices if c not in allowed or type(c) is not type(allowed[0])]
        if bad:
            raise ValueError(f"{', '.join(map(repr, bad))} not among {', '.join(map(repr, allowed))}")
    return {"type": "choice", "choices": list(choices)}


def space_validate(space: Any, param_specs) -> dict[str, dict[str, Any]]:
    """Validate a search space (module doc) against the strategy's ``param_specs``
    (:class:`strategies.base.Param` list) and :class:`strategies.risk.RiskConfig`.

    Returns the normalised space, keys sorted. Raises :class:`SpaceError` with one message per
    bad key (unknown parameter, range outside the schema, low ≥ high, bad choices, a risk
    endpoint that ``RiskConfig`` refuses).
    """
    if not isinstance(space, dict) or not space:
        raise SpaceError({"space": "must be a non-empty JSON object of parameter: range"})
    specs = {p.name: p for p in param_specs}
    risk_types = _risk_types()
    errors: dict[str, str] = {}
    out: dict[str, dict[str, Any]] = {}
    for key in sorted(space):
        entry = space[key]
        try:
            if not isinstance(entry, dict):
                raise ValueError("must be an object with low/high or choices")
            if key.startswith(RISK_PREFIX):
                field = key[len(RISK_PREFIX) :]
                kind = risk_types.get(field)
                if kind is None:
                    raise ValueError("not a searchable field of the risk block (RiskConfig)")
                if "choices" in entry or kind in ("bool", "str"):
                    norm = _choices(entry, (True, False) if kind == "bool" else None)
                    ends = norm["choices"]
                else:
                    norm = _range(key, entry, kind, None, None)
                    ends = [norm["low"], norm["high"]]
                _risk_endpoints_check(field, ends)
            elif key in specs:
                p = specs[key]
                if p.type in ("int", "float") and "choices" not in entry:
                    norm = _range(key, entry, p.type, p.min, p.max)
                elif p.type in ("int", "float"):
                    norm = _choices(entry, None)
                    for c in norm["choices"]:
                        p.coerce(c)
                else:
                    allowed = {"choice": p.choices, "bool": (True, False)}.get(p.type)
                    norm = _choices(entry, tuple(allowed) if allowed is not None else None)
            else:
                raise ValueError("unknown parameter of the strategy (or risk.<field>)")
        except ValueError as exc:
            errors[key] = str(exc)
            continue
        out[key] = norm
    if errors:
        raise SpaceError(errors)
    return out


def _risk_endpoints_check(field: str, values: list) -> None:
    from strategies.risk import RiskConfig

    for v in values:
        try:
            RiskConfig.from_dict({field: v})
        except (TypeError, ValueError) as exc:
            raise ValueError(f"{v!r} refused by the risk block: {exc}") from None


def space_defaults(param_specs, names=None) -> dict[str, dict[str, Any]]:
    """A proposed search space from the schema (for forms and ``--space`` templates).

    Numbers: the schema's ``min``..``max`` when both are finite and at most 20× the default
    apart, else default ÷ 2 .. default × 2 clipped to the bounds (0..10 for a zero default);
    bool: ``[true, false]``; choice: every choice; str parameters are left out. ``names``
    restricts the proposal to those parameters. The result passes :func:`space_validate`."""
    out = {}
    for p in param_specs:
        if names is not None and p.name not in names:
            continue
        if p.type == "bool":
            out[p.name] = {"choices": [True, False]}
        elif p.type == "choice":
            out[p.name] = {"choices": list(p.choices)}
        elif p.type in ("int", "float"):
            lo, hi = p.min, p.max
            d = float(p.default)
            if lo is None or hi is None or (d > 0 and hi - lo > 20 * d):
                lo_p, hi_p = (d / 2, d * 2) if d > 0 else (0.0, 10.0)
                lo = lo_p if lo is None else max(lo, lo_p)
                hi = hi_p if hi is None else min(hi, hi_p)
            if p.type == "int":
                lo, hi = math.ceil(lo), math.floor(hi)
            if lo < hi:
                out[p.name] = {"low": lo, "high": hi}
    return out


def space_suggest(trial, space: dict[str, dict[str, Any]]) -> dict[str, Any]:
    """Ask an Optuna ``trial`` for one value of every key of a normalised ``space``
    (``{key: value}``, risk keys still prefixed; see :func:`space_split`)."""
    out = {}
    for key, e in space.items():
        if e["type"] == "choice":
            out[key] = trial.suggest_categorical(key, e["choices"])
        elif e["type"] == "int":
            out[key] = trial.suggest_int(key, e["low"], e["high"], step=1 if e["log"] else e["step"], log=e["log"])
        else:
            out[key] = trial.suggest_float(key, e["low"], e["high"], step=e["step"], log=e["log"])
    return out


def space_split(values: dict[str, Any]) -> tuple[dict[str, Any], dict[str, Any]]:
    """``{key: value}`` -> ``(strategy params, risk fields)`` (the ``risk.`` prefix removed)."""
    params = {k: v for k, v in values.items() if not k.startswith(RISK_PREFIX)}
    risk = {k[len(RISK_PREFIX) :]: v for k, v in values.items() if k.startswith(RISK_PREFIX)}
    return params, risk


def objective_value(metrics: dict[str, Any], objective: str) -> float | None:
    """The objective of a report's ``metrics`` (maximised), or None when undefined."""
    if objective == "profit":
        return float(metrics["total_return_pct"])
    if objective == "calmar":
        cagr, dd = metrics.get("cagr_pct"), metrics.get("max_drawdown_pct") or 0.0
        return None if cagr is None or dd <= 0 else float(cagr) / float(dd)
    value = metrics.get(objective)
    return None if value is None or not math.isfinite(value) else float(value)


def constraints_validate(constraints: Any) -> dict[str, float | int]:
    """``{"max_drawdown_pct": ≥ 0 percent, "min_trades": int ≥ 0}`` (both optional) or SpaceError."""
    if constraints in (None, {}):
        return {}
    if not isinstance(constraints, dict):
        raise SpaceError({"constraints": "must be an object"})
    errors, out = {}, {}
    for key, v in constraints.items():
        n = _number(v)
        if key not in CONSTRAINT_KEYS:
            errors[key] = f"unknown constraint; use {', '.join(CONSTRAINT_KEYS)}"
        elif n is None or n < 0:
            errors[key] = "must be a number >= 0"
        elif key == "min_trades" and not n.is_integer():
            errors[key] = "must be a whole number"
        else:
            out[key] = int(n) if key == "min_trades" else n
    if errors:
        raise SpaceError(errors)
    return out


def constraints_check(metrics: dict[str, Any], constraints: dict[str, Any]) -> list[float]:
    """Optuna-style constraint values (≤ 0 feasible), in :data:`CONSTRAINT_KEYS` order of the
    constraints given: drawdown − cap (percent points), min trades − trades."""
    out = []
    if "max_drawdown_pct" in constraints:
        out.append(float(metrics["max_drawdown_pct"]) - float(constraints["max_drawdown_pct"]))
    if "min_trades" in constraints:
        out.append(float(constraints["min_trades"] - int(metrics["trades"])))
    return out


def constraint_reasons(metrics: dict[str, Any], constraints: dict[str, Any]) -> list[str]:
    """Human reasons of the broken constraints (empty list: feasible)."""
    reasons = []
    cap = constraints.get("max_drawdown_pct")
    if cap is not None and metrics["max_drawdown_pct"] > cap:
        reasons.append(f"max_drawdown_pct {metrics['max_drawdown_pct']:.2f}% > {cap:g}%")
    n = constraints.get("min_trades")
    if n is not None and metrics["trades"] < n:
        reasons.append(f"trades {metrics['trades']} < {n}")
    return reasons


def make_sampler(name: str, seed: int | None, *, constrained: bool = False):
    """An Optuna sampler: ``tpe`` (default; with ``constrained`` it reads the constraint values
    a trial stores in its user attribute ``constraints``), ``random`` or ``cmaes`` (numeric
    parameters; choices fall back to independent random sampling)."""
    import optuna

    if name == "tpe":
        cf = (lambda t: t.user_attrs.get("constraints", [0.0])) if constrained else None
        return optuna.samplers.TPESampler(seed=seed, constraints_func=cf)
    if name == "random":
        return optuna.samplers.RandomSampler(seed=seed)
    if name == "cmaes":
        return optuna.samplers.CmaEsSampler(seed=seed, warn_independent_sampling=False)
    raise SpaceError({"sampler": f"must be one of {', '.join(SAMPLERS)}"})
