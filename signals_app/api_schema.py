"""The OpenAPI 3.1 description of the JSON API (`signals_app.api`), served at /api/schema.

A plain dict, kept beside the views it describes; `test_api_schema` checks that it is a
valid OpenAPI document, that every parameter it lists is one the views read, and that
its examples and the views' real answers match the schemas.
"""

from __future__ import annotations

from typing import Any

from signals_app.contracts.signal import CLOSE_REASONS, DEPTH_FIELDS
from signals_app.contracts.signal import FIELDS as SIGNAL_FIELDS

_SIGNAL_EXAMPLE: dict[str, Any] = {
    "type": "ARBITRAGE_OPPORTUNITY",
    "id": "BTC:binance:coinbase:1705670123456",
    "status": "open",
    "action": "BUY_BINANCE_SELL_COINBASE",
    "symbol": "BTC/USDT",
    "asset": "BTC",
    "buy_exchange": "binance",
    "sell_exchange": "coinbase",
    "buy_symbol": "BTC/USDT",
    "sell_symbol": "BTC/USD",
    "buy_price": 45000.0,
    "sell_price": 45300.0,
    "spread_pct": 0.6667,
    "net_spread_pct": 0.4655,
    "size": 0.5,
    "profit_per_unit": 209.7,
    "profit_estimate": 104.85,
    "depth_size": 1.25,
    "depth_buy_vwap": 45001.2,
    "depth_sell_vwap": 45298.9,
    "depth_profit": 262.4,
    "depth_net_spread_pct": 0.4652,
    "depth_levels": [3, 2],
    "net_spread_at_target_pct": 0.4611,
    "fees_pct": {"binance": 0.1, "coinbase": 0.1},
    "opened_at": 1705670123456,
    "duration_ms": 0,
    "peak_net_spread_pct": 0.4655,
    "tick_recv_ns": 1705670123455000000,
    "timestamp": 1705670123456,
}

_TICK_EXAMPLE: dict[str, Any] = {
    "exchange": "binance",
    "symbol": "BTC/USDT",
    "type": "quote",
    "price": 45000.5,
    "volume": 0.0,
    "bid": 45000.0,
    "ask": 45001.0,
    "bid_size": 1.2,
    "ask_size": 0.8,
    "timestamp": 1705670123450,
    "recv_ns": 1705670123455000000,
}

_DEPTH_VIEW_EXAMPLE: dict[str, Any] = {
    "id": "BTC:binance:coinbase:1705670123456",
    "status": "update",
    "timestamp": 1705670124470,
    "buy_exchange": "binance",
    "buy_symbol": "BTC/USDT",
    "sell_exchange": "coinbase",
    "sell_symbol": "BTC/USD",
    "asks": [[45000.0, 0.5], [45001.5, 0.75], [45320.0, 2.0]],
    "bids": [[45300.0, 1.0], [45297.0, 0.5], [44990.0, 3.0]],
    "curve": [
        [0.0, 0.0, 0.0],
        [0.5, 22522.5, 104.85],
        [1.0, 45045.75, 208.95],
        [1.25, 56307.38, 260.25],
        [1.5, 67648.71, 231.85],
        [3.25, 147038.02, -503.7],
    ],
    "depth_size": 1.25,
    "depth_profit": 260.25,
    "threshold_pct": 0.5,
}

_PERCENTILES_EXAMPLE = {"p50_us": 124.0, "p90_us": 301.5, "p99_us": 426.0, "max_us": 980.2}


def _ref(name: str) -> dict[str, str]:
    return {"$ref": f"#/components/schemas/{name}"}


def _json(schema: dict[str, Any], example: Any, description: str) -> dict[str, Any]:
    return {"description": description, "content": {"application/json": {"schema": schema, "example": example}}}


_NULLABLE_NUMBER = {"type": ["number", "null"]}
_NULLABLE_INT = {"type": ["integer", "null"]}
_LEVEL = {"type": "array", "items": {"type": "number"}, "minItems": 2, "maxItems": 2, "description": "[price, size]"}

_SCHEMAS: dict[str, Any] = {
    "Error": {
        "type": "object",
        "required": ["error"],
        "properties": {"error": {"type": "string", "description": "what is wrong, naming the parameter"}},
    },
    "Signal": {
        "type": "object",
        "description": "A signal exactly as the engine published it (DESIGN.md, 'Signal JSON').",
        # Every field; the depth fields only since they exist (history stored before them lacks them).
        "required": [field for field in SIGNAL_FIELDS if field not in DEPTH_FIELDS],
        "properties": {
            "type": {"const": "ARBITRAGE_OPPORTUNITY"},
            "id": {"type": "string", "description": "ASSET:buy:sell:opened_at, the same for open, update and close"},
            "status": {"enum": ["open", "update", "close"]},
            "action": {"type": "string", "examples": ["BUY_BINANCE_SELL_COINBASE"]},
            "symbol": {"type": "string", "description": "the buy market"},
            "asset": {"type": "string"},
            "buy_exchange": {"type": "string"},
            "sell_exchange": {"type": "string"},
            "buy_symbol": {"type": "string"},
            "sell_symbol": {"type": "string"},
            "buy_price": {"type": "number", "description": "the buy market's ask"},
            "sell_price": {"type": "number", "description": "the sell market's bid"},
            "spread_pct": {"type": "number", "description": "gross, 4 dp"},
            "net_spread_pct": {"type": "number", "description": "net of both taker fees, 4 dp"},
            "size": {**_NULLABLE_NUMBER, "description": "min(ask size, bid size); null when unknown"},
            "profit_per_unit": {"type": "number"},
            "profit_estimate": {**_NULLABLE_NUMBER, "description": "profit_per_unit × size; null when size is"},
            "depth_size": {
                **_NULLABLE_NUMBER,
                "description": "base units the depth walk takes above the threshold (DESIGN.md 'Depth'); "
                "every depth field is null when either market has no book",
            },
            "depth_buy_vwap": {**_NULLABLE_NUMBER, "description": "average buy price of the walk, buy market's quote"},
            "depth_sell_vwap": {**_NULLABLE_NUMBER, "description": "average sell price, sell market's quote"},
            "depth_profit": {**_NULLABLE_NUMBER, "description": "money the walk makes after fees, common quote"},
            "depth_net_spread_pct": {**_NULLABLE_NUMBER, "description": "net % of the whole walk, 4 dp"},
            "depth_levels": {
                "type": ["array", "null"],
                "items": {"type": "integer", "minimum": 0},
                "minItems": 2,
                "maxItems": 2,
                "description": "[ask levels of the buy market, bid levels of the sell market] the walk took from",
            },
            "net_spread_at_target_pct": {
                **_NULLABLE_NUMBER,
                "description": "net % of buying TARGET_NOTIONAL up the asks and selling it down the bids, 4 dp; "
                "null when a book is too thin",
            },
            "fees_pct": {"type": "object", "additionalProperties": {"type": "number"}},
            "opened_at": {"type": "integer", "description": "Unix ms"},
            "duration_ms": {"type": "integer"},
            "peak_net_spread_pct": {"type": "number"},
            "tick_recv_ns": {"type": "integer"},
            "timestamp": {"type": "integer", "description": "Unix ms of this message (the engine's clock)"},
            "close_reason": {
                "enum": list(CLOSE_REASONS),
                "description": "why the opportunity closed (DESIGN.md lifecycle rule 8): on a close only; "
                "absent from closes published before the engine gave reasons",
            },
        },
    },
    "DepthView": {
        "type": "object",
        "description": (
            "Both books as the engine walked them for a signal and the walk's profit curve "
            "(signals_app/contracts/depth_view.py), written beside every open and update that carries depth"
        ),
        "required": [
            "id",
            "status",
            "timestamp",
            "buy_exchange",
            "buy_symbol",
            "sell_exchange",
            "sell_symbol",
            "asks",
            "bids",
            "curve",
            "depth_size",
            "depth_profit",
            "threshold_pct",
        ],
        "properties": {
            "id": {"type": "string", "description": "the signal's"},
            "status": {"enum": ["open", "update", "close"], "description": "of the signal it was written with"},
            "timestamp": {"type": "integer", "description": "Unix ms, the signal's"},
            "buy_exchange": {"type": "string"},
            "buy_symbol": {"type": "string"},
            "sell_exchange": {"type": "string"},
            "sell_symbol": {"type": "string"},
            "asks": {
                "type": "array",
                "items": _LEVEL,
                "description": "the buy market's asks, best first, [price, size] in its own quote",
            },
            "bids": {"type": "array", "items": _LEVEL, "description": "the sell market's bids, best first"},
            "curve": {
                "type": "array",
                "items": {"type": "array", "items": {"type": "number"}, "minItems": 3, "maxItems": 3},
                "minItems": 1,
                "description": (
                    "[size, cost, profit] cumulative after each step of the walk without the threshold stop, from "
                    "[0, 0, 0], until either side runs out (at most 200 steps); cost and profit in the common "
                    "quote, fees and rates included: the profit rises, peaks and falls"
                ),
            },
            "depth_size": {
                **_NULLABLE_NUMBER,
                "description": "the signal's: where the walk with the threshold stopped",
            },
            "depth_profit": {**_NULLABLE_NUMBER, "description": "the signal's: the walk's profit there"},
            "threshold_pct": {"type": "number", "description": "the engine's SPREAD_THRESHOLD_PCT"},
        },
    },
    "Tick": {
        "type": "object",
        "description": "A normalized quote tick as the engine cached it (DESIGN.md, 'Normalized tick').",
        "required": [
            "exchange",
            "symbol",
            "type",
            "price",
            "volume",
            "bid",
            "ask",
            "bid_size",
            "ask_size",
            "timestamp",
            "recv_ns",
        ],
        "properties": {
            "exchange": {"type": "string"},
            "symbol": {"type": "string", "description": "canonical BASE/QUOTE"},
            "type": {"enum": ["quote", "trade"]},
            "price": {"type": "number", "description": "mid price for a quote"},
            "volume": {"type": "number"},
            "bid": _NULLABLE_NUMBER,
            "ask": _NULLABLE_NUMBER,
            "bid_size": _NULLABLE_NUMBER,
            "ask_size": _NULLABLE_NUMBER,
            "timestamp": {"type": "integer", "description": "exchange event time, Unix ms"},
            "recv_ns": {"type": "integer", "description": "when the ingestor received the frame, Unix ns"},
        },
    },
    "SignalPage": {
        "type": "object",
        "required": ["results", "next_cursor"],
        "properties": {
            "results": {"type": "array", "items": _ref("Signal")},
            "next_cursor": {
                "type": ["string", "null"],
                "description": "pass as `cursor` for the next (older) page; null on the last page",
            },
        },
    },
    "Markets": {
        "type": "object",
        "required": ["timestamp", "stale_ms", "markets", "exchanges", "assets", "matrix", "engine"],
        "properties": {
            "timestamp": {"type": "integer", "description": "Unix ms when the quote cache was read"},
            "stale_ms": {
                **_NULLABLE_INT,
                "description": "the engine's STALE_MS: a quote received longer ago took no part in the matrix; "
                "null when the engine publishes no matrix",
            },
            "markets": {"type": "array", "items": _ref("Tick"), "description": "sorted by exchange, then symbol"},
            "exchanges": {"type": "array", "items": {"type": "string"}, "description": "of the cached quotes"},
            "assets": {"type": "array", "items": {"type": "string"}, "description": "of the cached quotes"},
            "matrix": {
                "type": "object",
                "description": (
                    "asset → buy exchange → sell exchange → net spread % (4 dp, taker fees included) of buying "
                    "at the buy exchange's best fresh ask and selling at the sell exchange's best fresh bid in a "
                    "common quote group, as the engine computed it (its fees, STALE_MS and rates) at "
                    "engine.timestamp; null when they share no fresh quote group; {} when the engine publishes "
                    "no matrix (engine.ok is false, engine.error says why)"
                ),
                "additionalProperties": {
                    "type": "object",
                    "additionalProperties": {"type": "object", "additionalProperties": _NULLABLE_NUMBER},
                },
            },
        },
    },
    "MarketsEngine": {
        "type": "object",
        "description": "the matrix's source: the engine publishes it every second (Redis engine:markets, EX 5)",
        "required": [
            "ok",
            "error",
            "timestamp",
            "age_ms",
            "threshold_pct",
            "fees_pct",
            "quote_rates",
            "quote_groups",
            "exchanges",
            "assets",
        ],
        "properties": {
            "ok": {"type": "boolean", "description": "a matrix under 5 s old from a running engine"},
            "error": {"type": ["string", "null"], "description": "why there is no current matrix"},
            "timestamp": {**_NULLABLE_INT, "description": "Unix ms, the engine's clock the matrix was computed at"},
            "age_ms": _NULLABLE_INT,
            "threshold_pct": {**_NULLABLE_NUMBER, "description": "the engine's SPREAD_THRESHOLD_PCT"},
            "fees_pct": {
                "type": ["object", "null"],
                "additionalProperties": {"type": "number"},
                "description": "the taker fee (percent) the engine charges each exchange",
            },
            "quote_rates": {"type": ["string", "null"], "enum": ["fixed", "live", None]},
            "quote_groups": {
                "type": ["array", "null"],
                "items": {"type": "array", "items": {"type": "string"}},
            },
            "exchanges": {"type": ["array", "null"], "items": {"type": "string"}, "description": "in the matrix"},
            "assets": {"type": ["array", "null"], "items": {"type": "string"}, "description": "in the matrix"},
        },
    },
    "Check": {
        "type": "object",
        "required": ["ok", "error"],
        "properties": {"ok": {"type": "boolean"}, "error": {"type": ["string", "null"]}},
    },
    "Percentiles": {
        "type": ["object", "null"],
        "description": "microseconds over the engine's last 20,000 events",
        "properties": {
            "p50_us": _NULLABLE_NUMBER,
            "p90_us": _NULLABLE_NUMBER,
            "p99_us": _NULLABLE_NUMBER,
            "max_us": _NULLABLE_NUMBER,
        },
    },
    "EngineCheck": {
        "type": "object",
        "required": [
            "ok",
            "error",
            "heartbeat_age_ms",
            "ticks",
            "messages",
            "bad_messages",
            "signals",
            "open_opportunities",
            "signals_published",
            "signals_pending",
            "signals_dropped",
            "bad_ticks",
            "signals_holding",
            "signals_held",
            "redis_outages",
            "signals_republished",
            "signals_refused",
            "latency_frame_to_decision",
            "latency_frame_to_signal_published",
            "suspect_markets",
        ],
        "properties": {
            "ok": {"type": "boolean", "description": "the engine's heartbeat is under 5 s old"},
            "error": {"type": ["string", "null"]},
            "heartbeat_age_ms": _NULLABLE_INT,
            "ticks": _NULLABLE_INT,
            "messages": _NULLABLE_INT,
            "bad_messages": _NULLABLE_INT,
            "signals": {"type": "object", "additionalProperties": {"type": "integer"}, "description": "by status"},
            "open_opportunities": _NULLABLE_INT,
            "signals_published": _NULLABLE_INT,
            "signals_pending": {**_NULLABLE_INT, "description": "held for Redis"},
            "signals_dropped": {
                **_NULLABLE_INT,
                "description": "lost: held beyond the engine's bound (10,000) while Redis was away",
            },
            "bad_ticks": {
                **_NULLABLE_INT,
                "description": "ticks of well-formed messages that broke a rule, each dropped alone",
            },
            "signals_holding": {**_NULLABLE_INT, "description": "held now while Redis is away or frozen"},
            "signals_held": {**_NULLABLE_INT, "description": "held in total"},
            "redis_outages": {
                **_NULLABLE_INT,
                "description": "times Redis went away (a refused connection, or replies over 1 s late)",
            },
            "signals_republished": {
                **_NULLABLE_INT,
                "description": "writes left unanswered by a lost connection, written again on the next",
            },
            "signals_refused": {**_NULLABLE_INT, "description": "refused by an error reply: counted, not sent again"},
            "latency_frame_to_decision": _ref("Percentiles"),
            "latency_frame_to_signal_published": _ref("Percentiles"),
            "suspect_markets": {
                "type": "array",
                "items": _ref("SuspectMarket"),
                "description": "markets left out in the last 10 s: their mid further than MAX_MARKET_DEVIATION_PCT "
                "from the median mid of the asset's other venues (a ticker collision, a halted market)",
            },
        },
    },
    "SuspectMarket": {
        "type": "object",
        "required": ["exchange", "symbol", "mid", "median_mid", "deviation_pct", "venues_compared", "seen_ms"],
        "properties": {
            "exchange": {"type": "string"},
            "symbol": {"type": "string"},
            "mid": {"type": "number", "description": "in the quote group's common currency"},
            "median_mid": {"type": "number", "description": "of the asset's other venues in that group"},
            "deviation_pct": {"type": "number", "description": "|mid - median| / median, percent, 4 dp"},
            "venues_compared": {"type": "integer"},
            "seen_ms": {"type": "integer", "description": "engine clock when last found suspect, Unix ms"},
        },
    },
    "FeedCheck": {
        "type": "object",
        "required": ["ok", "state", "last_message_age_s", "message_rate"],
        "properties": {
            "ok": {"type": "boolean", "description": "live, and its last frame younger than FEED_SILENCE_TIMEOUT_S"},
            "state": {
                "type": ["string", "null"],
                "description": "starting, connecting, live, reconnecting or stopped; null when the ingestor is away",
            },
            "last_message_age_s": _NULLABLE_NUMBER,
            "message_rate": {**_NULLABLE_NUMBER, "description": "frames per second"},
        },
    },
    "PersistenceCheck": {
        "type": "object",
        "required": ["ok", "error", "lag_s", "oldest_unpersisted_id", "pending", "limit_s"],
        "properties": {
            "ok": {"type": "boolean", "description": "the oldest signal not yet in the database waits under limit_s"},
            "error": {"type": ["string", "null"]},
            "lag_s": {
                **_NULLABLE_NUMBER,
                "description": "age of the oldest signals:stream entry the db-writer group has not acknowledged "
                "(never delivered or delivered and pending); 0 when none waits, null when unreadable",
            },
            "oldest_unpersisted_id": {"type": ["string", "null"], "description": "that entry's stream id"},
            "pending": {**_NULLABLE_INT, "description": "entries delivered to the writer, not yet acknowledged"},
            "limit_s": {"type": "number", "description": "PERSIST_LAG_LIMIT_S"},
        },
    },
    "Health": {
        "type": "object",
        "required": [
            "status",
            "failing",
            "timestamp",
            "redis",
            "database",
            "engine",
            "ingestor",
            "feeds",
            "persistence",
        ],
        "properties": {
            "status": {"enum": ["ok", "degraded"]},
            "failing": {
                "type": "array",
                "items": {"type": "string"},
                "description": "redis, database, engine, ingestor, persistence and feed:<exchange> for each part "
                "that is not fine",
            },
            "timestamp": {"type": "integer"},
            "redis": _ref("Check"),
            "database": _ref("Check"),
            "engine": _ref("EngineCheck"),
            "ingestor": {**_ref("Check"), "description": "the ingestor's /health answered"},
            "feeds": {"type": "object", "additionalProperties": _ref("FeedCheck")},
            "persistence": _ref("PersistenceCheck"),
            "relay": {
                "type": ["object", "null"],
                "description": (
                    "this web process's live-feed relay (null until its first WebSocket): signals relayed, "
                    "caught up from history, dropped as not signals; browsers, signals queued for them "
                    "(queue_max each), and missed: signals dropped from full browser queues (overflows times), "
                    "each browser told so by a MISSED message"
                ),
                "additionalProperties": {"type": ["integer", "boolean"]},
            },
        },
    },
}

_ENGINE_EXAMPLE = {
    "ok": True,
    "error": None,
    "heartbeat_age_ms": 412,
    "ticks": 1204233,
    "messages": 1204240,
    "bad_messages": 0,
    "signals": {"open": 31, "update": 204, "close": 30},
    "open_opportunities": 1,
    "signals_published": 265,
    "signals_pending": 0,
    "signals_dropped": 0,
    "bad_ticks": 0,
    "signals_holding": 0,
    "signals_held": 0,
    "redis_outages": 0,
    "signals_republished": 0,
    "signals_refused": 0,
    "latency_frame_to_decision": _PERCENTILES_EXAMPLE,
    "latency_frame_to_signal_published": {"p50_us": 622.0, "p90_us": 701.3, "p99_us": 786.0, "max_us": 1320.9},
    "suspect_markets": [
        {
            "exchange": "gemini",
            "symbol": "LUNA/USD",
            "mid": 1.02,
            "median_mid": 0.000112,
            "deviation_pct": 910614.2857,
            "venues_compared": 3,
            "seen_ms": 1705670123001,
        }
    ],
}
_HEALTH_OK_EXAMPLE = {
    "status": "ok",
    "failing": [],
    "timestamp": 1705670123456,
    "redis": {"ok": True, "error": None},
    "database": {"ok": True, "error": None},
    "engine": _ENGINE_EXAMPLE,
    "ingestor": {"ok": True, "error": None},
    "feeds": {
        "binance": {"ok": True, "state": "live", "last_message_age_s": 0.01, "message_rate": 512.3},
        "coinbase": {"ok": True, "state": "live", "last_message_age_s": 0.2, "message_rate": 48.0},
    },
    "persistence": {
        "ok": True,
        "error": None,
        "lag_s": 0.42,
        "oldest_unpersisted_id": "1705670123034-0",
        "pending": 0,
        "limit_s": 10.0,
    },
}
_HEALTH_DOWN_EXAMPLE = {
    **_HEALTH_OK_EXAMPLE,
    "status": "degraded",
    "failing": ["redis", "engine", "persistence", "feed:coinbase"],
    "redis": {"ok": False, "error": "ConnectionError: Error 111 connecting to 127.0.0.1:6379. Connection refused."},
    "engine": {
        **{name: None for name in _ENGINE_EXAMPLE},
        "ok": False,
        "error": "heartbeat unreadable: redis unavailable",
        "signals": {},
        "suspect_markets": [],
    },
    "feeds": {
        "binance": {"ok": True, "state": "live", "last_message_age_s": 0.01, "message_rate": 512.3},
        "coinbase": {"ok": False, "state": "reconnecting", "last_message_age_s": 12.5, "message_rate": 0.0},
    },
    "persistence": {
        "ok": False,
        "error": "lag unreadable: redis unavailable",
        "lag_s": None,
        "oldest_unpersisted_id": None,
        "pending": None,
        "limit_s": 10.0,
    },
}


def _bad_request(example: str) -> dict[str, Any]:
    return _json(_ref("Error"), {"error": example}, "a bad parameter; the message names it")


_REDIS_DOWN = _json(_ref("Error"), {"error": "redis unavailable: Connection refused."}, "Redis does not answer")
_DATABASE_DOWN = _json(_ref("Error"), {"error": "database unavailable: ..."}, "the database does not answer")
_NOT_GET = _json(_ref("Error"), {"error": "method POST not allowed: this endpoint answers GET only"}, "not GET")


def _int_param(name: str, description: str, minimum: int, maximum: int, default: int | None, example: int) -> Any:
    schema: dict[str, Any] = {"type": "integer", "minimum": minimum, "maximum": maximum}
    if default is not None:
        schema["default"] = default
    return {
        "name": name,
        "in": "query",
        "required": False,
        "description": description,
        "schema": schema,
        "example": example,
    }


def _str_param(name: str, description: str, example: str, schema: dict[str, Any] | None = None) -> Any:
    return {
        "name": name,
        "in": "query",
        "required": False,
        "description": description,
        "schema": schema or {"type": "string"},
        "example": example,
    }


SCHEMA: dict[str, Any] = {
    "openapi": "3.1.0",
    "info": {
        "title": "Arbitrage Sniper API",
        "version": "1.0.0",
        "description": (
            "Cross-exchange crypto arbitrage signals: recent signals from Redis, long-term history from the SQL "
            "database, the quote cache with a fee-aware spread matrix, and the health of the pipeline. Every "
            "endpoint answers GET only (405 otherwise); a bad parameter is a 400 with an `error` naming it. "
            "Empty parameters count as absent; unknown parameters are ignored."
        ),
    },
    "servers": [{"url": "/"}],
    "paths": {
        "/api/signals/history": {
            "get": {
                "operationId": "signalsHistory",
                "summary": "The newest signals the engine published (Redis signals:history)",
                "description": "The newest `limit` entries, oldest first, each byte for byte the published JSON.",
                "parameters": [_int_param("limit", "how many of the newest signals", 1, 1000, 50, 50)],
                "responses": {
                    "200": _json({"type": "array", "items": _ref("Signal")}, [_SIGNAL_EXAMPLE], "oldest first"),
                    "400": _bad_request("limit: 0 is out of range: use 1 to 1000"),
                    "405": _NOT_GET,
                    "503": _REDIS_DOWN,
                },
            }
        },
        "/api/signals": {
            "get": {
                "operationId": "signals",
                "summary": "Long-term signal history from the SQL database, filtered and cursor-paginated",
                "description": (
                    "Newest first, ordered by (timestamp, row). Follow `next_cursor` for older pages: keyset "
                    "pagination, so rows written meanwhile never shift a page. Each result is the published JSON."
                ),
                "parameters": [
                    _str_param("asset", "base asset, exact (case-insensitive)", "BTC"),
                    _str_param("exchange", "an exchange on either side (buy or sell)", "binance"),
                    _str_param("status", "open, update or close", "close", {"enum": ["open", "update", "close"]}),
                    _str_param(
                        "close_reason",
                        "why a close closed (closes only): " + ", ".join(CLOSE_REASONS),
                        "stale",
                        {"enum": list(CLOSE_REASONS)},
                    ),
                    _int_param(
                        "since", "Unix ms, inclusive, on the signal's timestamp", 0, 2**63 - 1, None, 1705670000000
                    ),
                    _int_param(
                        "until", "Unix ms, exclusive; since must be <= until", 0, 2**63 - 1, None, 1705680000000
                    ),
                    _str_param("cursor", "next_cursor of the previous page (opaque)", "MTcwNTY3MDEyMzQ1Njo0Mg"),
                    _int_param("limit", "page size", 1, 500, 100, 100),
                ],
                "responses": {
                    "200": _json(
                        _ref("SignalPage"),
                        {"results": [_SIGNAL_EXAMPLE], "next_cursor": "MTcwNTY3MDEyMzQ1Njo0Mg"},
                        "a page, newest first",
                    ),
                    "400": _bad_request("status: 'opened' is not one of open, update, close"),
                    "405": _NOT_GET,
                    "503": _DATABASE_DOWN,
                },
            }
        },
        "/api/signals/{id}/depth": {
            "get": {
                "operationId": "signalDepth",
                "summary": "A signal's two books and the profit curve of its depth walk (Redis signal:depth:{id})",
                "description": (
                    "The engine writes it beside every open and update whose depth figures are not null and keeps it "
                    "an hour (EX 3600); a close leaves the last one. Passed through as the engine wrote it."
                ),
                "parameters": [
                    {
                        "name": "id",
                        "in": "path",
                        "required": True,
                        "description": "the signal's id, URL-encoded",
                        "schema": {"type": "string", "maxLength": 256},
                        "example": "BTC:binance:coinbase:1705670123456",
                    }
                ],
                "responses": {
                    "200": _json(_ref("DepthView"), _DEPTH_VIEW_EXAMPLE, "the books and the curve"),
                    "400": _bad_request("id: 'BTC:...' is not a signal id (at most 256 characters)"),
                    "404": _json(
                        _ref("Error"),
                        {
                            "error": "no books held for signal 'BTC:binance:coinbase:1705670123456': expired, or it "
                            "carried no depth"
                        },
                        "no depth view: it expired, or the signal carried no depth (no book on both markets)",
                    ),
                    "405": _NOT_GET,
                    "502": _json(
                        _ref("Error"),
                        {"error": "malformed depth view for signal 'BTC:binance:coinbase:1705670123456': no curve"},
                        "the key holds something that is not a depth view",
                    ),
                    "503": _REDIS_DOWN,
                },
            }
        },
        "/api/markets": {
            "get": {
                "operationId": "markets",
                "summary": "The latest quote of every market (Redis price:* cache) and the engine's spread matrix",
                "description": (
                    "The matrix is the engine's own (Redis engine:markets), computed with the engine's settings; "
                    "while no engine publishes one, `matrix` is {} and `engine.error` says so (still a 200: the "
                    "quotes are there)."
                ),
                "responses": {
                    "200": _json(
                        _ref("Markets"),
                        {
                            "timestamp": 1705670123500,
                            "stale_ms": 2000,
                            "markets": [
                                _TICK_EXAMPLE,
                                {
                                    **_TICK_EXAMPLE,
                                    "exchange": "coinbase",
                                    "symbol": "BTC/USD",
                                    "bid": 45300.0,
                                    "ask": 45301.0,
                                    "price": 45300.5,
                                },
                            ],
                            "exchanges": ["binance", "coinbase"],
                            "assets": ["BTC"],
                            "matrix": {"BTC": {"binance": {"coinbase": -0.0395}, "coinbase": {"binance": -1.3556}}},
                            "engine": {
                                "ok": True,
                                "error": None,
                                "timestamp": 1705670123101,
                                "age_ms": 399,
                                "threshold_pct": 0.5,
                                "fees_pct": {"binance": 0.1, "coinbase": 0.6},
                                "quote_rates": "fixed",
                                "quote_groups": [["USD", "USDT", "USDC"], ["EUR", "EURC"]],
                                "exchanges": ["binance", "coinbase"],
                                "assets": ["BTC"],
                            },
                        },
                        "markets sorted by exchange and symbol",
                    ),
                    "405": _NOT_GET,
                    "503": _REDIS_DOWN,
                },
            }
        },
        "/api/health": {
            "get": {
                "operationId": "health",
                "summary": "Redis, database, engine heartbeat, each exchange feed and the persistence lag",
                "description": "200 only when every part is fine; otherwise 503 with `failing` naming each part.",
                "responses": {
                    "200": _json(_ref("Health"), _HEALTH_OK_EXAMPLE, "everything is fine"),
                    "405": _NOT_GET,
                    "503": _json(_ref("Health"), _HEALTH_DOWN_EXAMPLE, "some part is not fine: see `failing`"),
                },
            }
        },
        "/api/schema": {
            "get": {
                "operationId": "schema",
                "summary": "This OpenAPI description",
                "responses": {
                    "200": {
                        "description": "OpenAPI 3.1",
                        "content": {"application/json": {"schema": {"type": "object"}}},
                    },
                    "405": _NOT_GET,
                },
            }
        },
    },
    "components": {"schemas": _SCHEMAS},
}
