"""Fixtures of the KPI tests: an empty store per test on SQLite and PostgreSQL."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from sqlalchemy import Engine

from .seed import BACKENDS, Seed, empty_tables, pg_schema, sqlite_store


@pytest.fixture(scope="session")
def _pg_store() -> Iterator[tuple[Engine, str]]:
    """One PostgreSQL schema per test process; tests empty it before use."""
    yield from pg_schema()


@pytest.fixture(params=BACKENDS)
def store(
    request: pytest.FixtureRequest, tmp_path: Path
) -> Iterator[tuple[Engine, str]]:
    """(engine, url) of an empty store with every table, per backend."""
    if request.param == "sqlite":
        yield from sqlite_store(tmp_path)
        return
    engine, url = request.getfixturevalue("_pg_store")
    empty_tables(engine)
    yield engine, url


@pytest.fixture
def engine(store: tuple[Engine, str]) -> Engine:
    return store[0]


@pytest.fixture
def seed(engine: Engine) -> Seed:
    return Seed(engine)
