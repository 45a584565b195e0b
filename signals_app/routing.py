"""WebSocket routes (Channels), mounted by `arbsite.asgi` behind the Origin check."""

from __future__ import annotations

from django.urls import URLPattern, path

from signals_app.consumers import SignalsConsumer

websocket_urlpatterns: list[URLPattern] = [
    path("ws/signals/", SignalsConsumer.as_asgi()),
]
