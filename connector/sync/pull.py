"""Pull one window of one table, page by page, committing each page with its cursor.

A page is mapped outside any transaction; then, holding the store's writer lock,
its rows are upserted, bad rows quarantined and the cursor moved to the page's
last row, all in one transaction (never across an HTTP call, C19). A failure
between pages leaves the cursor on the last committed page (C11).
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable
from contextlib import closing
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from sqlalchemy import Connection

from connector.mapping.rows import RowProblem
from connector.servicenow.client import ServiceNowClient
from connector.servicenow.models import Cursor, Page
from connector.servicenow.pager import KeyPager, KeysetPager
from connector.store.engine import Store
from connector.store.upsert import upsert_rows
from connector.sync import checkpoints
from connector.sync.prefetch import ahead
from connector.sync.prepare import PreparedMapping

log = logging.getLogger(__name__)

# Called inside the page's transaction with the page's last cursor and row count.
Checkpoint = Callable[[Connection, Any, int], None]
Progress = Callable[[str, int], None]


@dataclass
class RunStats:
    """Counters of one table run; safe to update from several worker threads."""

    pages: int = 0
    fetched: int = 0
    inserted: int = 0
    updated: int = 0
    unchanged: int = 0
    deleted: int = 0
    quarantined: int = 0
    _lock: threading.Lock = field(default_factory=threading.Lock, repr=False)

    def add(self, **counts: int) -> None:
        with self._lock:
            for name, value in counts.items():
                setattr(self, name, getattr(self, name) + value)

    def as_columns(self) -> dict[str, int]:
        """The counters as ``sync_run`` columns."""
        return {
            "pages": self.pages,
            "rows_fetched": self.fetched,
            "rows_inserted": self.inserted,
            "rows_updated": self.updated,
            "rows_unchanged": self.unchanged,
            "rows_deleted": self.deleted,
            "rows_quarantined": self.quarantined,
        }


@dataclass
class Window:
    """Keyset bounds: after the ``since`` cursor, before ``until`` (exclusive).

    A ``since`` with an empty sys_id means "from that second on".
    """

    since: Cursor | None
    until: datetime | None


def pull_window(
    *,
    client: ServiceNowClient,
    store: Store,
    prepared: PreparedMapping,
    window: Window,
    page_size: int,
    stats: RunStats,
    checkpoint: Checkpoint,
    run_id: int | None,
    stop_event: threading.Event | None = None,
    progress: Progress | None = None,
    batch_size: int = 500,
) -> bool:
    """Pull every page of the window; return False when stopped early."""
    mapping = prepared.mapping
    pager = KeysetPager(
        client,
        mapping.source,
        base_query=mapping.filter,
        fields=prepared.fields,
        page_size=page_size,
        since=window.since,
        until=window.until,
        cursor_field=mapping.cursor,
    )
    with closing(ahead(pager, name=f"fetch-{mapping.name}")) as pages:
        for page in pages:
            if page.rows:
                write_page(store, prepared, page, stats, checkpoint, run_id, batch_size)
                if progress:
                    progress(prepared.name, len(page.rows))
            if stop_event is not None and stop_event.is_set():
                return False
    return True


def pull_all_keys(
    *,
    client: ServiceNowClient,
    store: Store,
    prepared: PreparedMapping,
    page_size: int,
    stats: RunStats,
    run_id: int | None,
    stop_event: threading.Event | None = None,
    batch_size: int = 500,
) -> set[str] | None:
    """Pull the whole table in sys_id order; the keys seen, or None when stopped."""
    mapping = prepared.mapping
    pager = KeyPager(
        client,
        mapping.source,
        base_query=mapping.filter,
        fields=prepared.fields,
        page_size=page_size,
    )
    seen: set[str] = set()
    with closing(ahead(pager, name=f"fetch-{mapping.name}")) as pages:
        for page in pages:
            if page.rows:
                write_page(
                    store, prepared, page, stats, _no_checkpoint, run_id, batch_size
                )
                seen.update(str(row.get("sys_id")) for row in page.rows)
            if stop_event is not None and stop_event.is_set():
                return None
    return seen


def _no_checkpoint(_conn: Connection, _cursor: Any, _rows: int) -> None:
    """Full reads restart from the beginning; there is nothing to keep."""


def write_page(
    store: Store,
    prepared: PreparedMapping,
    page: Page,
    stats: RunStats,
    checkpoint: Checkpoint,
    run_id: int | None,
    batch_size: int = 500,
) -> None:
    """Map a page, then store it and its cursor in one transaction."""
    good: list[dict] = []
    bad: dict[str, list[RowProblem]] = {}
    map_record = prepared.mapper.map
    for record in page.rows:
        result = map_record(record)
        if result.unknown_choices:
            _warn_unknown_choices(prepared, result.unknown_choices)
        if result.row is None:
            bad[result.sys_id or "(missing)"] = result.problems
        else:
            good.append(result.row)
    cursor = page.last_cursor

    with store.write() as conn:
        counts = upsert_rows(conn, prepared.model, good, batch_size=batch_size)
        if bad:
            checkpoints.quarantine(conn, prepared.mapping, bad, run_id=run_id)
            prepared.may_have_quarantine = True
        if prepared.may_have_quarantine:
            checkpoints.release(conn, prepared.mapping, [r["sys_id"] for r in good])
        checkpoint(conn, cursor, len(page.rows))
    stats.add(
        pages=1,
        fetched=len(page.rows),
        inserted=counts.inserted,
        updated=counts.updated,
        unchanged=counts.unchanged,
        quarantined=len(bad),
    )
    log.debug(
        "Stored page of %r: %d rows, cursor %s", prepared.name, len(page.rows), cursor
    )


def _warn_unknown_choices(
    prepared: PreparedMapping, found: list[tuple[str, str]]
) -> None:
    for column, code in found:
        if (column, code) not in prepared.warned_choices:
            prepared.warned_choices.add((column, code))
            log.warning(
                "Unknown choice code %r for %r in mapping %r; stored with label "
                "'unknown' (add it to sys_choice or the mapping's values)",
                code,
                column,
                prepared.name,
            )
