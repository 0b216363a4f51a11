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
from collections.abc import Sequence
from datetime import datetime

from sqlalchemy import Connection, select, update

from connector.errors import CsmSyncError, InstanceError, PermissionDeniedError
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
AUDIT_FIELDS = ["sys_id", "sys_created_on", "tablename", "documentkey", "fieldname"]
# Audit rows are never updated, so sys_updated_on equals sys_created_on and the
# keyset can use the (sys_updated_on, sys_id) order every table is indexed for;
# sys_created_on is the fallback where the dictionary lacks sys_updated_on.
AUDIT_CURSORS = ("sys_updated_on", "sys_created_on")
MARK_BATCH = 500


class AuditScan:
    """One ``sys_audit`` read per pass for the delete checks of every table.

    Each table keeps its own delete cursor. The first table to need its deletes
    reads the DELETED/RECOVERED rows of itself and every table after it in the
    pass (``tablenameIN...``) from the oldest of their cursors; a row goes to
    the mappings of its table unless that table's cursor is already past it,
    and after each page every scanned table's cursor moves to the page's last
    row (all their rows up to it have been seen). The other tables then only
    collect their counts. An error of the scan is each table's error, as when
    every table read its own rows. A table whose own run fails after the scan
    keeps the marks and the cursor the scan gave it (only its count is lost).
    """

    def __init__(
        self,
        *,
        client: ServiceNowClient,
        store: Store,
        order: Sequence[PreparedMapping],
        until: datetime,
        page_size: int,
    ) -> None:
        self.client = client
        self.store = store
        self.order = list(order)
        self.until = until
        self.page_size = page_size
        self.scanned: set[str] = set()
        self.deleted: dict[str, int] = {}
        self.error: BaseException | None = None

    def apply(
        self,
        prepared: PreparedMapping,
        stats: RunStats,
        stop_event: threading.Event | None = None,
    ) -> bool:
        """Apply the deletes of ``prepared`` (scanning first if not yet done).

        Returns False when the scan stopped on request. Raises the scan's error.
        """
        if prepared.name not in self.scanned:
            due = self._due_from(prepared)
            cursors = {p.name: cursor for p, cursor in due}
            self.scanned.update(cursors)
            if not self._scan([p for p, _ in due], cursors, stop_event):
                return False
        if self.error is not None:
            raise self.error
        stats.add(deleted=self.deleted.pop(prepared.name, 0))
        return True

    def _due_from(self, first: PreparedMapping) -> list[tuple[PreparedMapping, Cursor]]:
        """``first`` and the tables after it not yet scanned, with their cursors."""
        names = [p.name for p in self.order]
        start = names.index(first.name) + 1 if first.name in names else len(names)
        due = []
        for each in [first, *self.order[start:]]:
            if each.name in self.scanned or each.mapping.mode == "full":
                continue
            state = checkpoints.load_state(self.store, each.mapping)
            cursor = checkpoints.delete_cursor_of(state)
            if cursor is not None or each is first:
                due.append((each, cursor or (self.until, "")))
        return due

    def _scan(
        self,
        scanned: list[PreparedMapping],
        cursors: dict[str, Cursor],
        stop_event: threading.Event | None,
    ) -> bool:
        try:
            return self._read(scanned, cursors, stop_event)
        except PermissionDeniedError:
            # Rows are still right; only deletes wait for the key sweep (C13).
            log.warning(
                "Cannot read sys_audit, so deletes in %s are found only by the key "
                "reconciliation; grant the integration user read access to "
                "sys_audit",
                ", ".join(sorted({p.mapping.source for p in scanned})),
            )
            return True
        except CsmSyncError as exc:
            self.error = exc
            return True

    def _read(
        self,
        scanned: list[PreparedMapping],
        cursors: dict[str, Cursor],
        stop_event: threading.Event | None,
    ) -> bool:
        sources = sorted({p.mapping.source for p in scanned})
        pager = KeysetPager(
            self.client,
            AUDIT_TABLE,
            base_query=Q.and_(
                Q.in_("tablename", sources),
                Q.in_("fieldname", ["DELETED", "RECOVERED"]),
            ).encode(),
            fields=AUDIT_FIELDS,
            page_size=self.page_size,
            since=min(cursors.values()),
            until=self.until,
            cursor_field=audit_cursor(self.client),
        )
        for page in pager:
            if page.rows:
                self._apply_page(scanned, cursors, page, pager.cursor_field)
            if stop_event is not None and stop_event.is_set():
                return False
        return True

    def _apply_page(
        self,
        scanned: list[PreparedMapping],
        cursors: dict[str, Cursor],
        page: Page,
        cursor_field: str,
    ) -> None:
        """Mark/unmark each table's new rows and move every cursor, in one commit."""
        last: Cursor = page.last_cursor  # type: ignore[assignment]
        with self.store.write() as conn:
            for prepared in scanned:
                mine = cursors[prepared.name]
                rows = [
                    row
                    for row in page.rows
                    if row.get("tablename") == prepared.mapping.source
                    and _row_cursor(row, cursor_field) > mine
                ]
                if rows:
                    marked = _apply_audit_rows(conn, prepared, rows)
                    self.deleted[prepared.name] = (
                        self.deleted.get(prepared.name, 0) + marked
                    )
                if last > mine:
                    cursors[prepared.name] = last
                    checkpoints.save_state(
                        conn,
                        prepared.mapping,
                        delete_cursor_ts=last[0],
                        delete_cursor_sys_id=last[1],
                    )


def _row_cursor(row: dict, cursor_field: str) -> Cursor:
    """The keyset position of an audit row (an unreadable stamp counts as new)."""
    stamp = parse_datetime_utc(row.get(cursor_field)) or checkpoints.utcnow()
    return (stamp, str(row.get("sys_id") or ""))


def audit_cursor(client: ServiceNowClient) -> str:
    """The sys_audit field to page deletes by (see AUDIT_CURSORS)."""
    try:
        known = client.dictionary(AUDIT_TABLE)
    except InstanceError:
        return AUDIT_CURSORS[-1]
    return next((name for name in AUDIT_CURSORS if name in known), AUDIT_CURSORS[-1])


def _apply_audit_rows(
    conn: Connection, prepared: PreparedMapping, rows: list[dict]
) -> int:
    """Mark or unmark rows in audit order; return how many were newly marked."""
    table = prepared.model.__table__  # type: ignore[attr-defined]
    marked = 0
    for row in rows:
        key = str(row.get("documentkey") or "")
        if not key:
            continue
        if row.get("fieldname") == "RECOVERED":
            conn.execute(
                update(table).where(table.c.sys_id == key).values(deleted_at=None)
            )
            continue
        when = parse_datetime_utc(row.get("sys_created_on")) or checkpoints.utcnow()
        # A stored row changed after the delete is a record created again with
        # the same sys_id (no RECOVERED row is written then): it stays live.
        result = conn.execute(
            update(table)
            .where(
                table.c.sys_id == key,
                table.c.deleted_at.is_(None),
                table.c.sys_updated_on.is_(None) | (table.c.sys_updated_on <= when),
            )
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
