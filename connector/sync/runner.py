"""Entry points: incremental sync, backfill, reconciliation and check, per table.

Each table run is recorded in ``sync_run`` and ends with one INFO summary line.
A failing table does not stop the others, except errors that concern the whole
instance (rate-limit ceiling, authentication): those stop the pass, after the
pages in hand are committed, with a message saying how to resume.
"""

from __future__ import annotations

import json
import logging
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from pathlib import Path

from sqlalchemy import delete, select
from sqlalchemy.exc import SQLAlchemyError

from connector.config import Settings
from connector.errors import (
    AuthError,
    CsmSyncError,
    RateLimitCeilingError,
)
from connector.logs import log_context
from connector.mapping.loader import load_mappings
from connector.servicenow.client import ServiceNowClient
from connector.servicenow.metrics import ClientMetrics
from connector.store.engine import Store, dialect_insert, open_store
from connector.store.state import MetadataCache
from connector.sync import checkpoints
from connector.sync.prepare import PreparedMapping, prepare
from connector.sync.pull import RunStats

log = logging.getLogger(__name__)

METADATA = MetadataCache.__table__  # type: ignore[attr-defined]

STOPPED_MESSAGE = (
    "stopped on request after committing the pages in hand; run the same "
    "command again to resume"
)

# Errors after which no further table is worth trying in this pass.
STOP_PASS = (RateLimitCeilingError, AuthError)

ProgressCallback = Callable[[str, int], None]


@dataclass
class RunResult:
    """How one table run ended; ``outcome`` is ok, failed or stopped."""

    mapping: str
    source_table: str
    mode: str
    outcome: str
    pages: int = 0
    fetched: int = 0
    inserted: int = 0
    updated: int = 0
    unchanged: int = 0
    deleted: int = 0
    quarantined: int = 0
    retries: int = 0
    seconds: float = 0.0
    error: str | None = None
    window: tuple[datetime | None, datetime | None] = (None, None)

    @property
    def ok(self) -> bool:
        return self.outcome == "ok"


@dataclass
class SyncSession:
    """What one pass needs: settings, the store, a client, prepared mappings."""

    settings: Settings
    store: Store
    client: ServiceNowClient
    prepared: list[PreparedMapping] = field(default_factory=list)

    def close(self) -> None:
        self.client.close()
        self.store.dispose()


def open_session(
    settings: Settings,
    *,
    tables: list[str] | None = None,
    client: ServiceNowClient | None = None,
    store: Store | None = None,
) -> SyncSession:
    """Load mappings, check them against the instance, then open the store.

    The dictionary check reuses the copy saved by the previous pass when the
    instance confirms it unchanged (one request per metadata table).
    """
    mappings = load_mappings(
        settings.mappings_dir, tables=tables or settings.sync.tables
    )
    client = client or ServiceNowClient(settings.instance, metrics=ClientMetrics())
    key = settings.instance.url
    try:
        saved = load_metadata(store, settings.store.url, key)
        adopted = saved is not None and client.adopt_metadata(saved)
        reads = client.metadata_reads
        # An unchecked mapping must neither run nor leave a trace (C09).
        prepared = prepare(client, mappings)
        store = store or open_store(settings.store.url)
    except BaseException:
        client.close()
        raise
    if not adopted or client.metadata_reads != reads:
        save_metadata(store, key, client.metadata_snapshot())
    with store.engine.connect() as conn:
        for each in prepared:
            each.may_have_quarantine = (
                checkpoints.quarantined_count(conn, each.mapping) > 0
            )
    return SyncSession(settings=settings, store=store, client=client, prepared=prepared)


def load_metadata(store: Store | None, url: str, instance: str) -> dict | None:
    """The dictionary snapshot saved for ``instance``, if the store has one.

    Never creates or migrates the store: a failing check must leave no trace.
    """
    if store is None and url.startswith("sqlite:///"):
        path = Path(url.removeprefix("sqlite:///"))
        if not path.is_file():
            return None
    own = store is None
    store = store or open_store(url, migrate=False)
    try:
        with store.engine.connect() as conn:
            text = conn.execute(
                select(METADATA.c.snapshot).where(METADATA.c.instance == instance)
            ).scalar()
    except SQLAlchemyError:
        return None  # a store older than the cache table
    finally:
        if own:
            store.dispose()
    try:
        return json.loads(text) if text else None
    except ValueError:
        return None


def save_metadata(store: Store, instance: str, snapshot: dict | None) -> None:
    """Save (or, with None, forget) the dictionary snapshot of ``instance``.

    The snapshot only saves requests: failing to write it (say, a concurrent
    writer of the same row) is logged, never fatal.
    """
    try:
        with store.write() as conn:
            if snapshot is None:
                conn.execute(delete(METADATA).where(METADATA.c.instance == instance))
                return
            values = {
                "snapshot": json.dumps(snapshot, separators=(",", ":")),
                "saved_at": checkpoints.utcnow(),
            }
            conn.execute(
                dialect_insert(conn)(METADATA)
                .values(instance=instance, **values)
                .on_conflict_do_update(index_elements=["instance"], set_=values)
            )
    except SQLAlchemyError as exc:
        log.warning("Could not save the dictionary snapshot: %s", exc)


def window_end(session: SyncSession) -> datetime:
    """Server time minus the lag, whole seconds: the exclusive end of a window (C02)."""
    now = session.client.server_time().replace(microsecond=0)
    return now - timedelta(seconds=session.settings.sync.lag_seconds)


def run_table(
    session: SyncSession,
    prepared: PreparedMapping,
    mode: str,
    window: tuple[datetime | None, datetime | None],
    body: Callable[[int, RunStats], bool],
) -> RunResult:
    """Run ``body(run_id, stats)`` as one recorded table run.

    ``body`` returns False when it stopped early on request. Errors of one table
    are recorded and returned; an instance-wide error raises :class:`_PassStopped`.
    """
    stats = RunStats()
    retries_before = session.client.metrics.retries
    started = time.monotonic()
    run_id = checkpoints.start_run(session.store, prepared.mapping, mode, window)
    outcome, error, fatal = "ok", None, None
    try:
        if not body(run_id, stats):
            outcome, error = "stopped", STOPPED_MESSAGE
            fatal = _Stopped(STOPPED_MESSAGE)
    except RateLimitCeilingError as exc:
        outcome, error, fatal = "stopped", _resume_message(exc), exc
    except CsmSyncError as exc:
        outcome, error = "failed", str(exc)
        fatal = exc if isinstance(exc, STOP_PASS) else None
    except BaseException as exc:
        # Not ours to handle (a bug, Ctrl-C): record the run, then let it go.
        _record(session, run_id, stats, "failed", f"{type(exc).__name__}: {exc}", 0)
        raise
    retries = session.client.metrics.retries - retries_before
    seconds = round(time.monotonic() - started, 3)
    _record(session, run_id, stats, outcome, error, retries, seconds)
    result = RunResult(
        mapping=prepared.name,
        source_table=prepared.mapping.source,
        mode=mode,
        outcome=outcome,
        pages=stats.pages,
        fetched=stats.fetched,
        inserted=stats.inserted,
        updated=stats.updated,
        unchanged=stats.unchanged,
        deleted=stats.deleted,
        quarantined=stats.quarantined,
        retries=retries,
        seconds=seconds,
        error=error,
        window=window,
    )
    log_summary(result)
    if fatal is not None:
        raise _PassStopped(result, fatal)
    return result


def _record(
    session: SyncSession,
    run_id: int,
    stats: RunStats,
    outcome: str,
    error: str | None,
    retries: int,
    seconds: float | None = None,
) -> None:
    checkpoints.finish_run(
        session.store,
        run_id,
        outcome=outcome,
        error=error,
        retries=retries,
        duration_seconds=seconds,
        **stats.as_columns(),
    )


class _Stopped(CsmSyncError):
    """Internal: a stop was requested; the pages in hand were committed."""


class _PassStopped(Exception):
    """Internal: a table ended with an error that stops the whole pass."""

    def __init__(self, result: RunResult, cause: BaseException) -> None:
        self.result = result
        self.cause = cause
        super().__init__(str(cause))


def _resume_message(exc: RateLimitCeilingError) -> str:
    return (
        f"{exc} Progress is checkpointed; resume later (after about "
        f"{int(exc.retry_after)} s) by running the same command again."
    )


def log_summary(result: RunResult) -> None:
    """The one INFO line per table per run."""
    level = logging.INFO if result.ok else logging.WARNING
    log.log(
        level,
        "Synced %r mode=%s outcome=%s rows in=%d up=%d del=%d quarantined=%d "
        "fetched=%d pages=%d retries=%d seconds=%.1f%s",
        result.mapping,
        result.mode,
        result.outcome,
        result.inserted,
        result.updated,
        result.deleted,
        result.quarantined,
        result.fetched,
        result.pages,
        result.retries,
        result.seconds,
        f" error={result.error}" if result.error else "",
    )


def run_each(
    session: SyncSession, step: Callable[[PreparedMapping], RunResult]
) -> list[RunResult]:
    """Run ``step`` per mapping; stop the pass on an instance-wide error."""
    results = []
    for prepared in session.prepared:
        try:
            # Every log line of this table's run names it (connector.logs).
            with log_context(table=prepared.name):
                results.append(step(prepared))
        except _PassStopped as stopped:
            results.append(stopped.result)
            break
    return results
