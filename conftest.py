"""Test-session defaults.

The system runs seven venues by default; most tests are about the pipeline's behaviour, not
the venue count, and pin the two original ones (fewer processes' worth of sockets, faster,
no fixed ports). A test that wants all seven says so in its own processes' environment.
"""

import os

os.environ.setdefault("SIM_VENUES", "binance,coinbase")
os.environ.setdefault("EXCHANGES", "binance,coinbase")
