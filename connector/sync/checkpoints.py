"""Reading and writing the sync's own tables: cursors, slices, runs, quarantine.

Functions taking a ``Connection`` run inside the caller's transaction, so a page's
rows and the cursor that covers them commit together (DESIGN: Sync).
"""

from __future__ import annotations

from collections.abc import Iterable
from datetime import UTC, datetime

from sqlalchemy import Connection, delete, func, select, update

from connector.mapping.model import Mapping
from connector.mapping.rows import RowProblem
from connector.servicenow.models import Cursor
from connector.store.engine import Store, dialect_insert
from connector.store.state import BackfillSlice, QuarantinedRow, SyncRun, SyncState

STATE = SyncState.__table__  # type: ignore[attr-defined]
SLICE = BackfillSlice.__table__  # type: ignore[attr-defined]
RUN = SyncRun.__table__  # type: ignore[attr-defined]
QUARANTINE = QuarantinedRow.__table__  # type: ignore[attr-defined]


def utcnow() -> datetime:
    return datetime.now(UTC)


# --- sync_state -------------------------------------------------------------


def load_state(store: Store, mapping: Mapping) -> SyncState:
    """The mapping's state row (a blank one when it never ran)."""
    with store.engine.connect() as conn:
        row = conn.execute(select(STATE).where(STATE.c.mapping == mapping.name)).first()
    if row is None:
        return SyncState(mapping=mapping.name, source_table=mapping.source)
    return SyncState.model_validate(row._asdict())


def save_state(conn: Connection, mapping: Mapping, **values: object) -> None:
    """Create or update the mapping's state row with ``values``."""
    statement = dialect_insert(conn)(STATE).values(
        mapping=mapping.name, source_table=mapping.source, **values
    )
    conn.execute(
        statement.on_conflict_do_update(index_elements=["mapping"], set_=values)
    )


def save_cursor(conn: Connection, mapping: Mapping, cursor: Cursor) -> None:
    """Advance the incremental cursor to the last stored row (same transaction)."""
    save_state(conn, mapping, cursor_ts=cursor[0], cursor_sys_id=cursor[1])


def cursor_of(state: SyncState) -> Cursor | None:
    if state.cursor_ts is None:
        return None
    return (as_utc(state.cursor_ts), state.cursor_sys_id or "")


def delete_cursor_of(state: SyncState) -> Cursor | None:
    if state.delete_cursor_ts is None:
        return None
    return (as_utc(state.delete_cursor_ts), state.delete_cursor_sys_id or "")


def as_utc(moment: datetime) -> datetime:
    """The datetime as timezone-aware UTC (stores return UTC; be sure of it)."""
    return moment if moment.tzinfo else moment.replace(tzinfo=UTC)


# --- backfill slices ----------------------------------------------------------


def open_slices(store: Store, mapping: Mapping) -> list[BackfillSlice]:
    """Slices of the mapping's unfinished backfill job (empty when none)."""
    slices = job_slices(store, mapping)
    return slices if any(not s.done for s in slices) else []


def job_slices(store: Store, mapping: Mapping) -> list[BackfillSlice]:
    """Slices of the mapping's latest backfill job, finished or not."""
    with store.engine.connect() as conn:
        rows = conn.execute(
            select(SLICE)
            .where(SLICE.c.mapping == mapping.name)
            .order_by(SLICE.c.slice_start)
        ).all()
    return [BackfillSlice.model_validate(r._asdict()) for r in rows]


def create_slices(
    store: Store,
    mapping: Mapping,
    since: datetime,
    until: datetime,
    bounds: Iterable[tuple[datetime, datetime]],
) -> None:
    """Replace any previous job of the mapping by a new one with these slices."""
    with store.write() as conn:
        conn.execute(delete(SLICE).where(SLICE.c.mapping == mapping.name))
        rows = list(bounds)
        if not rows:
            return
        conn.execute(
            SLICE.insert(),
            [
                {
                    "mapping": mapping.name,
                    "job_since": since,
                    "job_until": until,
                    "slice_start": start,
                    "slice_end": end,
                    "rows": 0,
                    "done": False,
                }
                for start, end in rows
            ],
        )


def save_slice_cursor(
    conn: Connection, slice_id: int, cursor: Cursor, rows: int
) -> None:
    conn.execute(
        update(SLICE)
        .where(SLICE.c.id == slice_id)
        .values(cursor_ts=cursor[0], cursor_sys_id=cursor[1], rows=SLICE.c.rows + rows)
    )


def finish_slice(store: Store, slice_id: int) -> None:
    with store.write() as conn:
        conn.execute(update(SLICE).where(SLICE.c.id == slice_id).values(done=True))


# --- quarantine ---------------------------------------------------------------


def quarantine(
    conn: Connection,
    mapping: Mapping,
    bad: dict[str, list[RowProblem]],
    *,
    run_id: int | None,
) -> None:
    """Record (or refresh) every problem of every bad row."""
    if not bad:
        return
    now = utcnow()
    rows = [
        {
            "mapping": mapping.name,
            "source_table": mapping.source,
            "sys_id": sys_id,
            "field": p.field,
            "raw_value": p.raw_value,
            "reason": p.reason,
            "run_id": run_id,
            "seen_at": now,
        }
        for sys_id, problems in bad.items()
        for p in {p.field: p for p in problems}.values()
    ]
    statement = dialect_insert(conn)(QUARANTINE)
    conn.execute(
        statement.on_conflict_do_update(
            index_elements=["mapping", "sys_id", "field"],
            set_={
                c: statement.excluded[c]
                for c in ("raw_value", "reason", "run_id", "seen_at")
            },
        ),
        rows,
    )


def release(conn: Connection, mapping: Mapping, sys_ids: list[str]) -> None:
    """Forget quarantine entries of rows that now mapped cleanly."""
    for start in range(0, len(sys_ids), 500):
        conn.execute(
            delete(QUARANTINE).where(
                QUARANTINE.c.mapping == mapping.name,
                QUARANTINE.c.sys_id.in_(sys_ids[start : start + 500]),
            )
        )


def quarantined_count(conn: Connection, mapping: Mapping) -> int:
    query = select(func.count(func.distinct(QUARANTINE.c.sys_id))).where(
        QUARANTINE.c.mapping == mapping.name
    )
    return int(conn.execute(query).scalar() or 0)


# --- sync_run -------------------------------------------------------------------


def start_run(
    store: Store,
    mapping: Mapping,
    mode: str,
    window: tuple[datetime | None, datetime | None],
) -> int:
    with store.write() as conn:
        result = conn.execute(
            RUN.insert().values(
                mapping=mapping.name,
                source_table=mapping.source,
                mode=mode,
                window_start=window[0],
                window_end=window[1],
                started_at=utcnow(),
                outcome="running",
            )
        )
        return int(result.inserted_primary_key[0])


def finish_run(store: Store, run_id: int, **values: object) -> None:
    with store.write() as conn:
        conn.execute(
            update(RUN).where(RUN.c.id == run_id).values(finished_at=utcnow(), **values)
        )


def last_runs(store: Store, *, good_only: bool = False) -> dict[str, SyncRun]:
    """The latest run of each mapping (only successful windows with ``good_only``)."""
    latest = select(RUN.c.mapping, func.max(RUN.c.id).label("id"))
    if good_only:
        latest = latest.where(RUN.c.outcome == "ok", RUN.c.window_end.is_not(None))
    latest = latest.group_by(RUN.c.mapping).subquery()
    with store.engine.connect() as conn:
        rows = conn.execute(select(RUN).join(latest, RUN.c.id == latest.c.id)).all()
    return {r.mapping: SyncRun.model_validate(r._asdict()) for r in rows}
