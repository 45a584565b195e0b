"""The Django project: settings, ASGI entry point, URLs and the Celery app (`arbsite.celery`).

The Celery app is not imported here: the ingestor, the engine and the web process never send
tasks, and importing Celery would cost each of them ~15 MB. `celery -A arbsite` finds
`arbsite.celery` by itself.
"""
