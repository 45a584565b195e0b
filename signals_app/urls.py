"""The dashboard page (views.py) and the JSON API (api.py)."""

from django.urls import URLPattern, path

from signals_app import api, views

urlpatterns: list[URLPattern] = [
    path("", views.dashboard, name="dashboard"),
    path("api/signals/history", api.not_yet, name="api-signals-history"),
    path("api/signals", api.not_yet, name="api-signals"),
    path("api/markets", api.not_yet, name="api-markets"),
    path("api/health", api.not_yet, name="api-health"),
    path("api/schema", api.not_yet, name="api-schema"),
]
