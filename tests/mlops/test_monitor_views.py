"""ML Monitor pages: owner / other user / anonymous / viewer on every page and POST, exact
cells, registry buttons with messages, the train form (nothing saved on bad input)."""

from __future__ import annotations

import re
from datetime import UTC, datetime, timedelta

import pytest

from accounts.models import AuditLog
from mlops.models import ModelVersion, TrainingJob
from tests.mlops.monitor_helpers import make_snapshot, make_version
from tests.trading.conftest import candles  # noqa: F401  (bundled BTC/ETH 1h, 2025-03-05 .. 2025-04-30)

pytestmark = pytest.mark.django_db


def text(response) -> str:
    return re.sub(r"\s+", " ", response.content.decode())


def statuses(owner):
    return list(ModelVersion.objects.filter(owner=owner).order_by("version").values_list("version", "status"))


def messages_of(response) -> list[str]:
    return [str(m) for m in response.context["messages"]]


# ------------------------------------------------------------------ monitor and version pages


def test_monitor_shows_only_the_owners_models_with_buttons(client, user, other_user):
    v1 = make_version(user, 1, status="active", promotion={"promoted": True, "reason": "auc 0.610 beats baseline 0.5"})
    make_version(user, 2, kind="dca_spend")
    theirs = make_version(other_user, 7)
    client.force_login(user)
    body = text(client.get("/ml/"))
    assert 'data-model="confidence/smart_dca"' in body and 'data-model="dca_spend/smart_dca"' in body
    assert f'data-version="{theirs.pk}"' not in body
    assert 'data-metric="auc">AUC 0.610<' in body
    assert 'data-metric="mae">MAE 0.120<' in body
    assert 'promoted</span> <span class="small">auc 0.610 beats baseline 0.5</span>' in body
    assert f'action="/ml/versions/{v1.pk}/deactivate/"' in body
    assert 'hx-confirm="Deactivate confidence/smart_dca v1? Bots fall back to the rule-based provider."' in body
    assert body.count('data-action="activate"') == 1
    assert 'action="/ml/train/"' in body
    assert '<a href="/ml/" class="active" aria-current="page">ML</a>' in body


def test_monitor_for_a_viewer_has_no_write_buttons_and_anonymous_is_sent_to_login(client, viewer):
    make_version(viewer, 1, status="active")
    client.force_login(viewer)
    body = text(client.get("/ml/"))
    assert 'data-model="confidence/smart_dca"' in body
    assert "data-action=" not in body and 'action="/ml/train/"' not in body
    client.logout()
    response = client.get("/ml/")
    assert (response.status_code, response["Location"]) == (302, "/accounts/login/?next=/ml/")


def test_version_page_shows_the_walk_forward_report(client, user):
    v = make_version(
        user,
        3,
        status="active",
        promotion={"promoted": False, "reason": "auc 0.610 < 0.620 + 0.01", "margin": 0.01, "active_version": 2},
    )
    make_snapshot(v, datetime(2024, 1, 2, tzinfo=UTC), 0.7, 1.0, values=(0.5, 10.0, 1.0))
    make_snapshot(v, datetime(2024, 1, 3, tzinfo=UTC), 0.4, 1.0, values=(3.5, 60.0, 1.0))
    client.force_login(user)
    body = text(client.get(f"/ml/versions/{v.pk}/"))
    assert "kept as candidate</span> auc 0.610 &lt; 0.620 + 0.01" in body
    assert 'data-fold="1"><td class="cell-title">fold 1</td>' in body
    assert '<td class="num" data-label="AUC">0.620</td>' in body
    assert '<td class="num" data-label="AUC"><strong>0.610</strong></td>' in body
    bars = re.findall(r'data-feature="([^"]+)">.*?style="width: ([\d.]+)%".*?ml-bar-value">([^<]+)<', body)
    assert bars == [("ret_1", "100.0", "50.0%"), ("rsi_14", "60.0", "30.0%"), ("atr_pct", "40.0", "20.0%")]
    assert 'points="82.0,292.0 202.0,202.0 322.0,127.0"' in body
    assert (
        'data-trading="pnl"><td>P&amp;L</td><td class="num">120.50</td><td class="num">150.25</td><td class="num">29.75</td>'
        in body
    )
    assert (
        'data-week="2024-01-01"><td>2024-01-01</td><td class="num">2</td><td class="num">0.500</td><td class="num">0.225</td>'
        in body
    )
    assert '"value": 0.5' in body and 'id="ml-live-data"' in body
    # ret_1: one value in bin 0, one in bin 3 of four quarters -> 2 (0.25 ln 2) + 2 (1e-4 - .25) ln(1e-4/.25)
    assert (
        'data-drift="ret_1"><td><code>ret_1</code></td><td class="num">4.257</td><td><span class="badge badge-psi-few">few</span></td><td class="num">2</td>'
        in body
    )
    assert (
        'data-drift="rsi_14"><td><code>rsi_14</code></td><td class="num">0.000</td><td><span class="badge badge-psi-few">few</span>'
        in body
    )
    assert f'action="/ml/versions/{v.pk}/deactivate/"' in body


def test_version_page_of_a_regressor_says_it_has_no_calibration(client, user):
    v = make_version(user, 1, kind="dca_spend", params={})
    client.force_login(user)
    body = text(client.get(f"/ml/versions/{v.pk}/"))
    assert "Regressors have no calibration curve." in body
    assert "This version stored no training bins." in body
    assert '<th class="num">MAE</th><th class="num">RMSE</th>' in body


def test_version_page_of_another_user_is_404_and_anonymous_goes_to_login(client, user, other_user):
    v = make_version(other_user, 1)
    client.force_login(user)
    assert client.get(f"/ml/versions/{v.pk}/").status_code == 404
    client.logout()
    assert client.get(f"/ml/versions/{v.pk}/")["Location"] == f"/accounts/login/?next=/ml/versions/{v.pk}/"


def test_viewer_sees_their_version_without_buttons(client, viewer):
    v = make_version(viewer, 1)
    client.force_login(viewer)
    response = client.get(f"/ml/versions/{v.pk}/")
    assert response.status_code == 200 and "data-action=" not in text(response)


# ------------------------------------------------------------------ registry buttons


def test_activate_then_deactivate_then_rollback_by_the_owner(client, user):
    v1, v2 = make_version(user, 1), make_version(user, 2)
    client.force_login(user)
    response = client.post(f"/ml/versions/{v1.pk}/activate/", follow=True)
    assert messages_of(response) == ["confidence/smart_dca v1 is active."]
    assert response.redirect_chain == [("/ml/", 302)]
    response = client.post(f"/ml/versions/{v2.pk}/activate/", {"next": f"/ml/versions/{v2.pk}/"}, follow=True)
    assert response.redirect_chain == [(f"/ml/versions/{v2.pk}/", 302)]
    assert statuses(user) == [(1, "retired"), (2, "active")]
    response = client.post("/ml/rollback/", {"kind": "confidence", "strategy": "smart_dca"}, follow=True)
    assert messages_of(response) == ["confidence/smart_dca rolled back to v1."]
    assert statuses(user) == [(1, "active"), (2, "retired")]
    response = client.post(f"/ml/versions/{v1.pk}/deactivate/", follow=True)
    assert messages_of(response) == ["confidence/smart_dca v1 deactivated; the rule-based provider serves."]
    assert statuses(user) == [(1, "retired"), (2, "retired")]


def test_registry_errors_are_messages_and_change_nothing(client, user):
    v1 = make_version(user, 1, status="active")
    client.force_login(user)
    response = client.post(f"/ml/versions/{v1.pk}/activate/", follow=True)
    assert messages_of(response) == ["confidence/smart_dca v1 (active) is already active"]
    response = client.post("/ml/rollback/", {"kind": "confidence", "strategy": "smart_dca"}, follow=True)
    assert messages_of(response) == ["no earlier active version of confidence/smart_dca to roll back to"]
    response = client.post("/ml/rollback/", {"kind": "nope", "strategy": "smart_dca"}, follow=True)
    assert messages_of(response) == ["choose a model kind and strategy to roll back"]
    assert statuses(user) == [(1, "active")]
    assert AuditLog.objects.filter(action__startswith="model_").count() == 0


def test_an_offsite_next_is_ignored_and_htmx_gets_hx_redirect(client, user):
    v1 = make_version(user, 1)
    client.force_login(user)
    response = client.post(f"/ml/versions/{v1.pk}/activate/", {"next": "https://evil.example/"})
    assert response["Location"] == "/ml/"
    response = client.post(
        f"/ml/versions/{v1.pk}/deactivate/", {"next": f"/ml/versions/{v1.pk}/"}, HTTP_HX_REQUEST="true"
    )
    assert (response.status_code, response["HX-Redirect"]) == (204, f"/ml/versions/{v1.pk}/")
    assert statuses(user) == [(1, "retired")]


@pytest.mark.parametrize("action", ["activate", "deactivate"])
def test_registry_posts_of_other_users_viewers_and_anonymous_change_nothing(client, user, other_user, viewer, action):
    theirs = make_version(other_user, 1, status="active" if action == "deactivate" else "candidate")
    own_viewer = make_version(viewer, 1, status="active" if action == "deactivate" else "candidate")
    before = (statuses(other_user), statuses(viewer))
    client.force_login(user)
    assert client.post(f"/ml/versions/{theirs.pk}/{action}/").status_code == 404
    client.force_login(viewer)
    assert client.post(f"/ml/versions/{own_viewer.pk}/{action}/").status_code == 403
    assert client.post("/ml/rollback/", {"kind": "confidence", "strategy": "smart_dca"}).status_code == 403
    client.logout()
    response = client.post(f"/ml/versions/{theirs.pk}/{action}/")
    assert response["Location"] == f"/accounts/login/?next=/ml/versions/{theirs.pk}/{action}/"
    assert (statuses(other_user), statuses(viewer)) == before
    assert AuditLog.objects.count() == 0
    assert client.get(f"/ml/versions/{theirs.pk}/{action}/").status_code == 302  # GET: login first
    client.force_login(user)
    assert client.get(f"/ml/versions/{theirs.pk}/{action}/").status_code == 405


# ------------------------------------------------------------------ train form and jobs

FORM = {
    "kind": "confidence",
    "strategy": "smart_dca",
    "symbols": "BTC/USDT, ETH/USDT",
    "timeframe": "1h",
    "start": "2025-03-10",
    "end": "2025-04-20",
    "folds": "3",
}


@pytest.mark.usefixtures("candles")
def test_train_form_queues_a_job(client, user, django_capture_on_commit_callbacks):
    client.force_login(user)
    with django_capture_on_commit_callbacks(execute=False) as callbacks:
        response = client.post("/ml/train/", FORM, follow=True)
    job = TrainingJob.objects.get()
    assert len(callbacks) == 1  # the enqueue on the research queue, after commit (not run here)
    assert messages_of(response) == [f"Training job #{job.pk} queued (confidence / smart_dca)."]
    assert (job.owner, job.kind, job.strategy, job.symbols, job.timeframe, job.options, job.source, job.status) == (
        user, "confidence", "smart_dca", ["BTC/USDT", "ETH/USDT"], "1h", {"folds": 3}, "page", "queued",
    )  # fmt: skip
    assert (job.start, job.end) == (datetime(2025, 3, 10, tzinfo=UTC), datetime(2025, 4, 20, 23, tzinfo=UTC))
    assert (
        f'id="job-{job.pk}" data-job="{job.pk}" data-status="queued" hx-get="/ml/jobs/{job.pk}/_progress/" hx-trigger="every 2s"'
        in text(response)
    )


@pytest.mark.parametrize(
    ("change", "field", "error"),
    [
        ({"folds": "1"}, "folds", "Ensure this value is greater than or equal to 2."),
        ({"symbols": " , "}, "symbols", "give at least one symbol"),
        ({"end": "2025-03-01"}, "end", "must be on or after the start"),
        (
            {"kind": "success"},
            "strategy",
            "model kind &#x27;success&#x27; learns detector signals: strategy must be one of fork_score, scalping, dca_detector, swing, channel",
        ),
        ({"end": "2025-03-15"}, "end", "the training window must span at least 14 days"),
        ({"symbols": "XRP/USDT"}, "symbols", "unknown symbol(s) on binance: XRP/USDT"),
    ],
)
@pytest.mark.usefixtures("candles")
def test_train_form_errors_save_nothing(client, user, change, field, error):
    client.force_login(user)
    response = client.post("/ml/train/", FORM | change)
    assert response.status_code == 400
    assert list(response.context["form"].errors) == [field]
    assert error in text(response)
    assert TrainingJob.objects.count() == 0


@pytest.mark.usefixtures("candles")
def test_train_is_forbidden_to_viewers_and_anonymous(client, viewer):
    client.force_login(viewer)
    assert client.post("/ml/train/", FORM).status_code == 403
    client.logout()
    assert client.post("/ml/train/", FORM)["Location"] == "/accounts/login/?next=/ml/train/"
    assert TrainingJob.objects.count() == 0


def _job(owner, **kw):
    t0 = datetime(2025, 3, 10, tzinfo=UTC)
    fields = {
        "owner": owner,
        "kind": "confidence",
        "strategy": "smart_dca",
        "symbols": ["BTC/USDT"],
        "start": t0,
        "end": t0 + timedelta(days=30),
    }
    return TrainingJob.objects.create(**(fields | kw))


def test_job_progress_fragment_polls_while_running_and_stops_when_done(client, user, other_user):
    running = _job(user, status="running", progress=0.426, message="walk-forward fold 2/4")
    v = make_version(user, 1)
    done = _job(user, status="done", progress=1.0, message="done", version=v)
    failed = _job(user, status="failed", message="failed", error="PipelineError: no labels")
    client.force_login(user)
    body = text(client.get(f"/ml/jobs/{running.pk}/_progress/", HTTP_HX_REQUEST="true")).strip()
    assert body.startswith(
        f'<tr id="job-{running.pk}" data-job="{running.pk}" data-status="running" hx-get="/ml/jobs/{running.pk}/_progress/" hx-trigger="every 2s" hx-swap="outerHTML">'
    )
    assert 'aria-valuenow="43"' in body and "<strong data-progress>43%</strong> walk-forward fold 2/4" in body
    body = text(client.get(f"/ml/jobs/{done.pk}/_progress/"))
    assert "hx-get" not in body and f'<a href="/ml/versions/{v.pk}/">v1</a>' in body
    assert '<pre class="error ml-error">PipelineError: no labels</pre>' in text(
        client.get(f"/ml/jobs/{failed.pk}/_progress/")
    )
    client.force_login(other_user)
    assert client.get(f"/ml/jobs/{running.pk}/_progress/").status_code == 404
    client.logout()
    assert client.get(f"/ml/jobs/{running.pk}/_progress/").status_code == 302
