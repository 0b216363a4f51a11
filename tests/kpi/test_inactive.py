"""Only active customers get a health score (DESIGN: an active sold product or
entitlement on the date); churned accounts are counted apart.

As of 2026-12-01:

* "Acme" (test_health's hand-computed account): active, health 63, yellow;
* "Ent only": no sold product, an entitlement running to 2027 → active;
* "Gone": its only product ended 2026-08-31 → not active. It still has usage,
  cases and an interaction, which used to give it a red score (adoption 10 %,
  commercial 0) and put it at the top of the at-risk list.
"""

from __future__ import annotations

from datetime import date, datetime

from sqlalchemy import Engine, insert

from connector.config import KpiSettings
from connector.kpi import compute_kpis, latest_account_health, store_snapshot
from connector.kpi.health import NOT_ACTIVE_REASON
from connector.kpi.models import HealthHistory
from connector.kpi.output import to_contract

from .seed import Seed, seed_acme

AS_OF = date(2026, 12, 1)
SETTINGS = KpiSettings(nps_metric="M_NPS", csat_metric="M_CSAT")


def _seed(seed: Seed) -> dict[str, str]:
    acme = seed_acme(seed)
    ent = seed.account("Ent only")
    seed.entitlement(ent, date(2026, 1, 1), date(2027, 6, 30))
    seed.usage(ent, date(2026, 11, 1), 8, 10)
    seed.interaction(ent, datetime(2026, 11, 20))
    gone = seed.account("Gone")
    seed.product(gone, 50000, date(2024, 1, 1), date(2026, 8, 31))
    seed.usage(gone, date(2026, 8, 1), 1, 10)
    seed.case(gone, opened_at=datetime(2026, 11, 5))
    seed.interaction(gone, datetime(2026, 11, 25))
    return {"acme": acme, "ent": ent, "gone": gone}


def test_inactive_account_gets_no_score(engine: Engine, seed: Seed) -> None:
    ids = _seed(seed)

    result = compute_kpis(engine, SETTINGS, as_of=AS_OF)

    by_id = {a.sys_id: a for a in result.accounts}
    gone = by_id[ids["gone"]]
    assert gone.active is False
    assert (gone.health.score, gone.health.band, gone.trend) == (None, None, None)
    assert gone.health.reason == NOT_ACTIVE_REASON
    assert by_id[ids["ent"]].active and by_id[ids["ent"]].health.score is not None
    assert by_id[ids["acme"]].health.score == 63


def test_bands_cover_active_accounts_and_inactive_are_counted_apart(
    engine: Engine, seed: Seed
) -> None:
    ids = _seed(seed)

    result = compute_kpis(engine, SETTINGS, as_of=AS_OF)

    ent = next(a for a in result.accounts if a.sys_id == ids["ent"])
    bands = {"green": 0, "yellow": 1, "red": 0, "none": 0}
    bands[ent.health.band or "none"] += 1
    assert result.overall.bands == bands
    assert sum(result.overall.bands.values()) == result.overall.active_accounts == 2
    assert result.overall.inactive_accounts == 1
    assert to_contract(result)["overall"]["inactive_accounts"] == 1


def test_write_back_input_for_an_account_that_churned(
    engine: Engine, seed: Seed
) -> None:
    """A score stored while the account was active is superseded by 'no score'."""
    ids = _seed(seed)
    with engine.begin() as conn:
        conn.execute(
            insert(HealthHistory.__table__),
            [{"account": ids["gone"], "as_of": date(2026, 8, 1), "score": 55}],
        )
    store_snapshot(engine, compute_kpis(engine, SETTINGS, as_of=AS_OF))

    health = {h.sys_id: h for h in latest_account_health(engine)}

    gone = health[ids["gone"]]
    assert (gone.as_of, gone.active) == (AS_OF, False)
    assert (gone.score, gone.band, gone.trend) == (None, None, None)
    assert gone.reason == NOT_ACTIVE_REASON
    assert health[ids["acme"]].active is True
    assert (health[ids["acme"]].score, health[ids["acme"]].band) == (63, "yellow")


def test_rows_without_a_stored_active_flag_count_as_active(engine: Engine) -> None:
    """Health rows stored before the flag existed keep being written back."""
    with engine.begin() as conn:
        conn.execute(
            insert(HealthHistory.__table__),
            [{"account": "old", "as_of": AS_OF, "score": 70, "band": "green"}],
        )

    [old] = latest_account_health(engine)

    assert (old.sys_id, old.score, old.active) == ("old", 70, True)
