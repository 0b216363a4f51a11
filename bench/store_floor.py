"""The floor of storing rows: SQLite upserts of ready-made tuples, nothing else.

Usage::

    python bench/store_floor.py STORE.db [--batch 1000]

Copies every canonical table of a store csm-sync filled (its rows as they
are stored, already mapped and encoded) into an empty database with the same
schema and indexes, with the statement csm-sync's upsert uses
(``INSERT ... ON CONFLICT(sys_id) DO UPDATE``), one transaction per batch (a
page). The CPU spent per row is what any tool pays to keep rows in this
store, before fetching, parsing or mapping anything: the part of csm-sync's
CPU per row that no change to its Python code can remove. The wall time is
given too: WAL checkpoints wait for fsync, which costs no CPU.
``--wal-autocheckpoint`` tries another checkpoint interval. Prints JSON.
"""

from __future__ import annotations

import argparse
import json
import sqlite3
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

# Bookkeeping tables: not rows of the instance.
SKIP = {"alembic_version", "sync_state", "sync_run", "backfill_slice", "quarantine"}


def canonical_tables(source: sqlite3.Connection) -> list[tuple[str, str]]:
    rows = source.execute(
        "SELECT name, sql FROM sqlite_master WHERE type = 'table' "
        "AND name NOT LIKE 'sqlite_%'"
    ).fetchall()
    return [
        (name, sql)
        for name, sql in rows
        if name not in SKIP and _has_sys_id(source, name)
    ]


def _has_sys_id(source: sqlite3.Connection, table: str) -> bool:
    columns = [r[1] for r in source.execute(f'PRAGMA table_info("{table}")')]
    return "sys_id" in columns


def copy_schema(
    source: sqlite3.Connection,
    target: sqlite3.Connection,
    skip_index: Callable[[str], bool] = lambda _sql: False,
) -> None:
    for (sql,) in source.execute(
        "SELECT sql FROM sqlite_master WHERE sql IS NOT NULL "
        "AND name NOT LIKE 'sqlite_%' ORDER BY type DESC"
    ):
        if sql.upper().startswith("CREATE INDEX") and skip_index(sql):
            continue
        target.execute(sql)


def index_filter(args: argparse.Namespace) -> Callable[[str], bool]:
    """Which secondary indexes (CREATE INDEX, not UNIQUE ones) to leave out."""
    if args.no_secondary_indexes:
        return lambda _sql: True
    columns = tuple(f"({name})" for name in args.without_index_on)
    return lambda sql: sql.rstrip().endswith(columns) if columns else False


def upsert_sql(table: str, columns: list[str]) -> str:
    names = ", ".join(f'"{c}"' for c in columns)
    marks = ", ".join("?" for _ in columns)
    updates = ", ".join(f'"{c}" = excluded."{c}"' for c in columns if c != "sys_id")
    return (
        f'INSERT INTO "{table}" ({names}) VALUES ({marks}) '
        f"ON CONFLICT (sys_id) DO UPDATE SET {updates}"
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("store", type=Path)
    parser.add_argument("--batch", type=int, default=1000)
    parser.add_argument(
        "--wal-autocheckpoint",
        type=int,
        default=None,
        metavar="PAGES",
        help="PRAGMA wal_autocheckpoint (default: SQLite's, 1000 pages)",
    )
    parser.add_argument(
        "--no-secondary-indexes",
        action="store_true",
        help="keep only the sys_id (unique) index: what the other indexes cost",
    )
    parser.add_argument(
        "--without-index-on",
        action="append",
        default=[],
        metavar="COLUMN",
        help="leave out the one-column indexes on COLUMN (repeatable)",
    )
    args = parser.parse_args()
    source = sqlite3.connect(args.store)
    with tempfile.TemporaryDirectory() as scratch:
        target = sqlite3.connect(Path(scratch) / "floor.db", isolation_level=None)
        target.execute("PRAGMA journal_mode=WAL")
        target.execute("PRAGMA synchronous=NORMAL")
        if args.wal_autocheckpoint is not None:
            target.execute(f"PRAGMA wal_autocheckpoint={int(args.wal_autocheckpoint)}")
        copy_schema(source, target, index_filter(args))
        rows_total, cpu, wall = 0, 0.0, 0.0
        per_table = {}
        for table, _sql in canonical_tables(source):
            cursor = source.execute(f'SELECT * FROM "{table}"')
            columns = [d[0] for d in cursor.description]
            rows = cursor.fetchall()  # read before the clock starts
            statement = upsert_sql(table, columns)
            started, clock = time.process_time(), time.perf_counter()
            for start in range(0, len(rows), args.batch):
                target.execute("BEGIN IMMEDIATE")
                target.executemany(statement, rows[start : start + args.batch])
                target.execute("COMMIT")
            spent = time.process_time() - started
            wall += time.perf_counter() - clock
            cpu += spent
            rows_total += len(rows)
            per_table[table] = {"rows": len(rows), "cpu_seconds": round(spent, 3)}
        target.close()
    print(
        json.dumps(
            {
                "rows": rows_total,
                "cpu_seconds": round(cpu, 3),
                "cpu_us_per_row": round(1e6 * cpu / rows_total, 2)
                if rows_total
                else None,
                # Wall includes what is not CPU: the checkpoints' fsyncs.
                "wall_seconds": round(wall, 3),
                "batch": args.batch,
                "wal_autocheckpoint": args.wal_autocheckpoint,
                "indexes_left_out": "all secondary"
                if args.no_secondary_indexes
                else args.without_index_on,
                "tables": per_table,
            }
        )
    )


if __name__ == "__main__":
    main()
