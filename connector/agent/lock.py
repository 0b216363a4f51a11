"""One daemon per store: a file lock beside SQLite, an advisory lock on PostgreSQL.

One-shot commands (sync, kpis, status) do not take this lock; they share the store
with a running daemon (SQLite WAL and a busy timeout make that safe, see C19).
"""

from __future__ import annotations

import contextlib
import logging
import os
import zlib
from pathlib import Path
from types import TracebackType

import filelock
from sqlalchemy import create_engine, text
from sqlalchemy.engine import Connection, Engine, make_url

from connector.errors import LockedError, StoreError

log = logging.getLogger(__name__)

# Stable key for pg_try_advisory_lock: the same for every agent of one database.
PG_LOCK_KEY = zlib.crc32(b"csm-sync daemon") & 0x7FFFFFFF
PG_APP_PREFIX = "csm-sync daemon pid="


class DaemonLock:
    """Hold the store's daemon lock for the life of a ``with`` block."""

    def __init__(self, store_url: str) -> None:
        self.store_url = store_url
        self._file_lock: filelock.BaseFileLock | None = None
        self._pg_engine: Engine | None = None
        self._pg_conn: Connection | None = None

    def __enter__(self) -> DaemonLock:
        self.acquire()
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.release()

    @property
    def description(self) -> str:
        """Where the lock lives, for log lines."""
        if self.store_url.startswith("sqlite"):
            return str(sqlite_lock_path(self.store_url))
        return f"advisory lock {PG_LOCK_KEY}"

    def acquire(self) -> None:
        """Take the lock or raise LockedError naming the holder."""
        if self.store_url.startswith("sqlite"):
            self._acquire_file()
        else:
            self._acquire_advisory()
        log.info("Holding the daemon lock (%s)", self.description)

    def release(self) -> None:
        """Give the lock back; safe to call twice."""
        if self._file_lock is not None:
            self._file_lock.release()
            self._file_lock = None
        if self._pg_conn is not None:
            with contextlib.suppress(Exception):
                self._pg_conn.execute(
                    text("SELECT pg_advisory_unlock(:k)"), {"k": PG_LOCK_KEY}
                )
            self._pg_conn.close()
            self._pg_conn = None
        if self._pg_engine is not None:
            self._pg_engine.dispose()
            self._pg_engine = None

    def _acquire_file(self) -> None:
        path = sqlite_lock_path(self.store_url)
        path.parent.mkdir(parents=True, exist_ok=True)
        lock = filelock.FileLock(str(path), timeout=0)
        try:
            lock.acquire()
        except filelock.Timeout:
            holder = _read_pid(path)
            raise LockedError(
                f"another csm-sync daemon (pid {holder}) holds the lock {path} "
                "for this store; stop it first, or point this one at another store"
            ) from None
        # The winner truncated the file after locking it; the pid is for the loser.
        path.write_text(f"{os.getpid()}\n", encoding="ascii")
        self._file_lock = lock

    def _acquire_advisory(self) -> None:
        url = make_url(self.store_url)
        # A dedicated connection: the advisory lock lives as long as this session.
        engine = create_engine(
            url,
            connect_args={"application_name": f"{PG_APP_PREFIX}{os.getpid()}"},
        )
        try:
            conn = engine.connect()
        except Exception as exc:
            engine.dispose()
            raise StoreError(
                f"cannot connect to the store to take the daemon lock: {exc}"
            ) from exc
        got = conn.execute(
            text("SELECT pg_try_advisory_lock(:k)"), {"k": PG_LOCK_KEY}
        ).scalar()
        conn.commit()
        if not got:
            holder = _advisory_holder(conn)
            conn.close()
            engine.dispose()
            raise LockedError(
                f"another csm-sync daemon ({holder}) holds advisory lock "
                f"{PG_LOCK_KEY} on this database; stop it first"
            )
        self._pg_engine, self._pg_conn = engine, conn


def sqlite_lock_path(store_url: str) -> Path:
    """Return the lock file beside the SQLite database file."""
    database = make_url(store_url).database or "csm.db"
    return (
        Path(database)
        .expanduser()
        .resolve()
        .with_name(Path(database).name + ".daemon.lock")
    )


def _read_pid(path: Path) -> str:
    try:
        return path.read_text(encoding="ascii").strip() or "unknown"
    except OSError:
        return "unknown"


def _advisory_holder(conn: Connection) -> str:
    """Name the session holding the lock: the daemon pid from its application name."""
    row = conn.execute(
        text(
            "SELECT a.application_name, a.client_addr, a.pid FROM pg_locks l "
            "JOIN pg_stat_activity a ON a.pid = l.pid "
            "WHERE l.locktype = 'advisory' AND l.objid = :k AND l.granted LIMIT 1"
        ),
        {"k": PG_LOCK_KEY},
    ).first()
    if row is None:
        return "holder unknown"
    app_name, addr, backend = row
    if app_name and app_name.startswith(PG_APP_PREFIX):
        pid = app_name.removeprefix(PG_APP_PREFIX)
        return f"pid {pid} on {addr or 'local socket'}"
    return f"backend pid {backend}, application {app_name!r}"
