"""discover_markets: from the fake Binance server (load_markets + fetch_tickers) and offline
from a saved markets JSON (no request at all)."""

from __future__ import annotations

import gzip
import json
from decimal import Decimal

import pytest
from django.core.management import CommandError, call_command

from trading.models.market import Exchange, Market
from trading.services.markets import markets_discover

# The fake_binance fixture (harmless once tests/conftest.py registers the plugin too).
pytest_plugins = ["tests.fakes.fixtures"]

BASES = ("BTC", "ETH", "SOL", "BNB", "XRP", "ADA", "DOGE", "LINK", "AVAX", "LTC")
USDT_SPOT = sorted([f"{b}/USDT" for b in BASES] + ["PEPE/USDT"])  # LUNA/USDT is not TRADING
BTC_PRECISION = {"amount": 1e-05, "price": 0.01, "base": 1e-08, "quote": 1e-08}
BTC_LIMITS = {
    "leverage": {"min": None, "max": None},
    "amount": {"min": 1e-05, "max": 9000000.0},
    "price": {"min": 0.01, "max": 1000000.0},
    "cost": {"min": 5.0, "max": 9000000.0},
    "market": {"min": 0.0, "max": 100000.0},
}


def quote_volume_24h(bundled_data_dir, base: str) -> float:
    """What Binance's 24 h quoteVolume is for the fake: sum(close * volume) of the last 24 hours."""
    with gzip.open(bundled_data_dir / f"{base}USDT-1h.csv.gz", "rt") as handle:
        rows = [line.split(",") for line in handle.read().splitlines()[-24:]]
    return float(f"{sum(Decimal(r[4]) * Decimal(r[5]) for r in rows):.8f}")


@pytest.mark.django_db
def test_discover_spot_usdt_markets_from_the_exchange(fake_binance, bundled_data_dir, capsys):
    call_command("discover_markets", "--exchange", "binance", "--quote", "USDT", "--type", "spot")

    assert sorted(Market.objects.values_list("symbol", flat=True)) == USDT_SPOT
    btc = Market.objects.get(symbol="BTC/USDT")
    assert (btc.exchange_symbol, btc.base, btc.quote, btc.settle, btc.type, btc.active) == (
        "BTCUSDT",
        "BTC",
        "USDT",
        "",
        "spot",
        True,
    )
    assert btc.precision == BTC_PRECISION
    assert btc.limits == BTC_LIMITS
    assert (btc.maker_fee, btc.taker_fee) == (Decimal("0.001000"), Decimal("0.001000"))
    assert Market.objects.get(symbol="PEPE/USDT").precision["price"] == 1e-08
    assert Market.objects.get(symbol="DOGE/USDT").limits["cost"]["min"] == 1.0
    assert Exchange.objects.get().code == "binance"
    assert fake_binance.paths() == ["/api/v3/exchangeInfo", "/api/v3/ticker/24hr"]

    out = capsys.readouterr().out.splitlines()
    assert out[0].split() == [
        "symbol",
        "action",
        "price",
        "step",
        "amount",
        "step",
        "min",
        "amount",
        "min",
        "cost",
        "24h",
        "quote",
        "vol",
    ]
    btc_line = next(line for line in out if line.startswith("BTC/USDT "))
    assert btc_line.split() == [
        "BTC/USDT",
        "added",
        "0.01",
        "1e-05",
        "1e-05",
        "5",
        f"{quote_volume_24h(bundled_data_dir, 'BTC'):g}",
    ]
    assert out[-1] == "binance spot: 11 market(s) matched, 11 kept: 11 added, 0 updated, 0 unchanged"


@pytest.mark.django_db
def test_rediscover_reports_unchanged_then_updated(fake_binance, capsys):
    markets_discover(exchange="binance", quote="USDT", market_type="spot")
    Market.objects.filter(symbol="ETH/USDT").update(precision={"price": 0.1})
    report = markets_discover(exchange="binance", quote="USDT", market_type="spot")
    assert (report.count("added"), report.count("updated"), report.count("unchanged")) == (0, 1, 10)
    assert [m.symbol for m in report.markets if m.action == "updated"] == ["ETH/USDT"]
    assert Market.objects.get(symbol="ETH/USDT").precision == {
        "amount": 0.0001,
        "price": 0.01,
        "base": 1e-08,
        "quote": 1e-08,
    }
    assert Market.objects.count() == 11


@pytest.mark.django_db
def test_min_quote_volume_filter(fake_binance, bundled_data_dir):
    volumes = {f"{b}/USDT": quote_volume_24h(bundled_data_dir, b) for b in BASES}
    volumes["PEPE/USDT"] = 12345678.9
    threshold = sorted(volumes.values())[6]
    report = markets_discover(exchange="binance", quote="USDT", market_type="spot", min_quote_volume=threshold)
    expected = sorted(s for s, v in volumes.items() if v >= threshold)
    assert len(expected) == 5
    assert sorted(Market.objects.values_list("symbol", flat=True)) == expected
    assert {m.symbol: m.quote_volume for m in report.markets} == {s: volumes[s] for s in expected}
    assert report.considered == 11


@pytest.mark.django_db
def test_other_quote_and_swap(fake_binance):
    report = markets_discover(exchange="binance", quote="BTC", market_type="spot")
    assert [(m.symbol, m.action) for m in report.markets] == [("ETH/BTC", "added")]
    assert Market.objects.get(symbol="ETH/BTC").limits["cost"]["min"] == 0.0001

    fake_binance.requests.clear()
    report = markets_discover(exchange="binance", quote="USDT", market_type="swap")
    assert [m.symbol for m in report.markets] == ["BTC/USDT:USDT", "ETH/USDT:USDT", "SOL/USDT:USDT"]
    swap = Market.objects.get(symbol="BTC/USDT:USDT")
    assert (swap.type, swap.settle, swap.precision["price"], swap.limits["cost"]["min"]) == ("swap", "USDT", 0.1, 100.0)
    assert swap.info["contractSize"] == 1.0 and swap.info["linear"] is True
    assert fake_binance.paths() == ["/fapi/v1/exchangeInfo", "/fapi/v1/ticker/24hr"]


@pytest.mark.django_db
def test_offline_markets_file_makes_no_request(fake_binance, tmp_path, capsys):
    saved = tmp_path / "markets.json"
    call_command("discover_markets", "--quote", "USDT", "--save-markets", str(saved))
    data = json.loads(saved.read_text())
    assert set(data) == {"markets", "tickers"} and "BTC/USDT" in data["markets"]
    Market.objects.all().delete()
    fake_binance.stop()  # any request would now fail with "cannot reach binance"
    count = len(fake_binance.requests)

    markets_only = tmp_path / "markets-only.json"
    markets_only.write_text(json.dumps(data["markets"]))
    capsys.readouterr()
    call_command("discover_markets", "--quote", "USDT", "--type", "spot", "--markets-file", str(markets_only))
    out = capsys.readouterr().out.splitlines()
    assert out[0] == "note: offline: markets from file, no tickers in it (24 h volume unknown)"
    assert out[-1] == "binance spot: 11 market(s) matched, 11 kept: 11 added, 0 updated, 0 unchanged"
    assert sorted(Market.objects.values_list("symbol", flat=True)) == USDT_SPOT
    btc = Market.objects.get(symbol="BTC/USDT")
    assert (btc.precision, btc.limits) == (BTC_PRECISION, BTC_LIMITS)
    assert len(fake_binance.requests) == count

    with pytest.raises(CommandError) as info:
        call_command("discover_markets", "--markets-file", str(markets_only), "--min-quote-volume", "1000")
    assert str(info.value) == (
        f"{markets_only}: the file has no tickers, so --min-quote-volume cannot apply offline "
        "(save the file with tickers, or drop the option)"
    )

    # A file saved with tickers filters offline too.
    report = markets_discover(exchange="binance", quote="USDT", markets_file=saved, min_quote_volume=12345678.9)
    assert "PEPE/USDT" in [m.symbol for m in report.markets]
    assert report.notes == ["offline: markets and tickers from file, no network call"]
    assert len(fake_binance.requests) == count


@pytest.mark.django_db
def test_offline_bad_files(tmp_path):
    with pytest.raises(CommandError, match=f"^{tmp_path}/nope.json: no such markets file$"):
        call_command("discover_markets", "--markets-file", str(tmp_path / "nope.json"))
    (tmp_path / "bad.json").write_text("{not json")
    with pytest.raises(CommandError, match=r"bad.json: not valid JSON \("):
        call_command("discover_markets", "--markets-file", str(tmp_path / "bad.json"))
    (tmp_path / "empty.json").write_text("{}")
    with pytest.raises(CommandError, match="empty.json: no markets in the file$"):
        call_command("discover_markets", "--markets-file", str(tmp_path / "empty.json"))
    assert Market.objects.count() == 0


@pytest.mark.django_db
def test_unreachable_exchange(fake_binance):
    fake_binance.stop()
    with pytest.raises(CommandError) as info:
        call_command("discover_markets", "--quote", "USDT")
    assert str(info.value) == f"cannot reach binance: binance GET {fake_binance.base_url}/api/v3/exchangeInfo"
    assert Market.objects.count() == 0
