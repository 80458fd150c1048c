"""The bundled leverage tier tables (strategies/engine/data/leverage_tiers.json) are well formed.

Every table is checked here on the raw JSON rows, independently of ``TierTable.from_rows``:
brackets start at 0, are contiguous and increasing, maintenance margin rates rise and maximum
leverage falls with the notional, and each maintenance amount follows Binance's recurrence
``cum_k = cum_{k-1} + floor_k × (MMR_k − MMR_{k-1})`` ("Leverage and Margin of USDⓈ-M
Futures"). The rows themselves are Binance's brackets as snapshotted by freqtrade
(freqtrade/exchange/binance_leverage_tiers.json, commit 01d10aeb...), named in the file.
"""

import json
from decimal import Decimal
from pathlib import Path

import pytest

from strategies.engine.perps import bundled_tiers, maintenance_margin

TIERS_FILE = Path(__file__).resolve().parents[2] / "strategies" / "engine" / "data" / "leverage_tiers.json"
RAW = json.loads(TIERS_FILE.read_text())

# The futures files of ../shared/data/ohlcv/futures: every one has a bundled table.
FUTURES_SYMBOLS = [
    f"{base}/USDT:USDT"
    for base in ("ADA", "APT", "ARB", "ATOM", "AVAX", "BNB", "BTC", "DOGE", "ETH", "LINK", "LTC", "SOL", "XRP")
]


def test_the_file_names_its_source_and_columns():
    assert "freqtrade/exchange/binance_leverage_tiers.json" in RAW["_source"]
    assert "01d10aebcab25c526473c603a88e14eb7d9699cc" in RAW["_source"]
    assert RAW["_columns"] == ["min_notional", "max_notional", "mmr", "max_leverage", "cum"]
    assert sorted(k for k in RAW if not k.startswith("_")) == sorted(FUTURES_SYMBOLS)


@pytest.mark.parametrize("symbol", FUTURES_SYMBOLS)
def test_bundled_table_is_well_formed(symbol):
    rows = [[Decimal(str(x)) for x in r] for r in RAW[symbol]]
    assert all(len(r) == 5 for r in rows)
    assert rows[0][0] == 0 and rows[0][4] == 0
    for k, (lo, hi, mmr, lev, cum) in enumerate(rows):
        assert lo < hi, f"{symbol} tier {k + 1}: empty bracket"
        assert 0 < mmr <= Decimal("0.5")
        assert 1 <= lev <= 125 and lev == int(lev)
        if k:
            p_lo, p_hi, p_mmr, p_lev, p_cum = rows[k - 1]
            assert lo == p_hi, f"{symbol} tier {k + 1} does not start where tier {k} ends"
            assert mmr > p_mmr
            assert lev < p_lev
            # Exact in decimal: the recurrence, not a tolerance.
            assert cum == p_cum + lo * (mmr - p_mmr), f"{symbol} tier {k + 1}: cum {cum}"
    assert rows[-1][3] == 1  # the last bracket is 1x
    # The engine loads it (from_rows re-checks the recurrence).
    assert len(bundled_tiers(symbol).tiers) == len(rows)


def test_first_tier_caps_and_sample_maintenance():
    caps = {s: bundled_tiers(s).max_leverage(0) for s in FUTURES_SYMBOLS}
    assert caps == {
        "ADA/USDT:USDT": 75.0,
        "APT/USDT:USDT": 50.0,
        "ARB/USDT:USDT": 50.0,
        "ATOM/USDT:USDT": 75.0,
        "AVAX/USDT:USDT": 75.0,
        "BNB/USDT:USDT": 75.0,
        "BTC/USDT:USDT": 125.0,
        "DOGE/USDT:USDT": 75.0,
        "ETH/USDT:USDT": 125.0,
        "LINK/USDT:USDT": 75.0,
        "LTC/USDT:USDT": 75.0,
        "SOL/USDT:USDT": 100.0,
        "XRP/USDT:USDT": 75.0,
    }
    # SOL, 30,000 USDT notional: bracket 2 (20,000-100,000, MMR 0.65 %, cum 30):
    # 30,000 × 0.0065 − 30 = 165.
    assert maintenance_margin(30_000, bundled_tiers("SOL/USDT:USDT")) == pytest.approx(165.0, abs=1e-9)
    # DOGE, 780,000 USDT: bracket 4 (750,000-800,000, MMR 2 %, cum 7,670): 15,600 − 7,670 = 7,930.
    assert maintenance_margin(780_000, bundled_tiers("DOGE/USDT:USDT")) == pytest.approx(7930.0, abs=1e-9)


def test_a_symbol_without_a_real_table_stays_unbundled():
    assert bundled_tiers("PEPE/USDT:USDT") is None
    assert bundled_tiers("SUI/USDT:USDT") is None
