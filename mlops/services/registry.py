"""The model registry: which version of a user's model serves their bots.

At most one version per (owner, kind, strategy) is ``active`` (a database constraint). A
candidate becomes active by the **promotion rule** (:func:`version_promote`, run after every
training: its pooled walk-forward metric must beat the active version's by the configured
margin) or by hand (:func:`version_activate`); :func:`version_deactivate` retires the active
version (the bots fall back to the rule-based providers) and :func:`version_rollback` brings
back the version that was active before. Every change is audited; the promotion decision and
its numbers are stored on the candidate (``ModelVersion.promotion``) and shown on the ML
Monitor.
"""

from __future__ import annotations

from django.conf import settings
from django.db import transaction
from django.utils import timezone

from accounts.models import AuditLog
from mlops.models import ModelVersion

__all__ = [
    "RegistryError",
    "active_version",
    "promotion_margin",
    "version_activate",
    "version_deactivate",
    "version_promote",
    "version_rollback",
]


class RegistryError(ValueError):
    """A registry change that cannot be made; the message is one line, for users."""


def promotion_margin() -> float:
    """The configured promotion margin as a fraction (``MARKET7_ML_PROMOTION_MARGIN_BP`` / 10 000:
    100 bp = 0.01 AUC for classifiers, 1 % of the MAE for regressors)."""
    return settings.MARKET7_ML_PROMOTION_MARGIN_BP / 10_000


def active_version(*, owner, kind: str, strategy: str) -> ModelVersion | None:
    """The owner's active version of ``kind`` for ``strategy``, or None."""
    return ModelVersion.objects.for_user(owner).filter(kind=kind, strategy=strategy, status="active").first()


def _audit(user, action: str, version: ModelVersion, message: str, **payload) -> None:
    AuditLog.objects.create(
        user=user,
        action=action,
        object_type="model_version",
        object_id=str(version.pk),
        message=message,
        payload={"kind": version.kind, "strategy": version.strategy, "version": version.version, **payload},
    )


def _lock_group(owner, kind: str, strategy: str) -> list[ModelVersion]:
    return list(
        ModelVersion.objects.select_for_update().filter(owner=owner, kind=kind, strategy=strategy).order_by("pk")
    )


def _switch(new: ModelVersion | None, group: list[ModelVersion], *, now) -> ModelVersion | None:
    """Retire the group's active version (returned) and make ``new`` active."""
    old = next((v for v in group if v.status == ModelVersion.Status.ACTIVE), None)
    if old is not None and (new is None or old.pk != new.pk):
        old.status, old.retired_at = ModelVersion.Status.RETIRED, now
        old.save(update_fields=["status", "retired_at"])
    if new is not None:
        new.status, new.activated_at, new.retired_at = ModelVersion.Status.ACTIVE, now, None
        new.save(update_fields=["status", "activated_at", "retired_at"])
    return old


@transaction.atomic
def version_activate(*, version: ModelVersion, user) -> ModelVersion:
    """Make ``version`` (the user's) the active one of its kind and strategy; the previous
    active version is retired. Raises :class:`RegistryError` when it already is active."""
    group = _lock_group(version.owner, version.kind, version.strategy)
    version = next(v for v in group if v.pk == version.pk)
    if version.status == ModelVersion.Status.ACTIVE:
        raise RegistryError(f"{version} is already active")
    old = _switch(version, group, now=timezone.now())
    _audit(user, "model_activate", version, f"activated by hand (was: {f'v{old.version}' if old else 'rules'})")
    return version


@transaction.atomic
def version_deactivate(*, version: ModelVersion, user) -> ModelVersion:
    """Retire the active ``version``: bots of its kind fall back to the rule-based provider.
    Raises :class:`RegistryError` when it is not active."""
    group = _lock_group(version.owner, version.kind, version.strategy)
    version = next(v for v in group if v.pk == version.pk)
    if version.status != ModelVersion.Status.ACTIVE:
        raise RegistryError(f"{version} is not active")
    _switch(None, group, now=timezone.now())
    version.refresh_from_db()
    _audit(user, "model_deactivate", version, "deactivated by hand; rule-based fallback serves")
    return version


@transaction.atomic
def version_rollback(*, owner, kind: str, strategy: str, user) -> ModelVersion:
    """Re-activate the version that was active before the current one (the most recently
    activated retired version) and retire the current. Raises :class:`RegistryError` when no
    earlier version was ever active."""
    group = _lock_group(owner, kind, strategy)
    current = next((v for v in group if v.status == ModelVersion.Status.ACTIVE), None)
    earlier = [v for v in group if v.status == ModelVersion.Status.RETIRED and v.activated_at is not None]
    if current is not None:
        earlier = [v for v in earlier if v.activated_at <= (current.activated_at or timezone.now())]
    if not earlier:
        raise RegistryError(f"no earlier active version of {kind}/{strategy} to roll back to")
    target = max(earlier, key=lambda v: (v.activated_at, v.pk))
    _switch(target, group, now=timezone.now())
    _audit(user, "model_rollback", target, f"rolled back from {f'v{current.version}' if current else 'rules'}")
    return target


@transaction.atomic
def version_promote(*, version: ModelVersion, margin: float | None = None) -> tuple[bool, str]:
    """Run the promotion rule on candidate ``version``: it replaces the active version only when
    its pooled walk-forward metric beats the active one's by ``margin`` (default
    :func:`promotion_margin`), or — with no active version — beats the trivial baseline
    (:func:`mlops.core.train.promote`). The decision and its numbers are saved in
    ``version.promotion``; returns ``(promoted, reason)``."""
    from mlops.core.train import promote

    margin = promotion_margin() if margin is None else margin
    group = _lock_group(version.owner, version.kind, version.strategy)
    version = next(v for v in group if v.pk == version.pk)
    if version.status != ModelVersion.Status.CANDIDATE:
        raise RegistryError(f"{version} is not a candidate")
    active = next((v for v in group if v.status == ModelVersion.Status.ACTIVE), None)
    promoted, reason = promote(version.metrics, active.metrics if active else None, margin=margin)
    version.promotion = {
        "promoted": promoted,
        "reason": reason,
        "margin": margin,
        "active_version": active.version if active else None,
        "decided_at": timezone.now().isoformat(),
    }
    version.save(update_fields=["promotion"])
    if promoted:
        _switch(version, group, now=timezone.now())
        version.refresh_from_db()
        _audit(None, "model_promote", version, reason, replaced=active.version if active else None)
    return promoted, reason
