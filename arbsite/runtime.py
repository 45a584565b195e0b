"""How the long-running workers run: asyncio on uvloop."""

from __future__ import annotations

import asyncio
from collections.abc import Coroutine
from typing import Any

try:
    import uvloop
except ImportError:  # pragma: no cover - uvloop is pinned; plain asyncio still works
    uvloop = None  # type: ignore[assignment]


# The exit code of a process that stopped on its configuration (sysexits' EX_CONFIG): running it
# again cannot help, so the supervisor does not restart it (arbsite/supervisor.py).
CONFIG_ERROR_EXIT = 78


def run_async(main: Coroutine[Any, Any, None]) -> None:
    if uvloop is not None:
        uvloop.run(main)
    else:  # pragma: no cover
        asyncio.run(main)
