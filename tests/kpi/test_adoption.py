"""Licence and seat utilisation, and time to value, on hand-computed usage tables.

TTV cohort (threshold 50%): A 31 days, B 61, D 120, E 0 (usage before the start
is ignored), C never → median of (0, 31, 61, 120) = 46, P75 = 61 + 0.25·59.
"""

from __future__ import annotations

from datetime import date, datetime

import pytest
from sqlalchemy import Engine

from connector.config import KpiSettings
from connector.kpi import compute_kpis

from .seed import Seed

AS_OF = date(2026, 12, 1)


def _usage(seed: Seed) -> dict[str, str]:
    ids = {key: seed.account(key) for key in "ABCDE"}
    a = ids["A"]
    seed.product(a, 1000, date(2026, 1, 1), quantity=20)
    seed.usage(a, date(2026, 1, 1), 2, 10)
    seed.usage(a, date(2026, 2, 1), 6, 10)
    seed.usage(a, date(2026, 11, 1), 5, 6)  # latest period: two rows, Σ 8 / 10
    seed.usage(a, date(2026, 11, 1), 3, 4)
    seed.usage(a, date(2026, 11, 1), 4, 4, deleted_at=datetime(2026, 11, 20))
    seed.usage(a, date(2026, 12, 2), 0, 10)  # after the as-of date
    b = ids["B"]
    seed.product(b, 1000, date(2026, 3, 1), quantity=5)
    entitlement = seed.entitlement(b, date(2026, 3, 1))
    seed.usage(None, date(2026, 4, 1), 4, 10, entitlement=entitlement)
    seed.usage(None, date(2026, 5, 1), 5, 10, entitlement=entitlement)
    seed.product(ids["C"], 1000, date(2026, 1, 15))
    seed.usage(ids["C"], date(2026, 11, 1), 1, 10)
    seed.product(ids["D"], 1000, date(2026, 2, 1))
    seed.usage(ids["D"], date(2026, 6, 1), 9, 10)
    seed.product(ids["E"], 1000, date(2026, 4, 1))
    seed.usage(ids["E"], date(2026, 3, 1), 6, 10, period_end=date(2026, 3, 31))
    seed.usage(ids["E"], date(2026, 4, 1), 7, 10)
    return ids


def test_utilisation_latest_period_and_seats(engine: Engine, seed: Seed) -> None:
    ids = _usage(seed)

    result = compute_kpis(engine, KpiSettings(), as_of=AS_OF)

    accounts = {a.sys_id: a for a in result.accounts}
    a = accounts[ids["A"]].usage
    assert (a.used, a.total, a.utilisation) == (8, 10, 0.8)
    assert a.seat_utilisation == pytest.approx(8 / 20)
    assert accounts[ids["B"]].usage.utilisation == 0.5  # via the entitlement's account
    # pooled latest periods of active accounts: A 8/10, B 5/10, C 1/10, D 9/10, E 7/10
    assert result.overall.license_utilisation == pytest.approx(30 / 50)


def test_time_to_value(engine: Engine, seed: Seed) -> None:
    ids = _usage(seed)

    result = compute_kpis(engine, KpiSettings(), as_of=AS_OF)

    ttv = result.overall.ttv
    assert ttv.median_days == pytest.approx(46)
    assert ttv.p75_days == pytest.approx(75.75)
    assert (ttv.reached, ttv.not_yet) == (4, 1)
    days = {a.sys_id: a.ttv_days for a in result.accounts}
    assert days == {
        ids["A"]: 31,
        ids["B"]: 61,
        ids["C"]: None,
        ids["D"]: 120,
        ids["E"]: 0,
    }


def test_time_to_value_threshold_is_a_parameter(engine: Engine, seed: Seed) -> None:
    _usage(seed)

    ttv = compute_kpis(
        engine, KpiSettings(ttv_utilisation=0.9), as_of=AS_OF
    ).overall.ttv

    # only D reaches 90% (120 days); one value: median = P75 = 120
    assert (ttv.median_days, ttv.p75_days, ttv.reached, ttv.not_yet) == (120, 120, 1, 4)


def test_time_to_value_without_usage(engine: Engine, seed: Seed) -> None:
    seed.product(seed.account(), 1000, date(2026, 1, 1))

    ttv = compute_kpis(engine, KpiSettings(), as_of=AS_OF).overall.ttv

    assert (ttv.median_days, ttv.p75_days, ttv.not_yet) == (None, None, 1)
