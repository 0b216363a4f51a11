"""Store engine: SQLite connection settings on every connection (C19)."""

from __future__ import annotations

import threading

from sqlalchemy import text

from connector.store.engine import (
    SQLITE_BUSY_TIMEOUT_MS,
    SQLITE_CACHE_KIB,
    SQLITE_JOURNAL_SIZE_LIMIT_BYTES,
    SQLITE_WAL_AUTOCHECKPOINT_PAGES,
    open_store,
)


def test_every_sqlite_connection_has_wal_a_busy_timeout_and_rare_checkpoints(
    tmp_sqlite_url: str,
) -> None:
    store = open_store(tmp_sqlite_url)
    seen = []

    def look() -> None:
        with store.engine.connect() as conn:
            seen.append(
                (
                    conn.exec_driver_sql("PRAGMA journal_mode").scalar(),
                    conn.exec_driver_sql("PRAGMA busy_timeout").scalar(),
                    conn.exec_driver_sql("PRAGMA wal_autocheckpoint").scalar(),
                    conn.exec_driver_sql("PRAGMA journal_size_limit").scalar(),
                    conn.exec_driver_sql("PRAGMA cache_size").scalar(),
                )
            )

    threads = [threading.Thread(target=look) for _ in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    store.dispose()

    settings = (
        "wal",
        SQLITE_BUSY_TIMEOUT_MS,
        SQLITE_WAL_AUTOCHECKPOINT_PAGES,
        SQLITE_JOURNAL_SIZE_LIMIT_BYTES,
        -SQLITE_CACHE_KIB,  # negative: KiB, not pages
    )
    assert seen == [settings] * 4
    assert SQLITE_WAL_AUTOCHECKPOINT_PAGES > 1000  # SQLite's default
    assert SQLITE_BUSY_TIMEOUT_MS >= 5000


def test_two_stores_writing_at_once_wait_instead_of_failing(
    tmp_sqlite_url: str,
) -> None:
    # Two engines (as two components would open), each read-then-write: under
    # deferred transactions the second upgrade fails at once with "locked".
    first, second = open_store(tmp_sqlite_url), open_store(tmp_sqlite_url)
    with first.engine.begin() as conn:
        conn.execute(text("CREATE TABLE counter (n INTEGER)"))
        conn.execute(text("INSERT INTO counter VALUES (0)"))
    errors: list[BaseException] = []

    def bump(store, times: int) -> None:  # type: ignore[no-untyped-def]
        try:
            for _ in range(times):
                with store.engine.begin() as conn:
                    value = conn.execute(text("SELECT n FROM counter")).scalar()
                    conn.execute(text("UPDATE counter SET n = :n"), {"n": value + 1})
        except BaseException as exc:
            errors.append(exc)

    threads = [threading.Thread(target=bump, args=(s, 200)) for s in (first, second)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    with first.engine.connect() as conn:
        total = conn.execute(text("SELECT n FROM counter")).scalar()
    first.dispose()
    second.dispose()

    assert errors == []
    assert total == 400  # no lost update either
