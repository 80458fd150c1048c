"""The model registry: one active version per kind, activate / deactivate / rollback, audit."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest
from django.db import IntegrityError, transaction

from accounts.models import AuditLog
from mlops.models import ModelVersion
from mlops.services.registry import (
    RegistryError,
    active_version,
    version_activate,
    version_deactivate,
    version_rollback,
)

pytestmark = pytest.mark.django_db


def make_version(owner, version, *, kind="confidence", strategy="smart_dca", status="candidate", auc=0.6):
    return ModelVersion.objects.create(
        owner=owner,
        kind=kind,
        strategy=strategy,
        version=version,
        status=status,
        train_start=datetime(2024, 1, 1, tzinfo=UTC),
        train_end=datetime(2024, 12, 31, tzinfo=UTC),
        features=["ret_1", "rsi_14"],
        features_hash="f" * 64,
        metrics={"pooled": {"auc": auc}},
        artifact_path=f"u{owner.pk}/confidence-smart_dca-v{version}.json",
        artifact_sha256="a" * 64,
    )


def statuses(owner):
    return list(ModelVersion.objects.filter(owner=owner).order_by("version").values_list("version", "status"))


def test_activate_retires_the_previous_active_version_and_audits(user):
    v1, v2 = make_version(user, 1), make_version(user, 2)
    version_activate(version=v1, user=user)
    version_activate(version=v2, user=user)
    assert statuses(user) == [(1, "retired"), (2, "active")]
    assert active_version(owner=user, kind="confidence", strategy="smart_dca").pk == v2.pk
    log = list(AuditLog.objects.filter(action="model_activate").order_by("id").values_list("object_id", "message"))
    assert log == [(str(v1.pk), "activated by hand (was: rules)"), (str(v2.pk), "activated by hand (was: v1)")]
    with pytest.raises(RegistryError, match="already active"):
        version_activate(version=v2, user=user)


def test_the_database_refuses_two_active_versions_of_one_kind(user):
    make_version(user, 1, status="active")
    with pytest.raises(IntegrityError), transaction.atomic():
        make_version(user, 2, status="active")
    # another kind, strategy or owner is independent
    make_version(user, 1, kind="recovery_odds", status="active")
    make_version(user, 1, strategy="swing", status="active")


def test_deactivate_falls_back_to_rules_and_rollback_restores_the_previous(user):
    v1, v2, v3 = make_version(user, 1), make_version(user, 2), make_version(user, 3)
    version_activate(version=v1, user=user)
    version_activate(version=v2, user=user)
    rolled = version_rollback(owner=user, kind="confidence", strategy="smart_dca", user=user)
    assert rolled.pk == v1.pk
    assert statuses(user) == [(1, "active"), (2, "retired"), (3, "candidate")]
    version_deactivate(version=v1, user=user)
    assert active_version(owner=user, kind="confidence", strategy="smart_dca") is None
    with pytest.raises(RegistryError, match="not active"):
        version_deactivate(version=v3, user=user)
    # with none active, rollback brings back the most recently activated one (v1)
    assert version_rollback(owner=user, kind="confidence", strategy="smart_dca", user=user).pk == v1.pk


def test_rollback_without_history_is_refused_and_changes_nothing(user):
    make_version(user, 1)
    with pytest.raises(RegistryError, match="no earlier active version of confidence/smart_dca"):
        version_rollback(owner=user, kind="confidence", strategy="smart_dca", user=user)
    assert statuses(user) == [(1, "candidate")]
    assert not AuditLog.objects.filter(action__startswith="model_").exists()


def test_versions_are_per_user(user, other_user):
    make_version(user, 1, status="active")
    assert active_version(owner=other_user, kind="confidence", strategy="smart_dca") is None
    assert ModelVersion.objects.for_user(other_user).count() == 0
