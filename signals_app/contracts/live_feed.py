"""The live feed's control message: what `/ws/signals/` sends a browser besides signals.

Every text frame of `/ws/signals/` is either a signal, byte for byte as the engine published it
(`"type": "ARBITRAGE_OPPORTUNITY"`), or this one control message, told apart by its `type`:

    {"type": "MISSED", "missed": 37, "since": 1705670123456}

A browser that fell behind (its queue in the web process held BROWSER_QUEUE_MAX signals not yet
written to its WebSocket) is sent it in place of the `missed` signals that were dropped from its
queue; its queue restarts from the newest signal, which follows. `since` is the `timestamp` (Unix
ms, the engine clock) of the last signal that browser was sent before the gap, null when it had
been sent none. The dropped signals are in `signals:history`: the dashboard refills from
`GET /api/signals/history` on this message as it does after a reconnection, and shows it.
"""

from __future__ import annotations

from typing import Final, TypedDict

import orjson

MISSED_TYPE: Final = "MISSED"
# Signals a browser's queue holds before it overflows: a burst of a few thousand signals (the
# engine publishes one batch per loop turn) passes whole; a browser further behind than that is
# told so rather than fed an ever older backlog.
BROWSER_QUEUE_MAX: Final = 4096


class Missed(TypedDict):
    type: str  # MISSED_TYPE
    missed: int  # signals dropped from this browser's queue, at least 1
    since: int | None  # timestamp of the last signal sent to it before them; None: none sent yet


def missed_message(missed: int, since: int | None) -> str:
    """The MISSED control frame's text."""
    message: Missed = {"type": MISSED_TYPE, "missed": missed, "since": since}
    return orjson.dumps(message).decode()


def decode_missed(text: str | bytes) -> Missed | None:
    """The control message in a frame, or None when the frame is not one (a signal)."""
    try:
        message = orjson.loads(text)
    except orjson.JSONDecodeError:
        return None
    if not isinstance(message, dict) or message.get("type") != MISSED_TYPE:
        return None
    missed, since = message.get("missed"), message.get("since")
    if isinstance(missed, bool) or not isinstance(missed, int) or missed < 1:
        return None
    if since is not None and (isinstance(since, bool) or not isinstance(since, int)):
        return None
    return {"type": MISSED_TYPE, "missed": missed, "since": since}
