"""The dashboard page (views.py) and the JSON API (api.py; its OpenAPI description is api_schema.py)."""

from django.urls import URLPattern, path, re_path

from signals_app import api, views

urlpatterns: list[URLPattern] = [
    path("", views.dashboard, name="dashboard"),
    path("api/signals/history", api.signals_history, name="api-signals-history"),
    path("api/signals", api.signals, name="api-signals"),
    # `path`, not `str`: an id is matched whole, whatever it holds (the API answers 404 for a wrong one).
    path("api/signals/<path:signal_id>/depth", api.signal_depth, name="api-signal-depth"),
    path("api/markets", api.markets, name="api-markets"),
    path("api/health", api.health, name="api-health"),
    path("api/schema", api.schema, name="api-schema"),
    # Anything else under /api/ answers JSON too, never Django's HTML 404 page.
    re_path(r"^api/", api.not_found, name="api-not-found"),
]
