"""ARR, NRR/GRR, CLTV, active accounts and the CSM split on hand-computed tables.

Cohort at t0 = 2025-12-01 (as of 2026-12-01):

| account | ARR₀ | ARR₁ | movement |
|---|---|---|---|
| A | 1000 | 1500 | expansion 500 |
| B | 2000 | 0 | churn 2000 (ended 2026-07-15) |
| C | 1200 | 800 | contraction 400 |
| Z | 1200 | 1200 | flat (tactical: zero churn) |
| D | — | 3000 | new logo, not in the cohort |

NRR = 3500/5400, GRR = (5400 − 400 − 2000)/5400.
"""

from __future__ import annotations

from datetime import date, datetime

import pytest
from sqlalchemy import Engine

from connector.config import KpiSettings
from connector.kpi import compute_kpis

from .seed import Seed

AS_OF = date(2026, 12, 1)
LONG_AGO = date(2025, 1, 1)


def _book(seed: Seed) -> dict[str, str]:
    ids = {
        "A": seed.account("A", rank_tier="valued"),
        "B": seed.account("B", rank_tier="valued"),
        "C": seed.account("C", rank_tier="valued"),
        "D": seed.account("D", rank_tier="valued"),
        "Z": seed.account("Z", rank_tier="tactical"),
        "E": seed.account("E (deleted product only)"),
        "F": seed.account("F", rank_tier="strategic"),
        "G": seed.account("G (entitlement only)"),
        "H": seed.account("H (cancelled entitlement)"),
        "X": seed.account("X (deleted)", deleted_at=datetime(2026, 1, 1)),
    }
    seed.product(ids["A"], 1000, LONG_AGO)
    seed.product(ids["A"], 500, date(2026, 6, 1))
    seed.product(ids["B"], 2000, LONG_AGO, date(2026, 7, 15))
    seed.product(ids["C"], 1200, LONG_AGO, date(2026, 3, 31))
    seed.product(ids["C"], 800, date(2026, 4, 1))
    seed.product(ids["D"], 3000, date(2026, 2, 1))
    seed.product(ids["Z"], 1200, LONG_AGO)
    seed.product(ids["E"], 5000, LONG_AGO, deleted_at=datetime(2026, 1, 1))
    seed.product(ids["F"], 900, LONG_AGO, date(2025, 11, 30))
    seed.product(ids["X"], 7000, LONG_AGO)
    seed.entitlement(ids["G"], LONG_AGO)
    seed.entitlement(ids["H"], LONG_AGO, state="cancelled")

    u1, u2 = seed.user("Una"), seed.user("Udo")
    seed.csm(ids["A"], u1)
    seed.csm(ids["C"], u1)
    seed.csm(ids["C"], u2)
    seed.csm(ids["D"], u2)
    seed.csm(ids["A"], seed.user("Sam"), role="Support Engineer")
    ids.update(u1=u1, u2=u2)
    return ids


def test_retention_cohort(engine: Engine, seed: Seed) -> None:
    _book(seed)

    ret = compute_kpis(engine, KpiSettings(), as_of=AS_OF).overall.retention

    assert (ret.start_arr, ret.end_arr) == (5400, 3500)
    assert (ret.expansion, ret.contraction, ret.churn) == (500, 400, 2000)
    assert ret.cohort == 4
    assert ret.nrr == pytest.approx(3500 / 5400)
    assert ret.grr == pytest.approx(3000 / 5400)


def test_active_accounts_arr_and_csm_split(engine: Engine, seed: Seed) -> None:
    ids = _book(seed)

    result = compute_kpis(engine, KpiSettings(), as_of=AS_OF)

    active = {a.sys_id for a in result.accounts if a.active}
    assert active == {ids[k] for k in ("A", "C", "D", "G", "Z")}
    assert result.overall.active_accounts == 5
    assert result.overall.arr == 6500
    csms = {c.sys_id: c for c in result.csms}
    assert set(csms) == {ids["u1"], ids["u2"]}  # the support engineer is no CSM
    assert csms[ids["u1"]].active_accounts == pytest.approx(1.5)
    assert csms[ids["u2"]].active_accounts == pytest.approx(1.5)
    assert csms[ids["u1"]].arr == pytest.approx(1500 + 400)
    assert csms[ids["u2"]].arr == pytest.approx(400 + 3000)
    assert ids["X"] not in {a.sys_id for a in result.accounts}


def test_cltv_from_segment_logo_churn(engine: Engine, seed: Seed) -> None:
    ids = _book(seed)

    result = compute_kpis(engine, KpiSettings(), as_of=AS_OF)

    # valued: Jun 0/4, Jul 1/4 (B), Aug–Nov 0/3 → mean 1/24 → L = 24 months
    valued = result.overall.segments["valued"]
    assert valued["rates"] == pytest.approx([0, 0.25, 0, 0, 0, 0])
    assert valued["lifetime_months"] == pytest.approx(24)
    cltv = {a.sys_id: a.cltv for a in result.accounts}
    assert cltv[ids["A"]] == pytest.approx(1500 / 12 * 0.75 * 24)
    assert cltv[ids["D"]] == pytest.approx(3000 / 12 * 0.75 * 24)
    # tactical never churned: the 60-month cap
    assert cltv[ids["Z"]] == pytest.approx(1200 / 12 * 0.75 * 60)
    assert cltv[ids["G"]] == 0  # no products, no ARR


def test_csm_productivity_of_a_book(engine: Engine, seed: Seed) -> None:
    ids = _book(seed)

    result = compute_kpis(engine, KpiSettings(), as_of=AS_OF)

    una = next(c for c in result.csms if c.sys_id == ids["u1"])
    # book A + C: ARR₀ 2200 → ARR₁ 2300, contraction 400
    assert una.retention.nrr == pytest.approx(2300 / 2200)
    assert una.retention.grr == pytest.approx(1800 / 2200)
    parts = una.components
    assert parts["grr"] == pytest.approx(100 * (1800 / 2200 - 0.8) / 0.2)
    assert parts["nrr"] == pytest.approx(100 * (2300 / 2200 - 0.8) / 0.4)
    assert parts["coverage"] == 0  # no interactions at all
    assert parts["health_lift"] is None  # no account has enough data for a score
    assert parts["hygiene"] == 100  # no open cases
    assert una.productivity == pytest.approx(30 / 0.85)


def test_accounts_without_products(engine: Engine, seed: Seed) -> None:
    lonely = seed.account("No products")

    result = compute_kpis(engine, KpiSettings(), as_of=AS_OF)

    account = result.accounts[0]
    assert account.sys_id == lonely
    assert (account.arr, account.cltv, account.active) == (0, 0, False)
    assert result.overall.retention.nrr is None
    assert result.overall.active_accounts == 0
