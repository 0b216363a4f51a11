"""Backfill: the incremental engine over ``[since, until)``, in parallel time slices.

Each slice is pulled by a worker thread with its own HTTP session (a client
clone); every page commits with the slice's cursor, so a killed backfill resumes
inside the slice it was in. When every slice is done the job is dropped and the
incremental cursor starts at the job's ``until``.
"""

from __future__ import annotations

import contextvars
import logging
import threading
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta
from itertools import pairwise
from typing import Protocol

from sqlalchemy import Connection

from connector.config import Settings
from connector.errors import UsageError
from connector.servicenow.client import ServiceNowClient
from connector.servicenow.models import Cursor
from connector.servicenow.pager import KeysetPager
from connector.servicenow.query import Q
from connector.servicenow.values import parse_datetime_utc
from connector.store.state import BackfillSlice
from connector.sync import checkpoints
from connector.sync.full import full_table
from connector.sync.prepare import PreparedMapping
from connector.sync.pull import RunStats, Window, pull_window
from connector.sync.runner import (
    RunResult,
    SyncSession,
    open_session,
    run_each,
    run_table,
    window_end,
)

log = logging.getLogger(__name__)

# Time slices when the instance gives no X-Total-Count to balance them by.
DEFAULT_SLICE_DAYS = 30


class BackfillProgress(Protocol):
    """Receives progress per table (the CLI draws it with rich or logs it)."""

    def start(self, table: str, total: int | None) -> None: ...

    def advance(self, table: str, rows: int) -> None: ...

    def finish(self, table: str) -> None: ...


@dataclass
class Job:
    """A backfill job of one mapping: its bounds and slices."""

    since: datetime
    until: datetime
    slices: list[BackfillSlice]
    # Finished earlier in the interrupted backfill this call resumes.
    already_done: bool = False
    # Rows in [since, until) when the job was planned (X-Total-Count), if known.
    total: int | None = None


def run_backfill(
    settings: Settings,
    *,
    tables: list[str] | None = None,
    since: datetime | None = None,
    until: datetime | None = None,
    workers: int | None = None,
    progress: BackfillProgress | None = None,
    stop_event: threading.Event | None = None,
    session: SyncSession | None = None,
) -> list[RunResult]:
    """Backfill every mapped table (or ``tables``) over ``[since, until)``.

    When an earlier call was interrupted (killed, stopped, failed), calling
    again without bounds resumes it: unfinished tables continue from their
    checkpoints and tables it had finished are not read again. Otherwise every
    table gets a new backfill. ``since`` defaults to
    ``sync.backfill_since``, else the table's oldest row; ``until`` to the
    instance's clock minus ``sync.lag_seconds``.

    Raises:
        MappingError: a mapping is invalid or names a field the instance lacks.
        UsageError: ``since`` is not before ``until``.
    """
    if since and until and since >= until:
        raise UsageError(f"--since {since:%Y-%m-%d %H:%M:%S} must be before --until")
    own = session is None
    session = session or open_session(settings, tables=tables)
    count = workers or settings.sync.workers
    resuming = since is None and until is None and _interrupted(session)
    try:
        return run_each(
            session,
            lambda p: backfill_table(
                session,
                p,
                since=since,
                until=until,
                workers=count,
                progress=progress,
                stop_event=stop_event,
                resuming=resuming,
            ),
        )
    finally:
        if own:
            session.close()


def backfill_table(
    session: SyncSession,
    prepared: PreparedMapping,
    *,
    since: datetime | None,
    until: datetime | None,
    workers: int,
    progress: BackfillProgress | None = None,
    stop_event: threading.Event | None = None,
    resuming: bool = False,
) -> RunResult:
    """Backfill one table, resuming its unfinished job when bounds allow."""
    if prepared.mapping.mode == "full":
        return full_table(session, prepared, "backfill", stop_event=stop_event)
    job = plan_job(session, prepared, since, until, resuming=resuming, workers=workers)

    def body(run_id: int, stats: RunStats) -> bool:
        if job.already_done:
            log.info(
                "Backfill of %r already finished before the interruption", prepared.name
            )
            return True
        pending = [s for s in job.slices if not s.done]
        if progress:
            left = (
                job.total
                if job.total is not None
                else _remaining(session, prepared, job)
            )
            progress.start(prepared.name, left)
        try:
            done = _run_slices(
                session, prepared, pending, workers, stats, run_id, progress, stop_event
            )
        finally:
            if progress:
                progress.finish(prepared.name)
        if done:
            finish_job(session, prepared, job)
            if job.total is not None:
                warn_if_rows_missing(prepared.name, job.total, stats.fetched)
        return done

    return run_table(session, prepared, "backfill", (job.since, job.until), body)


# Rows a finished backfill may come up short of its planned count before that is
# worth a warning: a few rows updated or deleted while it ran are normal.
SHORTFALL_WARN_RATIO = 0.01
SHORTFALL_WARN_ROWS = 10


def warn_if_rows_missing(table: str, counted: int, fetched: int) -> int:
    """Warn when a backfill got clearly fewer rows than the instance counted.

    ``X-Total-Count`` ignores ACLs while the rows themselves are filtered by them
    (TABLE_API §5.2), so an integration user without read access to some rows
    gets an ``ok`` run with a silent gap. Rows updated while the backfill ran
    also leave its window (the next sync brings them back), and deleted rows are
    gone, so only a shortfall above 1% (and 10 rows) is reported. Returns the
    shortfall.
    """
    missing = counted - fetched
    if missing > max(SHORTFALL_WARN_ROWS, counted * SHORTFALL_WARN_RATIO):
        log.warning(
            "Backfill of %r got %d of the %d rows the instance counted; %d "
            "(%.0f%%) did not come back. Most likely access controls (ACLs) hide "
            "them from this user: grant it read access to every row, or the "
            "store and its KPIs will miss them. Rows updated or deleted during "
            "the backfill also leave its window (updated ones return with the "
            "next sync).",
            table,
            fetched,
            counted,
            missing,
            100 * missing / counted,
        )
    return missing


def plan_job(
    session: SyncSession,
    prepared: PreparedMapping,
    since: datetime | None,
    until: datetime | None,
    *,
    resuming: bool = False,
    workers: int = 1,
) -> Job:
    """Resume the mapping's unfinished job, or slice a new one."""
    slices = checkpoints.job_slices(session.store, prepared.mapping)
    unfinished = any(not s.done for s in slices)
    if slices and (unfinished or resuming):
        first = slices[0]
        job_since, job_until = (
            checkpoints.as_utc(first.job_since),
            checkpoints.as_utc(first.job_until),
        )
        if (since is None or since == job_since) and (
            until is None or until == job_until
        ):
            if unfinished:
                log.info(
                    "Resuming the backfill of %r over [%s, %s)",
                    prepared.name,
                    job_since,
                    job_until,
                )
            return Job(job_since, job_until, slices, already_done=not unfinished)

    job_until = _safe_until(session, until)
    floor = since or _configured_since(session.settings)
    survey = _survey(session, prepared, floor, job_until)
    job_since = min(floor or survey.oldest or job_until, job_until)
    days = session.settings.sync.slice_days
    if days is not None or survey.total is None:
        bounds = split_slices(job_since, job_until, days or DEFAULT_SLICE_DAYS)
    else:
        cuts = _balanced_cuts(session, prepared, survey, job_since, job_until, workers)
        bounds = list(pairwise([job_since, *cuts, job_until]))
    checkpoints.create_slices(
        session.store, prepared.mapping, job_since, job_until, bounds
    )
    return Job(
        job_since,
        job_until,
        checkpoints.job_slices(session.store, prepared.mapping),
        total=survey.total,
    )


def split_slices(
    since: datetime, until: datetime, days: int
) -> list[tuple[datetime, datetime]]:
    """``[since, until)`` cut into consecutive slices of ``days`` days."""
    step, bounds, start = timedelta(days=days), [], since
    while start < until:
        end = min(start + step, until)
        bounds.append((start, end))
        start = end
    return bounds


def slice_offsets(
    total: int, page_size: int, workers: int, max_pages: int
) -> list[int]:
    """Row offsets where count-balanced slices start (the first, 0, left out).

    At least one slice per worker (a multiple of the worker count, so the last
    round keeps every worker busy), at most ``max_pages`` pages each, and every
    slice a whole number of pages: only its last page can be short.
    """
    pages = -(-total // page_size)
    if pages <= 1 or (workers <= 1 and pages <= max_pages):
        return []
    count = max(workers, -(-pages // max_pages))
    count = -(-count // workers) * workers
    step = -(-pages // count) * page_size
    return list(range(step, total, step))


@dataclass
class _Survey:
    """What one counted request says about a table's backfill window."""

    oldest: datetime | None
    total: int | None
    query: str


def _survey(
    session: SyncSession,
    prepared: PreparedMapping,
    since: datetime | None,
    until: datetime,
) -> _Survey:
    """The window's oldest cursor value (whole second) and row count, one request."""
    mapping = prepared.mapping
    bounds = [Q.gte(mapping.cursor, since)] if since else []
    query = Q.and_(Q.raw(mapping.filter), *bounds, Q.lt(mapping.cursor, until))
    ordered = Q.and_(query, Q.order_by(mapping.cursor, "sys_id")).encode()
    page = session.client.get_page(
        mapping.source,
        query=ordered,
        fields=[mapping.cursor, "sys_id"],
        limit=1,
        count=True,
    )
    total = page.total
    if page.rows:
        oldest = parse_datetime_utc(page.rows[0].get(mapping.cursor))
    elif total == 0:
        oldest = None
    else:
        # Rows (or no X-Total-Count to say) but none visible on a one-row page:
        # the oldest is hidden by an ACL. Start at the oldest row this user can
        # read; starting at the epoch would cut decades of empty day slices.
        oldest = _oldest_visible(session, prepared, query.encode(), until)
    return _Survey(
        oldest=oldest.replace(microsecond=0) if oldest else None,
        total=total,
        query=ordered,
    )


def _oldest_visible(
    session: SyncSession, prepared: PreparedMapping, query: str, until: datetime
) -> datetime | None:
    """The cursor value of the window's oldest readable row (the pager steps over
    pages of rows ACLs hide); None when the user can read none of them."""
    mapping = prepared.mapping
    pager = KeysetPager(
        session.client,
        mapping.source,
        base_query=query,
        fields=[mapping.cursor],
        page_size=session.settings.instance.page_size,
        since=None,
        until=until,
        cursor_field=mapping.cursor,
    )
    first = next(iter(pager), None)
    if first is None:
        return None
    return parse_datetime_utc(first.rows[0].get(mapping.cursor))


def _balanced_cuts(
    session: SyncSession,
    prepared: PreparedMapping,
    survey: _Survey,
    since: datetime,
    until: datetime,
    workers: int,
) -> list[datetime]:
    """Slice boundaries holding about equal row counts, read in parallel.

    The cursor value of the row at each boundary offset (one-row requests on the
    workers' own sessions). Rows sharing a second stay in one slice, so slices
    differ by the ties at their edges; an unreadable boundary is skipped.
    """
    settings = session.settings
    offsets = slice_offsets(
        survey.total or 0,
        settings.instance.page_size,
        workers,
        settings.sync.slice_pages,
    )
    if not offsets:
        return []
    mapping = prepared.mapping
    local = threading.local()
    clients: list[ServiceNowClient] = []
    lock = threading.Lock()

    def stamp_at(offset: int) -> datetime | None:
        if not hasattr(local, "client"):
            local.client = session.client.clone()
            with lock:
                clients.append(local.client)
        page = local.client.get_page(
            mapping.source,
            query=survey.query,
            fields=[mapping.cursor],
            limit=1,
            offset=offset,
        )
        if not page.rows:
            return None
        found = parse_datetime_utc(page.rows[0].get(mapping.cursor))
        return found.replace(microsecond=0) if found else None

    try:
        with ThreadPoolExecutor(
            max_workers=min(len(offsets), max(1, workers)),
            thread_name_prefix="backfill-plan",
        ) as pool:
            # A context copy per request, made here: log lines keep the table.
            futures = [
                pool.submit(contextvars.copy_context().run, stamp_at, offset)
                for offset in offsets
            ]
            stamps = [future.result() for future in futures]
    finally:
        for each in clients:
            each.close()
    cuts = sorted({s for s in stamps if s is not None and since < s < until})
    log.debug("Slices of %r start at %s", prepared.name, cuts)
    return cuts


def _safe_until(session: SyncSession, until: datetime | None) -> datetime:
    """``until``, but never later than the instance's clock minus the lag.

    Rows can still enter a window that reaches the present, and paging stops
    once the rows counted at its start are read (see the pager).
    """
    end = window_end(session)
    if until is None or until <= end:
        return until or end
    log.warning(
        "--until %s is later than the instance's clock minus the sync lag; "
        "backfilling up to %s instead",
        until,
        end,
    )
    return end


def _configured_since(settings: Settings) -> datetime | None:
    day: date | None = settings.sync.backfill_since
    return datetime.combine(day, time(), tzinfo=UTC) if day else None


def _remaining(session: SyncSession, prepared: PreparedMapping, job: Job) -> int | None:
    """Rows left to pull (X-Total-Count of the job window minus stored slice rows)."""
    mapping = prepared.mapping
    query = Q.and_(
        Q.raw(mapping.filter),
        Q.gte(mapping.cursor, job.since),
        Q.lt(mapping.cursor, job.until),
    ).encode()
    try:
        page = session.client.get_page(
            mapping.source, query=query, fields=["sys_id"], limit=1, count=True
        )
    except Exception:
        return None
    done = sum(s.rows for s in job.slices)
    return None if page.total is None else max(page.total - done, 0)


class _EitherEvent:
    """Set when the caller's stop event or the pass's abort event is set."""

    def __init__(self, *events: threading.Event | None) -> None:
        self.events = [e for e in events if e is not None]

    def is_set(self) -> bool:
        return any(e.is_set() for e in self.events)


def _run_slices(
    session: SyncSession,
    prepared: PreparedMapping,
    pending: list[BackfillSlice],
    workers: int,
    stats: RunStats,
    run_id: int,
    progress: BackfillProgress | None,
    stop_event: threading.Event | None,
) -> bool:
    """Pull the pending slices on ``workers`` threads; False when stopped early."""
    abort = threading.Event()
    stop = _EitherEvent(stop_event, abort)
    local = threading.local()
    clients: list[ServiceNowClient] = []
    lock = threading.Lock()

    def client() -> ServiceNowClient:
        if not hasattr(local, "client"):
            local.client = session.client.clone()
            with lock:
                clients.append(local.client)
        return local.client

    def work(piece: BackfillSlice) -> bool:
        if stop.is_set():
            return False
        try:
            return _pull_slice(
                session, prepared, piece, client(), stats, run_id, progress, stop
            )
        except BaseException:
            abort.set()
            raise

    try:
        with ThreadPoolExecutor(
            max_workers=max(1, workers), thread_name_prefix="backfill"
        ) as pool:
            # Each worker runs in a copy of this context: log lines keep the table.
            futures = [
                pool.submit(contextvars.copy_context().run, work, piece)
                for piece in pending
            ]
            outcomes = [_result_or_error(f) for f in futures]
    finally:
        for each in clients:
            each.close()
    errors = [o for o in outcomes if isinstance(o, BaseException)]
    if errors:
        raise errors[0]
    return all(outcomes)


def _result_or_error(future):  # type: ignore[no-untyped-def]
    try:
        return future.result()
    except BaseException as exc:
        return exc


def _pull_slice(
    session: SyncSession,
    prepared: PreparedMapping,
    piece: BackfillSlice,
    client: ServiceNowClient,
    stats: RunStats,
    run_id: int,
    progress: BackfillProgress | None,
    stop: _EitherEvent,
) -> bool:
    since: Cursor = (
        (checkpoints.as_utc(piece.cursor_ts), piece.cursor_sys_id or "")
        if piece.cursor_ts is not None
        else (checkpoints.as_utc(piece.slice_start), "")
    )
    slice_id = int(piece.id or 0)

    def checkpoint(conn: Connection, cursor: Cursor, rows: int) -> None:
        checkpoints.save_slice_cursor(conn, slice_id, cursor, rows)

    advance: Callable[[str, int], None] | None = progress.advance if progress else None
    done = pull_window(
        client=client,
        store=session.store,
        prepared=prepared,
        window=Window(since=since, until=checkpoints.as_utc(piece.slice_end)),
        page_size=session.settings.instance.page_size,
        stats=stats,
        checkpoint=checkpoint,
        run_id=run_id,
        stop_event=stop,  # type: ignore[arg-type]
        progress=advance,
        batch_size=session.settings.store.batch_size,
    )
    if done:
        checkpoints.finish_slice(session.store, slice_id)
    return done


def _interrupted(session: SyncSession) -> bool:
    """True when some selected table has an unfinished backfill job."""
    return any(
        checkpoints.open_slices(session.store, p.mapping)
        for p in session.prepared
        if p.mapping.mode != "full"
    )


def finish_job(session: SyncSession, prepared: PreparedMapping, job: Job) -> None:
    """Start incremental sync and delete audit at the finished job's ``until``.

    The job's slices stay (all done) so that resuming an interrupted backfill
    skips this table; the next new backfill replaces them.
    """
    state = checkpoints.load_state(session.store, prepared.mapping)
    cursor = checkpoints.cursor_of(state)
    values: dict[str, object] = {}
    # Move the cursor only when no gap opens between it and the backfilled range.
    if cursor is None or job.since <= cursor[0] < job.until:
        values.update(cursor_ts=job.until, cursor_sys_id="")
    if state.delete_cursor_ts is None:
        values.update(delete_cursor_ts=job.until, delete_cursor_sys_id="")
    if state.last_reconcile_at is None:
        values.update(last_reconcile_at=checkpoints.utcnow())
    if values:
        with session.store.write() as conn:
            checkpoints.save_state(conn, prepared.mapping, **values)
