"""The API schema is true and written for API users; the docs pages load nothing from the internet."""

import re

import pytest
from django.test import Client
from drf_spectacular.generators import SchemaGenerator

from market7.api_schema import schema_paths_resolve

INTERNAL_NOTES = ("For DRF viewsets", "queryset", "For class-based views", "selectors", "services", "get_object")


@pytest.fixture(scope="module")
def schema():
    return SchemaGenerator().get_schema(request=None, public=True)


def _operations(schema):
    for path, item in schema["paths"].items():
        for method, op in item.items():
            yield path, method, op


def test_every_schema_path_resolves_in_the_urlconf(schema):
    assert len(schema["paths"]) >= 20
    assert "/api/v1/bots/{id}/close_position/" in schema["paths"]
    assert schema_paths_resolve(schema) == {}


def test_schema_paths_resolve_reports_a_path_that_does_not_exist():
    assert list(schema_paths_resolve({"paths": {"/api/v1/backtests/{id}/": {}}})) == ["/api/v1/backtests/{id}/"]


def test_every_operation_has_a_summary_and_no_developer_notes(schema):
    for path, method, op in _operations(schema):
        assert op.get("summary"), (path, method)
        for note in INTERNAL_NOTES:
            assert note not in op.get("description", ""), (path, method, op.get("description"))
    for name, component in schema["components"]["schemas"].items():
        for note in INTERNAL_NOTES:
            assert note not in component.get("description", ""), name
    assert "backtests" not in schema["info"]["description"]


def test_every_operation_is_grouped_under_a_described_tag(schema, settings):
    described = {tag["name"] for tag in settings.SPECTACULAR_SETTINGS["TAGS"]}
    used = {tag for _path, _method, op in _operations(schema) for tag in op["tags"]}
    assert (
        used
        == described
        == {
            "accounts",
            "bots",
            "bot-trades",
            "bot-orders",
            "bot-presets",
            "exchanges",
            "markets",
            "models",
            "trading",
        }
    )


def test_owned_endpoints_say_so_and_actions_have_their_shapes(schema):
    bots = schema["paths"]["/api/v1/bots/"]["get"]
    assert bots["summary"] == "List bots"
    assert bots["description"] == "Scoped to your own bots: another user's bot is a 404."
    trades = schema["paths"]["/api/v1/bot-trades/{id}/"]["get"]
    assert trades["summary"] == "One trade"
    assert trades["description"] == "Scoped to your own trades: another user's trade is a 404."
    close = schema["paths"]["/api/v1/bots/{id}/close_position/"]["post"]
    assert close["summary"] == "Close position"
    assert close["responses"]["202"]["content"]["application/json"]["schema"] == {"$ref": "#/components/schemas/Trade"}
    assert schema["components"]["schemas"]["ClosePosition"]["properties"]["trade"]["type"] == "integer"
    markets = schema["paths"]["/api/v1/markets/"]["get"]
    assert markets["summary"] == "Markets with 24 h stats"
    assert "Scoped" not in markets.get("description", "")  # shared market data, no ownership


@pytest.mark.django_db
@pytest.mark.parametrize("url", ["/api/docs/", "/api/redoc/"])
def test_docs_pages_reference_nothing_outside_the_site(url):
    response = Client().get(url)
    assert response.status_code == 200
    html = response.content.decode()
    assert re.findall(r"(?:https?:)?//[a-z0-9.-]+\.[a-z]{2,}", html, flags=re.I) == []
    scripts = re.findall(r'<script src="([^"]+)"', html)
    assert scripts and all(src.startswith("/static/drf_spectacular_sidecar/") for src in scripts)
    for src in scripts:  # the sidecar bundles are really served (whitenoise, DEBUG off)
        static = Client().get(src)
        assert static.status_code == 200, src
        b"".join(static.streaming_content)
