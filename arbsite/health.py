"""A tiny HTTP server for the workers' `/health` and `/metrics` (no framework in the hot processes).

Each route is a function returning (status, content type, body); it runs on the
worker's own event loop, so it reads the live counters without locks.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable

log = logging.getLogger("arbsite.health")

Route = Callable[[], tuple[int, str, bytes]]
_REASONS = {200: "OK", 404: "Not Found", 405: "Method Not Allowed", 503: "Service Unavailable"}


async def start_http(host: str, port: int, routes: dict[str, Route]) -> asyncio.Server:
    """Serve `routes` (path -> handler) on host:port; GET and HEAD only."""

    async def handle(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            request_line = await asyncio.wait_for(reader.readline(), 5)
            while True:  # skip the headers
                line = await asyncio.wait_for(reader.readline(), 5)
                if line in (b"\r\n", b"\n", b""):
                    break
            parts = request_line.decode("latin-1").split()
            if len(parts) < 2:
                return
            method, target = parts[0], parts[1]
            route = routes.get(target.split("?", 1)[0])
            if method not in ("GET", "HEAD"):
                status, content_type, body = 405, "text/plain", b"GET only\n"
            elif route is None:
                status, content_type, body = 404, "text/plain", b"not found\n"
            else:
                status, content_type, body = route()
            head = (
                f"HTTP/1.1 {status} {_REASONS.get(status, 'OK')}\r\n"
                f"Content-Type: {content_type}\r\nContent-Length: {len(body)}\r\nConnection: close\r\n\r\n"
            )
            writer.write(head.encode("latin-1") + (b"" if method == "HEAD" else body))
            await writer.drain()
        except (TimeoutError, ConnectionError, UnicodeDecodeError):
            pass
        except Exception:
            log.exception("health endpoint failed")
        finally:
            writer.close()

    return await asyncio.start_server(handle, host, port)
