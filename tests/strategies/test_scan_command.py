"""``manage.py scan`` and the scan services on real bundled candles in the database.

The detectors here are test-only ones registered by a fixture (and removed after):
``test_up`` signals a long on a candle closing above its open, ``test_down`` a short on one
closing below; their components record what they were given (the mean close of the window and
BTC's last close), so the JSON shows exactly which candles a scan read. Expected values are
recomputed from the CSV files, independently of the database.
"""

from __future__ import annotations

import json
from datetime import UTC, datetime
from io import StringIO

import numpy as np
import pytest
from django.core.management import CommandError, call_command

from strategies.engine import load_csv
from strategies.models import MarketScan, ScanSignal
from strategies.services.scans import LOOKBACK_CANDLES, ScanError, scan_run
from strategies.signals import DETECTORS, Component, Signal, register, rrr
from trading.models import Candle
from trading.services.candles import candles_import

H = 3_600_000
LAST_OPEN = int(datetime(2025, 8, 31, 23, tzinfo=UTC).timestamp() * 1000)
ARGS = ["--strategies", "test_up,test_down", "--symbols", "BTC/USDT,ETH/USDT", "--timeframe", "1h"]


class CandleDirection:
    """Long when close > open (``test_up``) or short when close < open (``test_down``) on each
    candle from ``since_ms``; with ``all_`` the other candles too, ``passed=False``."""

    def __init__(self, name: str, up: bool) -> None:
        self.name, self.up, self.seen = name, up, []

    def schema(self):
        return []

    def detect(self, data, params=None, *, since_ms=None, all_=False):
        self.seen.append(data)
        self.params = params
        c, out = data.candles, []
        for i in range(len(c)):
            if since_ms is not None and c.time[i] < since_ms:
                continue
            o, h, lo, cl = float(c.open[i]), float(c.high[i]), float(c.low[i]), float(c.close[i])
            ok = cl > o if self.up else cl < o
            if not ok and not all_:
                continue
            stop = lo if self.up else h
            take = cl + 2 * (cl - stop)
            out.append(
                Signal(
                    symbol=data.symbol,
                    timeframe=data.timeframe,
                    time=int(c.time[i]),
                    strategy=self.name,
                    side="long" if self.up else "short",
                    score=0.8 if ok else 0.2,
                    components={
                        "body_pct": Component((cl - o) / o * 100, 0.8 if ok else 0.2),
                        "window_mean": Component(float(c.close[: i + 1].mean()), 0.0),
                        "btc_close": Component(-1.0 if data.btc is None else float(data.btc.close[-1]), 0.0),
                    },
                    entry=cl,
                    stop_loss=stop,
                    take_profit=take,
                    rrr=rrr(cl, stop, take),
                    reason=f"candle closed {'above' if cl > o else 'below'} its open",
                    passed=ok,
                )
            )
        return out


@pytest.fixture
def detectors():
    made = [register(CandleDirection("test_up", True)), register(CandleDirection("test_down", False))]
    yield {d.name: d for d in made}
    for d in made:
        DETECTORS.pop(d.name, None)


@pytest.fixture
def candles(db, bundled_data_dir, detectors):
    for name in ("BTCUSDT-1h.csv.gz", "ETHUSDT-1h.csv.gz"):
        candles_import(path=bundled_data_dir / name, exchange="binance", market_type="spot")
    return {s: load_csv(bundled_data_dir / f"{s.replace('/', '')}-1h.csv.gz") for s in ("BTC/USDT", "ETH/USDT")}


def scan(*extra, tmp_path=None):
    out = StringIO()
    path = None
    if tmp_path is not None:
        path = tmp_path / f"scan{len(list(tmp_path.iterdir()))}.json"
        extra = (*extra, "--json", str(path))
    call_command("scan", *ARGS, *extra, stdout=out)
    return out.getvalue(), (json.loads(path.read_text()) if path else None)


def iso(ms):
    return datetime.fromtimestamp(ms / 1000, tz=UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def expected(files, newest_open, *, all_=False):
    """The JSON the scan must write, from the CSV files: the window is the LOOKBACK_CANDLES
    candles up to ``newest_open``."""
    rows = []
    btc = files["BTC/USDT"]
    btc_close = float(btc.close[np.searchsorted(btc.time, newest_open)])
    for symbol in ("BTC/USDT", "ETH/USDT"):
        c = files[symbol]
        j = int(np.searchsorted(c.time, newest_open))
        assert c.time[j] == newest_open
        o, h, lo, cl = (float(x[j]) for x in (c.open, c.high, c.low, c.close))
        mean = float(c.close[j + 1 - LOOKBACK_CANDLES : j + 1].mean())
        for name, up in (("test_up", True), ("test_down", False)):
            ok = cl > o if up else cl < o
            if not ok and not all_:
                continue
            stop = lo if up else h
            take = cl + 2 * (cl - stop)
            row = {
                "symbol": symbol,
                "strategy": name,
                "time": iso(newest_open),
                "side": "long" if up else "short",
                "score": 0.8 if ok else 0.2,
                "components": {
                    "body_pct": {"value": (cl - o) / o * 100, "points": 0.8 if ok else 0.2},
                    "window_mean": {"value": mean, "points": 0.0},
                    "btc_close": {"value": -1.0 if symbol == "BTC/USDT" else btc_close, "points": 0.0},
                },
                "entry": cl,
                "stop_loss": stop,
                "take_profit": take,
                "rrr": abs(take - cl) / abs(cl - stop),
                "reason": f"candle closed {'above' if cl > o else 'below'} its open",
            }
            if all_:
                row["passed"] = ok
            rows.append(row)
    return {"at": iso(newest_open + H), "signals": rows}


def test_scan_of_the_last_closed_candle_writes_exact_json_and_saves_it(candles, detectors, tmp_path):
    out, doc = scan(tmp_path=tmp_path)
    assert doc == expected(candles, LAST_OPEN)
    assert doc["at"] == "2025-09-01T00:00:00Z"  # close of the last bundled candle
    entries = {s["symbol"]: s["entry"] for s in doc["signals"]}
    assert entries == {"BTC/USDT": 108246.35, "ETH/USDT": 4391.83}  # last closes (bundled README)
    assert [s["strategy"] for s in doc["signals"]] == ["test_down", "test_down"]  # both closed down
    # the detectors got the 500-candle window; BTC's candles for ETH, none for BTC itself
    seen = detectors["test_up"].seen
    assert [d.symbol for d in seen] == ["BTC/USDT", "ETH/USDT"]
    assert all(len(d.candles) == LOOKBACK_CANDLES and d.candles.time[-1] == LAST_OPEN for d in seen)
    assert seen[0].btc is None and np.array_equal(seen[1].btc.time, seen[1].candles.time)

    scan_row = MarketScan.objects.get()
    assert (scan_row.owner, scan_row.timeframe, scan_row.exchange) == (None, "1h", "binance")
    assert scan_row.at == datetime(2025, 9, 1, tzinfo=UTC)
    assert scan_row.strategies == ["test_up", "test_down"]
    assert (scan_row.symbols_count, scan_row.signals_count) == (2, 2)
    stored = [
        {
            "symbol": r.market.symbol,
            "strategy": r.strategy,
            "time": iso(int(r.time.timestamp() * 1000)),
            "side": r.side,
            "score": r.score,
            "components": r.components,
            "entry": r.entry,
            "stop_loss": r.stop_loss,
            "take_profit": r.take_profit,
            "rrr": r.rrr,
            "reason": r.reason,
        }
        for r in ScanSignal.objects.filter(scan=scan_row).order_by("id")
    ]
    assert stored == doc["signals"] and all(ScanSignal.objects.values_list("passed", flat=True))
    assert f"scan #{scan_row.pk} as of 2025-09-01T00:00:00Z: 2 signals from 2 symbol(s) × 2 strategies" in out
    table = out.splitlines()
    assert table[1].split() == ["symbol", "strategy", "side", "score", "entry", "SL", "TP", "RRR", "reason"]
    assert table[2].split()[:5] == ["BTC/USDT", "test_down", "short", "0.80", "108246.35"]
    assert table[2].endswith("  candle closed below its open")


def test_at_reads_only_candles_closed_by_then(candles, tmp_path):
    _, at_noon = scan("--at", "2025-06-01T12:00", tmp_path=tmp_path)
    _, at_half = scan("--at", "2025-06-01T12:30Z", tmp_path=tmp_path)  # floored to the hour
    newest = int(datetime(2025, 6, 1, 11, tzinfo=UTC).timestamp() * 1000)  # closes at 12:00
    assert at_noon == at_half == expected(candles, newest)
    assert at_noon["at"] == "2025-06-01T12:00:00Z" and at_noon["signals"]
    # the same scan on the data truncated at 12:00: nothing after it can have been read
    Candle.objects.filter(open_time__gte=datetime(2025, 6, 1, 12, tzinfo=UTC)).delete()
    _, truncated = scan(tmp_path=tmp_path)
    assert truncated == at_noon


def test_all_lists_every_evaluated_symbol_and_strategy(candles, tmp_path):
    out, doc = scan("--all", tmp_path=tmp_path)
    assert doc == expected(candles, LAST_OPEN, all_=True)
    assert [(s["symbol"], s["strategy"], s["passed"]) for s in doc["signals"]] == [
        ("BTC/USDT", "test_up", False),
        ("BTC/USDT", "test_down", True),
        ("ETH/USDT", "test_up", False),
        ("ETH/USDT", "test_down", True),
    ]
    assert sorted(ScanSignal.objects.values_list("passed", flat=True)) == [False, False, True, True]
    assert "4 candidates" in out and "passed" in out


def test_no_save_prints_and_writes_json_but_stores_nothing(candles, tmp_path):
    out, doc = scan("--no-save", tmp_path=tmp_path)
    assert doc == expected(candles, LAST_OPEN)
    assert out.startswith("scan (not saved) as of 2025-09-01T00:00:00Z: 2 signals")
    assert MarketScan.objects.count() == 0 and ScanSignal.objects.count() == 0


def test_owner_and_service_return_the_saved_scan(candles, make_user):
    user = make_user("quant", "trader")
    saved, signals = scan_run(symbols=["ETH/USDT"], timeframe="1h", strategies=["test_down"], owner=user)
    assert saved.owner == user and saved.signals_count == len(signals) == 1
    assert signals[0].time == LAST_OPEN and signals[0].entry == 4391.83
    none, again = scan_run(symbols=["ETH/USDT"], timeframe="1h", strategies=["test_down"], save=False)
    assert none is None and again == signals and MarketScan.objects.count() == 1


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--strategies", "test_up,nope"], "unknown detector 'nope'; known: "),
        (["--symbols", "BTC/USDT,PEPE/USDT"], "unknown symbol(s) on binance: PEPE/USDT"),
        (["--timeframe", "7h"], "unknown timeframe '7h'; use one of 1m, 3m"),
        (["--at", "2025-03-05T00:59"], "no 1h candles of BTC/USDT closed by 2025-03-05 00:00 UTC"),
        (["--at", "yesterday"], "--at 'yesterday' is not an ISO time (e.g. 2025-06-01T12:00)"),
    ],
)
def test_bad_arguments_exit_with_one_line_reason_and_save_nothing(candles, args, message):
    argv = list(ARGS)
    for i in range(0, len(args), 2):
        if args[i] in argv:
            argv[argv.index(args[i]) + 1] = args[i + 1]
        else:
            argv += args[i : i + 2]
    with pytest.raises(CommandError) as exc:
        call_command("scan", *argv, stdout=StringIO())
    assert str(exc.value).startswith(message)
    if "nope" in args[1]:
        assert "test_down, test_up" in str(exc.value)  # names the known detectors
    assert MarketScan.objects.count() == 0 and ScanSignal.objects.count() == 0


def test_first_closed_candle_is_enough(candles, tmp_path):
    # 2025-03-05 01:00 closes the first bundled candle (open 00:00): a one-candle window
    _, doc = scan("--at", "2025-03-05T01:00", "--all", tmp_path=tmp_path)
    assert {s["time"] for s in doc["signals"]} == {"2025-03-05T00:00:00Z"}


def test_a_detector_crash_saves_nothing(candles, detectors):
    def boom(data, params=None, **kw):
        if data.symbol == "ETH/USDT":
            raise RuntimeError("detector bug")
        return []

    detectors["test_up"].detect = boom
    with pytest.raises(RuntimeError):
        call_command("scan", *ARGS, stdout=StringIO())
    assert MarketScan.objects.count() == 0 and ScanSignal.objects.count() == 0


def test_scan_error_is_a_value_error_with_one_line():
    assert issubclass(ScanError, ValueError)


def test_admin_lists_scans_read_only(candles, make_user, client):
    scan("--all")
    admin = make_user("root", None, is_superuser=True, is_staff=True)
    client.force_login(admin)
    saved = MarketScan.objects.get()
    assert client.get("/admin/strategies/marketscan/").status_code == 200
    page = client.get(f"/admin/strategies/marketscan/{saved.pk}/change/")
    assert page.status_code == 200 and b"test_down" in page.content
    assert client.get("/admin/strategies/scansignal/").status_code == 200
    assert client.get("/admin/strategies/marketscan/add/").status_code == 403
    assert client.get("/admin/strategies/scansignal/add/").status_code == 403


def test_params_reach_their_detector_and_stray_ones_are_refused(candles, detectors, tmp_path):
    path = tmp_path / "p.json"
    path.write_text(json.dumps({"test_up": {"min_body_pct": 0.5}}))
    scan("--params", str(path), "--no-save")
    assert detectors["test_up"].params == {"min_body_pct": 0.5} and detectors["test_down"].params is None
    path.write_text(json.dumps({"swing": {"volume_mult": 2}}))
    with pytest.raises(CommandError, match=r"^params given for strategies not scanned: swing$"):
        scan("--params", str(path))
    path.write_text("[1]")
    with pytest.raises(CommandError, match="must hold a JSON object of objects"):
        scan("--params", str(path))
    assert MarketScan.objects.count() == 0
