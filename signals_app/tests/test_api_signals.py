"""GET /api/signals: long-term history from the SQL database, filtered, newest first, keyset-paginated."""

from __future__ import annotations

import base64
from typing import Any

import orjson
import pytest
from django.db import OperationalError, connection

from signals_app.api import SignalFilters, encode_cursor, signal_querysets
from signals_app.models import Signal
from signals_app.tests.api_fixtures import make_signal, store_signal

pytestmark = pytest.mark.django_db

URL = "/api/signals"
T0 = 1_705_670_000_000


def get(client, **params):
    response = client.get(URL, {key: str(value) for key, value in params.items()})
    return response, orjson.loads(response.content)


@pytest.fixture
def mixed():
    """A small history across assets, exchange pairs and statuses; rows newest first."""
    rows = []
    spec = [
        ("BTC", "binance", "coinbase", "open"),
        ("ETH", "coinbase", "binance", "open"),
        ("BTC", "binance", "coinbase", "update"),
        ("SOL", "kraken", "coinbase", "open"),
        ("BTC", "binance", "coinbase", "close"),
        ("ETH", "coinbase", "binance", "close"),
        ("SOL", "kraken", "okx", "update"),
        ("XRP", "okx", "kraken", "open"),
    ]
    for i, (asset, buy, sell, status) in enumerate(spec):
        rows.append(store_signal(make_signal(T0 + i * 1000, asset, buy, sell, status, opened_at=T0)))
    return rows[::-1]


def test_newest_first_and_each_result_is_the_stored_payload(client, mixed):
    response, body = get(client)
    assert response.status_code == 200
    assert body["next_cursor"] is None
    assert [s["timestamp"] for s in body["results"]] == [row.timestamp_ms for row in mixed]
    # The payloads are spliced in untouched, byte for byte.
    expected = b'{"results":[' + b",".join(row.payload.encode() for row in mixed) + b'],"next_cursor":null}'
    assert response.content == expected


def test_payload_bytes_pass_through_untouched(client):
    signal = make_signal(T0)
    odd = orjson.dumps(signal).replace(b'"asset":"BTC"', b'"asset":  "BTC"')  # spacing no encoder of ours makes
    store_signal(signal, payload=odd)
    response, _ = get(client)
    assert response.content == b'{"results":[' + odd + b'],"next_cursor":null}'


@pytest.mark.parametrize("asset", ["BTC", "btc", "Btc", " btc "])
def test_asset_filter_is_exact_and_case_insensitive(client, mixed, asset):
    _, body = get(client, asset=asset)
    assert [s["timestamp"] for s in body["results"]] == [r.timestamp_ms for r in mixed if r.asset == "BTC"]


def test_asset_filter_is_exact_not_a_prefix(client, mixed):
    store_signal(make_signal(T0 + 99_000, asset="BTCDOWN"))
    _, body = get(client, asset="BTC")
    assert {s["asset"] for s in body["results"]} == {"BTC"}


@pytest.mark.parametrize("exchange", ["kraken", "KRAKEN"])
def test_exchange_filter_matches_either_side(client, mixed, exchange):
    _, body = get(client, exchange=exchange)
    expected = [r.timestamp_ms for r in mixed if "kraken" in (r.buy_exchange, r.sell_exchange)]
    assert [s["timestamp"] for s in body["results"]] == expected
    assert {s["buy_exchange"] for s in body["results"]} == {"kraken", "okx"}  # kraken bought and sold


@pytest.mark.parametrize("status", ["open", "update", "close", "CLOSE"])
def test_status_filter(client, mixed, status):
    _, body = get(client, status=status)
    expected = [r.timestamp_ms for r in mixed if r.status == status.lower()]
    assert expected
    assert [s["timestamp"] for s in body["results"]] == expected


def test_since_is_inclusive_and_until_exclusive(client, mixed):
    _, body = get(client, since=T0 + 2000, until=T0 + 5000)
    assert [s["timestamp"] for s in body["results"]] == [T0 + 4000, T0 + 3000, T0 + 2000]
    _, body = get(client, since=T0 + 7000)
    assert [s["timestamp"] for s in body["results"]] == [T0 + 7000]
    _, body = get(client, until=T0 + 1000)
    assert [s["timestamp"] for s in body["results"]] == [T0]
    _, body = get(client, since=T0 + 3000, until=T0 + 3000)  # an empty window is allowed
    assert body == {"results": [], "next_cursor": None}


def test_filters_combine(client, mixed):
    _, body = get(client, asset="btc", exchange="binance", status="close", since=T0, until=T0 + 60_000)
    assert [(s["asset"], s["status"], s["timestamp"]) for s in body["results"]] == [("BTC", "close", T0 + 4000)]
    _, body = get(client, asset="eth", exchange="kraken")
    assert body == {"results": [], "next_cursor": None}


def test_empty_parameters_count_as_absent(client, mixed):
    _, body = get(client, asset="", exchange="", status="", since="", until="", cursor="", limit="")
    assert len(body["results"]) == len(mixed)


def test_default_limit_is_100(client):
    for i in range(101):
        store_signal(make_signal(T0 + i))
    _, body = get(client)
    assert len(body["results"]) == 100
    assert body["next_cursor"] is not None


@pytest.mark.parametrize("limit", [1, 3, 500])
def test_limit_bounds_accepted(client, mixed, limit):
    response, body = get(client, limit=limit)
    assert response.status_code == 200
    assert len(body["results"]) == min(limit, len(mixed))
    assert (body["next_cursor"] is None) == (limit >= len(mixed))


def row_key(signal: dict[str, Any]) -> int:
    """Names a row of `many` from its published JSON: each has its own duration_ms."""
    return int(signal["timestamp"]) * 1000 + int(signal["duration_ms"])


def walk(client, **params) -> tuple[list[int], int]:
    """Follow next_cursor to the end: each row seen, as its `row_key`, and the number of pages."""
    seen: list[int] = []
    pages, cursor = 0, ""
    while True:
        response, body = get(client, cursor=cursor, **params)
        assert response.status_code == 200, body
        pages += 1
        seen.extend(row_key(s) for s in body["results"])
        cursor = body["next_cursor"]
        if cursor is None:
            return seen, pages
        assert len(body["results"]) == params["limit"]
        assert pages < 1000


@pytest.fixture
def many():
    """237 rows, many sharing a timestamp (the id breaks ties), across two exchange pairs."""
    rows = []
    for i in range(237):
        timestamp = T0 + (i // 4) * 10  # four rows per timestamp
        buy, sell = ("binance", "coinbase") if i % 3 else ("kraken", "binance")
        signal = make_signal(timestamp, asset="BTC" if i % 2 else "ETH", buy=buy, sell=sell, opened_at=timestamp - i)
        rows.append(store_signal(signal))
    return rows


def expected_order(rows, keep=lambda row: True) -> list[int]:
    ordered = sorted((row for row in rows if keep(row)), key=lambda row: (row.timestamp_ms, row.id), reverse=True)
    return [row.timestamp_ms * 1000 + row.duration_ms for row in ordered]


@pytest.mark.parametrize("limit", [1, 10, 50, 236, 237, 500])
def test_cursor_walks_every_row_once_in_order(client, many, limit):
    seen, pages = walk(client, limit=limit)
    assert seen == expected_order(many)
    assert len(set(seen)) == 237
    assert pages == -(-237 // limit)  # a full last page says so: no empty page after it


@pytest.mark.parametrize(
    ("params", "keep"),
    [
        ({"exchange": "binance"}, lambda r: "binance" in (r.buy_exchange, r.sell_exchange)),
        ({"exchange": "kraken"}, lambda r: r.buy_exchange == "kraken"),
        ({"asset": "btc"}, lambda r: r.asset == "BTC"),
        ({"asset": "eth", "exchange": "kraken"}, lambda r: r.asset == "ETH" and r.buy_exchange == "kraken"),
        ({"since": T0 + 100, "until": T0 + 400}, lambda r: T0 + 100 <= r.timestamp_ms < T0 + 400),
    ],
)
def test_cursor_walk_with_filters(client, many, params, keep):
    seen, _ = walk(client, limit=7, **params)
    assert seen == expected_order(many, keep)


def test_rows_added_during_a_walk_do_not_shift_pages(client, many):
    _, first = get(client, limit=20)
    for i in range(5):  # newer rows arrive while the client reads page one
        store_signal(make_signal(T0 + 10_000_000 + i))
    seen = [row_key(s) for s in first["results"]]
    cursor = first["next_cursor"]
    while cursor:
        _, body = get(client, limit=20, cursor=cursor)
        seen.extend(row_key(s) for s in body["results"])
        cursor = body["next_cursor"]
    assert seen == expected_order(many)


def test_cursor_is_opaque_url_safe_text(client, many):
    _, body = get(client, limit=3)
    cursor = body["next_cursor"]
    assert cursor.isascii()
    assert "=" not in cursor
    assert "/" not in cursor
    assert "+" not in cursor


@pytest.mark.parametrize(
    ("params", "named"),
    [
        ({"limit": "0"}, "limit"),
        ({"limit": "501"}, "limit"),
        ({"limit": "ten"}, "limit"),
        ({"limit": "-5"}, "limit"),
        ({"status": "opened"}, "status"),
        ({"since": "yesterday"}, "since"),
        ({"since": "1.5"}, "since"),
        ({"until": "-1"}, "until"),
        ({"since": str(2**63)}, "since"),
        ({"since": "2000", "until": "1000"}, "since"),
        ({"cursor": "not a cursor"}, "cursor"),
        ({"cursor": "%%%"}, "cursor"),
        ({"cursor": base64.urlsafe_b64encode(b"abc:def").decode()}, "cursor"),
        ({"cursor": base64.urlsafe_b64encode(b"12:-3").decode()}, "cursor"),
        ({"cursor": base64.urlsafe_b64encode(b"\xff\xfe").decode()}, "cursor"),
        ({"cursor": encode_cursor(2**63, 1)}, "cursor"),
        ({"cursor": "A" * 100}, "cursor"),
        ({"asset": "BTC/USDT"}, "asset"),
        ({"asset": "<script>"}, "asset"),
        ({"asset": "X" * 33}, "asset"),
        ({"exchange": "bin ance"}, "exchange"),
    ],
)
def test_bad_parameters_are_a_400_naming_the_parameter(client, params, named):
    response = client.get(URL, params)
    assert response.status_code == 400
    assert orjson.loads(response.content)["error"].startswith(f"{named}")


def test_a_cursor_round_trips(client, many):
    _, body = get(client, limit=5)
    cursor = body["next_cursor"]
    last = Signal.objects.order_by("-timestamp_ms", "-id")[4]
    assert cursor == encode_cursor(last.timestamp_ms, last.id)


QUERY_SHAPES = [
    {},
    {"asset": "BTC"},
    {"exchange": "binance"},
    {"status": "open"},
    {"since": T0, "until": T0 + 1000},
    {"cursor": (T0, 42)},
    {"asset": "BTC", "status": "close", "cursor": (T0, 42)},
    {"exchange": "binance", "asset": "BTC", "since": T0},
    {"close_reason": "stale"},
    {"close_reason": "feed_down", "since": T0, "cursor": (T0, 42)},
]


@pytest.mark.skipif(connection.vendor != "sqlite", reason="EXPLAIN QUERY PLAN is SQLite's")
@pytest.mark.parametrize("shape", QUERY_SHAPES)
def test_every_query_walks_an_index_in_order(shape):
    filters: SignalFilters = {
        "asset": None,
        "exchange": None,
        "status": None,
        "close_reason": None,
        "since": None,
        "until": None,
        "cursor": None,
        "limit": 100,
        **shape,  # type: ignore[typeddict-item]
    }
    for query in signal_querysets(filters):
        sql, params = query.values_list("timestamp_ms", "id", "payload")[:101].query.sql_with_params()
        with connection.cursor() as cursor:
            cursor.execute("EXPLAIN QUERY PLAN " + sql, params)
            plan = " | ".join(str(row[-1]) for row in cursor.fetchall())
        assert "USING INDEX signal_" in plan, plan
        assert "TEMP B-TREE" not in plan, plan  # the index order is the answer's order: no sort


def test_database_away_is_a_503_not_a_500(client, monkeypatch):
    def broken_cursor(*args, **kwargs):
        raise OperationalError("could not connect to server")

    monkeypatch.setattr(connection, "cursor", broken_cursor)
    response = client.get(URL)
    assert response.status_code == 503
    assert orjson.loads(response.content)["error"].startswith("database unavailable")
