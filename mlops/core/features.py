"""Causal features per (symbol, candle) for the ML models: one registry, batch and inference.

Pure core (numpy + TA-Lib, never Django). The contract other modules code against:

- :data:`FEATURE_NAMES` — the ordered column names (72), documented in
  :data:`~mlops.core.feature_registry.FEATURES` (name, unit, description) and in docs/ml.md;
  :data:`FEATURES_VERSION` and :func:`feature_hash` identify the set a model was trained on.
- :func:`compute_features` — batch over a whole candle history -> :class:`FeatureFrame`
  (float32 ``[n_candles, n_features]``, NaN during each feature's warm-up).
- :func:`features_at` — one row for candle ``i`` from candles ``<= i`` only.
- :func:`features_latest_many` — the newest candle of many symbols at once (the inference path).
- :data:`DEAL_FEATURE_NAMES` / :func:`deal_features` — the state of an open DCA deal.

**Inputs** are :class:`strategies.engine.feed.Candles` (``time`` int64 epoch ms UTC open time,
float64 OHLC quote, volume base units). Row ``i`` is the state as of the **close** of candle
``i``. ``btc`` is BTC/USDT's candles of the same timeframe: each row uses the newest BTC candle
opening at or before it (so a missing BTC candle repeats the previous close, and nothing after
the row is read). Without ``btc`` the 13 BTC features (``*_btc_*``, ``btc_*``, ``rel_ret_24``)
are NaN; for BTC/USDT itself pass its own candles as ``btc`` (correlation and beta are then 1,
the ``btc_*`` state equals its own columns).

**One code path.** Features come in groups (:mod:`mlops.core.feature_math`); each group has a
window of trailing candles after which its last row no longer depends on older history:
80 (returns, ranges, volume, SMA <= 50, Bollinger, Stochastic, BTC correlation/beta) and 200
(SMA 200, std of 168 returns) exactly, 300 (RSI 14, MACD, ATR, ADX, EMA <= 20), 500 (RSI 28,
EMA 50) and 2000 (EMA 200) to < 1e-4 relative (EMA and Wilder smoothing have infinite memory
that decays as ``(1 - alpha)^k``; the windows were measured on the shared data, see
docs/ml.md). :func:`features_at` and :func:`features_latest_many` run the very same group
functions on those trailing windows. Truncating the future never changes a past row.
"""

from __future__ import annotations

import hashlib
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

import numpy as np

from mlops.core.deal_features import DEAL_FEATURE_NAMES, deal_features
from mlops.core.feature_math import GROUPS, Panel, combine
from mlops.core.feature_registry import BTC_STATE_SOURCES, CANDLE_FEATURES, FEATURES
from strategies.engine.feed import Candles

__all__ = [
    "DEAL_FEATURE_NAMES",
    "FEATURES",
    "FEATURE_NAMES",
    "FEATURES_VERSION",
    "FeatureFrame",
    "compute_features",
    "deal_features",
    "feature_hash",
    "features_at",
    "features_latest_many",
]

FEATURES_VERSION = "1"
FEATURE_NAMES: tuple[str, ...] = tuple(f.name for f in FEATURES)
CANDLE_NAMES: tuple[str, ...] = tuple(f.name for f in CANDLE_FEATURES)
BTC_SYMBOL = "BTC/USDT"
_BTC_SRC = np.array([CANDLE_NAMES.index(s) for s in BTC_STATE_SOURCES])


def feature_hash(names: Sequence[str] = FEATURE_NAMES) -> str:
    """sha256 hex of ``FEATURES_VERSION`` and the ordered ``names`` (one per line).

    A model stores it at training; a different list, order or version gives another hash."""
    text = f"market7-features/{FEATURES_VERSION}\n" + "\n".join(names)
    return hashlib.sha256(text.encode()).hexdigest()


@dataclass(frozen=True, slots=True, eq=False)
class FeatureFrame:
    """Features of one symbol: ``time`` int64 epoch ms open times ``[n]``, ``names`` the columns,
    ``values`` float32 ``[n, len(names)]`` (NaN = not yet defined / not computable)."""

    time: np.ndarray
    names: tuple[str, ...]
    values: np.ndarray

    def __post_init__(self) -> None:
        if self.values.shape != (len(self.time), len(self.names)):
            raise ValueError(f"values shape {self.values.shape} != ({len(self.time)}, {len(self.names)})")

    def __len__(self) -> int:
        return len(self.time)

    def column(self, name: str) -> np.ndarray:
        """One feature's column (float32 view); ``KeyError`` for an unknown name."""
        try:
            return self.values[:, self.names.index(name)]
        except ValueError:
            raise KeyError(name) from None

    def to_frame(self):
        """A pandas DataFrame: ``time`` (epoch ms) then one column per feature."""
        import pandas as pd

        df = pd.DataFrame(self.values, columns=list(self.names))
        df.insert(0, "time", self.time)
        return df


def _btc_aligned(time: np.ndarray, btc: Candles | None) -> tuple[np.ndarray, np.ndarray]:
    """Index of the newest BTC candle opening at or before each time (-1: none) and its close."""
    if btc is None or len(btc) == 0:
        return np.full(len(time), -1), np.full(len(time), np.nan)
    idx = np.searchsorted(btc.time, time, side="right") - 1
    close = btc.close[np.maximum(idx, 0)]
    return idx, np.where(idx >= 0, close, np.nan)


def _candle_columns(panel: Panel) -> np.ndarray:
    cols: dict[str, np.ndarray] = {}
    for g in GROUPS:
        cols.update(g.fn(panel))
    combine(cols)
    return np.column_stack([cols[n] for n in CANDLE_NAMES])


def compute_features(candles: Candles, btc: Candles | None = None) -> FeatureFrame:
    """Every feature for every candle of one symbol (batch; training and research).

    Returns a :class:`FeatureFrame` of ``len(candles)`` rows in :data:`FEATURE_NAMES` order;
    each feature is NaN until its warm-up is met (e.g. ``ret_24`` for rows 0-23, ``rsi_14``
    rows 0-13, ``dist_sma_200`` / ``dist_ema_200`` rows 0-198). ``btc``: see the module doc.
    """
    _, bclose = _btc_aligned(candles.time, btc)
    p = Panel(candles.time, candles.open, candles.high, candles.low, candles.close, candles.volume, bclose)
    own = _candle_columns(p)
    state = np.full((len(candles), len(BTC_STATE_SOURCES)), np.nan)
    if btc is not None and len(btc):
        bp = Panel(btc.time, btc.open, btc.high, btc.low, btc.close, btc.volume, btc.close)
        bcols = _candle_columns(bp)[:, _BTC_SRC]
        idx, _ = _btc_aligned(candles.time, btc)
        ok = idx >= 0
        state[ok] = bcols[idx[ok]]
    values = np.hstack([own, state]).astype(np.float32)
    return FeatureFrame(np.asarray(candles.time, dtype=np.int64), FEATURE_NAMES, values)


def features_at(candles: Candles, i: int, btc: Candles | None = None) -> np.ndarray:
    """The float32 feature row of candle ``i`` (negative counts from the end) from candles
    ``<= i`` only — :func:`features_latest_many` on ``candles[: i + 1]``; equal to
    ``compute_features(candles, btc).values[i]`` to float32 precision. ``IndexError`` if out of
    range."""
    n = len(candles)
    if not -n <= i < n:
        raise IndexError(f"candle index {i} out of range for {n} candles")
    i = i % n
    _, rows = features_latest_many({"_": candles[: i + 1]}, btc=btc)
    return rows[0]


def features_latest_many(batch: Mapping[str, Candles], btc: Candles | None = None) -> tuple[list[str], np.ndarray]:
    """The feature row of the newest candle of each symbol: ``(symbols, float32 [S, F])``.

    The inference path: give each symbol its recent candles (at least 2000 for every row to
    equal the batch row; fewer gives the batch row of that shorter history). ``btc`` defaults
    to ``batch["BTC/USDT"]`` when that is present. The trailing windows of all symbols are
    concatenated (each rescaled to its own last close and mean volume; the features are
    scale-free) so each TA-Lib call runs once for the whole batch. ``ValueError`` if a symbol
    has no candles.
    """
    symbols = list(batch)
    if btc is None:
        btc = batch.get(BTC_SYMBOL)
    items = []
    for s in symbols:
        c = batch[s]
        if len(c) == 0:
            raise ValueError(f"no candles for {s}")
        items.append((c, btc))
    n_sym = len(items)
    last_times = np.array([int(c.time[-1]) for c, _ in items], dtype=np.int64)
    has_btc = btc is not None and len(btc) > 0
    if has_btc:
        bidx, _ = _btc_aligned(last_times, btc)
        needed = sorted({int(j) for j in bidx if j >= 0})
        items += [(btc[: j + 1], btc) for j in needed]
    rows = _tail_rows(items)
    out = np.full((n_sym, len(FEATURE_NAMES)), np.nan)
    out[:, : len(CANDLE_NAMES)] = rows[:n_sym]
    if has_btc:
        where = {j: n_sym + k for k, j in enumerate(needed)}
        for s, j in enumerate(bidx):
            if j >= 0:
                out[s, len(CANDLE_NAMES) :] = rows[where[int(j)], _BTC_SRC]
    return symbols, out.astype(np.float32)


def _tail_rows(items: list[tuple[Candles, Candles | None]]) -> np.ndarray:
    """The candle-feature row of the last candle of each ``(candles, btc)``: float64 ``[S, F]``.

    Per group: the symbols with at least the group's window (and BTC over all of it when the
    group reads BTC) share one concatenated panel, each segment multiplied by a power of two
    near 1 / its last close (and 1 / its mean volume) — exact in binary floating point, so every
    scale-free feature is bit-for-bit the unscaled one (TA-Lib's ADX breaks +DM/-DM ties
    differently under other factors) while a segment's inherited indicator state stays of
    order 1 and decays within the window. The others run alone on their whole history
    (exactly the batch computation)."""
    cols: dict[str, np.ndarray] = {}
    n = len(items)
    lengths = [len(c) for c, _ in items]
    btc_tails: dict[int, np.ndarray] = {}
    for g in GROUPS:
        w = g.window
        starts = [max(0, m - w) for m in lengths]
        if "btc_close" in g.columns:
            flat, solo = [], []
            for k, (c, btc) in enumerate(items):
                b = btc_tails[k] = _btc_aligned(c.time[starts[k] :], btc)[1]
                (flat if lengths[k] >= w and not np.isnan(b).any() else solo).append(k)
        else:
            flat = [k for k in range(n) if lengths[k] >= w]
            solo = [k for k in range(n) if lengths[k] < w]
        got: dict[str, np.ndarray] = {}
        if flat:
            segs = [(items[k][0], starts[k], btc_tails.get(k)) for k in flat]
            res = g.fn(_panel(segs, g.columns, rescale=True))
            ends = np.cumsum([lengths[k] - starts[k] for k in flat]) - 1
            for name, arr in res.items():
                got[name] = np.full(n, np.nan)
                got[name][flat] = arr[ends]
        for k in solo:
            res = g.fn(_panel([(items[k][0], starts[k], btc_tails.get(k))], g.columns, rescale=False))
            for name, arr in res.items():
                if name not in got:
                    got[name] = np.full(n, np.nan)
                got[name][k] = arr[-1]
        cols.update(got)
    combine(cols)
    return np.column_stack([cols[name] for name in CANDLE_NAMES])


def _pow2(x: np.ndarray) -> np.ndarray:
    """2**-round(log2 x) (1 where x is not positive): an exact rescaling factor."""
    x = np.asarray(x, dtype=np.float64)
    ok = x > 0
    return np.where(ok, np.exp2(-np.round(np.log2(np.where(ok, x, 1.0)))), 1.0)


def _panel(segs, columns: tuple[str, ...], *, rescale: bool) -> Panel:
    """Concatenate ``(candles, start, btc_close tail)`` segments into one :class:`Panel`."""
    lens = [len(c) - st for c, st, _ in segs]
    kw: dict[str, np.ndarray] = {}
    price = None
    for col in columns:
        if col == "btc_close":
            parts = [b for _, _, b in segs]
        else:
            parts = [getattr(c, col)[st:] for c, st, _ in segs]
        arr = np.concatenate(parts) if len(parts) > 1 else parts[0]
        if rescale and col != "time":
            if col == "btc_close":
                arr = arr * np.repeat(_pow2([b[-1] for b in parts]), lens)
            elif col == "volume":
                arr = arr * np.repeat(_pow2([p.mean() for p in parts]), lens)
            else:
                if price is None:
                    price = np.repeat(_pow2([c.close[-1] for c, _, _ in segs]), lens)
                arr = arr * price
        kw[col] = arr
    return Panel(**kw)
