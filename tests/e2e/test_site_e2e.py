"""Browser end-to-end for the site-wide pieces: the API docs render from local files only."""

from __future__ import annotations

from urllib.parse import urlsplit

import pytest

# Page data: a bot with one open and one closed deal (tests/trading/conftest.py); "db" there runs
# as transactional_db here, so the daphne subprocess sees the rows.
from tests.trading.conftest import bot_with_trades, market  # noqa: F401

pytestmark = [pytest.mark.e2e, pytest.mark.services]


@pytest.mark.enforce_csp  # the page policy is what keeps ReDoc from fetching its logo from cdn.redoc.ly
@pytest.mark.parametrize(("path", "ready"), [("/api/docs/", ".swagger-ui .info .title"), ("/api/redoc/", "h1")])
def test_api_docs_render_without_the_internet(transactional_db, page, live_server_url, path, ready, artifact):
    requested: list[str] = []
    failed: dict[str, str] = {}
    page.on("request", lambda request: requested.append(request.url))
    page.on("requestfailed", lambda request: failed.update({request.url: request.failure}))
    page.goto(f"{live_server_url}{path}")
    page.wait_for_selector(ready)
    assert "Market7 API" in page.locator(ready).first.inner_text()
    page.wait_for_load_state("networkidle")
    outside = [u for u in requested if urlsplit(u).scheme in {"http", "https"} and urlsplit(u).hostname != "127.0.0.1"]
    # ReDoc's sidebar asks for a logo on cdn.redoc.ly: the page's Content-Security-Policy stops
    # it in the browser (failure "csp"), nothing reaches the network.
    assert [u for u in outside if failed.get(u) != "csp"] == [], (outside, failed)
    assert any(u.endswith("/api/schema/") for u in requested)
    page.screenshot(path=artifact(f"e2e_api_docs_{path.strip('/').replace('/', '_')}.png"))


WIDTH_CHECK = """(sel) => { const el = document.querySelector(sel);
  return {scroll: el.scrollWidth, client: el.clientWidth}; }"""


def test_trades_history_fits_its_box_at_1280(transactional_db, bot_with_trades, browser, live_server_url, artifact):  # noqa: F811
    context = browser.new_context(viewport={"width": 1280, "height": 900})
    page = context.new_page()
    try:
        _login(page, live_server_url, "alice", "/trades/")
        widths = page.evaluate(WIDTH_CHECK, "#trades-table")
        assert widths["scroll"] <= widths["client"], widths
        box = page.locator("#trades-table").bounding_box()
        for header in ("P&L", "Exit reason"):
            th = page.locator("#trades-table th", has_text=header).first
            assert th.is_visible(), header
            cell = th.bounding_box()
            assert cell["x"] >= box["x"] and cell["x"] + cell["width"] <= box["x"] + box["width"] + 0.5, header
        reason = page.locator(f"#hist-{bot_with_trades.closed_trade.pk} td.reason")
        assert reason.is_visible() and reason.inner_text() == "take_profit: +5.2% >= 5%"
        page.screenshot(path=artifact("e2e_trades_1280.png"), full_page=True)
    finally:
        context.close()


def _login(page, live_server_url, username, next_url):
    page.goto(f"{live_server_url}/accounts/login/?next={next_url}")
    page.fill("#id_username", username)
    page.fill("#id_password", "pw-Market7!")
    page.click("button[type=submit]")
    page.wait_for_url(f"{live_server_url}{next_url}")
