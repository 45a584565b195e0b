"""Channels group names and event types (Channels style: the event type `signal.message`
dispatches to the consumer's `signal_message` method).

Every web process relays each signal from Redis once, to its own browsers, in process (each
browser's queue, `signals_app/relay.py`): the group is not on that path. Each consumer still joins
its process's group (`signals.<pid>-<random>`), whose `signal.message` events go into the same
queue: the way in for a sender in another process. Being the process's own, several web processes
on one Redis (several daphne behind a load balancer) never hand a browser the same signal twice.
"""

from __future__ import annotations

import os
import secrets

SIGNALS_GROUP_PREFIX = "signals"
# This process's group: the pid for the logs, a random part because pids repeat across hosts.
PROCESS_SIGNALS_GROUP = f"{SIGNALS_GROUP_PREFIX}.{os.getpid()}-{secrets.token_hex(4)}"
SIGNAL_EVENT = "signal.message"  # {"type": SIGNAL_EVENT, "data": "<the published signal JSON>"}
