"""The dashboard page: one Django template; its script (static/dashboard/) does the rest in the browser.

The page itself holds no data. It carries a small configuration block (the signal
threshold for colouring the spread matrix until `/api/markets` brings the engine's own,
the configured exchanges and assets, the endpoints), then `dashboard.js` loads the signal history, opens the
`/ws/signals/` WebSocket and polls `/api/markets` and `/api/health`.

Everything is served by the project itself (no CDN: the page works offline), so
the response carries a strict Content-Security-Policy: scripts, styles and
connections from this origin only, no inline script. The script inserts every
piece of data as text, never as HTML; the policy is the second line of defence.
"""

from __future__ import annotations

from typing import TypedDict

from django.conf import settings
from django.http import HttpRequest, HttpResponse, HttpResponseNotAllowed
from django.shortcuts import render


class DashboardConfig(TypedDict):
    """What the page's script needs from the server, rendered with `json_script`."""

    threshold_pct: float
    exchanges: list[str]
    assets: list[str]
    ws_path: str
    history_url: str
    markets_url: str
    health_url: str
    history_limit: int
    refill_limit: int
    markets_interval_ms: int
    health_interval_ms: int
    max_rows: int


# The history API serves at most 1000 signals; a reconnect asks for all of them, so a browser that
# was away for a while gets back everything Redis still holds.
HISTORY_LIMIT = 200
REFILL_LIMIT = 1000
MARKETS_INTERVAL_MS = 1000
HEALTH_INTERVAL_MS = 2000
# One row per opportunity; older closed rows leave first once the table is full.
MAX_ROWS = 300


def dashboard_config() -> DashboardConfig:
    return {
        "threshold_pct": settings.SPREAD_THRESHOLD_PCT,
        "exchanges": list(settings.EXCHANGES),
        "assets": list(settings.ASSETS),
        "ws_path": "/ws/signals/",
        "history_url": "/api/signals/history",
        "markets_url": "/api/markets",
        "health_url": "/api/health",
        "history_limit": HISTORY_LIMIT,
        "refill_limit": REFILL_LIMIT,
        "markets_interval_ms": MARKETS_INTERVAL_MS,
        "health_interval_ms": HEALTH_INTERVAL_MS,
        "max_rows": MAX_ROWS,
    }


def content_security_policy(host: str) -> str:
    """Same origin for everything; the WebSocket named explicitly (older browsers do not map 'self' to ws:)."""
    return "; ".join(
        [
            "default-src 'self'",
            "script-src 'self'",
            "style-src 'self'",
            "img-src 'self' data:",
            "font-src 'self'",
            f"connect-src 'self' ws://{host} wss://{host}",
            "object-src 'none'",
            "base-uri 'none'",
            "form-action 'self'",
            "frame-ancestors 'none'",
        ]
    )


def dashboard(request: HttpRequest) -> HttpResponse:
    """The live dashboard: signal feed, spread matrix, feed status and pipeline latency."""
    if request.method not in ("GET", "HEAD"):
        return HttpResponseNotAllowed(["GET", "HEAD"])
    response = render(request, "dashboard.html", {"config": dashboard_config()})
    response["Content-Security-Policy"] = content_security_policy(request.get_host())
    # Always the current script and configuration after a deploy.
    response["Cache-Control"] = "no-cache"
    return response
