"""The dashboard page (being written: see issue 5)."""

from __future__ import annotations

from django.http import HttpRequest, HttpResponse


def dashboard(request: HttpRequest) -> HttpResponse:
    return HttpResponse("The dashboard arrives with issue 5.", content_type="text/plain", status=501)
