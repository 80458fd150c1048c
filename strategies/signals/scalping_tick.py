"""``scalping`` on a tick path: the batch score of :mod:`strategies.signals.scalping`, O(1) per update.

Pure Python (no Django, no numpy per update). One :class:`ScalpingTick` holds a state per symbol:
the streaming indicators of :mod:`strategies.indicators.incremental` (SMA windows, RSI, MACD, ATR)
plus rolling windows of closes (momentum) and volumes (order flow, volume mean), and the
*forming* candle built from ticks.

- ``update(symbol, candle)`` takes one **closed** candle ``(open_time_ms, open, high, low, close,
  volume)`` (quote-currency prices, base-currency volume), returns its :class:`TickScore` (``None``
  during warm-up, i.e. exactly where the batch detector has no valid value), commits it to the
  indicators and discards the forming candle.
- ``tick(symbol, price, volume=0.0)`` is one trade inside the next candle: the first tick after a
  closed candle opens the forming candle (open = high = low = close = ``price``, volume =
  ``volume``); each later tick sets close = ``price``, widens high/low and **adds** ``volume``
  (base currency, that trade's size) to the forming volume. It returns the score the forming
  candle would get if it closed now with these OHLCV — every indicator is evaluated as if it
  were the newest candle — and changes nothing else: no indicator, window or warm-up counter
  moves until ``update`` brings the closed candle (whose OHLCV, from the exchange, replace the
  forming one). A tick whose forming candle equals the closed candle scores exactly (bit for
  bit) what ``update`` returns for it.

The score equals the batch detector on the same candles (strength, side, SL, TP to ~1e-12; the
indicators agree with TA-Lib to ~5e-13). To stay O(1) per tick, each ``update`` precomputes the
constants the next candle needs: the window sums without their oldest value, RSI's
``avg·(n−1)``, the three MACD EMAs, ATR's ``atr·(n−1)`` and the volume sums of the closed part
of each window. A tick is then ~60 float operations.
"""

from __future__ import annotations

import math
from collections import deque
from collections.abc import Mapping, Sequence
from typing import Any, NamedTuple

import numpy as np

from strategies.engine.feed import Candles
from strategies.indicators.incremental import ATR, MACD, RSI, SMA

from ._paramcheck import validate
from .base import DetectorInput, Signal
from .scalping import COMPONENTS, PARAMS, Scalping, _check

__all__ = ["POINTS_INLINED", "SMA_ALIGN_TOL_INLINED", "ScalpingTick", "TickScore"]

# The seed's points, written as literals in :meth:`ScalpingTick._score` (fast); a test checks
# they are still :data:`strategies.signals.scalping.POINTS`.
POINTS_INLINED = {
    "sma_alignment": 0.30, "momentum": 0.25, "rsi_extreme": 0.20, "rsi_neutral": -0.10, "macd_cross": 0.25,
    "macd_hist": 0.10, "bollinger": 0.20, "band_narrow": 0.15, "band_wide": -0.10, "order_flow": 0.20, "volume": 0.15,
}  # fmt: skip

# scalping.SMA_ALIGN_TOL, inlined in _score as a literal (a test checks they are equal).
SMA_ALIGN_TOL_INLINED = 1e-9

_BATCH = Scalping()  # for its Signal wording (explain)
_TIE = 5e-13  # |long − short| below this is a tie (the batch rounds to 12 decimals)


class TickScore(NamedTuple):
    """One score: ``side`` +1 long / −1 short / 0 (tie, never trades); ``strength`` in [0, 1];
    ``entry`` = close, ``stop_loss`` / ``take_profit`` (quote currency; the long exits when
    ``side`` is 0, as the batch ``all_`` rows); ``passed`` = a side and strength ≥ min_strength;
    ``long`` / ``short`` = the vote points of each side (fractions)."""

    side: int
    strength: float
    entry: float
    stop_loss: float
    take_profit: float
    passed: bool
    long: float
    short: float


_new = tuple.__new__


class _Sym:
    """Per-symbol state: committed indicators, the next candle's constants, the forming candle."""

    __slots__ = (
        # committed
        "t", "count", "sums", "boll", "closes", "rsi", "macd", "atr",
        "vols", "sgn", "sum_fv", "sum_fs", "sum_mv", "since",
        # constants for the next candle (valid when ``ready``)
        "ready", "fA", "mA", "sA", "bK", "bA", "bB", "mref",
        "rprev", "rG", "rL", "ef", "es", "eg", "ph", "fv", "fs", "vmean", "pc", "aA",
        # forming candle
        "has", "o", "h", "l", "c", "v",
    )  # fmt: skip

    def __init__(self, p: Mapping[str, Any]):
        self.t = None
        self.count = 0
        self.sums = tuple(_RunSum(p[k]) for k in ("sma_fast", "sma_mid", "sma_slow"))
        self.boll = SMA(p["bb_period"])  # its window gives the Bollinger mean and std
        self.closes: deque[float] = deque(maxlen=p["momentum_candles"])
        self.rsi = RSI(p["rsi_period"])
        self.macd = MACD(p["macd_fast"], p["macd_slow"], p["macd_signal"])
        self.atr = ATR(p["atr_period"])
        self.vols: deque[float] = deque()
        self.sgn: deque[float] = deque()
        self.sum_fv = self.sum_fs = self.sum_mv = 0.0
        self.since = 0
        self.ready = False
        self.has = False
        self.o = self.h = self.l = self.c = self.v = 0.0


def _win_consts(win) -> tuple[float, float, float]:
    """``(K, s1, s2)`` of a window of ``n`` with its oldest value removed when full, so that the
    next value ``x`` gives ``mean = K + (s1 + x − K)/n`` (and ``s2 + (x − K)²`` for the variance)."""
    k, s1, s2 = win.shift, win.s1, win.s2
    if len(win.buf) == win.period:
        d = win.buf[0] - k
        s1 -= d
        s2 -= d * d
    return k, s1, s2


class _RunSum:
    """TA-Lib's ``SMA`` running sum, replayed exactly: ``T`` = Σ of the last ``n − 1`` values,
    updated by ``T += x; T −= oldest`` in TA-Lib's order, so ``(T + x)/n`` is bit-for-bit the
    batch SMA of the same series (its rounding included), and ``sma_alignment``'s noise-tolerant
    comparison (:func:`strategies.signals.scalping.sma_alignment`) sees the same bits."""

    __slots__ = ("n", "total", "q")

    def __init__(self, n: int):
        self.n = n
        self.total = 0.0
        self.q: deque[float] = deque()

    def push(self, x: float) -> None:
        q = self.q
        self.total += x
        q.append(x)
        if len(q) == self.n:
            self.total -= q.popleft()


class ScalpingTick:
    """Incremental ``scalping`` scorer for many symbols (see the module docstring).

    ``params``: the batch detector's parameters (validated the same way, ``ParamError`` on a bad
    one). Not thread-safe; one instance per worker.
    """

    def __init__(self, params: Mapping[str, Any] | None = None):
        p = validate(PARAMS, params, _check)
        self.params = p
        self._syms: dict[str, _Sym] = {}
        self._kf = p["flow_candles"] - 1  # closed candles in the order-flow window
        self._vk = p["volume_candles"]
        self._len = max(self._kf, self._vk)
        atr_need = 0 if p["sl_pct"] > 0 else p["atr_period"]
        self._need = max(
            p["sma_slow"] - 1, p["bb_period"] - 1, p["momentum_candles"], p["rsi_period"], self._kf, self._vk, atr_need
        )
        self._nf, self._nm, self._ns, self._nb = p["sma_fast"], p["sma_mid"], p["sma_slow"], p["bb_period"]
        self._rn, self._an = p["rsi_period"], p["atr_period"]
        # everything _score reads, unpacked in one go (faster than dict / attribute look-ups)
        self._c = (
            *(float(p[k]) for k in ("momentum_pct", "rsi_oversold", "rsi_overbought", "rsi_neutral_low")),
            *(float(p[k]) for k in ("rsi_neutral_high", "bb_dev", "bb_narrow", "bb_wide", "flow_threshold")),
            *(float(p[k]) for k in ("volume_mult", "sl_pct", "tp_pct", "atr_sl_mult", "reward_risk", "min_strength")),
            *(p[k] for k in ("sma_fast", "sma_mid", "sma_slow", "bb_period", "rsi_period", "atr_period")),
            *(2.0 / (p[k] + 1) for k in ("macd_fast", "macd_slow", "macd_signal")),  # EMA.k
        )

    def symbols(self) -> list[str]:
        return list(self._syms)

    def _sym(self, symbol: str) -> _Sym:
        st = self._syms.get(symbol)
        if st is None:
            st = self._syms[symbol] = _Sym(self.params)
        return st

    def forming(self, symbol: str) -> tuple[float, float, float, float, float] | None:
        """The forming candle ``(open, high, low, close, volume)`` built by ticks, or None."""
        st = self._syms.get(symbol)
        return (st.o, st.h, st.l, st.c, st.v) if st is not None and st.has else None

    def explain(self, symbol: str, time_ms: int, timeframe: str = "1m") -> Signal | None:
        """The forming candle's current score as a full :class:`Signal` — each component's value
        and points and the batch detector's reason line — for a candle opening at ``time_ms``
        (epoch ms UTC); ``None`` without a forming candle or during warm-up. Slow path (a few
        numpy arrays): call it for the ticks that pass, not for every tick."""
        st = self._syms.get(symbol)
        if st is None or not st.has or not st.ready:
            return None
        d: dict[str, float] = {}
        sc = self._score(st, st.o, st.h, st.l, st.c, st.v, d)
        a = {k: np.array([x]) for k, x in d.items()}
        for k in ("side", "strength", "long", "short", "passed"):
            a[k] = np.array([getattr(sc, k)])
        one = [np.array([x]) for x in (time_ms, st.o, st.h, st.l, st.c, st.v)]
        return _BATCH._signal(DetectorInput(symbol, timeframe, Candles.from_arrays(*one)), self.params, a, 0)

    # --- ticks -----------------------------------------------------------------------------

    def tick(self, symbol: str, price: float, volume: float = 0.0) -> TickScore | None:
        """Add one trade (``price`` quote currency, ``volume`` base currency) to the forming
        candle and score it; ``None`` until the symbol's indicators are warm. Not validated (hot
        path): a bad tick can only spoil the forming candle, which ``update`` replaces."""
        st = self._syms.get(symbol)
        if st is None:
            st = self._sym(symbol)
        if st.has:
            if price > st.h:
                st.h = price
            elif price < st.l:
                st.l = price
            st.c = price
            st.v += volume
        else:
            st.o = st.h = st.l = st.c = price
            st.v = volume
            st.has = True
        if not st.ready:
            return None
        return self._score(st, st.o, st.h, st.l, price, st.v)

    # --- closed candles --------------------------------------------------------------------

    def update(self, symbol: str, candle: Sequence[float]) -> TickScore | None:
        """Commit one closed candle ``(open_time_ms, open, high, low, close, volume)``; returns its
        score (``None`` in warm-up). ``ValueError`` when its time is not after the last one or a
        value is not finite (the state is then unchanged)."""
        t, o, h, lo, c, v = candle
        t = int(t)
        o, h, lo, c, v = float(o), float(h), float(lo), float(c), float(v)
        st = self._sym(symbol)
        if st.t is not None and t <= st.t:
            raise ValueError(f"{symbol}: candle {t} is not after {st.t}")
        if not all(map(math.isfinite, (o, h, lo, c, v))):
            raise ValueError(f"{symbol}: candle {t} has a non-finite value")
        score = self._score(st, o, h, lo, c, v) if st.ready else None
        self._commit(st, t, o, h, lo, c, v)
        return score

    def _commit(self, st: _Sym, t: int, o: float, h: float, lo: float, c: float, v: float) -> None:
        st.t = t
        st.has = False
        st.count += 1
        for rs in st.sums:
            rs.push(c)
        st.boll.update(c)
        st.closes.append(c)
        st.rsi.update(c)
        out = st.macd.update(c)
        st.atr.update(h, lo, c)
        # volume windows: the last kf (order flow, closed part) and vk (mean before) volumes
        sv = v if c > o else (-v if c < o else 0.0)
        vols, sgn, kf, vk = st.vols, st.sgn, self._kf, self._vk
        vols.append(v)
        sgn.append(sv)
        st.sum_fv += v
        st.sum_fs += sv
        st.sum_mv += v
        n = len(vols)
        if n > kf:
            st.sum_fv -= vols[-kf - 1]
            st.sum_fs -= sgn[-kf - 1]
        if n > vk:
            st.sum_mv -= vols[-vk - 1]
        if n > self._len:
            vols.popleft()
            sgn.popleft()
        st.since += 1
        if st.since >= self._len:  # exact re-sum: no add/subtract drift (amortised O(1))
            st.since = 0
            lv, ls = list(vols), list(sgn)
            st.sum_fv = math.fsum(lv[len(lv) - kf :]) if kf else 0.0
            st.sum_fs = math.fsum(ls[len(ls) - kf :]) if kf else 0.0
            st.sum_mv = math.fsum(lv[len(lv) - vk :])
        if not st.ready:
            if st.count < self._need or out is None:
                return
            st.ready = True
        self._prepare(st, out)

    def _prepare(self, st: _Sym, out) -> None:
        """The constants the next candle's score needs (see :func:`_win_consts`)."""
        st.fA, st.mA, st.sA = (rs.total for rs in st.sums)
        st.bK, st.bA, st.bB = _win_consts(st.boll.win)
        st.mref = st.closes[0]
        r, n = st.rsi, self._rn
        st.rprev = r.prev
        if r.count >= n:  # seeded: avg' = (avg·(n−1) + change)/n, TA-Lib's order
            st.rG, st.rL = r.gain * (n - 1), r.loss * (n - 1)
        else:  # the seed candle: avg = (Σ changes)/n
            st.rG, st.rL = r.gain, r.loss
        m = st.macd
        st.ef, st.es, st.eg, st.ph = m.fast_ema.ema, m.slow_ema.ema, m.signal_ema.ema, out.hist
        st.fv, st.fs = st.sum_fv, st.sum_fs
        st.vmean = st.sum_mv / self._vk
        a, n = st.atr, self._an
        st.pc = a.prev_close
        st.aA = a.atr * (n - 1) if a.atr is not None else (a.tr_sum if a.count == n - 1 else None)

    # --- the score -------------------------------------------------------------------------

    def _score(
        self, st: _Sym, o: float, h: float, lo: float, c: float, v: float, detail: dict | None = None
    ) -> TickScore:
        """The score of candle ``o h lo c v`` as the next one; ``detail`` (a dict) receives each
        component's ``<name>_value`` / ``<name>_points`` and ``sl_dist`` / ``tp_dist``."""
        mp, ros, rob, rnl, rnh, dev, narrow, wide, thr, vmult, slp, tpp, slm, rr, mins = self._c[:15]
        nf, nm, ns, nb, rn, an, kfa, ksl, ksg = self._c[15:]
        lg = sh = 0.0
        p_sma = p_mom = p_rsi = p_cross = p_hist = p_boll = p_width = p_flow = p_vol = 0.0
        # sma_alignment
        f = (st.fA + c) / nf
        m = (st.mA + c) / nm
        s = (st.sA + c) / ns
        eps = 1e-9 * abs(s)  # SMA_ALIGN_TOL_INLINED; the expressions of scalping.sma_alignment
        d1 = f - m
        d2 = m - s
        align = 0.0
        if d1 > eps and d2 > eps:
            p_sma = 0.30
            lg += 0.30
            align = 1.0
        elif d1 < -eps and d2 < -eps:
            p_sma = 0.30
            sh += 0.30
            align = -1.0
        # momentum (%)
        mom = (c / st.mref - 1.0) * 100.0
        if mom > mp:
            p_mom = 0.25
            lg += 0.25
        elif mom < -mp:
            p_mom = 0.25
            sh += 0.25
        # rsi (Wilder, TA-Lib's operation order)
        ch = c - st.rprev
        if ch < 0:
            g, los = st.rG / rn, (st.rL - ch) / rn
        else:
            g, los = (st.rG + ch) / rn, st.rL / rn
        den = g + los
        r = 100.0 * (g / den) if den != 0.0 else 0.0
        if r < ros:
            p_rsi = 0.20
            lg += 0.20
        elif r > rob:
            p_rsi = 0.20
            sh += 0.20
        elif rnl < r < rnh:
            p_rsi = -0.10
        # macd_cross, macd_hist
        ef, es, eg, ph = st.ef, st.es, st.eg, st.ph
        line = ((c - ef) * kfa + ef) - ((c - es) * ksl + es)
        hist = line - ((line - eg) * ksg + eg)
        if ph <= 0 < hist:
            p_cross = 0.25
            lg += 0.25
        elif ph >= 0 > hist:
            p_cross = 0.25
            sh += 0.25
        if abs(hist) > abs(ph):
            p_hist = 0.10
            if hist > 0:
                lg += 0.10
            elif hist < 0:
                sh += 0.10
        # bollinger, band_width (population std)
        bK = st.bK
        d = c - bK
        s1 = st.bA + d
        mid = bK + s1 / nb
        mu = s1 / nb
        var = (st.bB + d * d) / nb - mu * mu
        sd = math.sqrt(var) if var > 0.0 else 0.0
        up = mid + dev * sd
        low = mid - dev * sd
        if c <= low:
            p_boll = 0.20
            lg += 0.20
        elif c >= up:
            p_boll = 0.20
            sh += 0.20
        width = (up - low) / mid
        if width < narrow:
            p_width = 0.15
        elif width > wide:
            p_width = -0.10
        # order_flow over the closed part + the forming candle
        total = st.fv + v
        if total > 0:
            flow = (st.fs + (v if c > o else (-v if c < o else 0.0))) / total
            if flow > thr:
                p_flow = 0.20
                lg += 0.20
            elif flow < -thr:
                p_flow = 0.20
                sh += 0.20
        # volume ÷ mean of the candles before
        vm = st.vmean
        if vm > 0 and v / vm > vmult:
            p_vol = 0.15
        # direction, strength, exits
        diff = lg - sh
        side = 1 if diff > _TIE else (-1 if diff < -_TIE else 0)
        tot = p_sma + p_mom + p_rsi + p_cross + p_hist + p_boll + p_width + p_flow + p_vol  # batch's order
        strength = round(tot, 12)
        strength = 0.0 if strength < 0.0 else (1.0 if strength > 1.0 else strength)
        if slp > 0:
            sl_dist = c * slp / 100.0
        else:
            pc = st.pc
            tr = h - lo
            x = abs(pc - h)
            if x > tr:
                tr = x
            x = abs(pc - lo)
            if x > tr:
                tr = x
            sl_dist = slm * ((st.aA + tr) / an)
        tp_dist = c * tpp / 100.0 if tpp > 0 else rr * sl_dist
        if detail is not None:
            nan = math.nan
            values = (align, mom, r, hist, hist - ph, (c - low) / (up - low) if up != low else nan, width)
            values += ((st.fs + (v if c > o else (-v if c < o else 0.0))) / total if total > 0 else nan,)
            values += (v / vm if vm > 0 else nan,)
            points = (p_sma, p_mom, p_rsi, p_cross, p_hist, p_boll, p_width, p_flow, p_vol)
            for name, val, pts in zip(COMPONENTS, values, points, strict=True):
                detail[f"{name}_value"], detail[f"{name}_points"] = val, pts
            detail["sl_dist"], detail["tp_dist"] = sl_dist, tp_dist
        dd = side or 1
        passed = side != 0 and strength >= mins
        return _new(TickScore, (side, strength, c, c - dd * sl_dist, c + dd * tp_dist, passed, lg, sh))
