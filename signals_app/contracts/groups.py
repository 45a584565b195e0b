"""Channels group names and event types; the relay sends, the consumer forwards (Channels style:
the event type `signal.message` dispatches to the consumer's `signal_message` method)."""

SIGNALS_GROUP = "signals"
SIGNAL_EVENT = "signal.message"  # {"type": SIGNAL_EVENT, "data": "<the published signal JSON>"}
