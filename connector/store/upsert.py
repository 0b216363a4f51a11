"""Upserts by ``sys_id``, counting inserted, updated and unchanged rows.

Rows are compared with what is stored before writing, so an unchanged row is
never rewritten and a re-sync reports honestly what changed. A stored row with a
newer ``sys_updated_on`` is never overwritten by an older version (a backfill
slice fetched before an incremental page landed).

Every fetched row passes through here, so the statements skip SQLAlchemy's
per-value bind processing: each row is turned once into the tuple of values the
driver stores (on SQLite the text SQLAlchemy would have written for a date-time,
1/0 for a boolean, JSON text), with SQLAlchemy's own bind processor for any value
outside the fast cases, and that one tuple is both compared and written.
Statements run through ``exec_driver_sql`` so driver errors still arrive as
SQLAlchemy exceptions.
"""

from __future__ import annotations

import weakref
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, date, datetime
from functools import lru_cache
from operator import itemgetter
from typing import Any

from sqlalchemy import Column, Connection, Table
from sqlalchemy.engine import Dialect
from sqlalchemy.types import JSON, Boolean, Date
from sqlmodel.sql.sqltypes import UTCDateTime

from connector.store.models import SyncedRecord

# SQLite allows 32766 variables per statement; PostgreSQL takes one array.
_SELECT_CHUNK = 500

Decoder = Callable[[Any], Any]


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


@dataclass(frozen=True)
class _Plan:
    """How to read, compare and write one table's rows with one set of columns."""

    table: str
    columns: tuple[str, ...]
    values_of: Callable[[dict[str, Any]], tuple[Any, ...]]
    # The row as the tuple of driver values, in ``columns`` order.
    encode: Callable[[dict[str, Any]], tuple[Any, ...]]
    # Stored value -> the Python value SQLAlchemy would read (None: the same).
    decoders: tuple[Decoder | None, ...]
    upsert_sql: str
    select_sql: Callable[[int], str]
    # SQLite returns stored text and numbers: compare the encoded rows. psycopg
    # returns Python values (aware UTC date-times, dicts for JSON): the rows.
    sqlite: bool
    _selects: dict[int, str] = field(default_factory=dict, compare=False)

    def select(self, count: int) -> str:
        """The SELECT of the stored rows of ``count`` keys (built once per size)."""
        sql = self._selects.get(count)
        if sql is None:
            sql = self._selects[count] = self.select_sql(count)
        return sql


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
    if not unique:
        return counts
    plan = _plan(conn.dialect, table, tuple(unique[0]))
    for start in range(0, len(unique), batch_size):
        counts += _upsert_batch(conn, plan, unique[start : start + batch_size])
    return counts


def _last_per_key(rows: Sequence[dict[str, Any]]) -> list[dict[str, Any]]:
    # ON CONFLICT cannot touch one row twice in one statement (PostgreSQL refuses),
    # and writers locking rows in one global order cannot deadlock each other.
    latest = {row["sys_id"]: row for row in rows}
    return [latest[key] for key in sorted(latest)]


def _upsert_batch(
    conn: Connection, plan: _Plan, rows: list[dict[str, Any]]
) -> UpsertCounts:
    encoded = [plan.encode(row) for row in rows]
    stored = _stored(conn, plan, [row["sys_id"] for row in rows])
    counts = UpsertCounts()
    if not stored:
        # A backfill's usual batch: nothing to compare.
        counts.inserted = len(rows)
        to_write = encoded
    else:
        to_write = []
        for row, new in zip(rows, encoded, strict=True):
            old = stored.get(row["sys_id"])
            if old is None:
                counts.inserted += 1
                to_write.append(new)
            elif _unchanged(plan, old, new, row):
                counts.unchanged += 1
            else:
                counts.updated += 1
                to_write.append(new)
    if to_write:
        conn.exec_driver_sql(plan.upsert_sql, to_write)
    return counts


def _stored(
    conn: Connection, plan: _Plan, keys: list[str]
) -> dict[str, tuple[Any, ...]]:
    stored = {}
    for start in range(0, len(keys), _SELECT_CHUNK):
        chunk = keys[start : start + _SELECT_CHUNK]
        params = tuple(chunk) if plan.sqlite else (chunk,)
        for row in conn.exec_driver_sql(plan.select(len(chunk)), params):
            stored[row[0]] = tuple(row)
    return stored


def _unchanged(
    plan: _Plan, old: tuple[Any, ...], new: tuple[Any, ...], row: dict[str, Any]
) -> bool:
    if old == (new if plan.sqlite else plan.values_of(row)):
        return True
    # Something differs as stored: decide as SQLAlchemy's values would.
    before = {
        column: decode(value) if decode and value is not None else value
        for column, value, decode in zip(plan.columns, old, plan.decoders, strict=True)
    }
    return _is_stale(before, row) or all(_same(before[c], row[c]) for c in plan.columns)


def _is_stale(old: dict[str, Any], new: dict[str, Any]) -> bool:
    before, after = old.get("sys_updated_on"), new.get("sys_updated_on")
    return before is not None and after is not None and after < before


def _same(a: Any, b: Any) -> bool:
    if isinstance(a, datetime) and isinstance(b, datetime):
        return a.timestamp() == b.timestamp()
    return a == b


# --- plans ---------------------------------------------------------------------

_PLANS: weakref.WeakKeyDictionary[Dialect, dict[tuple[str, tuple[str, ...]], _Plan]]
_PLANS = weakref.WeakKeyDictionary()


def _plan(dialect: Dialect, table: Table, columns: tuple[str, ...]) -> _Plan:
    """The cached plan of ``table`` with ``columns`` on this engine's dialect."""
    plans = _PLANS.setdefault(dialect, {})
    plan = plans.get((table.name, columns))
    if plan is None:
        plan = plans[(table.name, columns)] = _build_plan(dialect, table, columns)
    return plan


def _build_plan(dialect: Dialect, table: Table, columns: tuple[str, ...]) -> _Plan:
    if dialect.name not in ("sqlite", "postgresql"):
        raise NotImplementedError(f"upsert is not implemented for {dialect.name!r}")
    sqlite = dialect.name == "sqlite"
    cols = [table.c[name] for name in columns]
    quote = dialect.identifier_preparer.quote
    name, names = quote(table.name), ", ".join(quote(c) for c in columns)
    decoders = tuple(
        column.type._cached_result_processor(dialect, None) if sqlite else None
        for column in cols
    )
    if sqlite:
        marks = ", ".join("?" for _ in cols)

        def select_sql(count: int) -> str:
            keys = ", ".join("?" * count)
            return f"SELECT {names} FROM {name} WHERE sys_id IN ({keys})"

    else:
        marks = ", ".join(
            f"%s::{c.type.compile(dialect)}" if isinstance(c.type, JSON) else "%s"
            for c in cols
        )

        def select_sql(count: int) -> str:
            return f"SELECT {names} FROM {name} WHERE sys_id = ANY(%s)"

    updates = ", ".join(f"{quote(c)} = excluded.{quote(c)}" for c in columns[1:])
    action = f"DO UPDATE SET {updates}" if updates else "DO NOTHING"
    return _Plan(
        table=table.name,
        columns=columns,
        values_of=_getter(columns),
        encode=_row_encoder(cols, dialect),
        decoders=decoders,
        upsert_sql=(
            f"INSERT INTO {name} ({names}) VALUES ({marks}) "
            f"ON CONFLICT (sys_id) {action}"
        ),
        select_sql=select_sql,
        sqlite=sqlite,
    )


def _getter(columns: tuple[str, ...]) -> Callable[[dict[str, Any]], tuple[Any, ...]]:
    if len(columns) == 1:
        (only,) = columns
        return lambda row: (row[only],)
    return itemgetter(*columns)


def _row_encoder(
    cols: list[Column], dialect: Dialect
) -> Callable[[dict[str, Any]], tuple[Any, ...]]:
    """A function turning a row into its driver tuple, generated per plan.

    It runs once per stored row, so each column's conversion is written inline
    (one call per row, not one per value): the common values take a short cut,
    anything else goes through SQLAlchemy's own bind processor ``p<i>``.
    """
    names: dict[str, Any] = {"D": datetime, "DAY": date, "U": UTC}
    names["utc_text"] = _sqlite_utc_text
    items = []
    for i, column in enumerate(cols):
        process = column.type._cached_bind_processor(dialect)
        value = f"row[{column.name!r}]"
        if process is None:
            items.append(value)
            continue
        names[f"p{i}"] = process
        template = _SHORT_CUTS.get((dialect.name, type(column.type)), "p{i}({value})")
        items.append("(" + template.format(i=i, value=value) + ")")
    source = f"def encode(row):\n    return ({', '.join(items)},)\n"
    exec(source, names)  # column names come from the table, quoted by repr
    return names["encode"]


# Per (dialect, column type): a value SQLAlchemy's processor would store as is or
# in a form known here is converted inline; other values go to ``p<i>``.
_SHORT_CUTS = {
    # The text SQLAlchemy's SQLite DATETIME writes for an aware UTC value.
    ("sqlite", UTCDateTime): "None if (v := {value}) is None else utc_text(v)"
    " if v.__class__ is D and v.tzinfo is U else p{i}(v)",
    # psycopg takes an aware UTC value as it is.
    ("postgresql", UTCDateTime): "v if (v := {value}) is None"
    " or (v.__class__ is D and v.tzinfo is U) else p{i}(v)",
    # SQLAlchemy's SQLite DATE text is the ISO date.
    ("sqlite", Date): "None if (v := {value}) is None else v.isoformat()"
    " if v.__class__ is DAY else p{i}(v)",
    # Drivers store a bool as SQLAlchemy's processor would (1/0 on SQLite).
    ("sqlite", Boolean): "v if (v := {value}) is None or v is True or v is False"
    " else p{i}(v)",
    ("postgresql", Boolean): "v if (v := {value}) is None or v is True"
    " or v is False else p{i}(v)",
}


_UTC_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
_NAIVE_EPOCH = datetime(1970, 1, 1)


@lru_cache(maxsize=4096)
def _sqlite_utc_text(value: datetime) -> str:
    # SQLAlchemy's SQLite DATETIME format, 'YYYY-MM-DD HH:MM:SS.ffffff', of an
    # aware UTC value. Cached because a record repeats its stamps and neighbours
    # share them; formatting the naive equivalent skips the slow offset part.
    return (_NAIVE_EPOCH + (value - _UTC_EPOCH)).isoformat(" ", "microseconds")
