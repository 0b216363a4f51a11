"""One incremental pass: new and changed rows, audited deletes, due reconciliations."""

from __future__ import annotations

import logging
import threading
from datetime import datetime, timedelta

from sqlalchemy import Connection

from connector.config import Settings
from connector.servicenow.models import Cursor
from connector.sync import checkpoints
from connector.sync.deletes import AuditScan, reconcile_keys
from connector.sync.full import full_table
from connector.sync.prepare import PreparedMapping
from connector.sync.pull import Progress, RunStats, Window, pull_window
from connector.sync.runner import (
    RunResult,
    SyncSession,
    open_session,
    run_each,
    run_table,
    window_end,
)

log = logging.getLogger(__name__)


def run_incremental(
    settings: Settings,
    *,
    tables: list[str] | None = None,
    stop_event: threading.Event | None = None,
    reconcile: bool | None = None,
    session: SyncSession | None = None,
    progress: Progress | None = None,
) -> list[RunResult]:
    """One incremental pass over every mapped table (deletes included).

    Args:
        settings: the loaded config.
        tables: restrict to these mappings (name, source or target table).
        stop_event: when set, finish the page in hand, commit and stop.
        reconcile: force (True) or skip (False) key reconciliation; by default
            it runs when ``sync.reconcile_deletes`` is on and the last one is
            older than ``daemon.reconcile_interval_seconds``.
        session: an open session to reuse (tests, the daemon); closed by the caller.
        progress: called with (mapping name, rows) after each stored page.

    Raises:
        MappingError: a mapping is invalid or names a field the instance lacks.
    """
    own = session is None
    session = session or open_session(settings, tables=tables)
    try:
        until = window_end(session)
        audits = audit_scan(session, until)
        return run_each(
            session,
            lambda p: incremental_table(
                session,
                p,
                until=until,
                stop_event=stop_event,
                reconcile=reconcile,
                progress=progress,
                audits=audits,
            ),
        )
    finally:
        if own:
            session.close()


def run_reconcile(
    settings: Settings,
    *,
    tables: list[str] | None = None,
    session: SyncSession | None = None,
) -> list[RunResult]:
    """Key reconciliation only: mark rows gone from the source as deleted."""
    own = session is None
    session = session or open_session(settings, tables=tables)
    try:
        return run_each(session, lambda p: reconcile_table(session, p))
    finally:
        if own:
            session.close()


def incremental_table(
    session: SyncSession,
    prepared: PreparedMapping,
    *,
    until: datetime,
    stop_event: threading.Event | None = None,
    reconcile: bool | None = None,
    progress: Progress | None = None,
    audits: AuditScan | None = None,
) -> RunResult:
    """New/changed rows since the stored cursor up to ``until``, then deletes.

    ``audits`` is the pass's shared sys_audit read (one for every table); by
    default the table reads its own.
    """
    audits = audits or audit_scan(session, until, [prepared])
    state = checkpoints.load_state(session.store, prepared.mapping)
    if prepared.mapping.mode == "full":
        due = state.last_reconcile_at is None or _reconcile_due(
            session.settings, state, reconcile
        )
        return full_table(
            session, prepared, "incremental", run=due, stop_event=stop_event
        )
    since = checkpoints.cursor_of(state)

    def body(run_id: int, stats: RunStats) -> bool:
        window = Window(since=since, until=until)
        if not _pull_changes(
            session, prepared, window, stats, run_id, stop_event, progress
        ):
            return False
        if not _deletes(session, prepared, state, audits, stats, stop_event):
            return False
        if since is not None and _reconcile_due(session.settings, state, reconcile):
            reconcile_keys(
                client=session.client,
                store=session.store,
                prepared=prepared,
                page_size=session.settings.instance.page_size,
                stats=stats,
            )
        return True

    window = (since[0] if since else None, until)
    return run_table(session, prepared, "incremental", window, body)


def _pull_changes(
    session: SyncSession,
    prepared: PreparedMapping,
    window: Window,
    stats: RunStats,
    run_id: int,
    stop_event: threading.Event | None,
    progress: Progress | None,
) -> bool:
    """New and changed rows of the window, each page committed with the cursor."""

    def checkpoint(conn: Connection, cursor: Cursor, _rows: int) -> None:
        checkpoints.save_cursor(conn, prepared.mapping, cursor)

    done = pull_window(
        client=session.client,
        store=session.store,
        prepared=prepared,
        window=window,
        page_size=session.settings.instance.page_size,
        stats=stats,
        checkpoint=checkpoint,
        run_id=run_id,
        stop_event=stop_event,
        progress=progress,
        batch_size=session.settings.store.batch_size,
    )
    if done and window.since is None:
        # A complete first load is as good as a key sweep.
        with session.store.write() as conn:
            checkpoints.save_state(
                conn, prepared.mapping, last_reconcile_at=checkpoints.utcnow()
            )
    return done


def audit_scan(
    session: SyncSession,
    until: datetime,
    order: list[PreparedMapping] | None = None,
) -> AuditScan:
    """The shared sys_audit read of a pass over ``order`` (default: every table)."""
    return AuditScan(
        client=session.client,
        store=session.store,
        order=session.prepared if order is None else order,
        until=until,
        page_size=session.settings.instance.page_size,
    )


def _deletes(
    session: SyncSession,
    prepared: PreparedMapping,
    state: checkpoints.SyncState,
    audits: AuditScan,
    stats: RunStats,
    stop_event: threading.Event | None,
) -> bool:
    if checkpoints.delete_cursor_of(state) is None:
        # First pass: rows deleted before now were never stored; audit from here.
        with session.store.write() as conn:
            checkpoints.save_state(
                conn,
                prepared.mapping,
                delete_cursor_ts=audits.until,
                delete_cursor_sys_id="",
            )
        return True
    return audits.apply(prepared, stats, stop_event)


def _reconcile_due(
    settings: Settings, state: checkpoints.SyncState, forced: bool | None
) -> bool:
    if forced is not None:
        return forced
    if not settings.sync.reconcile_deletes:
        return False
    if state.last_reconcile_at is None:
        # Nothing to compare against before the first load finished.
        return state.cursor_ts is not None
    last = checkpoints.as_utc(state.last_reconcile_at)
    interval = timedelta(seconds=settings.daemon.reconcile_interval_seconds)
    return checkpoints.utcnow() - last >= interval


def reconcile_table(session: SyncSession, prepared: PreparedMapping) -> RunResult:
    """One recorded key reconciliation of one table."""
    if prepared.mapping.mode == "full":
        return full_table(session, prepared, "reconcile")

    def body(_run_id: int, stats: RunStats) -> bool:
        reconcile_keys(
            client=session.client,
            store=session.store,
            prepared=prepared,
            page_size=session.settings.instance.page_size,
            stats=stats,
        )
        return True

    return run_table(session, prepared, "reconcile", (None, None), body)
