"""Delete detection: ``sys_audit`` DELETED/RECOVERED rows and key reconciliation.

Incremental queries never see a deleted record (C13). Every delete writes a
``sys_audit`` row with ``fieldname=DELETED`` (not Table Cleaner's), so those rows
are read since a delete cursor; a periodic sweep of the source's sys_ids catches
the rest. Deleted rows are marked (``deleted_at``), never dropped; a RECOVERED
row clears the mark.
"""

from __future__ import annotations

import logging
import threading
from datetime import datetime

from sqlalchemy import Connection, select, update

from connector.errors import InstanceError
from connector.servicenow.client import ServiceNowClient
from connector.servicenow.models import Cursor, Page
from connector.servicenow.pager import KeyPager, KeysetPager
from connector.servicenow.query import Q
from connector.servicenow.values import parse_datetime_utc
from connector.store.engine import Store
from connector.sync import checkpoints
from connector.sync.prepare import PreparedMapping
from connector.sync.pull import RunStats, pull_all_keys

log = logging.getLogger(__name__)

AUDIT_TABLE = "sys_audit"
AUDIT_FIELDS = ["sys_id", "sys_created_on", "documentkey", "fieldname"]
# Audit rows are never updated, so sys_updated_on equals sys_created_on and the
# keyset can use the (sys_updated_on, sys_id) order every table is indexed for;
# sys_created_on is the fallback where the dictionary lacks sys_updated_on.
AUDIT_CURSORS = ("sys_updated_on", "sys_created_on")
MARK_BATCH = 500


def apply_audit_deletes(
    *,
    client: ServiceNowClient,
    store: Store,
    prepared: PreparedMapping,
    since: Cursor,
    until: datetime,
    page_size: int,
    stats: RunStats,
    stop_event: threading.Event | None = None,
) -> bool:
    """Apply DELETED/RECOVERED audit rows of the mapping's table in [since, until)."""
    query = Q.and_(
        Q.eq("tablename", prepared.mapping.source),
        Q.in_("fieldname", ["DELETED", "RECOVERED"]),
    ).encode()
    pager = KeysetPager(
        client,
        AUDIT_TABLE,
        base_query=query,
        fields=AUDIT_FIELDS,
        page_size=page_size,
        since=since,
        until=until,
        cursor_field=audit_cursor(client),
    )
    for page in pager:
        if page.rows:
            with store.write() as conn:
                deleted = _apply_audit_page(conn, prepared, page)
                checkpoints.save_state(
                    conn,
                    prepared.mapping,
                    delete_cursor_ts=page.last_cursor[0],  # type: ignore[index]
                    delete_cursor_sys_id=page.last_cursor[1],  # type: ignore[index]
                )
            stats.add(deleted=deleted)
        if stop_event is not None and stop_event.is_set():
            return False
    return True


def audit_cursor(client: ServiceNowClient) -> str:
    """The sys_audit field to page deletes by (see AUDIT_CURSORS)."""
    try:
        known = client.dictionary(AUDIT_TABLE)
    except InstanceError:
        return AUDIT_CURSORS[-1]
    return next((name for name in AUDIT_CURSORS if name in known), AUDIT_CURSORS[-1])


def _apply_audit_page(conn: Connection, prepared: PreparedMapping, page: Page) -> int:
    """Mark or unmark rows in audit order; return how many were newly marked."""
    table = prepared.model.__table__  # type: ignore[attr-defined]
    marked = 0
    for row in page.rows:
        key = str(row.get("documentkey") or "")
        if not key:
            continue
        if row.get("fieldname") == "RECOVERED":
            conn.execute(
                update(table).where(table.c.sys_id == key).values(deleted_at=None)
            )
            continue
        when = parse_datetime_utc(row.get("sys_created_on")) or checkpoints.utcnow()
        result = conn.execute(
            update(table)
            .where(table.c.sys_id == key, table.c.deleted_at.is_(None))
            .values(deleted_at=when)
        )
        marked += result.rowcount or 0
    return marked


def reconcile_keys(
    *,
    client: ServiceNowClient,
    store: Store,
    prepared: PreparedMapping,
    page_size: int,
    stats: RunStats,
) -> None:
    """Mark local rows whose sys_id the source no longer has (with the same filter)."""
    started = checkpoints.utcnow()
    pager = KeyPager(
        client,
        prepared.mapping.source,
        base_query=prepared.mapping.filter,
        page_size=page_size,
    )
    source_ids = {str(row["sys_id"]) for page in pager for row in page.rows}
    stats.add(fetched=len(source_ids), pages=pager.pages)
    mark_missing(store, prepared, source_ids, started=started, stats=stats)


def full_refresh(
    *,
    client: ServiceNowClient,
    store: Store,
    prepared: PreparedMapping,
    page_size: int,
    stats: RunStats,
    run_id: int | None,
    stop_event: threading.Event | None = None,
    batch_size: int = 500,
) -> bool:
    """Re-read a ``mode: full`` table by sys_id and mark rows gone from it."""
    started = checkpoints.utcnow()
    seen = pull_all_keys(
        client=client,
        store=store,
        prepared=prepared,
        page_size=page_size,
        stats=stats,
        run_id=run_id,
        stop_event=stop_event,
        batch_size=batch_size,
    )
    if seen is None:
        return False
    mark_missing(store, prepared, seen, started=started, stats=stats)
    return True


def mark_missing(
    store: Store,
    prepared: PreparedMapping,
    source_ids: set[str],
    *,
    started: datetime,
    stats: RunStats,
) -> None:
    """Mark stored rows not in ``source_ids`` deleted; record the sweep time.

    Rows the source changed after the sweep started are not judged, so a row a
    concurrent sync stored meanwhile is never marked by mistake.
    """
    table = prepared.model.__table__  # type: ignore[attr-defined]
    with store.engine.connect() as conn:
        local = conn.execute(
            select(table.c.sys_id).where(
                table.c.deleted_at.is_(None),
                table.c.sys_updated_on.is_(None) | (table.c.sys_updated_on < started),
            )
        ).scalars()
        missing = [key for key in local if key not in source_ids]
    for start in range(0, len(missing), MARK_BATCH):
        with store.write() as conn:
            conn.execute(
                update(table)
                .where(table.c.sys_id.in_(missing[start : start + MARK_BATCH]))
                .where(table.c.deleted_at.is_(None))
                .values(deleted_at=started)
            )
    stats.add(deleted=len(missing))
    with store.write() as conn:
        checkpoints.save_state(conn, prepared.mapping, last_reconcile_at=started)
    if missing:
        log.info(
            "Key sweep of %r marked %d rows deleted (gone from the source "
            "without an audit row)",
            prepared.name,
            len(missing),
        )
