"""The web process serves its own static files with DEBUG off: the dashboard needs no CDN and no other server."""

from __future__ import annotations

import asyncio
from typing import Any

from asgiref.testing import ApplicationCommunicator

from arbsite.asgi import application


def get(path: str) -> dict[str, Any]:
    """One GET through the whole ASGI application, as daphne would send it: status, headers, body."""

    async def body() -> dict[str, Any]:
        scope = {
            "type": "http",
            "http_version": "1.1",
            "method": "GET",
            "scheme": "http",
            "path": path,
            "raw_path": path.encode(),
            "query_string": b"",
            "headers": [(b"host", b"127.0.0.1:3000")],
            "server": ("127.0.0.1", 3000),
            "client": ("127.0.0.1", 50000),
        }
        communicator = ApplicationCommunicator(application, scope)
        await communicator.send_input({"type": "http.request", "body": b""})
        start = await communicator.receive_output(10)
        assert start["type"] == "http.response.start"
        content = b""
        while True:  # the last body message may leave out "body" (ASGI: it defaults to b"")
            chunk = await communicator.receive_output(10)
            content += chunk.get("body", b"")
            if not chunk.get("more_body", False):
                break
        await communicator.wait(10)
        return {"status": start["status"], "headers": dict(start["headers"]), "body": content}

    return asyncio.run(body())


def test_static_files_are_served_with_debug_off(settings: Any) -> None:
    settings.DEBUG = False
    response = get("/static/admin/css/base.css")  # an app's static file, found without collectstatic
    assert response["status"] == 200
    assert b"body" in response["body"]
    assert response["headers"][b"Content-Type"].startswith(b"text/css")


def test_a_missing_static_file_is_a_404_not_a_500(settings: Any) -> None:
    settings.DEBUG = False
    assert get("/static/no/such/file.js")["status"] == 404
