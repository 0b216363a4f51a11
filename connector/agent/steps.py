"""The work the daemon schedules, as calls into the sync, KPI and write-back roles.

Each function opens what it needs and returns plain figures for the metrics, so
the scheduler code knows nothing about stores, mappings or HTTP.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Iterable, Sequence
from datetime import UTC, date, datetime

from sqlalchemy import func, select

from connector.agent.metrics import AgentMetrics
from connector.config import Settings
from connector.errors import CsmSyncError, WriteBackError
from connector.kpi import compute_kpis as compute_kpi_result
from connector.kpi import store_snapshot
from connector.logs import log_context
from connector.mapping.loader import load_mappings
from connector.servicenow.client import ServiceNowClient
from connector.servicenow.metrics import ClientMetrics
from connector.store.engine import Store, open_store
from connector.store.state import BackfillSlice, SyncRun, SyncState
from connector.sync.backfill import run_backfill
from connector.sync.incremental import run_incremental, run_reconcile
from connector.sync.runner import RunResult, SyncSession, open_session
from connector.writeback.fields import writeback_table
from connector.writeback.runner import run_writeback

log = logging.getLogger(__name__)

ROW_OUTCOMES = ("inserted", "updated", "deleted", "quarantined")
SYNC_MODES = ("incremental", "backfill", "full")


def _open_existing(settings: Settings) -> Store:
    # Migrations ran once at start (prepare); no need to check every tick.
    return open_store(settings.store.url, migrate=False)


def prepare(settings: Settings) -> None:
    """Check what can be checked before scheduling anything.

    The mappings load (a bad one is a config error, exit 2) and the store opens
    with its migrations applied (an unreachable store fails fast).
    """
    load_mappings(settings.mappings_dir, tables=settings.sync.tables)
    open_store(settings.store.url).dispose()


def tables_to_backfill(settings: Settings) -> list[str]:
    """Mappings that need a backfill before incremental sync can take over.

    All of them on an empty store; otherwise those with an unfinished backfill
    (open slices, resumed from their checkpoints) and those that never got a
    cursor, for example because a stop came before their turn.
    """
    mappings = load_mappings(settings.mappings_dir, tables=settings.sync.tables)
    store = _open_existing(settings)
    try:
        with store.engine.connect() as conn:
            cursors = dict(
                conn.execute(select(SyncState.mapping, SyncState.cursor_ts)).all()
            )
            unfinished = set(
                conn.execute(
                    select(BackfillSlice.mapping).where(BackfillSlice.done.is_(False))
                ).scalars()
            )
    finally:
        store.dispose()
    if not any(cursors.values()):
        return [m.name for m in mappings]
    return [
        m.name
        for m in mappings
        if m.name in unfinished or (m.mode != "full" and cursors.get(m.name) is None)
    ]


def sync(
    settings: Settings, *, stop_event: threading.Event, client_metrics: ClientMetrics
) -> list[RunResult]:
    """A backfill where one is needed, else one incremental pass over every mapping.

    Raises:
        SyncFailed: At least one table failed (the others were still synced).
    """
    pending = tables_to_backfill(settings)
    session = _open_session(settings, client_metrics, tables=pending or None)
    try:
        if pending:
            log.info(
                "Backfilling %d table(s) first: %s", len(pending), ", ".join(pending)
            )
            results = run_backfill(settings, stop_event=stop_event, session=session)
        else:
            # Reconciliation is the daemon's own job, on its own schedule.
            results = run_incremental(
                settings, stop_event=stop_event, reconcile=False, session=session
            )
    finally:
        session.close()
    raise_on_failed(results)
    return results


def reconcile(settings: Settings, *, client_metrics: ClientMetrics) -> list[RunResult]:
    """Key reconciliation over every mapping (deletes that left no audit row)."""
    session = _open_session(settings, client_metrics)
    try:
        results = run_reconcile(settings, session=session)
    finally:
        session.close()
    raise_on_failed(results)
    return results


def _open_session(
    settings: Settings,
    client_metrics: ClientMetrics,
    *,
    tables: list[str] | None = None,
) -> SyncSession:
    """A sync session whose HTTP client counts into the daemon's metrics."""
    client = ServiceNowClient(settings.instance, metrics=client_metrics)
    return open_session(settings, tables=tables, client=client)


class SyncFailed(CsmSyncError):
    """Some tables of a pass failed; the rest were synced and committed."""


def raise_on_failed(results: Sequence[RunResult]) -> None:
    """Turn failed table runs into one error naming each table and its reason."""
    failed = [r for r in results if r.outcome == "failed"]
    if failed:
        details = "; ".join(f"{r.mapping}: {r.error}" for r in failed)
        raise SyncFailed(f"{len(failed)} of {len(results)} tables failed ({details})")


def compute_kpis(settings: Settings, *, as_of: date) -> None:
    """Compute today's KPIs and store them as a snapshot."""
    store = _open_existing(settings)
    try:
        result = compute_kpi_result(store.engine, settings.kpi, as_of=as_of)
        store_snapshot(store.engine, result)
    finally:
        store.dispose()


def writeback(settings: Settings) -> dict[str, int]:
    """Push health onto the accounts; return field writes by outcome.

    Raises:
        WriteBackError: Some writes failed (they are retried by the next run).
    """
    with log_context(table=writeback_table(settings)):
        result = run_writeback(settings)
    outcomes = {
        "written": result.written,
        "failed": result.failed,
        "unchanged_accounts": max(result.accounts - result.sent_accounts, 0),
    }
    if result.failed:
        # Metrics first, so the failed count shows even though the step fails.
        raise PartialWriteback(outcomes, result.failed)
    return outcomes


class PartialWriteback(WriteBackError):
    """Some fields failed; ``outcomes`` still counts what was written."""

    def __init__(self, outcomes: dict[str, int], failed: int) -> None:
        self.outcomes = outcomes
        super().__init__(
            f"{failed} write-back field(s) failed; see the write-back log "
            "(csm-sync writeback --dry-run shows what is pending)"
        )


def export_sync_metrics(
    settings: Settings,
    results: Sequence[RunResult],
    metrics: AgentMetrics,
    *,
    now: datetime,
) -> None:
    """Add row counts from run results and refresh the per-table lag gauges."""
    for result in results:
        metrics.add_rows(
            result.mapping, {name: getattr(result, name) for name in ROW_OUTCOMES}
        )
    for table, seconds in table_lags(settings, now=now):
        metrics.set_lag(table, seconds)


def table_lags(settings: Settings, *, now: datetime) -> Iterable[tuple[str, float]]:
    """Seconds between ``now`` and the window end of each table's last good run."""
    store = _open_existing(settings)
    try:
        with store.engine.connect() as conn:
            rows = conn.execute(
                select(SyncRun.mapping, func.max(SyncRun.window_end))
                .where(SyncRun.outcome == "ok", SyncRun.window_end.is_not(None))
                .where(SyncRun.mode.in_(SYNC_MODES))
                .group_by(SyncRun.mapping)
            ).all()
    finally:
        store.dispose()
    for table, window_end in rows:
        end = window_end if window_end.tzinfo else window_end.replace(tzinfo=UTC)
        yield table, (now - end).total_seconds()
