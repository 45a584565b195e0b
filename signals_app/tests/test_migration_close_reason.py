"""Migration 0003 adds `close_reason` to a table that already holds signals: the old rows are null."""

from __future__ import annotations

import orjson
import pytest
from django.db import connection
from django.db.migrations.executor import MigrationExecutor

from signals_app.persist import signal_row
from signals_app.tests.api_fixtures import make_signal

BEFORE = [("signals_app", "0002_signal_depth")]
AFTER = [("signals_app", "0003_signal_close_reason")]
T0 = 1_705_670_000_000


@pytest.mark.django_db(transaction=True)
def test_rows_written_before_the_migration_have_no_close_reason() -> None:
    executor = MigrationExecutor(connection)
    executor.migrate(BEFORE)
    old_signal = executor.loader.project_state(BEFORE).apps.get_model("signals_app", "Signal")
    assert "close_reason" not in {field.name for field in old_signal._meta.get_fields()}
    # A close as the persistence task wrote it before the migration: every column of the time.
    row = signal_row("1-0", orjson.dumps(make_signal(T0 + 500, status="close", opened_at=T0)))
    old_signal.objects.create(
        **{
            field.attname: getattr(row, field.attname)
            for field in old_signal._meta.concrete_fields
            if field.name != "id"
        }
    )
    try:
        executor = MigrationExecutor(connection)
        executor.migrate(AFTER)
        new_signal = executor.loader.project_state(AFTER).apps.get_model("signals_app", "Signal")
        assert list(new_signal.objects.values_list("stream_id", "close_reason")) == [("1-0", None)]
        assert new_signal.objects.filter(close_reason="stale").count() == 0
    finally:  # the next tests get the whole schema, whatever migrations come after this one
        executor = MigrationExecutor(connection)
        executor.migrate(executor.loader.graph.leaf_nodes())
