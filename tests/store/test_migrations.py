"""Schema changes ship as Alembic migrations that match the models exactly."""

from __future__ import annotations

from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
from alembic.script import ScriptDirectory
from sqlalchemy import inspect
from sqlmodel import SQLModel

from connector.store.engine import (
    alembic_config,
    head_revision,
    import_all_models,
    is_at_head,
    open_store,
)


def test_a_fresh_store_migrates_to_head_and_matches_the_models(store_url: str) -> None:
    import_all_models()
    head = ScriptDirectory.from_config(alembic_config(store_url)).get_current_head()

    store = open_store(store_url)
    with store.engine.connect() as conn:
        context = MigrationContext.configure(conn, opts={"compare_type": True})
        current = context.get_current_revision()
        diff = compare_metadata(context, SQLModel.metadata)
        tables = set(inspect(conn).get_table_names())
    reopened = open_store(store_url)  # idempotent: already at head
    store.dispose()
    reopened.dispose()

    assert current == head
    assert diff == [], (
        "models changed without a migration: run alembic revision --autogenerate"
    )
    assert {"case", "sync_state", "sync_run", "backfill_slice", "quarantine"} <= tables


def test_a_store_created_before_migrations_is_adopted(tmp_sqlite_url: str) -> None:
    import_all_models()
    bare = open_store(tmp_sqlite_url, migrate=False)
    SQLModel.metadata.create_all(bare.engine)
    bare.dispose()

    store = open_store(tmp_sqlite_url)
    with store.engine.connect() as conn:
        current = MigrationContext.configure(conn).get_current_revision()
    store.dispose()

    head = ScriptDirectory.from_config(
        alembic_config(tmp_sqlite_url)
    ).get_current_head()
    assert current == head


def test_the_head_read_from_the_files_is_alembics_and_a_store_at_it_is_known(
    tmp_sqlite_url: str,
) -> None:
    alembic_head = ScriptDirectory.from_config(
        alembic_config(tmp_sqlite_url)
    ).get_current_head()
    bare = open_store(tmp_sqlite_url, migrate=False)
    fresh = is_at_head(bare)
    bare.dispose()

    store = open_store(tmp_sqlite_url)
    migrated = is_at_head(store)
    store.dispose()

    assert head_revision() == alembic_head
    assert (fresh, migrated) == (False, True)
