"""``compute_kpis``: every KPI as of one date, per account, per CSM and overall.

Each KPI is one or a few SQL queries over the canonical tables (see the modules
beside this one for the precise definitions); this module only composes their
per-account results — at most one row per account — into health scores, CLTV,
CSM productivity and the :class:`KpiResult` handed to snapshots, the CLI, the
report and write-back.
"""

from __future__ import annotations

import logging
import time as clock
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta

from sqlalchemy import Engine
from sqlalchemy.engine import Connection, Row
from sqlalchemy.exc import SQLAlchemyError

from connector.config import KpiSettings
from connector.errors import StoreError
from connector.kpi import adoption, revenue, support, surveys
from connector.kpi.health import (
    AccountInputs,
    Health,
    commercial_value,
    days_since,
    not_active,
    score_health,
)
from connector.kpi.productivity import LIFT_POINTS, BookFacts, productivity, sub_scores
from connector.kpi.sql import (
    Scoped,
    account_filter,
    csm_map_cte,
    day_end,
    fetch,
    window_start,
)
from connector.kpi.store import ensure_kpi_tables, health_scores_near

log = logging.getLogger(__name__)

TREND_TOLERANCE_DAYS = 7
"""How much older than ``as_of − trend_days`` a stored score may be for a trend."""


@dataclass
class AccountKpis:
    """Every figure of one account."""

    sys_id: str
    name: str | None
    segment: str
    active: bool
    arr: float
    cltv: float
    usage: adoption.Usage
    nps: surveys.NpsStat
    csat: surveys.CsatStat
    fcr: support.Ratio
    retention: revenue.Retention
    load: support.CaseLoad
    health: Health
    trend: int | None
    nps_value: float | None
    ttv_days: int | None
    days_since_interaction: float | None
    csms: list[str] = field(default_factory=list)


@dataclass
class CsmKpis:
    """Every figure of one CSM (workload beside productivity)."""

    sys_id: str
    name: str | None
    book: int
    active_accounts: float
    arr: float
    productivity: float | None
    components: dict[str, float | None]
    nps: surveys.NpsStat
    csat: surveys.CsatStat
    fcr: support.Ratio
    retention: revenue.Retention


@dataclass
class OverallKpis:
    """The figures over every account.

    ``bands`` counts active accounts only (``none``: active but too little data
    for a score); ``inactive_accounts`` are the stored accounts that are not
    active customers on the date and so have no score at all.
    """

    nps: surveys.NpsStat
    csat: surveys.CsatStat
    fcr: support.Ratio
    fcr_by_channel: dict[str, support.Ratio]
    retention: revenue.Retention
    active_accounts: int
    arr: float
    used_units: float
    total_units: float
    seats_used: float
    seats_sold: float
    ttv: adoption.TimeToValue
    segments: dict[str, dict]
    bands: dict[str, int]
    inactive_accounts: int = 0

    @property
    def license_utilisation(self) -> float | None:
        return self.used_units / self.total_units if self.total_units else None

    @property
    def seat_utilisation(self) -> float | None:
        return self.seats_used / self.seats_sold if self.seats_sold else None


@dataclass
class KpiResult:
    """Everything ``compute_kpis`` found for one as-of date."""

    as_of: date
    overall: OverallKpis
    accounts: list[AccountKpis]
    csms: list[CsmKpis]
    account_filter: str | None = None
    seconds: float = 0.0


def query_params(settings: KpiSettings, as_of: date) -> dict:
    """Bound parameters every KPI query may use."""
    return {
        "as_of": as_of,
        "end": day_end(as_of),
        "nps_start": window_start(as_of, settings.nps_window_days),
        "csat_start": window_start(as_of, settings.csat_window_days),
        "fcr_start": window_start(as_of, settings.fcr_window_days),
        "support_start": window_start(as_of, settings.support_window_days),
        "t0": as_of - timedelta(days=settings.expansion_window_days),
        "responsibility": settings.csm_responsibility,
        "ttv_threshold": settings.ttv_utilisation,
    }


@dataclass
class _Facts:
    """Raw per-scope query results, before composition."""

    accounts: list[Row]
    nps: Scoped[surveys.NpsStat]
    csat: Scoped[surveys.CsatStat]
    fcr: support.FcrResult
    load: dict[str, support.CaseLoad]
    arr: dict[str, float]
    retention: Scoped[revenue.Retention]
    segments: dict[str, dict]
    active: set[str]
    csm_active: dict[str, float]
    usage: dict[str, adoption.Usage]
    ttv: adoption.TimeToValue
    ttv_days: dict[str, int | None]
    last_interaction: dict[str, datetime]
    renewals: dict[str, date | None]
    csm_map: list[Row]
    csm_names: dict[str, str | None]
    past_scores: dict[str, int]


def _gather(conn: Connection, settings: KpiSettings, as_of: date) -> _Facts:
    params = query_params(settings, as_of)
    active, csm_active = revenue.compute_active(conn, params)
    ttv, ttv_days = adoption.compute_ttv(conn, params)
    trend_at = as_of - timedelta(days=settings.trend_days)
    return _Facts(
        accounts=fetch(
            conn,
            "SELECT a.sys_id, a.name, COALESCE(NULLIF(a.rank_tier, ''), 'none')"
            f" AS segment FROM account a WHERE {account_filter('a')}"
            " ORDER BY a.sys_id",
            params,
        ),
        nps=surveys.compute_nps(conn, settings.nps_metric, params),
        csat=surveys.compute_csat(conn, settings.csat_metric, params),
        fcr=support.compute_fcr(conn, settings, params),
        load=support.compute_case_load(conn, params),
        arr=revenue.compute_arr(conn, params),
        retention=revenue.compute_retention(conn, params),
        segments=revenue.compute_segment_churn(conn, as_of),
        active=active,
        csm_active=csm_active,
        usage=adoption.compute_usage(conn, params),
        ttv=ttv,
        ttv_days=ttv_days,
        last_interaction=adoption.compute_last_interaction(conn, params),
        renewals=adoption.compute_renewals(conn, params),
        csm_map=fetch(
            conn, f"WITH {csm_map_cte()} SELECT account, csm, k FROM csm_map", params
        ),
        csm_names={
            row[0]: row[1]
            for row in fetch(
                conn, "SELECT sys_id, name FROM sn_user WHERE deleted_at IS NULL", {}
            )
        },
        past_scores=health_scores_near(
            conn, trend_at, trend_at - timedelta(days=TREND_TOLERANCE_DAYS)
        ),
    )


def _inputs(
    sys_id: str, facts: _Facts, settings: KpiSettings, as_of: date
) -> AccountInputs:
    """The health inputs of one account (see :mod:`connector.kpi.health`)."""
    load = facts.load.get(sys_id, support.CaseLoad())
    nps = facts.nps.account.get(sys_id, surveys.NpsStat())
    return AccountInputs(
        utilisation=facts.usage.get(sys_id, adoption.Usage()).utilisation,
        support_burden=load.open_p12
        + load.opened_recent * 30.0 / settings.support_window_days,
        nps=nps.value if nps.n >= settings.nps_min_sample else None,
        csat=facts.csat.account.get(sys_id, surveys.CsatStat()).value,
        days_since_interaction=days_since(as_of, facts.last_interaction.get(sys_id)),
        commercial=commercial_value(
            as_of,
            active=sys_id in facts.active,
            renewal=facts.renewals.get(sys_id),
            has_products=sys_id in facts.renewals,
        ),
    )


def _account(
    row: Row,
    facts: _Facts,
    settings: KpiSettings,
    as_of: date,
    lifetimes: dict[str, float],
) -> AccountKpis:
    sys_id = row.sys_id
    usage = facts.usage.get(sys_id, adoption.Usage())
    nps = facts.nps.account.get(sys_id, surveys.NpsStat())
    csat = facts.csat.account.get(sys_id, surveys.CsatStat())
    load = facts.load.get(sys_id, support.CaseLoad())
    inputs = _inputs(sys_id, facts, settings, as_of)
    active = sys_id in facts.active
    # A churned or never-started account is not a customer whose health can be
    # managed: scoring it would fill the at-risk list with lost accounts.
    health = score_health(inputs, settings) if active else not_active()
    past = facts.past_scores.get(sys_id)
    arr = facts.arr.get(sys_id, 0.0)
    lifetime = lifetimes.get(row.segment, settings.cltv_max_months)
    return AccountKpis(
        sys_id=sys_id,
        name=row.name,
        segment=row.segment,
        active=active,
        arr=arr,
        cltv=arr / 12.0 * settings.gross_margin * lifetime,
        usage=usage,
        nps=nps,
        csat=csat,
        fcr=facts.fcr.scoped.account.get(sys_id, support.Ratio()),
        retention=facts.retention.account.get(sys_id, revenue.Retention()),
        load=load,
        health=health,
        trend=None if health.score is None or past is None else health.score - past,
        nps_value=inputs.nps,
        ttv_days=None
        if facts.ttv_days.get(sys_id) is None
        else int(facts.ttv_days[sys_id]),
        days_since_interaction=inputs.days_since_interaction,
    )


def _book_facts(
    book: list[AccountKpis],
    as_of: date,
    settings: KpiSettings,
    retention: revenue.Retention,
) -> BookFacts:
    covered_since = as_of - timedelta(days=settings.coverage_days - 1)
    active = [a for a in book if a.active]
    scored = [a for a in book if a.health.score is not None]
    return BookFacts(
        grr=retention.grr,
        nrr=retention.nrr,
        active=len(active),
        active_covered=sum(
            1
            for a in active
            if a.days_since_interaction is not None
            and as_of - timedelta(days=a.days_since_interaction) >= covered_since
        ),
        scored=len(scored),
        lifted=sum(
            1
            for a in scored
            if a.health.band == "green" or (a.trend or 0) >= LIFT_POINTS
        ),
        open_cases=sum(a.load.open_all for a in book),
        overdue_cases=sum(a.load.open_overdue for a in book),
    )


def _csms(
    facts: _Facts, accounts: dict[str, AccountKpis], as_of: date, settings: KpiSettings
) -> list[CsmKpis]:
    books: dict[str, list[tuple[AccountKpis, int]]] = {}
    for row in facts.csm_map:
        if row.account in accounts:
            books.setdefault(row.csm, []).append((accounts[row.account], int(row.k)))
            accounts[row.account].csms.append(row.csm)
    result = []
    for csm, members in sorted(books.items()):
        book = [account for account, _ in members]
        retention = facts.retention.csm.get(csm, revenue.Retention())
        parts = sub_scores(_book_facts(book, as_of, settings, retention))
        result.append(
            CsmKpis(
                sys_id=csm,
                name=facts.csm_names.get(csm),
                book=len(book),
                active_accounts=facts.csm_active.get(csm, 0.0),
                arr=sum(a.arr / k for a, k in members),
                productivity=productivity(parts),
                components=parts,
                nps=facts.nps.csm.get(csm, surveys.NpsStat()),
                csat=facts.csat.csm.get(csm, surveys.CsatStat()),
                fcr=facts.fcr.scoped.csm.get(csm, support.Ratio()),
                retention=retention,
            )
        )
    return result


def _overall(facts: _Facts, accounts: list[AccountKpis]) -> OverallKpis:
    active = [a for a in accounts if a.active]
    bands = {"green": 0, "yellow": 0, "red": 0, "none": 0}
    for account in active:
        bands[account.health.band or "none"] += 1
    return OverallKpis(
        nps=facts.nps.overall,
        csat=facts.csat.overall,
        fcr=facts.fcr.scoped.overall,
        fcr_by_channel=facts.fcr.channels,
        retention=facts.retention.overall,
        active_accounts=len(active),
        arr=sum(a.arr for a in accounts),
        used_units=sum(a.usage.used for a in active),
        total_units=sum(a.usage.total for a in active),
        seats_used=sum(a.usage.used for a in active if a.usage.seats_sold),
        seats_sold=sum(a.usage.seats_sold for a in active if a.usage.total),
        ttv=facts.ttv,
        segments=facts.segments,
        bands=bands,
        inactive_accounts=len(accounts) - len(active),
    )


def compute_kpis(
    engine: Engine, settings: KpiSettings, *, as_of: date, account: str | None = None
) -> KpiResult:
    """Compute every KPI as of ``as_of`` (end of that UTC day).

    Args:
        engine: the store engine (SQLite or PostgreSQL).
        settings: KPI parameters (``settings.kpi``).
        as_of: the date the figures describe.
        account: keep only this account (and its CSMs) in the per-scope lists;
            the overall figures stay those of every account.
    """
    started = clock.perf_counter()
    ensure_kpi_tables(engine)
    try:
        with engine.connect() as conn:
            facts = _gather(conn, settings, as_of)
    except SQLAlchemyError as exc:
        first = str(exc.orig if getattr(exc, "orig", None) else exc).splitlines()[0]
        raise StoreError(
            f"Cannot compute KPIs from the store: {first}. Run 'csm-sync sync' (or "
            "'csm-sync backfill') first so the canonical tables exist."
        ) from exc

    lifetimes = {
        segment: revenue.lifetime_months(entry["rates"], settings.cltv_max_months)
        for segment, entry in facts.segments.items()
    }
    for segment, lifetime in lifetimes.items():
        facts.segments[segment]["lifetime_months"] = lifetime
    accounts = [
        _account(row, facts, settings, as_of, lifetimes) for row in facts.accounts
    ]
    by_id = {a.sys_id: a for a in accounts}
    csms = _csms(facts, by_id, as_of, settings)
    overall = _overall(facts, accounts)

    if account is not None:
        accounts = [a for a in accounts if a.sys_id == account]
        keep = {csm for a in accounts for csm in a.csms}
        csms = [c for c in csms if c.sys_id in keep]
    seconds = clock.perf_counter() - started
    log.info(
        "Computed KPIs as of %s for %d accounts and %d CSMs in %.2fs",
        as_of,
        len(accounts),
        len(csms),
        seconds,
    )
    return KpiResult(as_of, overall, accounts, csms, account, seconds)


def utc_today() -> date:
    """Today's date in UTC (the default as-of date)."""
    return datetime.now(UTC).date()
