"""An account that stopped being a customer: its stale score is cleared, once.

The KPI engine gives an account without an active sold product or entitlement no
score, band or trend, the reason ``NOT_ACTIVE_REASON`` and ``active = 0`` in the
same day's snapshot. Write-back then empties the health fields (a churned account
showing last quarter's "green 72" would mislead), writes the reason, sends
nothing more on later days, and adds no history row for it.
"""

from __future__ import annotations

from datetime import UTC, date, datetime

from sqlmodel import Session

from connector.kpi.health import NOT_ACTIVE_REASON
from connector.kpi.models import KpiSnapshot
from connector.store.engine import open_store
from connector.writeback.fields import HISTORY_TABLE
from connector.writeback.install import install_fields
from connector.writeback.runner import run_writeback

from .conftest import account_values, health

NOW = datetime(2026, 12, 3, 6, 0, tzinfo=UTC)
DAY2, DAY3 = date(2026, 12, 4), date(2026, 12, 5)


def _churned(store_url: str, account: str, day: date) -> None:
    """The engine's rows for an account that is not active on ``day``."""
    store = open_store(store_url)
    try:
        with Session(store.engine) as session:
            session.merge(
                health(
                    account,
                    None,
                    as_of=day,
                    trend=None,
                    nps_value=None,
                    nps_n=0,
                    reason=NOT_ACTIVE_REASON,
                    components={},
                )
            )
            session.merge(
                KpiSnapshot(
                    as_of=day, scope="account", scope_id=account, kpi="active", value=0
                )
            )
            session.commit()
    finally:
        store.dispose()


def test_churned_account_is_cleared_once_and_gets_no_history(
    emu, accounts, make_settings, seed_health, tmp_sqlite_url
):
    settings = make_settings(history=True)
    install_fields(settings)
    gone, kept = accounts[0], accounts[1]
    seed_health([health(gone, 72), health(kept, 64)])
    run_writeback(settings, now=NOW)
    assert account_values(emu, gone)["u_health_score"] == "72"
    _churned(tmp_sqlite_url, gone, DAY2)
    seed_health([health(kept, 64, as_of=DAY2)])

    second = run_writeback(settings, now=NOW.replace(day=4))

    stored = account_values(emu, gone)
    assert second.failed == 0
    assert [d.account for d in second.diffs] == [gone]
    assert (stored["u_health_score"], stored["u_health_band"]) == ("", "")
    assert (stored["u_health_trend"], stored["u_nps"]) == ("", "")
    assert stored["u_health_reason"] == NOT_ACTIVE_REASON
    assert account_values(emu, kept)["u_health_score"] == "64"
    days = sorted(
        (r["u_account"], r["u_date"]) for r in emu.instance.rows(HISTORY_TABLE)
    )
    assert days == sorted(
        [(gone, "2026-12-03"), (kept, "2026-12-03"), (kept, "2026-12-04")]
    )

    _churned(tmp_sqlite_url, gone, DAY3)
    third = run_writeback(settings, now=NOW.replace(day=5))

    assert third.diffs == []  # the reason has no date: nothing to rewrite
