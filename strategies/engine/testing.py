"""Small builders for tests and examples: hand-written candles and a scripted strategy.

Pure numpy (no Django). ``make_feed({"BTC/USDT": [(o, h, l, c), ...]})`` builds a 1h feed
starting at 2024-01-01 00:00 UTC; :class:`ScriptedStrategy` places the intents you give it at
the candle indexes you give it, so fill-model tests read like the rules they check.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import numpy as np

from strategies.base import BaseStrategy

from .feed import Candles, Feed

__all__ = ["T0", "make_candles", "make_feed", "ScriptedStrategy"]

T0 = 1_704_067_200_000  # 2024-01-01T00:00:00Z in epoch ms


def make_candles(rows: Sequence[Sequence[float]], tf_ms: int = 3_600_000, t0: int = T0) -> Candles:
    """``rows`` of ``(open, high, low, close)`` or ``(open, high, low, close, volume)``."""
    a = np.asarray(rows, dtype=np.float64)
    vol = a[:, 4] if a.shape[1] > 4 else np.ones(len(a))
    return Candles.from_arrays(t0 + np.arange(len(a), dtype=np.int64) * tf_ms, a[:, 0], a[:, 1], a[:, 2], a[:, 3], vol)


def make_feed(
    data: Mapping[str, Sequence[Sequence[float]]],
    timeframe: str = "1h",
    lower: Mapping[str, Sequence[Sequence[float]]] | None = None,
    lower_timeframe: str = "5m",
) -> Feed:
    """A :class:`Feed` from hand-written candles (see :func:`make_candles`)."""
    from market7.timeframes import timeframe_ms

    tf = timeframe_ms(timeframe)
    lo = {s: make_candles(r, timeframe_ms(lower_timeframe)) for s, r in (lower or {}).items()}
    return Feed(timeframe, {s: make_candles(r, tf) for s, r in data.items()}, lo, lower_timeframe if lo else None)


class ScriptedStrategy(BaseStrategy):
    """Returns ``script[(symbol, i)]`` (a list of intents) on candle ``i`` of ``symbol``.

    Intents may be callables ``f(ctx) -> intent`` to refer to orders placed earlier.
    """

    name = "scripted"

    def __init__(self, script: Mapping[tuple[str, int], list]) -> None:
        super().__init__({})
        self.script = dict(script)
        self.seen: list[tuple[str, int, list]] = []

    def on_candle(self, ctx):
        self.seen.append((ctx.symbol, ctx.i, list(ctx.fills)))
        out = []
        for it in self.script.get((ctx.symbol, ctx.i), []):
            out.append(it(ctx) if callable(it) else it)
        return out
