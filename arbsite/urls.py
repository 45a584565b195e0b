"""URL routes: the admin for now; the dashboard and the history API come with issue 5."""

from django.contrib import admin
from django.urls import path

urlpatterns = [
    path("admin/", admin.site.urls),
]
