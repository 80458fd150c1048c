"""``manage.py ml_features`` on real bundled candles imported into the database.

Expected values are recomputed from the CSV files, independently of the database."""

from __future__ import annotations

import csv
from datetime import UTC, datetime
from io import StringIO

import numpy as np
import pytest
from django.core.management import CommandError, call_command

from mlops.core.features import FEATURE_NAMES, compute_features
from mlops.features_io import LOOKBACK_CANDLES
from strategies.engine import load_csv
from trading.services.candles import candles_import

H = 3_600_000


def ms(*args) -> int:
    return int(datetime(*args, tzinfo=UTC).timestamp() * 1000)


@pytest.fixture
def files(db, bundled_data_dir):
    for name in ("BTCUSDT-1h.csv.gz", "ETHUSDT-1h.csv.gz"):
        candles_import(path=bundled_data_dir / name, exchange="binance", market_type="spot")
    return {s: load_csv(bundled_data_dir / f"{s.replace('/', '')}-1h.csv.gz") for s in ("BTC/USDT", "ETH/USDT")}


def run(*args):
    out = StringIO()
    call_command("ml_features", *args, stdout=out)
    return out.getvalue()


def read(path):
    with open(path, newline="") as fh:
        return list(csv.reader(fh))


def test_writes_one_row_per_symbol_and_candle_equal_to_the_batch(files, tmp_path):
    path = tmp_path / "out.csv"
    msg = run("--symbols", "BTC/USDT,ETH/USDT", "--start", "2025-06-01", "--end", "2025-06-03", "--csv", str(path))
    assert msg == f"96 rows (2 symbol(s) × 1h, 72 features) written to {path}\n"
    rows = read(path)
    assert rows[0] == ["time", "symbol", *FEATURE_NAMES]
    assert len(rows) == 1 + 96
    assert [r[0] for r in rows[1:3]] == ["2025-06-01T00:00:00Z", "2025-06-01T01:00:00Z"]
    assert rows[48][:2] == ["2025-06-02T23:00:00Z", "BTC/USDT"]
    assert rows[49][:2] == ["2025-06-01T00:00:00Z", "ETH/USDT"]
    start, end = ms(2025, 6, 1), ms(2025, 6, 3)
    btc = files["BTC/USDT"]
    window = lambda c: c[int(np.searchsorted(c.time, start - LOOKBACK_CANDLES * H)) : int(np.searchsorted(c.time, end))]  # noqa: E731
    b = window(btc)
    for k, symbol in enumerate(("BTC/USDT", "ETH/USDT")):
        c = window(files[symbol])
        expect = compute_features(c, b).values[-48:]
        got = rows[1 + 48 * k : 1 + 48 * (k + 1)]
        assert all(r[1] == symbol for r in got)
        values = np.array([[np.float32(x) if x else np.nan for x in r[2:]] for r in got], dtype=np.float32)
        assert np.array_equal(values, expect, equal_nan=True)
        # the warm-up lookback makes the first row complete
        assert np.isfinite(values[0]).all()


def test_errors_write_nothing(files, tmp_path):
    path = tmp_path / "out.csv"
    base = ["--timeframe", "1h", "--csv", str(path)]
    cases = [
        (
            ["--symbols", "NOPE/USDT", "--start", "2025-06-01", "--end", "2025-06-02"],
            "unknown symbol(s) on binance: NOPE/USDT",
        ),
        (
            ["--symbols", "ETH/USDT", "--start", "2024-01-01", "--end", "2024-02-01"],
            "no 1h candles of ETH/USDT between",
        ),
        (["--symbols", "ETH/USDT", "--start", "June", "--end", "2025-06-02"], "--start 'June' is not a date"),
        (["--symbols", "ETH/USDT", "--start", "2025-06-02", "--end", "2025-06-01"], "is not before end"),
        (["--symbols", "ETH/USDT", "--start", "2025-06-01", "--end", "2025-06-02", "--timeframe", "7x"], "7x"),
    ]
    for args, message in cases:
        with pytest.raises(CommandError, match=message.replace("(", r"\(").replace(")", r"\)")):
            run(*base, *args)
        assert not path.exists()
        assert list(tmp_path.iterdir()) == []
