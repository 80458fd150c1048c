"""Browser end-to-end for the deal page: open a deal of a replay bot on real bundled candles,
see its chart drawn, change its take profit, add funds and close it at market — each through
the HTMX forms, applied by the bot's next step (run here from a helper thread, as in
test_bots_e2e.py), then seen on the reloaded page. Screenshots in test-artifacts/."""

from __future__ import annotations

import threading
from datetime import timedelta
from decimal import Decimal

import pytest
from django.db import connection

from market7.formatting import format_price
from tests.trading.conftest import no_enqueue

pytestmark = [pytest.mark.e2e, pytest.mark.services]


def step_in_thread(bot_id: int, hours: int) -> None:
    """One bot step with the replay clock ``hours`` market hours after its start (3600x)."""
    from trading.models import Bot
    from trading.services.runner import bot_step

    def work():
        try:
            bot = Bot.objects.get(pk=bot_id)
            bot_step(bot_id=bot_id, now=bot.replay_clock_wall + timedelta(seconds=hours))
        finally:
            connection.close()

    t = threading.Thread(target=work)
    t.start()
    t.join(120)


def test_deal_page_chart_and_actions(transactional_db, make_user, page, live_server_url, login, artifact):
    from tests.trading.conftest import load_bundled, make_replay_bot
    from trading.models import Order, Trade

    load_bundled("BTCUSDT-1h.csv.gz")
    user = make_user("dora", "trader")
    bot = make_replay_bot(user, markets=("BTC/USDT",), params={"max_active_deals": 1, "take_profit": 1.0})
    hours = 30
    step_in_thread(bot.pk, hours)
    trade = Trade.objects.get(bot=bot, status="open")
    precision = trade.market.precision or {}
    page.on("dialog", lambda dialog: dialog.accept())  # hx-confirm of "Close at market"

    login(page, "dora", next=f"/bots/{bot.pk}/")
    page.goto(f"{live_server_url}/bots/{bot.pk}/")
    page.click(f'a[href="/bots/{bot.pk}/deals/{trade.pk}/"]')
    page.wait_for_url(f"{live_server_url}/bots/{bot.pk}/deals/{trade.pk}/")
    page.wait_for_selector('#deal-chart[data-loaded="true"] canvas')
    chart = page.locator("#deal-chart")
    assert int(chart.get_attribute("data-points")) > 60 and int(chart.get_attribute("data-markers")) >= 1
    assert f"take_profit:{float(trade.take_profit_price)}" in chart.get_attribute("data-lines")
    assert page.locator("[data-deal-tp]").inner_text() == f"{format_price(trade.take_profit_price, precision)} USDT"
    page.screenshot(path=artifact("e2e_deal_page.png"), full_page=True)

    # change the take profit: queued, then applied by the next step at 3 % from the average
    page.fill("#deal-actions input[name=take_profit]", "3")
    page.click('[data-action="deal-set-exits"]')
    page.wait_for_selector("[data-deal-message]")
    assert "New take profit / stop loss requested" in page.locator("[data-deal-message]").inner_text()
    assert "set_exits" in page.locator("[data-deal-pending]").inner_text()
    hours += 1
    step_in_thread(bot.pk, hours)
    trade.refresh_from_db()
    assert trade.status == "open"
    assert abs(trade.take_profit_price - trade.avg_entry * Decimal("1.03")) <= Decimal("1e-8")
    page.reload()
    page.wait_for_selector('#deal-chart[data-loaded="true"] canvas')
    assert page.locator("[data-deal-tp]").inner_text() == f"{format_price(trade.take_profit_price, precision)} USDT"
    assert page.locator("[data-deal-tp-pct]").inner_text() == "3.00 % from average"
    assert f"take_profit:{float(trade.take_profit_price)}" in chart.get_attribute("data-lines")
    assert page.locator('#deal-decisions tr[data-event-rule="manual_set_exits"]').count() == 1

    # add funds: a manual safety order filled at the next open, on the ladder
    page.fill("#deal-actions input[name=quote]", "50")
    page.click('[data-action="deal-add-funds"]')
    page.wait_for_selector("[data-deal-message]")
    assert "Add funds requested" in page.locator("[data-deal-message]").inner_text()
    amount_before = trade.amount
    hours += 1
    step_in_thread(bot.pk, hours)
    manual = Order.objects.get(bot=bot, tag="manual_safety_order")
    assert manual.status == "closed"
    trade.refresh_from_db()
    assert trade.amount == amount_before + manual.filled
    page.reload()
    assert page.locator('#deal-ladder tr[data-ladder-kind="manual"]').count() == 1
    page.screenshot(path=artifact("e2e_deal_after_add_funds.png"), full_page=True)

    # close at market
    page.click('[data-action="deal-close"]')
    page.wait_for_selector("[data-deal-message]")
    assert "Close requested" in page.locator("[data-deal-message]").inner_text()
    hours += 1
    step_in_thread(bot.pk, hours)
    trade.refresh_from_db()
    assert (trade.status, trade.exit_reason) == ("closed", "manual_close")
    page.reload()
    assert page.locator("[data-deal-status]").inner_text() == "closed"
    assert "This deal is closed." in page.locator("#deal-actions").inner_text()
    assert page.m7_errors == []
    page.screenshot(path=artifact("e2e_deal_closed.png"), full_page=True)


# keep the kick of the scheduler (a Celery send on commit) out of the test process
@pytest.fixture(autouse=True)
def _no_kick():
    with no_enqueue():
        yield
