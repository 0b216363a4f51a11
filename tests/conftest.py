"""Shared fixtures: emulated instances, SQLite and PostgreSQL URLs, ``--runslow``.

Other roles append their shared fixtures here; keep the existing names.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path

import pytest

from connector.emulator.server import EmulatorServer


def pytest_addoption(parser: pytest.Parser) -> None:
    parser.addoption(
        "--runslow", action="store_true", default=False, help="run slow tests"
    )


def pytest_collection_modifyitems(
    config: pytest.Config, items: list[pytest.Item]
) -> None:
    if config.getoption("--runslow"):
        return
    skip = pytest.mark.skip(reason="slow: run with --runslow")
    for item in items:
        if "slow" in item.keywords:
            item.add_marker(skip)


@pytest.fixture(scope="session")
def emulator() -> Iterator[EmulatorServer]:
    """A small generated instance (5 accounts, seed 7) shared by the session.

    Treat it as read-only; tests that write should use ``empty_emulator``.
    """
    with EmulatorServer(accounts=5, seed=7) as emu:
        yield emu


@pytest.fixture
def empty_emulator() -> Iterator[EmulatorServer]:
    """A fresh instance with metadata only (no generated data)."""
    with EmulatorServer(accounts=0) as emu:
        yield emu


@pytest.fixture
def tmp_sqlite_url(tmp_path: Path) -> str:
    """A SQLAlchemy URL of an empty SQLite file in the test's temp dir."""
    return f"sqlite:///{tmp_path / 'store.db'}"


@pytest.fixture
def pg_url() -> str:
    """The test PostgreSQL URL; skip without it, fail if CSM_SYNC_REQUIRE_PG=1."""
    url = os.environ.get("CSM_SYNC_TEST_PG_URL")
    if not url:
        if os.environ.get("CSM_SYNC_REQUIRE_PG") == "1":
            pytest.fail("CSM_SYNC_REQUIRE_PG=1 but CSM_SYNC_TEST_PG_URL is not set")
        pytest.skip("CSM_SYNC_TEST_PG_URL is not set")
    return url


@pytest.fixture
def fresh_pg_url(pg_url: str) -> Iterator[str]:
    """A PostgreSQL URL of a new, empty database, dropped after the test.

    Tests run in parallel (pytest -n 2) against one server, so each test that
    creates tables gets its own database instead of sharing ``pg_url``'s.
    """
    import uuid

    import psycopg
    from sqlalchemy.engine import make_url

    base = make_url(pg_url)
    name = f"csm_t_{uuid.uuid4().hex[:12]}"
    admin = base.set(drivername="postgresql").render_as_string(hide_password=False)
    with psycopg.connect(admin, autocommit=True) as conn:
        conn.execute(f'CREATE DATABASE "{name}"')
    try:
        yield base.set(database=name).render_as_string(hide_password=False)
    finally:
        with psycopg.connect(admin, autocommit=True) as conn:
            conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


@pytest.fixture(params=["sqlite", "postgresql"])
def store_url(request: pytest.FixtureRequest, tmp_sqlite_url: str) -> str:
    """Run the test once on a temp SQLite file and once on a fresh PostgreSQL DB."""
    if request.param == "sqlite":
        return tmp_sqlite_url
    return request.getfixturevalue("fresh_pg_url")
