"""URL routes: the dashboard and the REST API (signals_app), and the admin."""

from django.contrib import admin
from django.urls import include, path

urlpatterns = [
    path("admin/", admin.site.urls),
    path("", include("signals_app.urls")),
]
