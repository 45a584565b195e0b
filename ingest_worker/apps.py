from django.apps import AppConfig


class IngestWorkerConfig(AppConfig):
    name = "ingest_worker"
    verbose_name = "Ingestor"
