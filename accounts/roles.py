"""Roles as Django groups: viewer, trader, admin.

- **viewer** sees their own bots, trades, backtests and all market data; changes nothing.
- **trader** also creates, edits and operates (start/pause/stop) their own bots, runs backtests,
  trains models and activates / deactivates / rolls back their own model versions.
- **admin** also manages market data (import, discover) and users.

``ROLE_PERMISSIONS`` lists permission codenames (``app_label.codename``); permissions of models
that do not exist yet are skipped, and the sync runs after every ``migrate``.
"""

from __future__ import annotations

from enum import StrEnum

from django.contrib.auth.models import Group, Permission


class Role(StrEnum):
    VIEWER = "viewer"
    TRADER = "trader"
    ADMIN = "admin"


_VIEW = [
    "trading.view_exchange",
    "trading.view_market",
    "trading.view_candle",
    "trading.view_bot",
    "trading.view_order",
    "trading.view_fill",
    "trading.view_trade",
    "trading.view_botevent",
    "strategies.view_backtestrun",
    "mlops.view_modelversion",
    "mlops.view_trainingjob",
]
_TRADE = [
    "trading.add_bot",
    "trading.change_bot",
    "trading.delete_bot",
    "trading.operate_bot",
    "strategies.add_backtestrun",
    "strategies.delete_backtestrun",
    "mlops.add_trainingjob",  # train a model (ML Monitor, API)
    "mlops.change_modelversion",  # activate / deactivate / roll back a model version
    "trading.view_exchangeaccount",  # their own exchange API keys (live trading)
    "trading.add_exchangeaccount",
    "trading.change_exchangeaccount",
    "trading.delete_exchangeaccount",
    "trading.view_threecommasconnection",  # their 3Commas bots that receive deal signals
    "trading.add_threecommasconnection",
    "trading.change_threecommasconnection",
    "trading.delete_threecommasconnection",
]
_ADMIN = [
    "trading.add_market",
    "trading.change_market",
    "trading.add_candle",
    "trading.change_candle",
    "trading.import_candles",
    "accounts.add_user",
    "accounts.change_user",
    "accounts.view_user",
    "accounts.view_auditlog",
]

ROLE_PERMISSIONS: dict[Role, list[str]] = {
    Role.VIEWER: _VIEW,
    Role.TRADER: _VIEW + _TRADE,
    Role.ADMIN: _VIEW + _TRADE + _ADMIN,
}


def roles_sync() -> dict[str, int]:
    """Create the role groups and give each exactly its permissions. Returns perms per role."""
    counts: dict[str, int] = {}
    for role, codenames in ROLE_PERMISSIONS.items():
        group, _ = Group.objects.get_or_create(name=role.value)
        perms = []
        for dotted in codenames:
            app_label, codename = dotted.split(".", 1)
            perm = Permission.objects.filter(content_type__app_label=app_label, codename=codename).first()
            if perm is not None:
                perms.append(perm)
        group.permissions.set(perms)
        counts[role.value] = len(perms)
    return counts


def roles_sync_on_migrate(sender, **kwargs) -> None:
    """post_migrate runs once per app, and each app's permissions exist only after its own
    signal; syncing on every app's signal (idempotent, a few queries) leaves the groups
    complete whatever the app order."""
    roles_sync()


def user_role(user) -> Role | None:
    """The highest role ``user`` holds (superusers are admins), or None."""
    if not getattr(user, "is_authenticated", False):
        return None
    if user.is_superuser:
        return Role.ADMIN
    names = set(user.groups.values_list("name", flat=True))
    for role in (Role.ADMIN, Role.TRADER, Role.VIEWER):
        if role.value in names:
            return role
    return None


def user_set_role(*, user, role: Role) -> None:
    """Make ``role`` the user's only role group."""
    roles_sync()
    user.groups.remove(*Group.objects.filter(name__in=[r.value for r in Role]))
    user.groups.add(Group.objects.get(name=role.value))
