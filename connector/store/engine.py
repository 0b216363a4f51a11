"""Open the local store: engine, per-connection settings, migrations, one writer.

SQLite (the default) runs in WAL mode with a busy timeout on every connection and
starts every transaction with ``BEGIN IMMEDIATE``: a deferred transaction that
reads and then writes fails at once with "database is locked" when another
connection committed in between, whatever the busy timeout (case C19). Writes
inside one process also go through :attr:`Store.write_lock` so worker threads
queue in Python instead of inside SQLite. PostgreSQL sessions run in UTC.
"""

from __future__ import annotations

import contextlib
import logging
import re
import threading
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

from sqlalchemy import Connection, Engine, create_engine, event
from sqlalchemy.exc import SQLAlchemyError

from connector.errors import StoreError

log = logging.getLogger(__name__)

SQLITE_BUSY_TIMEOUT_MS = 30_000
# SQLite folds the WAL back into the database (a checkpoint, with an fsync) after
# every 1,000 pages by default: on a backfill that is every few commits, and the
# writer waits each time. 10,000 pages (about 40 MB of WAL) cut a 2,000-account
# backfill from 21.5 s to 17.8 s (mean of 3, bench notes); the size limit hands
# the space back once the WAL has been checkpointed.
SQLITE_WAL_AUTOCHECKPOINT_PAGES = 10_000
SQLITE_JOURNAL_SIZE_LIMIT_BYTES = 64 * 1024 * 1024
# Page cache per connection, in KiB (SQLite's default is 2 MB). Upserts keyed by
# random sys_ids touch index pages all over a large table; with 2 MB most of them
# are read back from the OS on every page written. 64 MB halved the backfill's
# system CPU at 10,000 accounts (50.8 s -> 26.5 s, wall 147 s -> 126 s) for about
# 80 MB more peak memory, the same at any table size. The pool hands out the most
# recently used connection first, so the writer keeps reusing a warm cache.
SQLITE_CACHE_KIB = 64 * 1024
MIGRATIONS_DIR = Path(__file__).resolve().parent.parent / "migrations"
# The first revision: the schema stores created before migrations already have.
BASELINE_REVISION = "0001"
_REVISION = re.compile(r"^revision\b[^=\n]*=\s*[\"'](\w+)[\"']", re.M)
_DOWN_REVISION = re.compile(r"^down_revision\b[^=\n]*=\s*[\"'](\w+)[\"']", re.M)

_SQLITE_LOCKS: dict[str, threading.Lock] = {}
_SQLITE_LOCKS_GUARD = threading.Lock()


@dataclass
class Store:
    """An opened store: the engine and the lock every writer takes."""

    url: str
    engine: Engine
    write_lock: threading.Lock | contextlib.nullcontext = field(
        default_factory=contextlib.nullcontext
    )

    @property
    def is_sqlite(self) -> bool:
        return self.engine.dialect.name == "sqlite"

    @contextlib.contextmanager
    def write(self) -> Iterator[Connection]:
        """One write transaction, holding the writer lock (never across HTTP calls)."""
        with self.write_lock, self.engine.begin() as conn:
            yield conn

    def dispose(self) -> None:
        self.engine.dispose()


def create_store_engine(url: str) -> Engine:
    """An engine for ``sqlite:///PATH`` or ``postgresql+psycopg://...``."""
    if url.startswith("sqlite"):
        engine = create_engine(
            url,
            connect_args={
                "timeout": SQLITE_BUSY_TIMEOUT_MS / 1000,
                "check_same_thread": False,
            },
            pool_use_lifo=True,
        )
        _configure_sqlite(engine)
        return engine
    return create_engine(
        url, pool_pre_ping=True, connect_args={"options": "-c timezone=UTC"}
    )


def _configure_sqlite(engine: Engine) -> None:
    @event.listens_for(engine, "connect")
    def _on_connect(dbapi_conn, _record) -> None:  # type: ignore[no-untyped-def]
        # Let SQLAlchemy's "begin" event below decide how transactions start.
        dbapi_conn.isolation_level = None
        cursor = dbapi_conn.cursor()
        cursor.execute("PRAGMA journal_mode=WAL")
        cursor.execute(f"PRAGMA busy_timeout={SQLITE_BUSY_TIMEOUT_MS}")
        cursor.execute("PRAGMA synchronous=NORMAL")
        cursor.execute(f"PRAGMA wal_autocheckpoint={SQLITE_WAL_AUTOCHECKPOINT_PAGES}")
        cursor.execute(f"PRAGMA journal_size_limit={SQLITE_JOURNAL_SIZE_LIMIT_BYTES}")
        cursor.execute(f"PRAGMA cache_size=-{SQLITE_CACHE_KIB}")
        cursor.close()

    @event.listens_for(engine, "begin")
    def _on_begin(conn: Connection) -> None:
        conn.exec_driver_sql("BEGIN IMMEDIATE")


def _writer_lock(url: str) -> threading.Lock:
    with _SQLITE_LOCKS_GUARD:
        return _SQLITE_LOCKS.setdefault(url, threading.Lock())


def import_all_models() -> None:
    """Import every module that declares tables, so ``SQLModel.metadata`` is whole."""
    import importlib

    import connector.store.models
    import connector.store.state  # noqa: F401

    for optional in ("connector.kpi.models", "connector.writeback.models"):
        with contextlib.suppress(ModuleNotFoundError):
            importlib.import_module(optional)


def open_store(url: str, *, migrate: bool = True) -> Store:
    """Open the store at ``url`` and bring its schema to the latest migration.

    Raises:
        StoreError: the database cannot be reached or migrated.
    """
    if url.startswith("sqlite:///"):
        path = Path(url.removeprefix("sqlite:///"))
        if str(path) not in ("", ":memory:"):
            path.parent.mkdir(parents=True, exist_ok=True)
    engine = create_store_engine(url)
    lock = (
        _writer_lock(url)
        if engine.dialect.name == "sqlite"
        else contextlib.nullcontext()
    )
    store = Store(url=url, engine=engine, write_lock=lock)
    if migrate:
        try:
            if not is_at_head(store):
                upgrade_to_head(store)
        except SQLAlchemyError as exc:
            engine.dispose()
            raise StoreError(
                f"Cannot open the store {_redact(url)}: {exc.__class__.__name__}: "
                f"{str(exc).splitlines()[0]}"
            ) from exc
    return store


def head_revision() -> str | None:
    """The single head of our migrations, read from the files (no Alembic import).

    Importing Alembic costs ~0.2 s of every command's start; a store already at
    head needs none of it. None when the files do not show exactly one head.
    """
    revisions, parents = set(), set()
    for path in (MIGRATIONS_DIR / "versions").glob("*.py"):
        text = path.read_text(encoding="utf-8")
        revisions.update(_REVISION.findall(text))
        parents.update(_DOWN_REVISION.findall(text))
    heads = revisions - parents
    return heads.pop() if len(heads) == 1 else None


def is_at_head(store: Store) -> bool:
    """True when the store's ``alembic_version`` is our head revision."""
    head = head_revision()
    if head is None:
        return False
    try:
        with store.engine.connect() as conn:
            current = (
                conn.exec_driver_sql("SELECT version_num FROM alembic_version")
                .scalars()
                .all()
            )
    except SQLAlchemyError:
        return False  # a new store, or one older than migrations
    return current == [head]


def upgrade_to_head(store: Store) -> None:
    """Run ``alembic upgrade head`` on the store (serialised by the writer lock)."""
    from alembic import command

    import_all_models()
    with store.write_lock, store.engine.connect() as conn:
        config = alembic_config(store.url)
        config.attributes["connection"] = conn
        _adopt_unversioned(conn, config)
        command.upgrade(config, "head")
        conn.commit()


def _adopt_unversioned(conn: Connection, config) -> None:  # type: ignore[no-untyped-def]
    """Stamp a store created before migrations existed (by ``create_all``).

    Such a store has the tables of the first revision but no ``alembic_version``;
    upgrading it would fail on "table already exists".
    """
    from alembic import command
    from sqlalchemy import inspect
    from sqlmodel import SQLModel

    tables = set(inspect(conn).get_table_names())
    if "alembic_version" in tables or "sync_state" not in tables:
        return
    log.warning(
        "The store has csm-sync tables but no migration record; adopting it as "
        "revision %s",
        BASELINE_REVISION,
    )
    SQLModel.metadata.create_all(conn)  # only the tables it lacks
    command.stamp(config, BASELINE_REVISION)


def alembic_config(url: str):  # type: ignore[no-untyped-def]
    """An Alembic config pointing at our migrations and the given database."""
    from alembic.config import Config

    config = Config()
    config.set_main_option("script_location", str(MIGRATIONS_DIR))
    config.set_main_option("sqlalchemy.url", url.replace("%", "%%"))
    return config


def _redact(url: str) -> str:
    """The URL without its password, for messages."""
    head, sep, tail = url.partition("@")
    if not sep or "://" not in head:
        return url
    scheme, _, userinfo = head.partition("://")
    return f"{scheme}://{userinfo.split(':')[0]}:***@{tail}"


def dialect_insert(conn: Connection):  # type: ignore[no-untyped-def]
    """The dialect's INSERT construct (with ON CONFLICT) for ``conn``'s database."""
    # Imported here: the PostgreSQL dialect costs a SQLite-only run ~45 ms.
    if conn.dialect.name == "postgresql":
        from sqlalchemy.dialects.postgresql import insert
    else:
        from sqlalchemy.dialects.sqlite import insert
    return insert
