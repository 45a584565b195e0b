"""One owner per contract: the tick, the signal, the Redis names. Imported by every process."""
