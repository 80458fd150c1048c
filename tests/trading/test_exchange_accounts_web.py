"""Exchange account pages and API: owner / other user / anonymous, viewer 403s, and no
credential in any response (the HTML and JSON are grepped for them)."""

from __future__ import annotations

import pytest
from cryptography.fernet import Fernet
from django.urls import reverse

from trading.models import ExchangeAccount
from trading.services import exchange_accounts as svc

KEY = "vmPUZE6mv9SD5VNHk4HlWFsOr6aKE2zvsw0MuIgwCIPy6utIco14y7Ju91duEh8A"
SECRET = "NhqPtmdSJYdKjVHjA7PZj4Mge3R5YNiP1e3UZjInClVN65XAbvqqM6A7H5fATj0j"
PHRASE = "Passphrase-Secret-77"

pytest_plugins = ["tests.fakes.fixtures"]


@pytest.fixture(autouse=True)
def secrets_keys(settings):
    settings.MARKET7_SECRETS_KEYS = [Fernet.generate_key().decode()]


@pytest.fixture
def account(user):
    return svc.account_create(
        user=user, exchange="binance", label="main", api_key=KEY, secret=SECRET, passphrase=PHRASE, sandbox=True
    )


def no_secrets(response) -> str:
    text = response.content.decode()
    for s in (KEY, SECRET, PHRASE):
        assert s not in text
    return text


def login(client, user):
    client.force_login(user)
    return client


# --- pages -----------------------------------------------------------------------------------


def test_list_page_owner_sees_hint_only(client, user, account):
    r = login(client, user).get(reverse("exchange_accounts:list"))
    assert r.status_code == 200
    text = no_secrets(r)
    assert "••••Eh8A" in text and "main" in text and "testnet" in text
    assert "<script>" not in text and " style=" not in text  # strict CSP: no inline script


def test_list_page_other_user_sees_nothing(client, other_user, account):
    r = login(client, other_user).get(reverse("exchange_accounts:list"))
    assert (
        r.status_code == 200
        and "Eh8A" not in r.content.decode()
        and "You have no exchange account yet." in r.content.decode()
    )


@pytest.mark.parametrize("name", ["edit", "delete", "test"])
def test_other_user_gets_404_and_nothing_happens(client, other_user, account, name):
    login(client, other_user)
    url = reverse(f"exchange_accounts:{name}", args=[account.pk])
    r = client.post(url, {"label": "stolen", "api_key": "", "secret": ""})
    assert r.status_code == 404
    if name == "edit":
        assert client.get(url).status_code == 404
    account.refresh_from_db()
    assert account.label == "main" and account.last_check_at is None


@pytest.mark.parametrize(("name", "args"), [("list", []), ("edit", [1]), ("delete", [1]), ("test", [1])])
def test_anonymous_is_sent_to_login(client, account, name, args):
    url = reverse(f"exchange_accounts:{name}", args=[account.pk] if args else [])
    r = client.post(url, {"label": "x"})
    assert r.status_code == 302 and r.url.startswith(reverse("accounts:login"))
    assert ExchangeAccount.objects.get(pk=account.pk).label == "main"


def test_create_through_the_page(client, user):
    r = login(client, user).post(
        reverse("exchange_accounts:list"),
        {
            "exchange": "okx",
            "label": "okx main",
            "api_key": KEY,
            "secret": SECRET,
            "passphrase": PHRASE,
            "sandbox": "on",
        },
    )
    assert r.status_code == 302
    acc = ExchangeAccount.objects.for_user(user).get()
    assert (acc.exchange, acc.label, acc.sandbox, acc.key_hint) == ("okx", "okx main", True, "Eh8A")
    assert acc.credentials() == {"apiKey": KEY, "secret": SECRET, "password": PHRASE}
    no_secrets(client.get(reverse("exchange_accounts:list")))


def test_create_error_never_renders_the_entered_secret(client, user):
    r = login(client, user).post(
        reverse("exchange_accounts:list"), {"exchange": "nosuchx", "label": "x", "api_key": KEY, "secret": SECRET}
    )
    assert r.status_code == 400
    text = no_secrets(r)
    assert "is not a ccxt exchange id" in text and ExchangeAccount.objects.count() == 0


def test_viewer_cannot_post(client, viewer):
    r = login(client, viewer).post(
        reverse("exchange_accounts:list"), {"exchange": "binance", "label": "x", "api_key": KEY, "secret": SECRET}
    )
    assert r.status_code == 403 and ExchangeAccount.objects.count() == 0


def test_edit_keeps_blank_secret_and_delete(client, user, account):
    login(client, user)
    r = client.post(
        reverse("exchange_accounts:edit", args=[account.pk]), {"label": "renamed", "api_key": "", "secret": ""}
    )
    assert r.status_code == 302
    account.refresh_from_db()
    assert account.label == "renamed" and account.credentials()["secret"] == SECRET
    no_secrets(client.get(reverse("exchange_accounts:edit", args=[account.pk])))
    assert client.post(reverse("exchange_accounts:delete", args=[account.pk])).status_code == 302
    assert not ExchangeAccount.objects.filter(pk=account.pk).exists()


def test_test_connection_htmx_fragment(client, user, account, fake_binance_private):
    fake_binance_private.add_key(KEY, SECRET)
    r = login(client, user).post(reverse("exchange_accounts:test", args=[account.pk]), HTTP_HX_REQUEST="true")
    assert r.status_code == 200
    text = no_secrets(r)
    assert "<html" not in text and text.count(f'<section class="card" id="account-{account.pk}">') == 1
    assert "connected; USDT 1000" in text and "read, trade" in text


# --- API -------------------------------------------------------------------------------------


def test_api_list_and_detail_for_owner(client, user, account):
    login(client, user)
    r = client.get("/api/v1/accounts/")
    assert r.status_code == 200
    no_secrets(r)
    (row,) = r.json()["results"] if "results" in r.json() else r.json()
    assert {k: row[k] for k in ("id", "exchange", "label", "sandbox", "key_hint", "has_passphrase")} == {
        "id": account.pk, "exchange": "binance", "label": "main", "sandbox": True, "key_hint": "Eh8A", "has_passphrase": True,
    }  # fmt: skip
    assert not {"api_key", "secret", "passphrase", "api_key_enc", "secret_enc"} & set(row)


def test_api_other_user_404_and_anonymous_401(client, other_user, account):
    assert client.get(f"/api/v1/accounts/{account.pk}/").status_code == 403
    assert client.post(f"/api/v1/accounts/{account.pk}/test/").status_code == 403
    login(client, other_user)
    assert client.get("/api/v1/accounts/").json() in ([], {"count": 0, "next": None, "previous": None, "results": []})
    assert client.get(f"/api/v1/accounts/{account.pk}/").status_code == 404
    assert (
        client.patch(f"/api/v1/accounts/{account.pk}/", {"label": "x"}, content_type="application/json").status_code
        == 404
    )
    assert client.delete(f"/api/v1/accounts/{account.pk}/").status_code == 404
    assert client.post(f"/api/v1/accounts/{account.pk}/test/").status_code == 404
    account.refresh_from_db()
    assert account.label == "main" and account.last_check_at is None


def test_api_create_patch_delete(client, user):
    login(client, user)
    r = client.post(
        "/api/v1/accounts/",
        {"exchange": "binance", "label": "api", "api_key": KEY, "secret": SECRET, "sandbox": True},
        content_type="application/json",
    )
    assert r.status_code == 201
    body = no_secrets(r)
    pk = r.json()["id"]
    assert r.json()["key_hint"] == "Eh8A" and "secret" not in r.json() and body
    r = client.patch(f"/api/v1/accounts/{pk}/", {"label": "api2", "secret": ""}, content_type="application/json")
    assert r.status_code == 200 and r.json()["label"] == "api2"
    assert ExchangeAccount.objects.get(pk=pk).credentials()["secret"] == SECRET
    r = client.post(
        "/api/v1/accounts/",
        {"exchange": "binance", "label": "api2", "api_key": KEY, "secret": SECRET},
        content_type="application/json",
    )
    assert r.status_code == 400 and r.json() == {"label": ["you already have an account with this label"]}
    assert client.delete(f"/api/v1/accounts/{pk}/").status_code == 204
    assert ExchangeAccount.objects.count() == 0


def test_api_viewer_403(client, viewer):
    login(client, viewer)
    r = client.post(
        "/api/v1/accounts/",
        {"exchange": "binance", "label": "v", "api_key": KEY, "secret": SECRET},
        content_type="application/json",
    )
    assert r.status_code == 403 and ExchangeAccount.objects.count() == 0


def test_api_test_action(client, user, account, fake_binance_private):
    fake_binance_private.add_key(KEY, SECRET, can_trade=False)
    r = login(client, user).post(f"/api/v1/accounts/{account.pk}/test/")
    assert r.status_code == 200
    no_secrets(r)
    assert r.json() == {
        "ok": False,
        "reason": "no_trade_permission",
        "message": "connected, but the key cannot trade: enable trading on it; USDT 1000",
        "permissions": ["read"],
        "balances": {"USDT": "1000"},
    }
