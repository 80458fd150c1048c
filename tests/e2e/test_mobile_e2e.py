"""Browser end-to-end for the phone layout (390×844, an iPhone 12–15 viewport).

Below 760 px the top bar folds its links behind a menu button (``#nav-toggle``, a real
``<button>`` with ``aria-expanded`` / ``aria-controls``) and the data tables turn into stacked
cards, each cell labelled from its ``data-label``: no page scrolls sideways. At 1280 px the bar
is as before (links in line, no button). Screenshots in test-artifacts/.
"""

from __future__ import annotations

from datetime import UTC, datetime
from decimal import Decimal

import pytest

# Page data: a bot with one open and one closed deal (tests/trading/conftest.py); "db" there runs
# as transactional_db here, so the daphne subprocess sees the rows.
from tests.trading.conftest import bot_with_trades, market  # noqa: F401

pytestmark = [pytest.mark.e2e, pytest.mark.services]

PHONE = {"width": 390, "height": 844}
NAV_LINKS = ["Dashboard", "Bots", "Trades", "Backtests", "Scans", "ML", "Markets"]

SCROLL_WIDTH = "() => document.documentElement.scrollWidth"
PAGE_BOX = """(sel) => { const r = document.querySelector(sel).getBoundingClientRect();
  return {x: 0, y: r.top + window.scrollY - 8, width: 390, height: r.height + 16}; }"""
# Elements whose content is wider than their box (ids/classes, for the message).
OVERFLOWING = """() => Array.from(document.querySelectorAll('main *'))
  .filter(el => el.clientWidth > 1 && el.scrollWidth > el.clientWidth + 1 && getComputedStyle(el).overflowX !== 'visible')
  .map(el => el.tagName.toLowerCase() + (el.id ? '#' + el.id : '') + '.' + Array.from(el.classList).join('.'))"""


def _context(browser, viewport):
    context = browser.new_context(viewport=viewport, bypass_csp=True)
    page = context.new_page()
    page.set_default_timeout(15_000)
    errors: list[str] = []
    page.on("console", lambda msg: errors.append(f"console: {msg.text}") if msg.type == "error" else None)
    page.on("pageerror", lambda exc: errors.append(f"pageerror: {exc}"))
    page.m7_errors = errors
    return context, page


def _login(page, live_server_url, username, next_url):
    page.goto(f"{live_server_url}/accounts/login/?next={next_url}")
    page.fill("#id_username", username)
    page.fill("#id_password", "pw-Market7!")
    page.click("button[type=submit]")
    page.wait_for_url(f"{live_server_url}{next_url}")


def _in_viewport(box, width, height) -> bool:
    return box["x"] >= 0 and box["y"] >= 0 and box["x"] + box["width"] <= width and box["y"] + box["height"] <= height


def _make_run(owner):
    from strategies.models import BacktestRun

    return BacktestRun.objects.create(
        owner=owner,
        name="Phone-width run with a long name",
        strategy="smart_dca",
        symbols=["BTC/USDT", "ETH/USDT", "SOL/USDT"],
        timeframe="1h",
        start=datetime(2025, 4, 1, tzinfo=UTC),
        end=datetime(2025, 8, 5, tzinfo=UTC),
        capital=Decimal("10000"),
        status="done",
        progress=1.0,
        metrics={"total_return_pct": 12.5, "trades": 42, "max_drawdown_pct": 3.2},
        report={"equity_curve": [], "metrics": {}},
    )


def test_phone_menu_opens_and_navigates(transactional_db, bot_with_trades, browser, live_server_url, artifact):  # noqa: F811
    alice = bot_with_trades.owner
    alice.is_staff = True  # the nav then has its last link, Admin
    alice.save(update_fields=["is_staff"])
    context, page = _context(browser, PHONE)
    try:
        _login(page, live_server_url, "alice", "/bots/")
        toggle = page.locator("#nav-toggle")
        assert toggle.is_visible()
        assert toggle.evaluate("el => el.tagName") == "BUTTON"
        assert toggle.get_attribute("aria-expanded") == "false"
        assert toggle.get_attribute("aria-controls") == "mainnav"
        nav = page.locator("#mainnav")
        for name in NAV_LINKS:
            assert not nav.get_by_role("link", name=name, exact=True).is_visible(), name
        page.screenshot(path=artifact("e2e_mobile_menu_closed.png"))

        toggle.click()
        assert toggle.get_attribute("aria-expanded") == "true"
        links = nav.get_by_role("link")
        assert links.all_inner_texts() == [*NAV_LINKS, "Admin"]
        for link in links.all():
            assert link.is_visible(), link.inner_text()
            assert _in_viewport(link.bounding_box(), 390, 844), (link.inner_text(), link.bounding_box())
        assert page.evaluate(SCROLL_WIDTH) <= 390
        page.screenshot(path=artifact("e2e_mobile_menu_open.png"))

        # Keyboard: Escape closes it and gives focus back to the button; Enter opens it again.
        page.keyboard.press("Escape")
        assert toggle.get_attribute("aria-expanded") == "false"
        assert not nav.get_by_role("link", name="Backtests", exact=True).is_visible()
        assert page.evaluate("() => document.activeElement.id") == "nav-toggle"
        page.keyboard.press("Enter")
        assert toggle.get_attribute("aria-expanded") == "true"

        nav.get_by_role("link", name="Backtests", exact=True).click()
        page.wait_for_url(f"{live_server_url}/backtests/")
        assert page.locator("h1").first.inner_text() == "Backtests"
        # A fresh page starts with the menu folded.
        assert page.locator("#nav-toggle").get_attribute("aria-expanded") == "false"
        assert not page.locator("#mainnav").get_by_role("link", name="Markets", exact=True).is_visible()
        assert page.m7_errors == []
    finally:
        context.close()


def test_phone_pages_do_not_scroll_sideways(transactional_db, bot_with_trades, browser, live_server_url, artifact):  # noqa: F811
    _make_run(bot_with_trades.owner)
    context, page = _context(browser, PHONE)
    try:
        _login(page, live_server_url, "alice", "/bots/")
        pages = {
            "dashboard": "/",
            "bots": "/bots/",
            "trades": "/trades/",
            "markets": "/markets/",
            "bot": f"/bots/{bot_with_trades.pk}/",
            "backtests": "/backtests/",
        }
        widths, inner = {}, {}
        for name, path in pages.items():
            page.goto(f"{live_server_url}{path}")
            page.wait_for_load_state("load")
            widths[name] = page.evaluate(SCROLL_WIDTH)
            inner[name] = page.evaluate(OVERFLOWING)
            page.screenshot(path=artifact(f"e2e_mobile_{name}.png"), full_page=True)
        assert widths == {name: 390 for name in pages}, widths
        # Nor does any box inside them (a table in its own sideways scroller counts as a scroll).
        assert inner == {name: [] for name in pages}, inner
        page.goto(f"{live_server_url}/bots/{bot_with_trades.pk}/")
        for section in ("open", "closed"):  # live swaps replace these sections: clip by page position
            clip = page.evaluate(PAGE_BOX, f"#bot-{section}-{bot_with_trades.pk}")
            page.screenshot(path=artifact(f"e2e_mobile_bot_{section}.png"), full_page=True, clip=clip)

        # The cards keep each value with its column's name: the closed deal's P&L and exit reason.
        page.goto(f"{live_server_url}/trades/")
        row = page.locator(f"#hist-{bot_with_trades.closed_trade.pk}")
        pnl = row.locator("td[data-label='P&L']")
        assert pnl.is_visible()
        assert pnl.evaluate("el => getComputedStyle(el, '::before').content") == '"P&L"'
        reason = row.locator("td[data-label='Exit reason']")
        assert reason.is_visible() and reason.inner_text() == "take_profit: +5.2% >= 5%"
        box = reason.bounding_box()
        assert box["x"] >= 0 and box["x"] + box["width"] <= 390, box
        assert page.m7_errors == []
    finally:
        context.close()


def test_wide_screen_keeps_the_inline_nav(transactional_db, bot_with_trades, browser, live_server_url):  # noqa: F811
    context, page = _context(browser, {"width": 1280, "height": 900})
    try:
        _login(page, live_server_url, "alice", "/bots/")
        assert not page.locator("#nav-toggle").is_visible()
        nav = page.locator("#mainnav")
        tops = set()
        for name in NAV_LINKS:
            link = nav.get_by_role("link", name=name, exact=True)
            assert link.is_visible(), name
            tops.add(round(link.bounding_box()["y"]))
        assert len(tops) == 1, tops  # one row, in the top bar
        # Tables stay tables: the header row is shown and cells carry no label.
        assert page.locator("#bots-table thead").is_visible()
        cell = page.locator(f"#bot-row-{bot_with_trades.pk} td").first
        assert cell.evaluate("el => getComputedStyle(el, '::before').content") == "none"
    finally:
        context.close()
