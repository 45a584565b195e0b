"""The browsers' live feed: `/ws/signals/` sends every signal as one text frame, exactly as published.

The relay (one per process, `signals_app.relay`) puts each signal in this consumer's queue (a
`BrowserFeed`); the consumer's drain task writes the queue into the WebSocket, oldest first. A
browser that falls BROWSER_QUEUE_MAX signals behind gets one MISSED control message instead of
its backlog (`signals_app.contracts.live_feed`) and then the newer signals.

The consumer also joins its process's Channels group (`PROCESS_SIGNALS_GROUP`,
`signals.<pid>-<random>`, see `signals_app.contracts.groups`): a `signal.message` event sent to
that group goes into the same queue, so the group stays the way in for a sender in another
process. Browsers send nothing; whatever they send is ignored.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from typing import Any

from channels.generic.websocket import AsyncWebsocketConsumer
from redis.exceptions import RedisError

from signals_app.contracts.groups import PROCESS_SIGNALS_GROUP
from signals_app.relay import BrowserFeed, SignalRelay, ensure_relay, event_timestamp

log = logging.getLogger("signals_app.consumers")

# WebSocket close code 1013 "Try Again Later": the browser reconnects with backoff and refills
# what it missed from the history API.
TRY_AGAIN_LATER = 1013
# The first browser of a fresh process waits (at most this long) for the relay's subscription,
# so that it cannot miss the signals published between its connection and the subscription.
FIRST_SUBSCRIPTION_WAIT_S = 1.0


class SignalsConsumer(AsyncWebsocketConsumer):
    """One browser: its relay queue drained into its WebSocket; a member of PROCESS_SIGNALS_GROUP."""

    relay: SignalRelay | None = None
    feed: BrowserFeed | None = None
    _drain_task: asyncio.Task[None] | None = None

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
            await self._leave()

    async def connect(self) -> None:
        relay = self.relay = ensure_relay()
        try:
            await self.channel_layer.group_add(PROCESS_SIGNALS_GROUP, self.channel_name)
        except (RedisError, OSError) as exc:
            log.warning("refusing a live-feed WebSocket: the channel layer failed (%s: %s)", type(exc).__name__, exc)
            await self.close(code=TRY_AGAIN_LATER)
            return
        # Queued from now on; written once the socket is accepted.
        feed = self.feed = relay.attach(self.channel_name)
        if relay.subscriptions == 0:
            with contextlib.suppress(TimeoutError):
                async with asyncio.timeout(FIRST_SUBSCRIPTION_WAIT_S):
                    await relay.subscribed.wait()
        await self.accept()
        self._drain_task = asyncio.get_running_loop().create_task(self._drain(feed), name="signals-browser")

    async def disconnect(self, code: int) -> None:
        await self._leave()
        with contextlib.suppress(RedisError, OSError):
            await self.channel_layer.group_discard(PROCESS_SIGNALS_GROUP, self.channel_name)

    async def _drain(self, feed: BrowserFeed) -> None:
        """Write the queue into the WebSocket, oldest first, until the connection ends."""
        try:
            while True:
                await self.send(text_data=await feed.next_frame())
        except asyncio.CancelledError:
            raise
        except Exception:  # a failed write: this browser gets nothing more, so close it (it reconnects)
            log.exception("live-feed WebSocket write failed; closing it")
            with contextlib.suppress(Exception):
                await self.close(code=TRY_AGAIN_LATER)

    async def _leave(self) -> None:
        """Stop queueing for this browser and stop its drain task (idempotent)."""
        if self.relay is not None and getattr(self, "channel_name", None):
            self.relay.detach(self.channel_name)
        task, self._drain_task = self._drain_task, None
        if task is not None and not task.done():
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task

    async def signal_message(self, event: dict[str, Any]) -> None:
        """SIGNAL_EVENT from the group: `data`, the signal JSON, joins this browser's queue unchanged."""
        if self.relay is not None and self.feed is not None:
            text = event["data"]
            self.relay.deliver(self.feed, text, event_timestamp(text))
