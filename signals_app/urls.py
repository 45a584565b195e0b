"""The dashboard page and the JSON API."""

from django.urls import URLPattern

urlpatterns: list[URLPattern] = []
