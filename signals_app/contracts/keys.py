"""Redis key and channel names (DESIGN.md "Redis keys"); everyone imports them from here."""

SIGNALS_CHANNEL = "arbitrage:signals"  # pub/sub: every open/update/close
SIGNALS_HISTORY = "signals:history"  # sorted set scored by timestamp, newest 1000 kept
SIGNALS_HISTORY_KEEP = 1000
SIGNALS_STREAM = "signals:stream"  # stream, MAXLEN ~ 100000: the hand-off to the database writer
SIGNALS_STREAM_MAXLEN = 100_000
SIGNALS_STREAM_FIELD = "signal"  # each stream entry is {SIGNALS_STREAM_FIELD: <the signal JSON bytes>}
SIGNALS_STREAM_GROUP = "db-writer"  # the consumer group that writes the stream to the SQL database
PERSIST_LOCK = "signals:persist:lock"  # held by the one worker draining the stream at a time
PRICE_KEY_TTL_S = 10
ENGINE_HEARTBEAT = "engine:heartbeat"  # string, EX 5: the engine's counters, refreshed every second
ENGINE_HEARTBEAT_TTL_S = 5
# string, EX 5, refreshed with the heartbeat: the engine's spread matrix and the settings it was
# computed with (signals_app.contracts.markets), what /api/markets serves
ENGINE_MARKETS = "engine:markets"
ENGINE_MARKETS_TTL_S = 5
# hash: field = signal id, value = the JSON of the last open/update signal published for it,
# written in the same write as that signal and deleted with its close (engine_worker.publish):
# the engine's open opportunities, where a restarted engine finds them (DESIGN.md lifecycle rule 8)
ENGINE_OPEN = "engine:open"


def price_key(exchange: str, symbol: str) -> str:
    """Latest normalized quote of one market: `price:{exchange}:{symbol}`, EX 10."""
    return f"price:{exchange}:{symbol}"
