"""Channels group names and event types; the relay sends, the consumer forwards (Channels style:
the event type `signal.message` dispatches to the consumer's `signal_message` method).

Every web process relays each signal from Redis once, to its own browsers: the group is the
process's own (`signals.<pid>-<random>`), so that several web processes on one Redis (several
daphne behind a load balancer) never hand a browser the same signal once per process.
"""

from __future__ import annotations

import os
import secrets

SIGNALS_GROUP_PREFIX = "signals"
# This process's group: the pid for the logs, a random part because pids repeat across hosts.
PROCESS_SIGNALS_GROUP = f"{SIGNALS_GROUP_PREFIX}.{os.getpid()}-{secrets.token_hex(4)}"
SIGNAL_EVENT = "signal.message"  # {"type": SIGNAL_EVENT, "data": "<the published signal JSON>"}
