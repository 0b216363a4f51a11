"""The write-back state and audit tables work on PostgreSQL too (upserts)."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime

import pytest
from sqlalchemy import select
from sqlmodel import Session

from connector.config import settings_from_dict
from connector.kpi.store import ensure_kpi_tables
from connector.store.engine import open_store
from connector.writeback.install import install_fields
from connector.writeback.models import WritebackLog, ensure_tables
from connector.writeback.runner import run_writeback

from .conftest import config_dict, health, mod_counts

NOW = datetime(2026, 12, 3, 6, 0, tzinfo=UTC)


@pytest.mark.postgres
def test_writeback_with_a_postgres_store(emu, fresh_pg_url):
    pg_url = fresh_pg_url
    sys_id = uuid.uuid4().hex
    emu.instance.insert("customer_account", {"sys_id": sys_id, "name": "PG Co"})
    settings = settings_from_dict(config_dict(emu, pg_url))
    install_fields(settings)
    store = open_store(pg_url)
    ensure_kpi_tables(store.engine)
    ensure_tables(store.engine)
    with Session(store.engine) as session:
        session.add(health(sys_id, 64))
        session.commit()

    first = run_writeback(settings, account=sys_id, now=NOW)
    before = mod_counts(emu)[sys_id]
    second = run_writeback(settings, account=sys_id, now=NOW)

    assert (first.failed, first.sent_accounts) == (0, 1)
    assert second.sent_accounts == 0
    assert mod_counts(emu)[sys_id] == before
    with Session(store.engine) as session:
        logged = session.exec(
            select(WritebackLog.outcome).where(WritebackLog.account == sys_id)
        ).all()
    store.dispose()
    assert [row[0] for row in logged] == ["ok"] * 6
