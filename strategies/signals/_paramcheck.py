"""Parameter validation for detectors: coerce a params mapping against a tuple of
:class:`~strategies.base.Param` (defaults filled, unknown keys refused) — the same rules as
:meth:`strategies.base.BaseStrategy.validate_params`. Pure Python (no Django)."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any

import numpy as np

from strategies.base import Param, ParamError


def validate(
    specs: tuple[Param, ...],
    params: Mapping[str, Any] | None,
    check: Callable[[dict[str, Any]], dict[str, str]] | None = None,
) -> dict[str, Any]:
    """``params`` coerced to ``specs``' types with defaults filled; :class:`ParamError` with one
    message per bad field (unknown keys included), then ``check(out)``'s cross-field errors."""
    data = dict(params or {})
    by_name = {p.name: p for p in specs}
    errors = {k: "unknown parameter" for k in data if k not in by_name}
    out: dict[str, Any] = {}
    for name, p in by_name.items():
        if data.get(name) is not None:
            try:
                out[name] = p.coerce(data[name])
            except ValueError as e:
                errors[name] = str(e)
        else:
            out[name] = p.default
    if not errors and check is not None:
        errors.update(check(out))
    if errors:
        raise ParamError(errors)
    return out


def since_mask(time: np.ndarray, since_ms: int | None) -> np.ndarray:
    """Boolean mask of the candles with open time ≥ ``since_ms`` (all when None)."""
    return np.ones(len(time), dtype=bool) if since_ms is None else np.asarray(time) >= int(since_ms)


def shift(a: np.ndarray, k: int) -> np.ndarray:
    """``a`` delayed by ``k`` ≥ 0 candles (element ``i`` = ``a[i − k]``), NaN-padded: causal."""
    out = np.full(len(a), np.nan)
    if k < len(a):
        out[k:] = a[: len(a) - k]
    return out
