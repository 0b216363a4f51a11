"""Rows hidden by ACLs are reported, not silently missing (TABLE_API §5.2).

The instance counts rows before applying row ACLs, so a user who cannot read
some rows still gets an ``ok`` run; ``check`` and the backfill must say so.
"""

from __future__ import annotations

import logging
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta

import pytest

from connector.emulator.server import EmulatorServer
from connector.sync.backfill import run_backfill, warn_if_rows_missing
from connector.sync.checks import ACL_PROBE_ROWS, run_check

from .helpers import Clock, make_settings, stored
from .test_attacks import CASES, case, sys_ids

START = datetime(2026, 2, 1, 9, 0, 0, tzinfo=UTC)


@pytest.fixture
def half_hidden() -> Iterator[tuple[EmulatorServer, int]]:
    """120 cases of which 40 are hidden from the ``acl_limited`` user."""
    keys = sys_ids(80, hidden=False) + sys_ids(40, hidden=True)
    with EmulatorServer(accounts=0, clock=Clock(START + timedelta(days=2))) as emu:
        emu.instance.load_rows(
            CASES,
            [case(k, START + timedelta(seconds=n), n) for n, k in enumerate(keys)],
        )
        yield emu, 40


def as_user(emu: EmulatorServer, store_url: str, user: str, password: str):
    return make_settings(
        emu,
        store_url,
        tables=[CASES],
        instance={"auth": {"method": "basic", "username": user, "password": password}},
    )


def test_backfill_warns_with_the_numbers_when_acls_hide_rows(
    half_hidden, tmp_sqlite_url: str, caplog: pytest.LogCaptureFixture
) -> None:
    emu, hidden = half_hidden
    settings = as_user(emu, tmp_sqlite_url, emu.acl_user, emu.acl_password)

    with caplog.at_level(logging.WARNING, logger="connector.sync.backfill"):
        (result,) = run_backfill(settings)

    assert result.outcome == "ok"
    assert len(stored(tmp_sqlite_url, "case")) == 120 - hidden
    (warning,) = [r.getMessage() for r in caplog.records]
    assert f"got {120 - hidden} of the 120 rows the instance counted" in warning
    assert f"{hidden} (33%) did not come back" in warning
    assert "ACLs" in warning


def test_backfill_of_every_row_says_nothing(
    half_hidden, tmp_sqlite_url: str, caplog: pytest.LogCaptureFixture
) -> None:
    emu, _ = half_hidden
    settings = as_user(emu, tmp_sqlite_url, emu.admin_user, emu.admin_password)

    with caplog.at_level(logging.WARNING, logger="connector.sync.backfill"):
        (result,) = run_backfill(settings)

    assert result.outcome == "ok" and result.inserted == 120
    assert caplog.records == []


@pytest.mark.parametrize(
    ("counted", "fetched", "warned"),
    [
        (1000, 1000, False),
        (1000, 990, False),
        (1000, 989, True),
        (50, 40, False),
        (50, 39, True),
        (0, 0, False),
    ],
)
def test_small_shortfalls_from_updates_and_deletes_are_not_reported(
    counted: int, fetched: int, warned: bool, caplog: pytest.LogCaptureFixture
) -> None:
    with caplog.at_level(logging.WARNING, logger="connector.sync.backfill"):
        missing = warn_if_rows_missing("case", counted, fetched)

    assert missing == counted - fetched
    assert bool(caplog.records) is warned


def test_check_names_the_table_whose_rows_acls_hide(
    half_hidden, tmp_sqlite_url: str
) -> None:
    emu, _ = half_hidden
    limited = run_check(as_user(emu, tmp_sqlite_url, emu.acl_user, emu.acl_password))
    admin = run_check(as_user(emu, tmp_sqlite_url, emu.admin_user, emu.admin_password))

    # The probe reads the first ACL_PROBE_ROWS rows in sys_id order.
    assert ACL_PROBE_ROWS == 100
    acl = [w for w in limited.warnings if "access controls" in w]
    assert len(acl) == 1 and CASES in acl[0]
    assert "of the first 100 rows" in acl[0]
    assert not [w for w in admin.warnings if "access controls" in w]
