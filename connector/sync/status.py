"""``csm-sync status``: what each mapped table holds and how its last run went."""

from __future__ import annotations

from dataclasses import asdict, dataclass
from datetime import datetime

from rich.console import Console
from rich.measure import Measurement
from rich.table import Table
from sqlalchemy import func, select

from connector.config import Settings
from connector.mapping.loader import load_mappings
from connector.mapping.model import Mapping
from connector.store.engine import Store, open_store
from connector.store.models import CANONICAL_MODELS
from connector.sync import checkpoints


@dataclass
class TableStatus:
    """One line of ``status``."""

    mapping: str
    source_table: str
    store_table: str
    rows: int
    deleted: int
    quarantined: int
    cursor: str | None
    lag_seconds: int | None
    last_run_mode: str | None
    last_run_outcome: str | None
    last_run_finished: str | None
    last_run_error: str | None
    backfill_pending: bool

    def as_dict(self) -> dict[str, object]:
        return asdict(self)


def collect_status(settings: Settings) -> list[TableStatus]:
    """Status of every mapping, read from the store only (no instance call)."""
    mappings = load_mappings(settings.mappings_dir, tables=settings.sync.tables)
    store = open_store(settings.store.url)
    try:
        runs = checkpoints.last_runs(store)
        good = checkpoints.last_runs(store, good_only=True)
        return [_status(store, m, runs.get(m.name), good.get(m.name)) for m in mappings]
    finally:
        store.dispose()


def _status(
    store: Store,
    mapping: Mapping,
    run: checkpoints.SyncRun | None,
    good: checkpoints.SyncRun | None,
) -> TableStatus:
    table = CANONICAL_MODELS[mapping.target].__table__  # type: ignore[attr-defined]
    with store.engine.connect() as conn:
        live = conn.execute(
            select(func.count()).select_from(table).where(table.c.deleted_at.is_(None))
        ).scalar()
        gone = conn.execute(
            select(func.count())
            .select_from(table)
            .where(table.c.deleted_at.is_not(None))
        ).scalar()
        quarantined = checkpoints.quarantined_count(conn, mapping)
    state = checkpoints.load_state(store, mapping)
    cursor = checkpoints.cursor_of(state)
    return TableStatus(
        mapping=mapping.name,
        source_table=mapping.source,
        store_table=mapping.target,
        rows=int(live or 0),
        deleted=int(gone or 0),
        quarantined=quarantined,
        cursor=_iso(cursor[0]) if cursor else None,
        lag_seconds=_lag(good),
        last_run_mode=run.mode if run else None,
        last_run_outcome=run.outcome if run else None,
        last_run_finished=_iso(run.finished_at) if run and run.finished_at else None,
        last_run_error=run.error if run else None,
        backfill_pending=bool(checkpoints.open_slices(store, mapping)),
    )


def _lag(good: checkpoints.SyncRun | None) -> int | None:
    """How far the store trails the instance: now minus the last good window's end.

    Not the age of the newest row: a quiet table that is fully synced has old rows
    but no lag (the same figure as the daemon's ``lag_seconds`` metric).
    """
    if good is None or good.window_end is None:
        return None
    behind = checkpoints.utcnow() - checkpoints.as_utc(good.window_end)
    return max(int(behind.total_seconds()), 0)


def _iso(moment: datetime) -> str:
    return checkpoints.as_utc(moment).strftime("%Y-%m-%d %H:%M:%S")


COLUMNS = (
    ("mapping", "left"),
    ("rows", "right"),
    ("deleted", "right"),
    ("quarantined", "right"),
    ("cursor (UTC)", "left"),
    ("lag", "right"),
    ("last run", "left"),
)


def render_table(rows: list[TableStatus], console: Console | None = None) -> None:
    """Print the status as a table."""
    table = Table(title="csm-sync status")
    for header, justify in COLUMNS:
        table.add_column(header, justify=justify, no_wrap=header == "mapping")
    for row in rows:
        table.add_row(
            row.mapping,
            f"{row.rows:,}",
            f"{row.deleted:,}",
            f"{row.quarantined:,}",
            row.cursor or "-",
            _duration(row.lag_seconds),
            _last_run(row),
        )
    console = console or Console()
    unbounded = console.options.update_width(10_000)
    if Measurement.get(console, unbounded, table).maximum > console.width:
        # Too narrow for the table without cutting numbers to "…": one block
        # per mapping instead.
        _render_blocks(rows, console)
    else:
        console.print(table)


def _render_blocks(rows: list[TableStatus], console: Console) -> None:
    console.print("csm-sync status", style="bold")
    for row in rows:
        console.print(
            f"[bold]{row.mapping}[/bold]: {row.rows:,} rows, {row.deleted:,} "
            f"deleted, {row.quarantined:,} quarantined",
            highlight=False,
        )
        cursor = f"cursor {row.cursor} UTC" if row.cursor else "no cursor yet"
        console.print(f"  {cursor}, lag {_duration(row.lag_seconds)}", highlight=False)
        console.print(f"  last run: {_last_run(row)}", highlight=False)


def _last_run(row: TableStatus) -> str:
    if not row.last_run_mode:
        return "never"
    text = f"{row.last_run_mode} {row.last_run_outcome}"
    if row.last_run_finished:
        text += f" at {row.last_run_finished}"
    if row.backfill_pending:
        text += ", backfill to resume"
    return text


def _duration(seconds: int | None) -> str:
    if seconds is None:
        return "-"
    if seconds < 120:
        return f"{seconds}s"
    if seconds < 7200:
        return f"{seconds // 60}m"
    if seconds < 172800:
        return f"{seconds // 3600}h"
    return f"{seconds // 86400}d"
