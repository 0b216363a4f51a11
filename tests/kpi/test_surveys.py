"""NPS and CSAT on hand-computed survey tables (case C15 included)."""

from __future__ import annotations

from datetime import date, datetime

import pytest
from sqlalchemy import Engine

from connector.config import KpiSettings
from connector.kpi import compute_kpis

from .seed import Seed

AS_OF = date(2026, 12, 1)
NPS = "M_NPS"
CSAT = "M_CSAT"
SETTINGS = KpiSettings(nps_metric=NPS, csat_metric=CSAT)


def _account(result, sys_id):
    return next(a for a in result.accounts if a.sys_id == sys_id)


def test_c15_migrated_scale_duplicates_and_na(engine: Engine, seed: Seed) -> None:
    acme = seed.account("Acme")
    for value in range(1, 12):  # migrated 0–10 question: stored 1..11
        seed.option(NPS, value, str(value - 1))
    first = seed.instance(seed.contact(acme), datetime(2026, 10, 1), sys_id="AINST0001")
    second = seed.instance(
        seed.contact(acme), datetime(2026, 10, 2), sys_id="AINST0002"
    )
    seed.result(first, NPS, 10, "9")
    seed.result(first, "M_COMMENT", -1, "Quick and friendly")
    seed.result(first, "M_RESOLVED", 1, "Yes")
    seed.result(second, NPS, None, "N/A", sys_updated_on=datetime(2026, 10, 3))
    seed.result(second, NPS, 11, "10", sys_updated_on=datetime(2026, 10, 2))

    result = compute_kpis(engine, SETTINGS, as_of=AS_OF)

    nps = result.overall.nps
    assert (nps.n, nps.promoters, nps.detractors) == (2, 2, 0)
    assert nps.value == 100.0
    account = _account(result, acme)
    assert account.nps.n == 2
    assert account.nps_value is None  # N < 5: no account NPS


def test_latest_valid_duplicate_wins_and_unmatched_values_drop(
    engine: Engine, seed: Seed
) -> None:
    acme = seed.account()
    for value in range(1, 12):
        seed.option(NPS, value, str(value - 1))
    dup = seed.instance(seed.contact(acme), datetime(2026, 10, 1))
    seed.result(dup, NPS, 11, sys_updated_on=datetime(2026, 10, 1, 8))
    seed.result(dup, NPS, 1, sys_updated_on=datetime(2026, 10, 1, 9))  # later: 0
    odd = seed.instance(seed.contact(acme), datetime(2026, 10, 1))
    seed.result(odd, NPS, 12)  # no option with value 12: outside the scale

    nps = compute_kpis(engine, SETTINGS, as_of=AS_OF).overall.nps

    assert (nps.n, nps.promoters, nps.detractors) == (1, 0, 1)
    assert nps.value == -100.0


def test_no_responses(engine: Engine, seed: Seed) -> None:
    seed.account()

    result = compute_kpis(engine, SETTINGS, as_of=AS_OF)

    assert result.overall.nps.n == 0
    assert result.overall.nps.value is None
    assert result.overall.nps.ci95 is None
    assert result.overall.csat.value is None


def test_one_passive_response(engine: Engine, seed: Seed) -> None:
    seed.answer(seed.account(), NPS, 7)

    nps = compute_kpis(engine, SETTINGS, as_of=AS_OF).overall.nps

    assert (nps.n, nps.value) == (1, 0.0)


def test_account_nps_from_five_promoters_and_exclusions(
    engine: Engine, seed: Seed
) -> None:
    acme, other = seed.account("Acme"), seed.account("Other")
    for _ in range(4):
        seed.answer(acme, NPS, 10)
    repeat = seed.contact(acme)  # answered twice: the latest (9) counts
    seed.result(seed.instance(repeat, datetime(2026, 3, 1)), NPS, 0)
    seed.result(seed.instance(repeat, datetime(2026, 9, 1)), NPS, 9)
    seed.answer(acme, NPS, 10, taken_on=datetime(2025, 11, 30))  # outside 365 days
    seed.answer(acme, NPS, -1)  # negative: excluded
    seed.answer(acme, NPS, 11)  # no options: outside 0–10, excluded
    wip = seed.instance(seed.contact(acme), datetime(2026, 10, 1), state="wip")
    seed.result(wip, NPS, 0)
    gone = seed.instance(seed.contact(acme), datetime(2026, 10, 1))
    seed.result(gone, NPS, 0, deleted_at=datetime(2026, 10, 5))
    deleted_instance = seed.instance(
        seed.contact(acme), datetime(2026, 10, 1), deleted_at=datetime(2026, 10, 5)
    )
    seed.result(deleted_instance, NPS, 0)
    seed.answer(other, NPS, 3)

    result = compute_kpis(engine, SETTINGS, as_of=AS_OF)

    account = _account(result, acme)
    assert (account.nps.n, account.nps.promoters, account.nps_value) == (5, 5, 100.0)
    low, high = account.nps.ci95
    assert low == pytest.approx(17.49, abs=0.01)  # adjusted Wald, by hand
    assert high == 100.0
    overall = result.overall.nps  # pooled respondents: 5 promoters, 1 detractor
    assert (overall.n, overall.value) == (6, pytest.approx(100 * 4 / 6))
    assert _account(result, other).nps_value is None


def test_csat_mean_on_the_question_scale(engine: Engine, seed: Seed) -> None:
    seed.question(CSAT, scale_min=1, scale_max=5)
    acme = seed.account()
    for score in (5, 4, 3):
        seed.answer(acme, CSAT, score, taken_on=datetime(2026, 11, 1))
    seed.answer(acme, CSAT, 1, taken_on=datetime(2026, 8, 1))  # older than 90 days
    na = seed.instance(seed.contact(acme), datetime(2026, 11, 2))
    seed.result(na, CSAT, 0, "N/A")
    seed.answer(acme, CSAT, 6, taken_on=datetime(2026, 11, 1))  # above the scale

    result = compute_kpis(engine, SETTINGS, as_of=AS_OF)

    csat = result.overall.csat
    assert (csat.n, csat.value) == (3, 75.0)  # mean 4 on 1–5
    assert _account(result, acme).csat.value == 75.0


def test_csat_attributed_through_the_triggering_case(
    engine: Engine, seed: Seed
) -> None:
    seed.question(CSAT, scale_min=1, scale_max=5)
    acme = seed.account()
    case = seed.case(acme)
    survey = seed.instance(
        "not-a-contact",
        datetime(2026, 11, 1),
        trigger_id=case,
        trigger_table="sn_customerservice_case",
    )
    seed.result(survey, CSAT, 5)

    result = compute_kpis(engine, SETTINGS, as_of=AS_OF)

    assert _account(result, acme).csat.value == 100.0


def test_unset_question_lists_the_synced_candidates(
    engine: Engine, seed: Seed, caplog: pytest.LogCaptureFixture
) -> None:
    seed.question(NPS, name="Likelihood to recommend", datatype="template")
    seed.question(CSAT, name="Case satisfaction", datatype="scale")
    seed.question("M_GONE", name="Deleted", deleted_at=datetime(2026, 1, 1))

    with caplog.at_level("WARNING", logger="connector.kpi.surveys"):
        compute_kpis(engine, KpiSettings(csat_metric=CSAT), as_of=AS_OF)

    [message] = [
        r.getMessage() for r in caplog.records if "kpi.nps_metric" in r.message
    ]
    assert message.splitlines() == [
        "No NPS question configured (kpi.nps_metric); NPS is empty. Set "
        "kpi.nps_metric to the sys_id of one of the synced survey questions "
        "(sys_id, name, datatype):",
        f"  {CSAT}  Case satisfaction  (scale)",
        f"  {NPS}  Likelihood to recommend  (template)",
    ]


def test_unset_question_without_synced_questions_says_to_sync(
    engine: Engine, caplog: pytest.LogCaptureFixture
) -> None:
    with caplog.at_level("WARNING", logger="connector.kpi.surveys"):
        compute_kpis(engine, KpiSettings(nps_metric=NPS), as_of=AS_OF)

    [message] = [
        r.getMessage() for r in caplog.records if "kpi.csat_metric" in r.message
    ]
    assert "No survey questions are synced yet: run 'csm-sync sync'" in message
