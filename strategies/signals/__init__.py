"""Signals as data: what a detector saw on closed candles, scored and explained (issue 11).

Pure core (no Django). A **detector** is a causal function of closed candles: given the
:class:`~strategies.engine.feed.Candles` of one market (and, where the strategy needs it, BTC's
for the market condition), it returns one :class:`Signal` per candle where its rule holds —
evaluated in batch over the whole arrays (backtests, scans) with the same code that evaluates
the newest candle (the scanner, a bot step): element ``i`` depends only on candles ``0..i``.

Registry: :data:`DETECTORS` maps a strategy name (``fork_score``, ``scalping``,
``dca_detector``, ``swing``, ``channel``) to its :class:`Detector`; :func:`get_detector`
looks one up and :func:`detect` runs it.
"""

from __future__ import annotations

from .base import (
    DETECTORS,
    Component,
    Detector,
    DetectorInput,
    Signal,
    detect,
    get_detector,
    register,
    rrr,
)

__all__ = [
    "DETECTORS",
    "Component",
    "Detector",
    "DetectorInput",
    "Signal",
    "detect",
    "get_detector",
    "register",
    "rrr",
]
