"""Browser end-to-end for the bot pages: log in, create a replay bot from the form on real
bundled candles, start it, and watch a trade and a P&L change arrive over the websocket on the
dashboard WITHOUT a reload (screenshots in test-artifacts/).

Bot steps are run by ``trading.services.runner.bot_step`` from a helper thread (its own DB
connection, no event loop — Playwright's sync API owns one in the test thread, and
``async_to_sync`` in the websocket push must not run there). The step commits, publishes after
commit over Redis; the daphne server relays it to the page, and the page refreshes its
server-rendered fragments.
"""

from __future__ import annotations

import threading
from datetime import timedelta
from pathlib import Path

import pytest
from django.conf import settings
from django.db import connection
from django.utils import timezone

from market7.formatting import format_money

pytestmark = [pytest.mark.e2e, pytest.mark.services]


def run_steps(bot_id: int, start, until, max_steps: int = 120, hours_per_step: int = 6) -> int:
    """Step the bot in a separate thread until ``until()`` is true; returns the steps run."""
    from trading.services.runner import bot_step

    done = {"n": 0}

    def work():
        try:
            for k in range(1, max_steps + 1):
                # replay_speed 3600: one wall second = one market hour
                bot_step(bot_id=bot_id, now=start + timedelta(seconds=k * hours_per_step))
                done["n"] = k
                if until():
                    break
        finally:
            connection.close()

    t = threading.Thread(target=work)
    t.start()
    t.join(180)
    return done["n"]


def kpi(name: str) -> str:
    """JS expression: the dashboard KPI ``name``'s text."""
    return f"document.querySelector('[data-kpi=\"{name}\"]').textContent.trim()"


def wait_until(page, what: str, actual: str, expected: str, op: str = "===", timeout: int = 15000) -> None:
    """Wait until the JS expression ``actual`` ``op`` ``expected`` (``">"``: greater than 0); on
    timeout fail with the value still shown and the page's live counters, not a bare timeout."""
    from playwright.sync_api import TimeoutError as PlaywrightTimeout

    condition = f"({actual}) {op} {expected}" if op != ">" else f"({actual}) > 0"
    try:
        page.wait_for_function(condition, timeout=timeout)
    except PlaywrightTimeout:
        state = page.evaluate(
            f"[{actual}, document.body.dataset.liveEvents, document.body.dataset.liveRefreshes, "
            "document.body.dataset.liveConnected, window.__m7_pushes || null]"
        )
        raise AssertionError(
            f"{what}: shows {state[0]!r}, waited for {op} {expected or 0} for {timeout} ms "
            f"(live events {state[1]}, refreshes {state[2]}, connected {state[3]}, pushes {state[4]})"
        ) from None


def test_create_start_and_live_trade(transactional_db, make_user, page, live_server_url, login, artifact):
    from trading.models import Bot, Candle, Fill, Market, Trade
    from trading.services.candles import candles_import

    candles_import(path=Path(settings.MARKET7_BUNDLED_DATA) / "BTCUSDT-1h.csv.gz")
    market = Market.objects.get(symbol="BTC/USDT")
    first = Candle.objects.filter(market=market, timeframe="1h").order_by("open_time").first().open_time
    replay_start = first + timedelta(days=3)
    make_user("erin", "trader")

    login(page, "erin", next="/bots/new/")
    page.goto(f"{live_server_url}/bots/new/")
    # choosing the strategy swaps its parameter fields in (HTMX): wait for that response, or a
    # late swap would reset the fields filled below to their defaults
    with page.expect_response(lambda r: "/bots/_params/" in r.url):
        page.select_option("select[name=strategy]", "smart_dca")
    page.wait_for_selector("input[name=p_base_order_size]")
    page.fill("input[name=name]", "E2E DCA")
    page.select_option("select[name=markets]", label="BTC/USDT · binance")
    page.fill("input[name=capital]", "1000")
    page.check("input[name=feed][value=replay]")
    page.fill("input[name=replay_start]", replay_start.strftime("%Y-%m-%dT%H:%M"))
    page.fill("input[name=replay_speed]", "3600")
    page.fill("input[name=p_base_order_size]", "50")
    page.screenshot(path=artifact("e2e_bot_form.png"), full_page=True)
    page.click("#bot-form button[type=submit]")
    page.wait_for_url(f"{live_server_url}/bots/*/")
    bot = Bot.objects.get(name="E2E DCA")
    assert (bot.strategy, bot.feed, bot.params["base_order_size"], bot.replay_start) == (
        "smart_dca",
        "replay",
        50.0,
        replay_start,
    )

    # Start with the HTMX button: the status fragment swaps in place.
    page.evaluate("window.__m7_marker = 1")
    page.click('[data-action="start"]')
    page.wait_for_selector('[data-status="running"]')
    assert page.evaluate("window.__m7_marker") == 1
    bot.refresh_from_db()
    assert bot.status == "running"

    # The dashboard, live: nothing traded yet.
    page.goto(f"{live_server_url}/")
    page.wait_for_function("document.body.dataset.liveConnected === 'true'")
    assert page.locator('[data-kpi="active_trades"]').inner_text() == "0"
    pnl_before = page.locator('[data-kpi="total_pnl"]').inner_text()
    assert pnl_before == "0.00 USDT"
    page.evaluate("window.__m7_marker = 2")
    # every pushed event from now on (the connect-time snapshot has been counted already)
    page.evaluate(
        "window.__m7_pushes = []; document.body.addEventListener('m7:live', e => window.__m7_pushes.push(e.detail.event))"
    )

    start = timezone.now()
    # Step until an order has FILLED (not merely been placed: a base order placed on a step's
    # last candle fills on the next step, and until then P&L is still exactly 0.00).
    steps = run_steps(bot.pk, start, lambda: Fill.objects.filter(order__bot_id=bot.pk).exists())
    assert steps >= 1 and Trade.objects.filter(bot_id=bot.pk).exists()

    # The trade arrives over the websocket, pushed by the steps' commits: no reload (the marker
    # survives), and not merely the snapshot sent when the socket connected.
    wait_until(page, "pushed trade_opened", "window.__m7_pushes.includes('trade_opened')", "true")
    wait_until(page, "pushed order_filled", "window.__m7_pushes.includes('order_filled')", "true")
    page.wait_for_selector("#dash-active tr[id^=active-trade-], #dash-decisions td.reason", timeout=15000)
    page.wait_for_function("Number(document.body.dataset.liveRefreshes || 0) >= 1", timeout=15000)
    assert page.evaluate("window.__m7_marker") == 2
    trades = Trade.objects.filter(bot_id=bot.pk)
    n_open = trades.filter(status="open").count()
    wait_until(page, "active trades KPI", kpi("active_trades"), f"'{n_open}'")
    bot.refresh_from_db()
    # the KPI's rule: "+" on any gain, then the number, which never reads "-0.00" (fees of a
    # fill can leave a loss below half a cent: the page shows "0.00")
    pnl = bot.equity - bot.capital
    shown_pnl = format_money(pnl, "USDT", sign=True)
    wait_until(page, "total P&L KPI", kpi("total_pnl"), f"'{shown_pnl}'")
    wait_until(
        page, "equity chart points", "Number(document.querySelector('#equity-chart').dataset.points || 0)", "", ">"
    )
    page.wait_for_timeout(500)
    page.screenshot(path=artifact("e2e_dashboard_live.png"), full_page=True)

    # The bot page shows the chart with fill markers.
    page.goto(f"{live_server_url}/bots/{bot.pk}/")
    page.wait_for_selector('#bot-chart[data-loaded="true"]')
    assert int(page.locator("#bot-chart").get_attribute("data-markers")) >= 1
    page.screenshot(path=artifact("e2e_bot_detail.png"), full_page=True)
    assert not [e for e in page.m7_errors if "favicon" not in e], page.m7_errors
