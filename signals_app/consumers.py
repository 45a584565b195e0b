"""The browsers' live feed: `/ws/signals/` sends every signal as one text frame, exactly as published.

Channels style: the consumer joins its process's group (`PROCESS_SIGNALS_GROUP`,
`signals.<pid>-<random>`, see `signals_app.contracts.groups`) and forwards its events;
the relay (one per process, `signals_app.relay`) feeds that group from Redis.
Browsers send nothing; whatever they send is ignored.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from typing import Any

from channels.generic.websocket import AsyncWebsocketConsumer
from redis.exceptions import RedisError

from signals_app.contracts.groups import PROCESS_SIGNALS_GROUP
from signals_app.relay import SignalRelay, ensure_relay

log = logging.getLogger("signals_app.consumers")

# WebSocket close code 1013 "Try Again Later": the browser reconnects with backoff and refills
# what it missed from the history API.
TRY_AGAIN_LATER = 1013
# The first browser of a fresh process waits (at most this long) for the relay's subscription,
# so that it cannot miss the signals published between its connection and the subscription.
FIRST_SUBSCRIPTION_WAIT_S = 1.0


class SignalsConsumer(AsyncWebsocketConsumer):
    """One browser: a member of PROCESS_SIGNALS_GROUP; each `signal.message` event's data goes out as a text frame."""

    relay: SignalRelay | None = None

    async def __call__(self, scope: Any, receive: Any, send: Any) -> None:
        try:
            await super().__call__(scope, receive, send)
        except (RedisError, OSError) as exc:
            # The channel layer's Redis went away under this connection: close it rather than
            # leave a socket that silently gets nothing; the browser reconnects when Redis is back.
            log.warning("closing a live-feed WebSocket: the channel layer failed (%s: %s)", type(exc).__name__, exc)
            with contextlib.suppress(Exception):
                await send({"type": "websocket.close", "code": TRY_AGAIN_LATER})
        finally:
            if self.relay is not None:
                self.relay.discard_member(self.channel_name)

    async def connect(self) -> None:
        relay = self.relay = ensure_relay()
        try:
            await self.channel_layer.group_add(PROCESS_SIGNALS_GROUP, self.channel_name)
        except (RedisError, OSError) as exc:
            log.warning("refusing a live-feed WebSocket: the channel layer failed (%s: %s)", type(exc).__name__, exc)
            await self.close(code=TRY_AGAIN_LATER)
            return
        relay.add_member(self.channel_name)
        if relay.subscriptions == 0:
            with contextlib.suppress(TimeoutError):
                async with asyncio.timeout(FIRST_SUBSCRIPTION_WAIT_S):
                    await relay.subscribed.wait()
        await self.accept()

    async def disconnect(self, code: int) -> None:
        if self.relay is not None:
            self.relay.discard_member(self.channel_name)
        with contextlib.suppress(RedisError, OSError):
            await self.channel_layer.group_discard(PROCESS_SIGNALS_GROUP, self.channel_name)

    async def signal_message(self, event: dict[str, Any]) -> None:
        """SIGNAL_EVENT: `data` is the published signal JSON, sent on unchanged."""
        await self.send(text_data=event["data"])
