"""The JSON API (being written: see issue 5)."""

from __future__ import annotations

from django.http import HttpRequest, JsonResponse


def not_yet(request: HttpRequest) -> JsonResponse:
    return JsonResponse({"error": "not implemented yet"}, status=501)
