"""Properties that must hold for any input (hypothesis)."""

from __future__ import annotations

import statistics
from datetime import UTC, date, datetime, timedelta
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from sqlalchemy import Engine, create_engine, event, text
from sqlmodel import SQLModel

from connector.config import HealthComponent, KpiSettings
from connector.kpi import compute_kpis
from connector.kpi.health import AccountInputs, band_for, component_score, score_health
from connector.kpi.sql import fetch, interpolate, percentile_sql
from connector.kpi.surveys import NpsStat

from .seed import Seed

AS_OF = date(2026, 12, 1)


@st.composite
def nps_counts(draw) -> NpsStat:
    n = draw(st.integers(1, 5000))
    promoters = draw(st.integers(0, n))
    detractors = draw(st.integers(0, n - promoters))
    return NpsStat(n, promoters, detractors)


@given(nps_counts())
def test_nps_and_its_interval_stay_in_range(stat: NpsStat) -> None:
    low, high = stat.ci95

    assert -100 <= stat.value <= 100
    assert -100 <= low <= high <= 100
    if stat.n >= 2:  # one extreme answer: adjusted Wald stops short of ±100
        assert low <= stat.value <= high


def test_single_extreme_answer_interval_is_documented() -> None:
    low, high = NpsStat(1, 1, 0).ci95

    assert (round(low, 1), round(high, 1)) == (-48.5, 98.5)


values = st.one_of(st.none(), st.floats(-1000, 1000, allow_nan=False))
weights = st.floats(0, 100, allow_nan=False)


@given(
    inputs=st.builds(AccountInputs, values, values, values, values, values, values),
    adoption_weight=weights,
    support_weight=weights,
    green=st.floats(50, 100),
    yellow=st.floats(0, 50),
)
def test_health_score_range_band_and_data_rule(
    inputs: AccountInputs,
    adoption_weight: float,
    support_weight: float,
    green: float,
    yellow: float,
) -> None:
    components = dict(KpiSettings().health_components)
    components["adoption"] = HealthComponent(weight=adoption_weight, bad=0.2, good=0.8)
    components["support"] = HealthComponent(weight=support_weight, bad=3, good=0)
    settings_ = KpiSettings(
        health_components=components, band_green=green, band_yellow=yellow
    )

    health = score_health(inputs, settings_)

    total = sum(c.weight for c in components.values())
    present = sum(
        components[name].weight
        for name, x in inputs.component_values().items()
        if x is not None
    )
    if health.score is None:
        assert health.band is None
        assert present == 0 or present < 0.6 * total
    else:
        assert 0 <= health.score <= 100
        assert present >= 0.6 * total
        assert health.band == band_for(health.score, settings_)
        expected = (
            "green"
            if health.score >= green
            else ("yellow" if health.score >= yellow else "red")
        )
        assert health.band == expected


@given(
    x=st.floats(-1e6, 1e6, allow_nan=False),
    y=st.floats(-1e6, 1e6, allow_nan=False),
    bad=st.floats(-100, 100),
    good=st.floats(-100, 100),
)
def test_component_scores_are_bounded_and_direction_aware(
    x: float, y: float, bad: float, good: float
) -> None:
    spec = HealthComponent(weight=1, bad=bad, good=good)
    low, high = sorted((x, y))

    assert 0 <= component_score(x, spec) <= 100
    if good > bad:
        assert component_score(low, spec) <= component_score(high, spec)
    elif good < bad:
        assert component_score(low, spec) >= component_score(high, spec)


@pytest.fixture(scope="module")
def sqlite_engine(tmp_path_factory: pytest.TempPathFactory) -> Engine:
    path: Path = tmp_path_factory.mktemp("props") / "store.db"
    engine = create_engine(f"sqlite:///{path}")

    @event.listens_for(engine, "connect")
    def _fast(dbapi_conn, _record) -> None:  # type: ignore[no-untyped-def]
        # Throwaway file: skip fsync so many tiny seeding transactions stay fast.
        dbapi_conn.execute("PRAGMA synchronous=OFF")

    SQLModel.metadata.create_all(engine)
    return engine


@settings(
    max_examples=40,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture],
)
@given(
    st.lists(st.floats(0, 200, allow_nan=False), min_size=1, max_size=40),
    st.sampled_from([(1, 2), (3, 4), (9, 10), (1, 4)]),
)
def test_sql_percentile_matches_linear_interpolation(
    sqlite_engine: Engine, values: list[float], fraction: tuple[int, int]
) -> None:
    rows = " UNION ALL ".join(f"SELECT {v!r} AS v" for v in values)
    ranked = (
        f"SELECT v, ROW_NUMBER() OVER (ORDER BY v) AS rn, COUNT(*) OVER () AS n"
        f" FROM ({rows}) t"
    )

    with sqlite_engine.connect() as conn:
        row = fetch(conn, percentile_sql(ranked, "v", *fraction), {})[0]

    num, den = fraction
    expected = (
        values[0]
        if len(values) == 1
        else statistics.quantiles(values, n=den, method="inclusive")[num - 1]
    )
    assert interpolate(*row[:3]) == pytest.approx(expected)


@settings(
    max_examples=25,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture],
)
@given(
    st.lists(
        st.lists(st.integers(0, 10), min_size=1, max_size=3), min_size=0, max_size=12
    )
)
def test_sql_nps_matches_a_reference(
    sqlite_engine: Engine, respondents: list[list[int]]
) -> None:
    with sqlite_engine.begin() as conn:
        for table in ("survey_result", "survey_instance", "contact", "account"):
            conn.execute(text(f"DELETE FROM {table}"))
    seed = Seed(sqlite_engine)
    acme = seed.account()
    for answers in respondents:  # each respondent answers on consecutive days
        contact = seed.contact(acme)
        for day, score in enumerate(answers, start=1):
            instance = seed.instance(contact, datetime(2026, 10, day, tzinfo=UTC))
            seed.result(instance, "M_NPS", score)

    nps = compute_kpis(
        sqlite_engine, KpiSettings(nps_metric="M_NPS"), as_of=AS_OF
    ).overall.nps

    latest = [answers[-1] for answers in respondents]
    assert nps.n == len(latest)
    assert nps.promoters == sum(1 for s in latest if s >= 9)
    assert nps.detractors == sum(1 for s in latest if s <= 6)


def _clear(engine: Engine, *tables: str) -> None:
    with engine.begin() as conn:
        for table in tables:
            conn.execute(text(f'DELETE FROM "{table}"'))


case_specs = st.lists(
    st.fixed_dictionaries(
        {
            "state": st.sampled_from(["6", "3", "7", "10"]),
            "channel": st.sampled_from(["phone", "email", None]),
            "days_ago": st.integers(0, 120),
            "reassigned": st.sampled_from([0, 0, 1]),
            "waited": st.booleans(),
            "reopen_after": st.sampled_from(
                [None, 3, 7, 8, 15]
            ),  # 7 and 8: either side of the rule
            "links": st.integers(0, 2),
        }
    ),
    max_size=15,
)


@settings(
    max_examples=40,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture],
)
@given(case_specs)
def test_sql_fcr_matches_a_reference(sqlite_engine: Engine, cases: list[dict]) -> None:
    _clear(
        sqlite_engine,
        "case",
        "case_state_change",
        "interaction_link",
        "interaction",
        "account",
    )
    seed = Seed(sqlite_engine)
    acme = seed.account()
    end = datetime(2026, 12, 2, tzinfo=UTC)
    expected: dict[str, list[int]] = {}
    for spec in cases:
        resolved = end - timedelta(days=spec["days_ago"], hours=1)
        case = seed.case(
            acme,
            state=spec["state"],
            channel=spec["channel"],
            resolved_at=resolved,
            reassignment_count=spec["reassigned"],
        )
        if spec["waited"]:
            seed.state_change(case, "10", "18", resolved - timedelta(days=1))
        if spec["reopen_after"] is not None:
            seed.state_change(case, "10", "6", resolved)
            seed.state_change(
                case, "6", "10", resolved + timedelta(days=spec["reopen_after"])
            )
        for _ in range(spec["links"]):
            seed.link(seed.interaction(acme, resolved), case)
        if spec["state"] in ("6", "3") and spec["days_ago"] < 90:
            fcr = (
                spec["reassigned"] == 0
                and not spec["waited"]
                and (spec["reopen_after"] is None or spec["reopen_after"] > 7)
                and spec["links"] <= 1
            )
            counts = expected.setdefault(spec["channel"] or "unknown", [0, 0])
            counts[0] += int(fcr)
            counts[1] += 1

    result = compute_kpis(sqlite_engine, KpiSettings(), as_of=AS_OF)

    found = {
        ch: [int(r.numerator), int(r.denominator)]
        for ch, r in result.overall.fcr_by_channel.items()
    }
    assert found == expected


products = st.lists(
    st.tuples(
        st.integers(0, 3),
        st.integers(1, 9),
        st.integers(-800, 300),
        st.one_of(st.none(), st.integers(-700, 400)),
    ),
    max_size=12,
)


@settings(
    max_examples=20,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture],
)
@given(products)
def test_sql_retention_matches_a_reference(
    sqlite_engine: Engine, rows: list[tuple[int, int, int, int | None]]
) -> None:
    _clear(sqlite_engine, "sold_product", "account")
    seed = Seed(sqlite_engine)
    accounts = [seed.account(f"A{i}") for i in range(4)]
    t0 = AS_OF - timedelta(days=365)
    arr: dict[str, list[float]] = {a: [0.0, 0.0] for a in accounts}
    for index, price, start_offset, end_offset in rows:
        start = AS_OF + timedelta(days=start_offset)
        end = None if end_offset is None else start + timedelta(days=abs(end_offset))
        seed.product(accounts[index], price * 1000, start, end)
        for i, day in enumerate((t0, AS_OF)):
            if start <= day and (end is None or end >= day):
                arr[accounts[index]][i] += price * 1000

    ret = compute_kpis(sqlite_engine, KpiSettings(), as_of=AS_OF).overall.retention

    cohort = [(a0, a1) for a0, a1 in arr.values() if a0 > 0]
    assert ret.cohort == len(cohort)
    assert ret.start_arr == sum(a0 for a0, _ in cohort)
    assert ret.end_arr == sum(a1 for _, a1 in cohort)
    assert ret.expansion == sum(max(a1 - a0, 0) for a0, a1 in cohort)
    assert ret.churn == sum(a0 for a0, a1 in cohort if a1 == 0)
    # the identity NRR = 1 + (expansion − contraction − churn) / start
    if cohort:
        assert ret.nrr == pytest.approx(
            1 + (ret.expansion - ret.contraction - ret.churn) / ret.start_arr
        )
        assert 0 <= ret.grr <= 1
