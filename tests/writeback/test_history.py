"""Optional history table: one row per account and day, never two."""

from __future__ import annotations

import json
from datetime import UTC, date, datetime

from connector.writeback.fields import HISTORY_TABLE
from connector.writeback.install import install_fields
from connector.writeback.runner import run_writeback

from .conftest import health

NOW = datetime(2026, 12, 3, 6, 0, tzinfo=UTC)


def history_rows(emu) -> list[dict[str, str]]:
    return emu.instance.rows(HISTORY_TABLE)


def test_one_row_per_account_and_day(emu, accounts, make_settings, seed_health):
    settings = make_settings(history=True)
    install_fields(settings)
    seed_health([health(a, 60 + i) for i, a in enumerate(accounts)])

    first = run_writeback(settings, now=NOW)
    second = run_writeback(settings, now=NOW)

    assert (first.history_created, second.history_created) == (len(accounts), 0)
    rows = history_rows(emu)
    assert sorted(r["u_account"] for r in rows) == accounts
    by_account = {r["u_account"]: r for r in rows}
    assert by_account[accounts[2]]["u_score"] == "62"
    assert by_account[accounts[2]]["u_date"] == "2026-12-03"
    assert json.loads(by_account[accounts[2]]["u_components"]) == {
        "adoption": 35.0, "support": 20.0,
    }  # fmt: skip


def test_a_new_day_adds_a_row_without_touching_the_old(
    emu, accounts, make_settings, seed_health
):
    settings = make_settings(history=True)
    install_fields(settings)
    seed_health([health(accounts[0], 50)])
    run_writeback(settings, now=NOW)
    seed_health([health(accounts[0], 55, as_of=date(2026, 12, 4))])

    result = run_writeback(settings, now=NOW.replace(day=4))

    assert result.history_created == 1
    days = sorted((r["u_date"], r["u_score"]) for r in history_rows(emu))
    assert days == [("2026-12-03", "50"), ("2026-12-04", "55")]


def test_missing_history_table_is_a_failed_run(
    emu, accounts, make_settings, seed_health
):
    install_fields(make_settings())  # history was off at install time
    seed_health([health(accounts[0], 50)])

    result = run_writeback(make_settings(history=True), now=NOW)

    assert result.failed >= 1
    assert any(HISTORY_TABLE in str(p) for p in result.problems)
    assert "install-fields" in str(result.problems[-1])
