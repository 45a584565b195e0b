"""The Django project: settings, ASGI entry point, URLs and the Celery app."""

from arbsite.celery import app as celery_app

__all__ = ["celery_app"]
