"""Fixtures of the KPI tests: a fresh store per test on SQLite and PostgreSQL."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from sqlalchemy import Engine

from .seed import BACKENDS, Seed, make_store


@pytest.fixture(params=BACKENDS)
def store(
    request: pytest.FixtureRequest, tmp_path: Path
) -> Iterator[tuple[Engine, str]]:
    """(engine, url) of an empty store with every table, per backend."""
    yield from make_store(request.param, tmp_path)


@pytest.fixture
def engine(store: tuple[Engine, str]) -> Engine:
    return store[0]


@pytest.fixture
def seed(engine: Engine) -> Seed:
    return Seed(engine)
