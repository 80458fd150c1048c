"""Role groups exist after migrate with exactly their permissions (for the models that exist)."""

from __future__ import annotations

from django.contrib.auth.models import Group, Permission

from accounts.roles import ROLE_PERMISSIONS, Role, roles_sync

MARKET_VIEW = {"trading.view_exchange", "trading.view_market", "trading.view_candle"}
MARKET_ADMIN = {
    "trading.add_market",
    "trading.change_market",
    "trading.add_candle",
    "trading.change_candle",
    "trading.import_candles",
    "accounts.add_user",
    "accounts.change_user",
    "accounts.view_user",
    "accounts.view_auditlog",
}


def _perms(group_name: str) -> set[str]:
    group = Group.objects.get(name=group_name)
    return {f"{p.content_type.app_label}.{p.codename}" for p in group.permissions.select_related("content_type")}


def _existing(dotted: list[str]) -> set[str]:
    out = set()
    for d in dotted:
        app, codename = d.split(".", 1)
        if Permission.objects.filter(content_type__app_label=app, codename=codename).exists():
            out.add(d)
    return out


def test_groups_exist_after_migrate(db):
    assert set(Group.objects.values_list("name", flat=True)) >= {"viewer", "trader", "admin"}


def test_each_role_has_exactly_its_existing_permissions_right_after_migrate(db):
    for role in Role:
        assert _perms(role.value) == _existing(ROLE_PERMISSIONS[role]), role


def test_each_role_has_exactly_its_existing_permissions_after_sync(db):
    roles_sync()
    for role in Role:
        assert _perms(role.value) == _existing(ROLE_PERMISSIONS[role]), role


def test_market_permissions_per_role(db):
    """Hard-coded for the market models this project has now (not derived from roles.py)."""
    roles_sync()
    viewer, trader, admin = _perms("viewer"), _perms("trader"), _perms("admin")
    market = lambda perms: {p for p in perms if p.split(".")[1].endswith(("exchange", "market", "candle", "candles"))}  # noqa: E731
    assert market(viewer) == MARKET_VIEW
    assert market(trader) == MARKET_VIEW
    assert admin >= MARKET_VIEW | MARKET_ADMIN
    assert not any(
        p.split(".")[1].startswith(("add_", "change_", "delete_", "import_")) for p in market(viewer) | market(trader)
    )
    assert not any(p.startswith("accounts.") for p in viewer | trader)


def test_roles_sync_is_idempotent(db):
    roles_sync()
    before = {r.value: _perms(r.value) for r in Role}
    roles_sync()
    roles_sync()
    assert {r.value: _perms(r.value) for r in Role} == before


def test_user_role_property(make_user, django_user_model):
    assert make_user("v1", "viewer").role == "viewer"
    assert make_user("t1", "trader").role == "trader"
    assert make_user("a1", "admin").role == "admin"
    assert make_user("n1", None).role == ""
    assert django_user_model.objects.create_superuser("root", password="x-Market7!").role == "admin"
