"""Browser end-to-end for the site-wide pieces: the API docs render from local files only."""

from __future__ import annotations

from urllib.parse import urlsplit

import pytest

pytestmark = [pytest.mark.e2e, pytest.mark.services]


@pytest.mark.parametrize(("path", "ready"), [("/api/docs/", ".swagger-ui .info .title"), ("/api/redoc/", "h1")])
def test_api_docs_render_without_the_internet(transactional_db, page, live_server_url, path, ready, artifact):
    requested: list[str] = []
    failed: dict[str, str] = {}
    page.on("request", lambda request: requested.append(request.url))
    page.on("requestfailed", lambda request: failed.update({request.url: request.failure}))
    page.goto(f"{live_server_url}{path}")
    page.wait_for_selector(ready)
    assert "Market7 API" in page.locator(ready).first.inner_text()
    page.wait_for_load_state("networkidle")
    outside = [u for u in requested if urlsplit(u).scheme in {"http", "https"} and urlsplit(u).hostname != "127.0.0.1"]
    # ReDoc's sidebar asks for a logo on cdn.redoc.ly: the page's Content-Security-Policy stops
    # it in the browser (failure "csp"), nothing reaches the network.
    assert [u for u in outside if failed.get(u) != "csp"] == [], (outside, failed)
    assert any(u.endswith("/api/schema/") for u in requested)
    page.screenshot(path=artifact(f"e2e_api_docs_{path.strip('/').replace('/', '_')}.png"))
