"""The emergency stop page and ``POST /api/v1/trading/emergency-stop/`` with live bots on the
fake Binance: owner / other user / anonymous / viewer, the confirmation step, per-order
results shown, CSP header, no secret in any answer."""

from __future__ import annotations

import logging

from django.core.management import call_command
from django.urls import reverse
from rest_framework.test import APIClient

from accounts.models import AuditLog
from tests.trading.kill_switch_world import KEY, SECRET
from trading.models import Bot

pytest_plugins = ["tests.fakes.fixtures", "tests.trading.kill_switch_world"]

URL = "/api/v1/trading/emergency-stop/"


def api(user=None) -> APIClient:
    c = APIClient()
    if user is not None:
        c.force_login(user)
    return c


def exchange_statuses(world) -> dict[str, str]:
    return {cid: o["status"] for cid, o in world["exch"].orders.items()}


def test_api_owner_gets_every_result(user, world, caplog):
    p = world["live"].order_prefix
    with caplog.at_level(logging.DEBUG):
        r = api(user).post(URL, {"close_positions": True}, format="json")
    assert r.status_code == 200
    body = r.json()
    assert (body["close_positions"], body["paper_bots"], body["live_bots"], body["failed"]) == (
        True,
        [world["paper"].pk],
        [world["live"].pk],
        1,
    )
    assert [(x["action"], x["client_order_id"], x["outcome"]) for x in body["results"]] == [
        ("cancel", f"{p}x1", "canceled"),
        ("cancel", f"{p}x2", "failed"),
        ("cancel", f"{p}x3", "gone"),
        ("cancel", f"{p}x4", "canceled"),
        ("close", f"{p}xk{world['trade'].pk}", "closed"),
    ]
    assert body["results"][4]["amount"] == "0.0015"
    assert KEY not in r.content.decode() + caplog.text and SECRET not in r.content.decode() + caplog.text


def test_api_other_user_stops_only_their_own(other_user, world):
    r = api(other_user).post(URL, {}, format="json")
    assert r.status_code == 200
    body = r.json()
    bobs = world["bobs"]
    assert (body["paper_bots"], body["live_bots"]) == ([], [bobs.pk])
    assert [(x["client_order_id"], x["outcome"]) for x in body["results"]] == [(f"{bobs.order_prefix}x1", "canceled")]
    statuses = exchange_statuses(world)
    assert statuses[f"{world['live'].order_prefix}x1"] == "NEW" and statuses[f"{bobs.order_prefix}x1"] == "CANCELED"
    assert {b.name: b.status for b in Bot.objects.all()} == {"live": "running", "paper": "running", "bobs": "stopped"}


def test_api_anonymous_and_viewer_do_nothing(viewer, world):
    assert api().post(URL, {"close_positions": True}, format="json").status_code == 403
    r = api(viewer).post(URL, {"close_positions": True}, format="json")
    assert r.status_code == 403 and r.json() == {"detail": "your role cannot stop bots (needs trading.operate_bot)"}
    assert exchange_statuses(world)[f"{world['live'].order_prefix}x1"] == "NEW"
    assert set(Bot.objects.values_list("status", flat=True)) == {"running"}
    assert not AuditLog.objects.filter(action="emergency_stop_live").exists()


def test_api_rejects_a_bad_body(user, world):
    r = api(user).post(URL, {"close_positions": "maybe"}, format="json")
    assert r.status_code == 400 and r.json() == {"close_positions": ["Must be a valid boolean."]}
    assert set(Bot.objects.values_list("status", flat=True)) == {"running"}


def test_page_confirms_then_shows_the_results(client, user, world):
    client.force_login(user)
    url = reverse("trading:bots-stop-all")
    page = client.get(url)
    text = page.content.decode()
    assert page.status_code == 200 and "script-src 'self'" in page["Content-Security-Policy"]
    assert "This stops <strong>2</strong>" in text
    assert "their 3 open orders (and any other order at the exchange carrying a bot's id) are cancelled" in text
    client.post(url, {"close_positions": "1"})  # no confirmation: nothing happens
    assert exchange_statuses(world)[f"{world['live'].order_prefix}x1"] == "NEW"
    assert set(Bot.objects.values_list("status", flat=True)) == {"running"}

    r = client.post(url, {"confirm": "yes", "close_positions": "1"})
    text = r.content.decode()
    p = world["live"].order_prefix
    assert r.status_code == 200 and "script-src 'self'" in r["Content-Security-Policy"]
    assert '<strong data-testid="failed">1 order failed</strong>' in text
    assert (
        '<td data-label="Client id"><code>' + p + 'x2</code></td><td data-label="Outcome"><strong>failed</strong></td>'
        '<td data-label="Reason" class="cell-wide">exchange_error: binance {&quot;code&quot;:-1001,&quot;msg&quot;:'
        "&quot;Internal error; unable to process your request.&quot;}</td>"
    ) in text
    assert '<td data-label="Action">close 0.0015</td>' in text
    assert KEY not in text and SECRET not in text
    assert {b.name: b.status for b in Bot.objects.all()} == {"live": "stopped", "paper": "stopped", "bobs": "running"}


def test_page_other_user_and_anonymous(client, other_user, world):
    url = reverse("trading:bots-stop-all")
    r = client.post(url, {"confirm": "yes"})
    assert r.status_code == 302 and "/accounts/login/" in r["Location"]
    client.force_login(other_user)
    page = client.get(url).content.decode()
    items = page.split("<ul>")[1].split("</ul>")[0]
    assert items == (
        '<li>bobs <span class="badge badge-running">running</span> <span class="badge badge-error">live</span></li>'
    )
    assert "their 1 open order (and any other order at the exchange carrying a bot's id) is cancelled" in page
    client.post(url, {"confirm": "yes"})
    assert {b.name: b.status for b in Bot.objects.all()} == {"live": "running", "paper": "running", "bobs": "stopped"}


def test_command_prints_every_result(world, capsys):
    call_command("bots", "emergency-stop")
    out = capsys.readouterr().out
    p, q = world["live"].order_prefix, world["bobs"].order_prefix
    ids = sorted(b.pk for b in Bot.objects.all())
    assert out.splitlines()[0] == f"emergency stop: 3 bot(s): {', '.join(map(str, ids))}"
    assert f"  bot #{world['live'].pk} cancel {p}x1 BTC/USDT: canceled" in out.splitlines()
    assert f"  bot #{world['bobs'].pk} cancel {q}x1 BTC/USDT: canceled" in out.splitlines()
    assert KEY not in out and SECRET not in out
