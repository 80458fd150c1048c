"""Browser end-to-end: log in, see real markets, filter with HTMX, open a market and see the
candlestick chart render (screenshots in test-artifacts/)."""

from __future__ import annotations

import pytest

from tests.trading.conftest import REAL_MARKETS, load_real_market

pytestmark = [pytest.mark.e2e, pytest.mark.services]


def test_login_markets_and_chart(transactional_db, make_user, page, live_server_url, login, artifact):
    make_user("erin", "viewer")
    loaded = {spec[2]: load_real_market(*spec) for spec in REAL_MARKETS}

    login(page, "erin", next="/markets/")
    assert page.url == f"{live_server_url}/markets/"
    rows = page.locator("tbody tr[data-symbol]")
    assert sorted(rows.evaluate_all("rs => rs.map(r => r.dataset.symbol)")) == sorted(loaded)
    btc_close = float(loaded["BTC/USDT"][1].close.iloc[-1])
    assert page.locator('tr[data-symbol="BTC/USDT"] td.last-close').inner_text() == f"{btc_close:,.2f}"
    page.screenshot(path=artifact("e2e_markets.png"), full_page=True)

    # HTMX filter: typing narrows the table without a reload; the URL keeps the state.
    page.evaluate("window.__m7_marker = 1")
    page.keyboard.press("/")
    page.keyboard.type("eth")
    page.wait_for_function("document.querySelectorAll('tbody tr[data-symbol]').length === 1")
    assert rows.first.get_attribute("data-symbol") == "ETH/USDT"
    assert "q=eth" in page.url
    assert page.evaluate("window.__m7_marker") == 1  # same document: no full reload
    page.keyboard.press("Escape")
    page.wait_for_function(f"document.querySelectorAll('tbody tr[data-symbol]').length === {len(loaded)}")

    page.click('tr[data-symbol="BTC/USDT"] td.sym a')
    page.wait_for_url(f"{live_server_url}/markets/binance/BTC-USDT/")
    page.wait_for_selector('#chart[data-loaded="true"]')
    assert page.locator("#chart").get_attribute("data-points") == str(len(loaded["BTC/USDT"][1]))
    canvas = page.locator("#chart canvas").first
    canvas.wait_for(state="visible")
    box = canvas.bounding_box()
    assert box["width"] > 600 and box["height"] > 300
    # the candles really painted: the chart's canvases hold both up (green) and down (red) pixels
    painted = page.evaluate(
        """() => { let up = 0, down = 0;
             for (const c of document.querySelectorAll('#chart canvas')) {
               const d = c.getContext('2d').getImageData(0, 0, c.width, c.height).data;
               for (let i = 0; i < d.length; i += 4) {
                 if (d[i] < 60 && d[i+1] > 150 && d[i+2] > 100 && d[i+2] < 160) up++;
                 else if (d[i] > 200 && d[i+1] < 90 && d[i+2] < 90) down++;
               } }
             return {up, down}; }"""
    )
    assert painted["up"] > 500 and painted["down"] > 500, painted
    assert f"{btc_close:,.2f}" in page.locator("#summary-last").inner_text()
    page.screenshot(path=artifact("e2e_market_chart.png"), full_page=True)
    assert page.m7_errors == []
