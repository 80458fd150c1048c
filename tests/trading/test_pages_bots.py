"""Bot pages: access and scoping, list and detail with exact values, chart JSON, the decision
log filter, status actions, the bot form, live fragments. Shared data (a market with
real-shaped candles, a bot with one open and one closed deal) comes from tests/trading/conftest.py."""

from __future__ import annotations

import pytest
from django.urls import reverse

from tests.trading.conftest import T0, H, make_bot
from trading.models import Bot


def login(client, user):
    client.force_login(user)
    return client


@pytest.mark.django_db
class TestAccess:
    def urls(self, bot):
        return [
            reverse("trading:bot", args=[bot.pk]),
            reverse("trading:bot-edit", args=[bot.pk]),
            reverse("trading:bot-events", args=[bot.pk]),
            reverse("trading:bot-chart", args=[bot.pk]),
            reverse("trading:bot-row", args=[bot.pk]),
            reverse("trading:live-fragments") + f"?view=bot&bot={bot.pk}",
        ]

    def test_owner_200(self, client, user, bot_with_trades):
        login(client, user)
        for url in self.urls(bot_with_trades) + [reverse("trading:bots"), reverse("trading:bot-create")]:
            assert client.get(url).status_code == 200, url

    def test_other_user_404(self, client, other_user, bot_with_trades):
        login(client, other_user)
        for url in self.urls(bot_with_trades):
            assert client.get(url).status_code == 404, url
        for action in ("start", "pause", "resume", "stop", "restart"):
            assert client.post(reverse("trading:bot-action", args=[bot_with_trades.pk, action])).status_code == 404
        assert client.post(reverse("trading:bot-close-all", args=[bot_with_trades.pk])).status_code == 404
        url = reverse("trading:bot-close-trade", args=[bot_with_trades.pk, bot_with_trades.open_trade.pk])
        assert client.post(url).status_code == 404
        bot_with_trades.refresh_from_db()
        assert bot_with_trades.status == Bot.Status.RUNNING and bot_with_trades.commands == []

    def test_other_user_list_does_not_show_bot(self, client, other_user, bot_with_trades):
        login(client, other_user)
        body = client.get(reverse("trading:bots")).content.decode()
        assert "Alpha DCA" not in body and "No bots yet." in body

    def test_anonymous_redirects_to_login(self, client, bot_with_trades):
        for url in self.urls(bot_with_trades) + [
            reverse("trading:bots"),
            reverse("trading:bot-create"),
            reverse("trading:bots-stop-all"),
        ]:
            response = client.get(url)
            assert response.status_code == 302 and response["Location"].startswith("/accounts/login/"), url
        response = client.post(reverse("trading:bot-action", args=[bot_with_trades.pk, "pause"]))
        assert response.status_code == 302
        bot_with_trades.refresh_from_db()
        assert bot_with_trades.status == Bot.Status.RUNNING


@pytest.mark.django_db
def test_list_shows_exact_values(client, user, bot_with_trades):
    body = login(client, user).get(reverse("trading:bots")).content.decode()
    assert "Alpha DCA" in body
    assert 'data-status="running"' in body
    assert "1012.50" in body  # equity
    assert "+12.50" in body and "(1.25%)" in body  # pnl = realized 10 + unrealized 2.5 on capital 1000
    assert 'data-action="pause"' in body and 'data-action="stop"' in body
    assert 'data-action="start"' not in body


@pytest.mark.django_db
def test_detail_shows_trades_and_decisions(client, user, bot_with_trades):
    body = login(client, user).get(reverse("trading:bot", args=[bot_with_trades.pk])).content.decode()
    assert "spend_guard: deal spend 41.2% &gt; cap 40%" in body
    assert "take_profit: +5.2% &gt;= 5%" in body
    assert "41000" in body and "43050" in body  # open deal avg entry, TP
    assert "40800" in body  # current price: close at the bot's market time
    # unrealized = (40800 - 41000) * 0.01 - 0.41 = -2.41 ; pct = -2.41 / 410 = -0.59 %
    assert "-2.41" in body and "(-0.59%)" in body
    assert "1 / 3" in body
    assert 'ws-connect="/ws/live/"' in body and 'hx-ext="ws"' in body


@pytest.mark.django_db
def test_chart_json_candles_and_markers(client, user, bot_with_trades):
    data = login(client, user).get(reverse("trading:bot-chart", args=[bot_with_trades.pk])).json()
    assert data["symbol"] == "BTC/USDT"
    assert [c["close"] for c in data["candles"]] == [42000, 41800, 41500, 41000, 40500, 40800]  # up to last_candle_at
    assert [(m["text"], m["position"], m["price"]) for m in data["markers"]] == [
        ("BO", "belowBar", 41500.0),
        ("SO1", "belowBar", 40500.0),
    ]
    t3 = int((T0 + 3 * H).timestamp())
    assert data["markers"][0]["time"] == t3


@pytest.mark.django_db
def test_events_filter_fragment(client, user, bot_with_trades):
    login(client, user)
    url = reverse("trading:bot-events", args=[bot_with_trades.pk])
    response = client.get(url, {"outcome": "block"}, HTTP_HX_REQUEST="true")
    body = response.content.decode()
    assert response.status_code == 200
    assert "<html" not in body and 'id="bot-events"' in body
    assert "spend_guard: deal spend" in body and "score 0.71" not in body and "take_profit: +5.2%" not in body
    body = client.get(url, {"kind": "trade_closed"}, HTTP_HX_REQUEST="true").content.decode()
    assert "take_profit: +5.2%" in body and "spend_guard" not in body.split("<tbody>")[1]
    body = client.get(url, {"rule": "confidence"}, HTTP_HX_REQUEST="true").content.decode()
    assert "score 0.71" in body and "spend_guard: deal" not in body


@pytest.mark.django_db
class TestActions:
    def post(self, client, bot, action, **extra):
        return client.post(reverse("trading:bot-action", args=[bot.pk, action]), **extra)

    def test_transitions_change_status_exactly(self, client, user, market):
        login(client, user)
        bot = make_bot(user, market)
        expected = [
            ("start", "running"),
            ("pause", "paused"),
            ("resume", "running"),
            ("stop", "stopped"),
            ("restart", "running"),
        ]
        for action, status in expected:
            response = self.post(client, bot, action, HTTP_HX_REQUEST="true")
            assert response.status_code == 200, action
            body = response.content.decode()
            assert "<html" not in body and f'data-status="{status}"' in body
            bot.refresh_from_db()
            assert bot.status == status, action

    def test_invalid_transition_shows_error_and_changes_nothing(self, client, user, market):
        login(client, user)
        bot = make_bot(user, market)
        response = self.post(client, bot, "pause", HTTP_HX_REQUEST="true")
        assert response.status_code == 200
        assert "cannot pause a bot that is created" in response.content.decode()
        bot.refresh_from_db()
        assert bot.status == "created"

    def test_plain_post_redirects(self, client, user, market):
        login(client, user)
        bot = make_bot(user, market)
        response = self.post(client, bot, "start")
        assert response.status_code == 302 and response["Location"] == reverse("trading:bot", args=[bot.pk])
        bot.refresh_from_db()
        assert bot.status == "running"

    def test_viewer_cannot_start(self, client, viewer, market):
        bot = make_bot(viewer, market)
        login(client, viewer)
        body = client.get(reverse("trading:bot", args=[bot.pk])).content.decode()
        assert 'data-action="start"' not in body and "Edit" not in body.split("<main")[1].split("Decision log")[0]
        assert self.post(client, bot, "start").status_code == 403
        assert client.post(reverse("trading:bot-close-all", args=[bot.pk])).status_code == 403
        assert client.get(reverse("trading:bots-stop-all")).status_code == 403
        assert client.post(reverse("trading:bots-stop-all"), {"confirm": "yes"}).status_code == 403
        assert client.get(reverse("trading:bot-create")).status_code == 403
        bot.refresh_from_db()
        assert bot.status == "created"

    def test_close_one_and_all(self, client, user, bot_with_trades):
        login(client, user)
        bot = bot_with_trades
        r = client.post(reverse("trading:bot-close-trade", args=[bot.pk, bot.open_trade.pk]), HTTP_HX_REQUEST="true")
        assert r.status_code == 200
        bot.refresh_from_db()
        assert len(bot.commands) == 1 and bot.commands[0]["cmd"] == "close"
        r = client.post(reverse("trading:bot-close-all", args=[bot.pk]), HTTP_HX_REQUEST="true")
        assert r.status_code == 200
        bot.refresh_from_db()
        assert [c["cmd"] for c in bot.commands] == ["close", "close_all"]

    def test_close_closed_trade_404(self, client, user, bot_with_trades):
        login(client, user)
        other = make_bot(user, bot_with_trades.markets.first(), name="B2")
        url = reverse("trading:bot-close-trade", args=[other.pk, bot_with_trades.open_trade.pk])
        assert client.post(url).status_code == 404

    def test_emergency_stop_all_needs_confirmation(self, client, user, market):
        login(client, user)
        b1 = make_bot(user, market, status="running", name="r1")
        b2 = make_bot(user, market, status="paused", name="p1")
        b3 = make_bot(user, market, status="created", name="c1")
        page = client.get(reverse("trading:bots-stop-all")).content.decode()
        assert "This stops <strong>2</strong>" in page
        client.post(reverse("trading:bots-stop-all"), {})
        assert sorted(Bot.objects.values_list("status", flat=True)) == ["created", "paused", "running"]
        r = client.post(reverse("trading:bots-stop-all"), {"confirm": "yes"})
        assert r.status_code == 302
        assert {b.pk: b.status for b in Bot.objects.all()} == {b1.pk: "stopped", b2.pk: "stopped", b3.pk: "created"}


@pytest.mark.django_db
class TestForm:
    def form_data(self, market, **kw):
        return {
            "name": "Form bot",
            "strategy": "smart_dca",
            "markets": [market.pk],
            "timeframe": "1h",
            "mode": "paper",
            "capital": "500",
            "feed": "replay",
            "replay_start": "2024-01-01T02:00",
            "replay_speed": "7200",
            "p_base_order_size": "25",
        } | kw

    def test_form_renders_schema_fields_with_units(self, client, user, market):
        body = login(client, user).get(reverse("trading:bot-create") + "?strategy=smart_dca").content.decode()
        assert 'name="p_base_order_size"' in body and 'name="p_price_deviation"' in body
        assert "Size of the order that opens a deal." in body
        assert '<span class="param-unit">%</span>' in body
        assert '<option value="live" disabled>' in body
        frag = client.get(
            reverse("trading:bot-params"), {"strategy": "sma_cross"}, HTTP_HX_REQUEST="true"
        ).content.decode()
        assert 'name="p_fast"' in frag and 'name="p_base_order_size"' not in frag and "<html" not in frag

    def test_create_valid(self, client, user, market):
        login(client, user)
        response = client.post(reverse("trading:bot-create"), self.form_data(market))
        bot = Bot.objects.get()
        assert response.status_code == 302 and response["Location"] == reverse("trading:bot", args=[bot.pk])
        assert (bot.owner, bot.name, bot.strategy, bot.capital, bot.feed, bot.replay_speed) == (
            user,
            "Form bot",
            "smart_dca",
            500,
            "replay",
            7200.0,
        )
        assert bot.params["base_order_size"] == 25.0
        assert bot.replay_start == T0 + 2 * H
        assert list(bot.markets.all()) == [market]

    def test_invalid_param_field_error_nothing_saved(self, client, user, market):
        login(client, user)
        response = client.post(reverse("trading:bot-create"), self.form_data(market, p_price_deviation="500"))
        assert response.status_code == 200
        form = response.context["form"]
        assert "p_price_deviation" in form.errors
        assert Bot.objects.count() == 0

    def test_invalid_basic_fields_nothing_saved(self, client, user, market):
        login(client, user)
        response = client.post(
            reverse("trading:bot-create"), self.form_data(market, capital="-5", mode="live", replay_start="")
        )
        form = response.context["form"]
        assert set(form.errors) >= {"capital", "mode", "replay_start"}
        assert Bot.objects.count() == 0

    def test_replay_start_without_candles(self, client, user, market):
        login(client, user)
        response = client.post(reverse("trading:bot-create"), self.form_data(market, replay_start="2030-01-01T00:00"))
        assert "no stored BTC/USDT 1h candles" in response.context["form"].errors["replay_start"][0]
        assert Bot.objects.count() == 0

    def test_edit(self, client, user, market):
        login(client, user)
        bot = make_bot(user, market)
        data = self.form_data(market, name="Renamed", p_base_order_size="30")
        response = client.post(reverse("trading:bot-edit", args=[bot.pk]), data)
        assert response.status_code == 302
        bot.refresh_from_db()
        assert bot.name == "Renamed" and bot.params["base_order_size"] == 30.0

    def test_edit_invalid_param_changes_nothing(self, client, user, market):
        login(client, user)
        bot = make_bot(user, market)
        response = client.post(
            reverse("trading:bot-edit", args=[bot.pk]), self.form_data(market, name="X", p_price_deviation="-1")
        )
        assert "p_price_deviation" in response.context["form"].errors
        bot.refresh_from_db()
        assert bot.name == "Alpha DCA" and bot.params == {"base_order_size": 20.0}


@pytest.mark.django_db
def test_live_fragments_are_oob(client, user, bot_with_trades):
    login(client, user)
    body = client.get(reverse("trading:live-fragments"), {"view": "bots"}).content.decode()
    assert f'id="bot-row-{bot_with_trades.pk}" hx-swap-oob="true"' in body and "<html" not in body
    body = client.get(reverse("trading:live-fragments"), {"view": "bot", "bot": bot_with_trades.pk}).content.decode()
    assert f'id="bot-open-{bot_with_trades.pk}" class="card" aria-labelledby="open-h" hx-swap-oob="true"' in body
    assert client.get(reverse("trading:live-fragments"), {"view": "nope"}).status_code == 404


@pytest.mark.django_db
def test_form_fieldsets_one_per_group_with_the_fields_terms(client, user, market):
    """Issue 9: "Tp type" / "Btc market filter enabled" labels and two fieldsets both called
    "deal" (Smart DCA's schema comes back to its deal group after the exits)."""
    body = login(client, user).get(reverse("trading:bot-params"), {"strategy": "smart_dca"}).content.decode()
    legends = [chunk.split("</legend>")[0] for chunk in body.split("<legend>")[1:]]
    assert legends == ["deal", "safety orders", "take profit", "stop loss", "guards"]
    assert ">TP type" in body and ">BTC market filter" in body and ">RSI below" in body
    assert "Tp type" not in body and "Btc market filter enabled" not in body


@pytest.mark.django_db
def test_detail_parameters_panel_labels_on_off_and_groups(client, user, market):
    bot = make_bot(
        user,
        market,
        params={
            "base_order_size": 20.0,
            "tp_type": "total",
            "btc_market_filter_enabled": False,
            "trailing_enabled": True,
        },
    )
    body = login(client, user).get(reverse("trading:bot", args=[bot.pk])).content.decode()
    panel = body[body.index('id="bot-params"') :]
    panel = panel[: panel.index("</section>")]
    groups = [chunk.split("</h3>")[0] for chunk in panel.split('<h3 class="params-group">')[1:]]
    assert groups == ["Deal", "Take profit", "Guards"]
    assert '<dt title="tp_type">TP type</dt><dd data-param="tp_type"><code>total</code></dd>' in panel
    assert '<dd data-param="btc_market_filter_enabled"><code>off</code></dd>' in panel
    assert '<dd data-param="trailing_enabled"><code>on</code></dd>' in panel
    assert '<dd data-param="base_order_size"><code>20.0</code> <span class="param-unit">quote</span></dd>' in panel
    assert "True" not in panel and "False" not in panel
