"""Health score, bands, reasons, trend and the snapshot store, computed by hand.

The healthy-ish account "Acme" as of 2026-12-01:

| component | input | score | weight |
|---|---|---|---|
| adoption | 5/10 used | (0.5 − 0.2)/0.6 = 50 | 25 |
| support | 1 open P1 + 3 cases in 90 d → 1 + 3·30/90 = 2 | (3 − 2)/3 = 33.3 | 20 |
| nps | 10, 10, 10, 8, 3 → 40 | (40 + 50)/100 = 90 | 15 |
| csat | 4 on 1–5 → 75 | (75 − 40)/50 = 70 | 15 |
| engagement | last interaction 28 days ago | (120 − 28)/106 = 86.8 | 10 |
| commercial | renewal in 89 days | 50 + 50·89/180 = 74.7 | 15 |

H = 6305.4 / 100 → 63, yellow; weakest: support 33, adoption 50.
"""

from __future__ import annotations

from datetime import UTC, date, datetime

from sqlalchemy import Engine, func, insert, select

from connector.config import KpiSettings
from connector.kpi import compute_kpis, latest_account_health, store_snapshot
from connector.kpi.models import HealthHistory, KpiSnapshot

from .seed import Seed, seed_acme

AS_OF = date(2026, 12, 1)
SETTINGS = KpiSettings(nps_metric="M_NPS", csat_metric="M_CSAT")


def _health(result, sys_id):
    return next(a for a in result.accounts if a.sys_id == sys_id)


def test_health_score_by_hand(engine: Engine, seed: Seed) -> None:
    acme = seed_acme(seed)

    account = _health(compute_kpis(engine, SETTINGS, as_of=AS_OF), acme)

    assert account.health.components == {
        "adoption": 50,
        "support": 33,
        "nps": 90,
        "csat": 70,
        "engagement": 87,
        "commercial": 75,
    }
    assert (account.health.score, account.health.band) == (63, "yellow")
    assert account.health.reason == "weakest: support 33, adoption 50"
    assert account.health.weight_share == 1.0
    assert account.trend is None  # no snapshot 28 days earlier


def test_too_little_data_gives_no_score(engine: Engine, seed: Seed) -> None:
    bare = seed.account("Bare")
    seed.product(bare, 1000, date(2025, 1, 1))  # commercial + support only: 35%

    account = _health(compute_kpis(engine, SETTINGS, as_of=AS_OF), bare)

    assert (account.health.score, account.health.band) == (None, None)
    assert account.health.weight_share == 0.35
    assert (
        account.health.reason == "insufficient data (adoption, csat, engagement, nps)"
    )


def test_trend_from_a_snapshot_28_days_earlier(engine: Engine, seed: Seed) -> None:
    acme = seed_acme(seed)
    with engine.begin() as conn:
        conn.execute(
            insert(HealthHistory.__table__),
            [
                {"account": acme, "as_of": date(2026, 11, 3), "score": 70},
                {"account": acme, "as_of": date(2026, 10, 1), "score": 10},
            ],
        )

    account = _health(compute_kpis(engine, SETTINGS, as_of=AS_OF), acme)

    assert account.trend == 63 - 70


def test_trend_ignores_snapshots_far_older_than_the_period(
    engine: Engine, seed: Seed
) -> None:
    acme = seed_acme(seed)
    with engine.begin() as conn:
        conn.execute(
            insert(HealthHistory.__table__),
            [{"account": acme, "as_of": date(2026, 10, 26), "score": 70}],
        )

    assert _health(compute_kpis(engine, SETTINGS, as_of=AS_OF), acme).trend is None


def test_trend_through_stored_runs(engine: Engine, seed: Seed) -> None:
    acme = seed_acme(seed)
    earlier = compute_kpis(engine, SETTINGS, as_of=date(2026, 11, 3))
    store_snapshot(engine, earlier)

    now = _health(compute_kpis(engine, SETTINGS, as_of=AS_OF), acme)

    then = _health(earlier, acme).health.score
    assert then is not None and then != now.health.score
    assert now.trend == now.health.score - then


def _count(engine: Engine, table, **where) -> int:
    query = select(func.count()).select_from(table)
    for column, value in where.items():
        query = query.where(table.c[column] == value)
    with engine.connect() as conn:
        return conn.execute(query).scalar_one()


def _value(engine: Engine, scope: str, scope_id: str, kpi: str) -> float | None:
    t = KpiSnapshot.__table__
    with engine.connect() as conn:
        return conn.execute(
            select(t.c.value).where(
                t.c.as_of == AS_OF,
                t.c.scope == scope,
                t.c.scope_id == scope_id,
                t.c.kpi == kpi,
            )
        ).scalar_one()


def test_rerunning_a_date_replaces_its_snapshot(engine: Engine, seed: Seed) -> None:
    acme = seed_acme(seed)
    snap = KpiSnapshot.__table__
    written = store_snapshot(engine, compute_kpis(engine, SETTINGS, as_of=AS_OF))
    assert _count(engine, snap) == written
    assert _value(engine, "overall", "", "nps") == 40.0

    seed.answer(acme, "M_NPS", 0)  # a sixth respondent, a detractor
    again = store_snapshot(engine, compute_kpis(engine, SETTINGS, as_of=AS_OF))

    assert again == written
    assert _count(engine, snap) == written
    assert _value(engine, "overall", "", "nps") == 100 * (3 - 2) / 6
    assert _value(engine, "account", acme, "nps") == 100 * (3 - 2) / 6
    assert _count(engine, HealthHistory.__table__) == 1


def test_one_account_run_replaces_only_that_account(engine: Engine, seed: Seed) -> None:
    acme = seed_acme(seed)
    other = seed.account("Other")
    store_snapshot(engine, compute_kpis(engine, SETTINGS, as_of=AS_OF))
    before = _count(engine, KpiSnapshot.__table__)

    result = compute_kpis(engine, SETTINGS, as_of=AS_OF, account=acme)
    store_snapshot(engine, result)

    assert [a.sys_id for a in result.accounts] == [acme]
    assert _count(engine, KpiSnapshot.__table__) == before
    assert _count(engine, KpiSnapshot.__table__, scope_id=other) > 0


def test_latest_account_health_for_write_back(engine: Engine, seed: Seed) -> None:
    acme = seed_acme(seed)
    bare = seed.account("Bare")
    store_snapshot(engine, compute_kpis(engine, SETTINGS, as_of=date(2026, 11, 3)))
    store_snapshot(engine, compute_kpis(engine, SETTINGS, as_of=AS_OF))

    health = {h.sys_id: h for h in latest_account_health(engine)}

    assert set(health) == {acme, bare}
    mine = health[acme]
    assert (mine.score, mine.band, mine.as_of) == (63, "yellow", AS_OF)
    assert mine.nps_value == 40.0 and mine.nps_n == 5
    assert mine.reason == "weakest: support 33, adoption 50"
    assert mine.trend is not None
    assert (health[bare].score, health[bare].nps_value) == (None, None)


def test_snapshot_rows_carry_inputs(engine: Engine, seed: Seed) -> None:
    seed_acme(seed)
    store_snapshot(engine, compute_kpis(engine, SETTINGS, as_of=AS_OF))
    t = KpiSnapshot.__table__

    with engine.connect() as conn:
        row = conn.execute(
            select(t).where(t.c.scope == "overall", t.c.kpi == "nps")
        ).one()
        computed = conn.execute(select(func.max(t.c.computed_at))).scalar_one()

    assert (row.value, row.numerator, row.n) == (40.0, 2.0, 5)
    assert row.detail["promoters"] == 3 and row.detail["detractors"] == 1
    assert computed.date() == datetime.now(UTC).date()
