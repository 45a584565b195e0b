from django.apps import AppConfig


class EngineWorkerConfig(AppConfig):
    name = "engine_worker"
    verbose_name = "Spread engine"
