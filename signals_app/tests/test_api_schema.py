"""GET /api/schema: a valid OpenAPI 3.1 document that says what the views really do.

Checked both ways: every documented parameter is one the view reads (a bad value of it
is a 400 naming it), every example matches its schema, and the views' real answers
match the documented schemas.
"""

from __future__ import annotations

import re
import time
from typing import Any
from urllib.parse import quote

import orjson
import pytest
from django.urls import resolve
from django.urls.resolvers import RoutePattern
from openapi_schema_validator import OAS31Validator
from openapi_spec_validator import validate

from engine_worker.config import EngineConfig
from signals_app.api_schema import SCHEMA
from signals_app.contracts import keys
from signals_app.contracts.depth_view import depth_view_key
from signals_app.tests import api_fixtures
from signals_app.tests.api_fixtures import PublishingEngine, make_signal, store_signal
from signals_app.urls import urlpatterns

api_redis_server = api_fixtures.api_redis_server
api_redis = api_fixtures.api_redis
fake_ingestor = api_fixtures.fake_ingestor

pytestmark = pytest.mark.django_db

OPERATIONS = [(path, operation) for path, item in SCHEMA["paths"].items() for operation in item.values()]


def validator(schema: dict[str, Any]) -> OAS31Validator:
    # Wrapped with the document's components so that "#/components/schemas/..." references resolve.
    return OAS31Validator({**schema, "components": SCHEMA["components"]})


def assert_matches(schema: dict[str, Any], instance: object, where: str = "") -> None:
    errors = [f"{list(e.absolute_path)}: {e.message}" for e in validator(schema).iter_errors(instance)]
    assert not errors, (where, errors)


def response_schema(path: str, status: int) -> dict[str, Any]:
    schema: dict[str, Any] = SCHEMA["paths"][path]["get"]["responses"][str(status)]["content"]["application/json"][
        "schema"
    ]
    return schema


def test_is_a_valid_openapi_3_1_document():
    assert SCHEMA["openapi"] == "3.1.0"
    validate(SCHEMA)


def test_served_at_api_schema(client):
    response = client.get("/api/schema")
    assert response.status_code == 200
    assert orjson.loads(response.content) == SCHEMA


def openapi_path(route: str) -> str:
    """A Django route in OpenAPI's spelling: `<path:signal_id>` is `{id}` (the schema names it `id`)."""
    return re.sub(r"<(?:\w+:)?(\w+)>", lambda match: "{" + match[1].removeprefix("signal_") + "}", route)


def test_documents_exactly_the_api_routes():
    routes = {"/" + str(pattern.pattern) for pattern in urlpatterns if isinstance(pattern.pattern, RoutePattern)}
    assert {openapi_path(route) for route in routes if route.startswith("/api/")} == set(SCHEMA["paths"])
    for path in SCHEMA["paths"]:
        assert resolve(path).func.__module__ == "signals_app.api", path


@pytest.mark.parametrize(("path", "operation"), OPERATIONS, ids=[path for path, _ in OPERATIONS])
def test_every_example_matches_its_schema(path, operation):
    for parameter in operation.get("parameters", []):
        assert_matches(parameter["schema"], parameter["example"])
    for status, response in operation["responses"].items():
        for media in response.get("content", {}).values():
            if "example" in media:
                assert_matches(media["schema"], media["example"], f"{path} {status}")


# Query parameters; the one path parameter (a signal's id) is test_api_signal_depth's.
PARAMETERS = [
    (path, parameter)
    for path, operation in OPERATIONS
    for parameter in operation.get("parameters", [])
    if parameter["in"] == "query"
]


@pytest.mark.parametrize(
    ("path", "parameter"), PARAMETERS, ids=[f"{path}?{parameter['name']}" for path, parameter in PARAMETERS]
)
def test_every_documented_parameter_is_read_by_the_view(client, api_redis, path, parameter):
    name = parameter["name"]
    if name == "cursor":
        # A real cursor, from a first page.
        store_signal(make_signal(1_705_670_000_000))
        store_signal(make_signal(1_705_670_000_001))
        example = orjson.loads(client.get(path, {"limit": "1"}).content)["next_cursor"]
    else:
        example = parameter["example"]
    ok = client.get(path, {name: str(example)})
    assert ok.status_code == 200, ok.content
    bad = client.get(path, {name: "?!bad value!?"})
    assert bad.status_code == 400
    assert orjson.loads(bad.content)["error"].startswith(f"{name}: ")
    assert_matches(response_schema(path, 400), orjson.loads(bad.content))


def test_real_answers_match_the_documented_schemas(client, api_redis, api_redis_server, fake_ingestor):
    now = time.time_ns() // 1_000_000
    signal = make_signal(now - 1000, size=None)
    api_redis.zadd(keys.SIGNALS_HISTORY, {orjson.dumps(signal): signal["timestamp"]})
    store_signal(signal)
    store_signal(make_signal(now))
    engine = PublishingEngine(api_redis_server.url, EngineConfig())
    engine.quote("binance", "BTC/USDT", 100.0, 100.5, now)
    engine.quote("coinbase", "BTC/USD", 101.0, 101.5, now, bid_size=None)
    engine.quote("coinbase", "BTC/EUR", 90.0, 90.5, now)
    engine.publish(beat=False)
    without_engine = client.get("/api/markets")  # quotes cached, no matrix from an engine yet
    assert_matches(response_schema("/api/markets", 200), orjson.loads(without_engine.content))
    engine.publish()
    api_redis.delete(keys.ENGINE_HEARTBEAT)  # the engine's matrix, but no heartbeat: /api/health is a 503

    answers = {
        "/api/signals/history": client.get("/api/signals/history"),
        "/api/signals": client.get("/api/signals", {"limit": "1"}),
        "/api/markets": client.get("/api/markets"),
        "/api/health": client.get("/api/health"),  # no engine heartbeat: a 503 Health body
    }
    for path, response in answers.items():
        body = orjson.loads(response.content)
        assert_matches(response_schema(path, response.status_code), body)
    assert orjson.loads(answers["/api/signals"].content)["next_cursor"]
    assert orjson.loads(answers["/api/markets"].content)["matrix"]["BTC"]["binance"]["coinbase"] is not None

    depth_path = "/api/signals/{id}/depth"
    depth_url = f"/api/signals/{quote(signal['id'], safe='')}/depth"
    assert client.get(depth_url).status_code == 404
    assert_matches(response_schema(depth_path, 404), orjson.loads(client.get(depth_url).content))
    api_redis.set(
        depth_view_key(signal["id"]),
        orjson.dumps(
            SCHEMA["paths"][depth_path]["get"]["responses"]["200"]["content"]["application/json"]["example"]
            | {"id": signal["id"]}
        ),
    )
    depth = client.get(depth_url)
    assert depth.status_code == 200, depth.content
    assert_matches(response_schema(depth_path, 200), orjson.loads(depth.content))
    api_redis.set(depth_view_key(signal["id"]), b"{}")
    assert_matches(response_schema(depth_path, 502), orjson.loads(client.get(depth_url).content))

    api_redis.set(keys.ENGINE_HEARTBEAT, orjson.dumps({"timestamp": now, "signals": {"open": 1}}))
    healthy = client.get("/api/health")
    assert healthy.status_code == 200, healthy.content
    assert_matches(response_schema("/api/health", 200), orjson.loads(healthy.content))


def test_unknown_api_path_is_a_json_404(client):
    response = client.get("/api/nothing/here")
    assert response.status_code == 404
    assert "no such endpoint" in orjson.loads(response.content)["error"]


@pytest.mark.parametrize("path", list(SCHEMA["paths"]))
def test_every_endpoint_is_get_only(client, path):
    response = client.post(path, {"limit": "1"})
    assert response.status_code == 405
    assert_matches(response_schema(path, 405), orjson.loads(response.content))
