"""SQLite storage: one SQL table per ServiceNow table, every column TEXT.

Values are kept exactly as the instance would serve them (strings, ``''`` for
empty) so the HTTP layer never converts. Reads borrow a connection from a pool
(WAL mode), so concurrent GETs really run concurrently; writes go through one
writer connection under one lock, as a single-node instance serialises them.
"""

from __future__ import annotations

import atexit
import contextlib
import logging
import os
import queue
import sqlite3
import tempfile
import threading
import zlib
from collections.abc import Iterable, Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path

LOG = logging.getLogger(__name__)


def quote_ident(name: str) -> str:
    """Quote an SQL identifier (table and field names come from the dictionary)."""
    return '"' + name.replace('"', '""') + '"'


def shuffle_key(value: str, salt: int) -> int:
    """A salted sort key: same salt, same order; new salt, new order."""
    return zlib.crc32(f"{salt}:{value}".encode())


def _memory_dir() -> str | None:
    shm = Path("/dev/shm")
    return str(shm) if shm.is_dir() and os.access(shm, os.W_OK) else None


class Store:
    """A SQLite database with pooled read connections and one writer."""

    def __init__(self, db_path: str | os.PathLike[str] | None = None) -> None:
        self.temporary = db_path is None
        if db_path is None:
            fd, name = tempfile.mkstemp(
                prefix="csm-emulator-", suffix=".db", dir=_memory_dir()
            )
            os.close(fd)
            db_path = name
        self.path = str(db_path)
        self.write_lock = threading.RLock()
        self._idle: queue.SimpleQueue[sqlite3.Connection] = queue.SimpleQueue()
        self._connections: list[sqlite3.Connection] = []
        self._conn_lock = threading.Lock()
        self._closed = False
        if self.temporary:
            atexit.register(self._remove_files)
        self._writer = self._connect()
        self._writer.execute("PRAGMA journal_mode=WAL")

    def _connect(self) -> sqlite3.Connection:
        if self._closed:
            # A late request thread must not re-create a removed temp file.
            raise sqlite3.ProgrammingError("the emulator store is closed")
        conn = sqlite3.connect(
            self.path, check_same_thread=False, isolation_level=None, timeout=30
        )
        conn.execute("PRAGMA synchronous=OFF")
        conn.execute("PRAGMA cache_size=-65536")
        conn.execute("PRAGMA temp_store=MEMORY")
        conn.create_function("emu_shuffle", 2, shuffle_key, deterministic=True)
        with self._conn_lock:
            self._connections.append(conn)
        return conn

    @property
    def conn(self) -> sqlite3.Connection:
        """The writer connection; use it only while holding ``write_lock``."""
        return self._writer

    @contextmanager
    def reader(self) -> Iterator[sqlite3.Connection]:
        """Borrow a read connection from the pool (one per concurrent request)."""
        try:
            conn = self._idle.get_nowait()
        except queue.Empty:
            conn = self._connect()
        try:
            yield conn
        finally:
            self._idle.put(conn)

    def query(self, sql: str, params: Sequence[object] = ()) -> list[tuple]:
        with self.reader() as conn:
            return conn.execute(sql, params).fetchall()

    def query_dicts(
        self, sql: str, params: Sequence[object] = ()
    ) -> list[dict[str, str]]:
        with self.reader() as conn:
            cursor = conn.execute(sql, params)
            names = [d[0] for d in cursor.description]
            return [dict(zip(names, row, strict=True)) for row in cursor.fetchall()]

    def execute(self, sql: str, params: Sequence[object] = ()) -> sqlite3.Cursor:
        with self.write_lock:
            return self._writer.execute(sql, params)

    def executemany(self, sql: str, rows: Iterable[Sequence[object]]) -> None:
        with self.write_lock:
            conn = self.conn
            conn.execute("BEGIN")
            try:
                conn.executemany(sql, rows)
            except BaseException:
                conn.execute("ROLLBACK")
                raise
            conn.execute("COMMIT")

    def table_names(self) -> set[str]:
        rows = self.query("SELECT name FROM sqlite_master WHERE type='table'")
        return {r[0] for r in rows}

    def columns(self, table: str) -> list[str]:
        rows = self.query(f"PRAGMA table_info({quote_ident(table)})")
        return [r[1] for r in rows]

    def create_table(
        self, table: str, columns: Sequence[str], indexed: Sequence[str]
    ) -> None:
        """Create a table of TEXT columns with the indexes paging needs."""
        cols = ", ".join(f"{quote_ident(c)} TEXT NOT NULL DEFAULT ''" for c in columns)
        qt = quote_ident(table)
        with self.write_lock:
            self.conn.execute(f"CREATE TABLE IF NOT EXISTS {qt} ({cols})")
            self.conn.execute(
                f"CREATE UNIQUE INDEX IF NOT EXISTS {quote_ident(table + '__sys_id')}"
                f' ON {qt} ("sys_id")'
            )
            # (sys_updated_on, sys_id) also serves plain sys_updated_on ranges.
            self.conn.execute(
                f"CREATE INDEX IF NOT EXISTS {quote_ident(table + '__upd')}"
                f' ON {qt} ("sys_updated_on", "sys_id")'
            )
            for col in indexed:
                self.add_index(table, col)

    def add_index(self, table: str, column: str) -> None:
        name = quote_ident(f"{table}__{column}")
        with self.write_lock:
            self.conn.execute(
                f"CREATE INDEX IF NOT EXISTS {name} ON {quote_ident(table)}"
                f" ({quote_ident(column)})"
            )

    def add_composite_index(self, table: str, columns: Sequence[str]) -> None:
        """An index over several columns (named after them; idempotent)."""
        name = quote_ident(f"{table}__{'_'.join(columns)}")
        cols = ", ".join(quote_ident(c) for c in columns)
        with self.write_lock:
            self.conn.execute(
                f"CREATE INDEX IF NOT EXISTS {name} ON {quote_ident(table)} ({cols})"
            )

    def add_column(self, table: str, column: str) -> None:
        """Add a column; a column dropped earlier and re-added starts empty."""
        with self.write_lock:
            if column in self.columns(table):
                self.conn.execute(
                    f"UPDATE {quote_ident(table)} SET {quote_ident(column)} = ''"
                )
                return
            self.conn.execute(
                f"ALTER TABLE {quote_ident(table)} ADD COLUMN"
                f" {quote_ident(column)} TEXT NOT NULL DEFAULT ''"
            )

    def drop_column(self, table: str, column: str) -> None:
        with self.write_lock:
            self.conn.execute(
                f"DROP INDEX IF EXISTS {quote_ident(f'{table}__{column}')}"
            )
            self.conn.execute(
                f"ALTER TABLE {quote_ident(table)} DROP COLUMN {quote_ident(column)}"
            )

    def close(self) -> None:
        """Close every connection; a temporary database file is removed."""
        if self._closed:
            return
        self._closed = True
        with self._conn_lock:
            for conn in self._connections:
                with contextlib.suppress(sqlite3.Error):
                    conn.close()
            self._connections.clear()
        if self.temporary:
            self._remove_files()
            atexit.unregister(self._remove_files)

    def _remove_files(self) -> None:
        for suffix in ("", "-wal", "-shm"):
            with contextlib.suppress(FileNotFoundError):
                os.unlink(self.path + suffix)
