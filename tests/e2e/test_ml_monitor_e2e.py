"""Browser end-to-end for the ML Monitor under the real Content-Security-Policy: the monitor
and a version page load without a console error or CSP violation, the charts render
(importance bars, the server-side calibration SVG, the live-accuracy line canvas), a registry
button asks for confirmation and activates, and both pages fit a 390 px phone."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from tests.e2e.test_csp_e2e import WATCH
from tests.mlops.monitor_helpers import make_snapshot, make_version

pytestmark = [pytest.mark.e2e, pytest.mark.services]

SCROLL_WIDTH = "() => document.documentElement.scrollWidth"


@pytest.mark.enforce_csp
def test_ml_monitor_and_version_page_render_under_csp(
    transactional_db, make_user, page, live_server_url, login, artifact
):
    from mlops.models import ModelVersion, TrainingJob

    user = make_user("erin", "trader")
    active = make_version(user, 1, status="active", activated_at=datetime(2025, 1, 1, tzinfo=UTC))
    candidate = make_version(user, 2, promotion={"promoted": False, "reason": "auc 0.610 < 0.610 + 0.01"})
    for week in range(4):
        for i, (score, outcome) in enumerate([(0.7, 1.0), (0.3, 0.0), (0.6, 0.0)]):
            make_snapshot(active, datetime(2025, 1, 6, i, tzinfo=UTC) + timedelta(weeks=week), score, outcome)
    t0 = datetime(2025, 3, 10, tzinfo=UTC)
    TrainingJob.objects.create(
        owner=user, kind="confidence", strategy="smart_dca", symbols=["BTC/USDT"], start=t0,
        end=t0 + timedelta(days=30), status="running", progress=0.4, message="features",
    )  # fmt: skip
    page.add_init_script(WATCH)
    login(page, "erin", next="/ml/")

    response = page.goto(f"{live_server_url}/ml/")
    assert response.status == 200 and "script-src 'self'" in response.headers["content-security-policy"]
    page.wait_for_load_state("networkidle")
    assert page.locator("[data-model='confidence/smart_dca'] tr[data-version]").count() == 2
    assert page.locator("tr[data-job] [role=progressbar]").get_attribute("aria-valuenow") == "40"
    page.screenshot(path=artifact("e2e_ml_monitor.png"), full_page=True)

    response = page.goto(f"{live_server_url}/ml/versions/{active.pk}/")
    assert response.status == 200
    page.wait_for_selector("#ml-live-chart canvas")
    page.wait_for_load_state("networkidle")
    assert page.locator(".ml-bars li").count() == 3
    assert page.locator("svg.ml-calibration circle.dot").count() == 3
    assert page.locator("svg.ml-calibration polyline.curve").bounding_box()["width"] > 100
    assert page.evaluate("document.getElementById('ml-live-chart')._m7chart.points") == 4
    assert page.locator("#ml-live-chart canvas").first.bounding_box()["height"] > 100
    page.screenshot(path=artifact("e2e_ml_version.png"), full_page=True)

    # a registry button: confirm (htmx hx-confirm), then the page reloads with the message
    page.goto(f"{live_server_url}/ml/")
    page.once("dialog", lambda dialog: dialog.accept())
    page.click(f"tr[data-version='{candidate.pk}'] [data-action=activate]")
    page.wait_for_selector("#messages .msg-success")
    assert page.inner_text("#messages .msg-success") == "confidence/smart_dca v2 is active."
    assert ModelVersion.objects.get(pk=candidate.pk).status == "active"

    assert page.evaluate("window.__csp") == []
    assert page.m7_errors == []

    # a 390 px phone: no sideways scroll on either page
    page.set_viewport_size({"width": 390, "height": 844})
    for path in ("/ml/", f"/ml/versions/{active.pk}/"):
        page.goto(f"{live_server_url}{path}")
        page.wait_for_load_state("networkidle")
        assert page.evaluate(SCROLL_WIDTH) <= 390, path
    page.screenshot(path=artifact("e2e_ml_version_phone.png"), full_page=True)
    assert page.m7_errors == []
