"""Upserts by ``sys_id``, counting inserted, updated and unchanged rows.

Rows are compared with what is stored before writing, so an unchanged row is
never rewritten and a re-sync reports honestly what changed. A stored row with a
newer ``sys_updated_on`` is never overwritten by an older version (a backfill
slice fetched before an incremental page landed).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import Connection, Table, select
from sqlalchemy.dialects import postgresql, sqlite

from connector.store.models import SyncedRecord


@dataclass
class UpsertCounts:
    """What an upsert did."""

    inserted: int = 0
    updated: int = 0
    unchanged: int = 0

    def __iadd__(self, other: UpsertCounts) -> UpsertCounts:
        self.inserted += other.inserted
        self.updated += other.updated
        self.unchanged += other.unchanged
        return self


def upsert_rows(
    conn: Connection,
    model: type[SyncedRecord],
    rows: Sequence[dict[str, Any]],
    *,
    batch_size: int = 500,
) -> UpsertCounts:
    """Insert or update ``rows`` (dicts with the same keys, incl. ``sys_id``)."""
    counts = UpsertCounts()
    table: Table = model.__table__  # type: ignore[attr-defined]
    unique = _last_per_key(rows)
    for start in range(0, len(unique), batch_size):
        counts += _upsert_batch(conn, table, unique[start : start + batch_size])
    return counts


def _last_per_key(rows: Sequence[dict[str, Any]]) -> list[dict[str, Any]]:
    # ON CONFLICT cannot touch one row twice in one statement (PostgreSQL refuses),
    # and writers locking rows in one global order cannot deadlock each other.
    latest = {row["sys_id"]: row for row in rows}
    return [latest[key] for key in sorted(latest)]


def _upsert_batch(
    conn: Connection, table: Table, rows: list[dict[str, Any]]
) -> UpsertCounts:
    if not rows:
        return UpsertCounts()
    columns = list(rows[0])
    stored = _stored(conn, table, columns, [row["sys_id"] for row in rows])

    counts = UpsertCounts()
    to_write = []
    for row in rows:
        old = stored.get(row["sys_id"])
        if old is None:
            counts.inserted += 1
            to_write.append(row)
        elif _is_stale(old, row) or all(_same(old[c], row[c]) for c in columns):
            counts.unchanged += 1
        else:
            counts.updated += 1
            to_write.append(row)
    if to_write:
        conn.execute(_upsert_statement(conn, table, columns), to_write)
    return counts


def _stored(
    conn: Connection, table: Table, columns: list[str], keys: list[str]
) -> dict[str, dict[str, Any]]:
    query = select(*(table.c[c] for c in columns)).where(table.c.sys_id.in_(keys))
    return {row.sys_id: row._asdict() for row in conn.execute(query)}


def _is_stale(old: dict[str, Any], new: dict[str, Any]) -> bool:
    before, after = old.get("sys_updated_on"), new.get("sys_updated_on")
    return before is not None and after is not None and after < before


def _same(a: Any, b: Any) -> bool:
    if isinstance(a, datetime) and isinstance(b, datetime):
        return a.timestamp() == b.timestamp()
    return a == b


def _upsert_statement(conn: Connection, table: Table, columns: list[str]) -> Any:
    dialect = conn.dialect.name
    insert = {"postgresql": postgresql.insert, "sqlite": sqlite.insert}.get(dialect)
    if insert is None:
        raise NotImplementedError(f"upsert is not implemented for {dialect!r}")
    statement = insert(table)
    updates = {c: statement.excluded[c] for c in columns if c != "sys_id"}
    return statement.on_conflict_do_update(index_elements=["sys_id"], set_=updates)
