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
