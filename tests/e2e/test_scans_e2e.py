"""Browser end-to-end: the Scan Review signal chart (candles + entry / SL / TP lines) and the
BTC Risk Panel chart draw under the Content-Security-Policy with no violation and no error."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

pytestmark = [pytest.mark.e2e, pytest.mark.services]

WATCH = """
window.__csp = [];
document.addEventListener("securitypolicyviolation", (e) => window.__csp.push(e.violatedDirective));
"""


@pytest.mark.enforce_csp
def test_scan_pages_draw(transactional_db, make_user, page, live_server_url, login, artifact):
    from strategies.models import MarketScan, ScanSignal
    from tests.trading.conftest import load_bundled

    alice = make_user("alice")
    btc = load_bundled("BTCUSDT-1h.csv.gz")
    for f in ("ETHUSDT-1h.csv.gz", "SOLUSDT-1h.csv.gz"):
        load_bundled(f)
    scan = MarketScan.objects.create(
        owner=alice, at=datetime(2025, 5, 1, tzinfo=UTC), timeframe="1h", strategies=["swing"]
    )
    sig = ScanSignal.objects.create(
        scan=scan, market=btc, strategy="swing", time=datetime(2025, 4, 30, 23, tzinfo=UTC), side="long", score=0.7,
        components={"breakout": {"value": 1.0, "points": 0.5}}, entry=94172.0, stop_loss=89463.4, take_profit=108297.8,
        rrr=3.0, reason="test",
    )  # fmt: skip
    page.add_init_script(WATCH)
    login(page, "alice", next="/scans/")
    r = page.goto(f"{live_server_url}/scans/signals/{sig.pk}/")
    assert r.status == 200
    page.wait_for_selector("#signal-chart[data-loaded='true'] canvas")
    assert page.get_attribute("#signal-chart", "data-points") == "201"  # 200 before + the signal candle (the last)
    page.screenshot(path=artifact("e2e_scan_signal.png"))
    r = page.goto(f"{live_server_url}/scans/btc-risk/")
    assert r.status == 200
    page.wait_for_selector("#regime-chart canvas")
    assert page.get_attribute("#regime-chart", "data-points") == "1368"
    page.screenshot(path=artifact("e2e_btc_risk.png"))
    assert page.evaluate("window.__csp") == []
    assert page.m7_errors == []
