"""The models API (/api/v1/models/...): owner / other user (404) / anonymous (403) / viewer
(read-only: 403 on POST) with exact JSON; registry conflicts are 409; train errors are 400
with the field named and nothing saved."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
from rest_framework.test import APIClient

from accounts.models import AuditLog
from mlops.models import ModelVersion, TrainingJob
from tests.mlops.monitor_helpers import CLASSIFIER_METRICS, IMPORTANCE, make_version
from tests.trading.conftest import candles  # noqa: F401  (bundled BTC/ETH 1h, 2025-03-05 .. 2025-04-30)

pytestmark = pytest.mark.django_db


@pytest.fixture
def api():
    return APIClient()


def login(api, user):
    api.force_authenticate(user)
    return api


def statuses(owner):
    return list(ModelVersion.objects.filter(owner=owner).order_by("version").values_list("version", "status"))


def row(v, **over):
    body = {
        "id": v.pk,
        "kind": v.kind,
        "strategy": v.strategy,
        "version": v.version,
        "status": v.status,
        "exchange": "binance",
        "symbols": ["BTC/USDT", "ETH/USDT"],
        "timeframe": "1h",
        "train_start": "2024-01-01T00:00:00Z",
        "train_end": "2024-12-31T23:00:00Z",
        "n_rows": 1200,
        "headline": {"name": "auc", "value": 0.61},
        "promotion": {},
        "created_at": v.created_at.isoformat().replace("+00:00", "Z"),
        "activated_at": None,
        "retired_at": None,
    }
    return body | over


def test_list_is_the_owners_versions_with_filters(api, user, other_user):
    v1 = make_version(user, 1)
    v2 = make_version(user, 1, kind="dca_spend")
    make_version(other_user, 1)
    login(api, user)
    response = api.get("/api/v1/models/")
    assert response.status_code == 200
    assert response.json() == {
        "count": 2,
        "next": None,
        "previous": None,
        "results": [row(v2, headline={"name": "mae", "value": 0.12}), row(v1)],
    }
    assert [r["id"] for r in api.get("/api/v1/models/?kind=confidence").json()["results"]] == [v1.pk]
    assert api.get("/api/v1/models/?status=active").json()["count"] == 0
    assert api.get("/api/v1/models/?strategy=swing").json()["count"] == 0


def test_detail_has_metrics_and_importance(api, user, other_user):
    v = make_version(user, 1)
    login(api, user)
    body = api.get(f"/api/v1/models/{v.pk}/").json()
    assert body == row(v) | {
        "horizon_hours": 48.0,
        "features": ["ret_1", "rsi_14", "atr_pct"],
        "features_hash": "f" * 64,
        "params": v.params,
        "metrics": CLASSIFIER_METRICS,
        "importance": IMPORTANCE,
        "artifact_sha256": "a" * 64,
    }
    assert "artifact_path" not in body
    login(api, other_user)
    assert api.get(f"/api/v1/models/{v.pk}/").status_code == 404
    assert api.get("/api/v1/models/").json()["count"] == 0


def test_anonymous_gets_403_everywhere(api, user):
    v = make_version(user, 1)
    job = TrainingJob.objects.create(
        owner=user, kind="confidence", strategy="smart_dca", start=v.train_start, end=v.train_end
    )
    for path in (
        "/api/v1/models/",
        f"/api/v1/models/{v.pk}/",
        "/api/v1/models/training-jobs/",
        f"/api/v1/models/training-jobs/{job.pk}/",
    ):
        assert api.get(path).status_code == 403, path
    for path in (
        f"/api/v1/models/{v.pk}/activate/",
        f"/api/v1/models/{v.pk}/deactivate/",
        "/api/v1/models/rollback/",
        "/api/v1/models/train/",
    ):
        response = api.post(path, {"kind": "confidence", "strategy": "smart_dca"}, format="json")
        assert response.json() == {"detail": "Authentication credentials were not provided."}, path
        assert response.status_code == 403
    assert statuses(user) == [(1, "candidate")] and TrainingJob.objects.count() == 1


def test_activate_deactivate_rollback_with_conflicts(api, user):
    v1, v2 = make_version(user, 1), make_version(user, 2)
    login(api, user)
    response = api.post(f"/api/v1/models/{v1.pk}/activate/")
    assert (response.status_code, response.json()["status"]) == (200, "active")
    assert api.post(f"/api/v1/models/{v2.pk}/activate/").json()["id"] == v2.pk
    response = api.post(f"/api/v1/models/{v2.pk}/activate/")
    assert (response.status_code, response.json()) == (
        409,
        {"detail": "confidence/smart_dca v2 (active) is already active"},
    )
    response = api.post("/api/v1/models/rollback/", {"kind": "confidence", "strategy": "smart_dca"}, format="json")
    assert (response.status_code, response.json()["id"], response.json()["status"]) == (200, v1.pk, "active")
    assert statuses(user) == [(1, "active"), (2, "retired")]
    response = api.post(f"/api/v1/models/{v2.pk}/deactivate/")
    assert (response.status_code, response.json()) == (
        409,
        {"detail": "confidence/smart_dca v2 (retired) is not active"},
    )
    response = api.post(f"/api/v1/models/{v1.pk}/deactivate/")
    assert (response.status_code, response.json()["status"]) == (200, "retired")
    assert statuses(user) == [(1, "retired"), (2, "retired")]
    assert list(AuditLog.objects.order_by("id").values_list("action", flat=True)) == [
        "model_activate", "model_activate", "model_rollback", "model_deactivate",
    ]  # fmt: skip


def test_rollback_input_errors_and_no_history(api, user):
    make_version(user, 1, status="active")
    login(api, user)
    response = api.post("/api/v1/models/rollback/", {"strategy": "smart_dca"}, format="json")
    assert (response.status_code, response.json()) == (400, {"kind": ["This field is required."]})
    response = api.post("/api/v1/models/rollback/", {"kind": "confidence", "strategy": "smart_dca"}, format="json")
    assert (response.status_code, response.json()) == (
        409,
        {"detail": "no earlier active version of confidence/smart_dca to roll back to"},
    )
    assert statuses(user) == [(1, "active")]


def test_other_users_version_is_404_on_every_post(api, user, other_user):
    theirs = make_version(other_user, 1, status="active")
    login(api, user)
    for verb in ("activate", "deactivate"):
        assert api.post(f"/api/v1/models/{theirs.pk}/{verb}/").status_code == 404
    # rollback is scoped to the caller's own models: bob's history is not alice's
    response = api.post("/api/v1/models/rollback/", {"kind": "confidence", "strategy": "smart_dca"}, format="json")
    assert response.status_code == 409
    assert statuses(other_user) == [(1, "active")] and AuditLog.objects.count() == 0


@pytest.mark.usefixtures("candles")
def test_viewer_reads_but_cannot_write(api, viewer):
    v = make_version(viewer, 1)
    login(api, viewer)
    assert api.get("/api/v1/models/").json()["count"] == 1
    assert api.get(f"/api/v1/models/{v.pk}/").status_code == 200
    assert api.get("/api/v1/models/training-jobs/").status_code == 200
    for path, body in (
        (f"/api/v1/models/{v.pk}/activate/", {}),
        (f"/api/v1/models/{v.pk}/deactivate/", {}),
        ("/api/v1/models/rollback/", {"kind": "confidence", "strategy": "smart_dca"}),
    ):
        response = api.post(path, body, format="json")
        assert (response.status_code, response.json()) == (403, {"detail": "your role cannot change model versions"})
    response = api.post("/api/v1/models/train/", TRAIN, format="json")
    assert (response.status_code, response.json()) == (403, {"detail": "your role cannot train models"})
    assert statuses(viewer) == [(1, "candidate")] and TrainingJob.objects.count() == 0


TRAIN = {
    "kind": "recovery_odds",
    "strategy": "smart_dca",
    "symbols": ["BTC/USDT"],
    "timeframe": "1h",
    "start": "2025-03-10",
    "end": "2025-04-20",
    "folds": 5,
}


@pytest.mark.usefixtures("candles")
def test_train_creates_a_queued_job_and_the_jobs_api_follows_it(
    api, user, other_user, django_capture_on_commit_callbacks
):
    login(api, user)
    with django_capture_on_commit_callbacks(execute=False) as callbacks:
        response = api.post("/api/v1/models/train/", TRAIN, format="json")
    assert response.status_code == 201
    job = TrainingJob.objects.get()
    assert len(callbacks) == 1
    created = job.created_at.isoformat().replace("+00:00", "Z")
    expected = {
        "id": job.pk, "kind": "recovery_odds", "strategy": "smart_dca", "exchange": "binance", "symbols": ["BTC/USDT"],
        "timeframe": "1h", "start": "2025-03-10T00:00:00Z", "end": "2025-04-20T23:00:00Z", "options": {"folds": 5},
        "source": "api", "status": "queued", "progress": 0.0, "message": "", "error": "", "version": None,
        "created_at": created, "started_at": None, "finished_at": None,
    }  # fmt: skip
    assert response.json() == expected
    assert api.get(f"/api/v1/models/training-jobs/{job.pk}/").json() == expected
    assert api.get("/api/v1/models/training-jobs/").json() == {
        "count": 1,
        "next": None,
        "previous": None,
        "results": [expected],
    }
    assert api.get("/api/v1/models/training-jobs/?status=done").json()["count"] == 0
    login(api, other_user)
    assert api.get(f"/api/v1/models/training-jobs/{job.pk}/").status_code == 404
    assert api.get("/api/v1/models/training-jobs/").json()["count"] == 0


@pytest.mark.parametrize(
    ("change", "errors"),
    [
        ({"folds": 1}, {"folds": ["Ensure this value is greater than or equal to 2."]}),
        ({"symbols": []}, {"symbols": ["Ensure this field has at least 1 elements."]}),
        ({"kind": "nope"}, {"kind": ['"nope" is not a valid choice.']}),
        ({"end": "2025-03-01"}, {"end": ["must be on or after the start"]}),
        ({"end": "2025-03-15"}, {"end": ["the training window must span at least 14 days"]}),
        ({"symbols": ["XRP/USDT"]}, {"symbols": ["unknown symbol(s) on binance: XRP/USDT"]}),
        (
            {"kind": "take_profit"},
            {
                "strategy": [
                    "model kind 'take_profit' learns detector signals: strategy must be one of fork_score, scalping, dca_detector, swing, channel"
                ]
            },
        ),
        ({"start": "soon"}, {"start": ["Date has wrong format. Use one of these formats instead: YYYY-MM-DD."]}),
    ],
)
@pytest.mark.usefixtures("candles")
def test_train_errors_name_the_field_and_save_nothing(api, user, change, errors):
    login(api, user)
    response = api.post("/api/v1/models/train/", TRAIN | change, format="json")
    assert (response.status_code, response.json()) == (400, errors)
    assert TrainingJob.objects.count() == 0


def test_a_training_job_detail_names_its_version_and_error(api, user):
    v = make_version(user, 1)
    t0 = datetime(2025, 3, 10, tzinfo=UTC)
    job = TrainingJob.objects.create(
        owner=user, kind="confidence", strategy="smart_dca", start=t0, end=t0 + timedelta(days=30),
        status="done", progress=1.0, message="done", version=v,
    )  # fmt: skip
    login(api, user)
    body = api.get(f"/api/v1/models/training-jobs/{job.pk}/").json()
    assert (body["status"], body["progress"], body["version"]) == ("done", 1.0, v.pk)


def test_the_openapi_schema_documents_the_models_api():
    from drf_spectacular.generators import SchemaGenerator

    paths = SchemaGenerator().get_schema(request=None, public=True)["paths"]
    assert sorted(p for p in paths if p.startswith("/api/v1/models")) == [
        "/api/v1/models/",
        "/api/v1/models/rollback/",
        "/api/v1/models/train/",
        "/api/v1/models/training-jobs/",
        "/api/v1/models/training-jobs/{id}/",
        "/api/v1/models/{id}/",
        "/api/v1/models/{id}/activate/",
        "/api/v1/models/{id}/deactivate/",
    ]
    owned = "Scoped to your own model versions: another user's model version is a 404."
    assert paths["/api/v1/models/"]["get"]["description"].endswith(owned)
    assert paths["/api/v1/models/{id}/activate/"]["post"]["summary"] == "Activate a model version"
    train = paths["/api/v1/models/train/"]["post"]
    assert train["summary"] == "Train a model (queue a training job)"
    assert train["responses"]["201"]["content"]["application/json"]["schema"] == {
        "$ref": "#/components/schemas/TrainingJob"
    }
    jobs = paths["/api/v1/models/training-jobs/{id}/"]["get"]["description"]
    assert jobs.endswith("Scoped to your own training jobs: another user's training job is a 404.")
    assert [p["name"] for p in paths["/api/v1/models/"]["get"]["parameters"]] == [
        "kind", "limit", "offset", "status", "strategy",
    ]  # fmt: skip
