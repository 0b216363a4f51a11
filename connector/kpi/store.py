"""Snapshot storage: write a :class:`KpiResult`, read health back for trends.

Re-running a date replaces that date's rows (delete then insert in one
transaction), so the store always holds exactly one figure per
(as_of, scope, scope_id, kpi) and one health row per (account, as_of).
"""

from __future__ import annotations

import logging
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, date, datetime
from typing import TYPE_CHECKING, Any

from sqlalchemy import Engine, delete, insert
from sqlalchemy.engine import Connection
from sqlmodel import SQLModel

from connector.kpi.models import KPI_TABLES, HealthHistory, KpiSnapshot
from connector.kpi.sql import fetch

if TYPE_CHECKING:
    from connector.kpi.engine import KpiResult

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class AccountHealth:
    """An account's latest stored health, as write-back needs it.

    Attributes:
        sys_id: the customer_account sys_id.
        score: health score 0–100, None when data was insufficient.
        band: "green", "yellow", "red" or None.
        trend: score minus the score ``trend_days`` earlier (None if unknown).
        nps_value: the account's NPS, None when the sample is below the minimum.
        nps_n: respondents behind the NPS.
        reason: the weakest components, e.g. "weakest: support 12, adoption 35";
            for an account that is not an active customer, why it has no score.
        as_of: the date the score describes.
        active: whether the account was an active customer on ``as_of``. An
            inactive account has no score, band or trend: write-back clears
            those fields (a churned account keeps no stale score) and writes
            the reason.
    """

    sys_id: str
    score: int | None
    band: str | None
    trend: int | None
    nps_value: float | None
    nps_n: int
    reason: str
    as_of: date
    active: bool = True


def ensure_kpi_tables(engine: Engine) -> None:
    """Create the snapshot tables when missing (a no-op once they exist)."""
    SQLModel.metadata.create_all(engine, tables=list(KPI_TABLES))


def _row(
    as_of: date,
    scope: str,
    scope_id: str,
    kpi: str,
    value: Any,
    *,
    numerator: Any = None,
    denominator: Any = None,
    n: Any = None,
    detail: dict | None = None,
) -> dict:
    return {
        "as_of": as_of,
        "scope": scope,
        "scope_id": scope_id,
        "kpi": kpi,
        "value": None if value is None else float(value),
        "numerator": None if numerator is None else float(numerator),
        "denominator": None if denominator is None else float(denominator),
        "n": None if n is None else int(n),
        "detail": detail,
    }


def _common_rows(as_of: date, scope: str, scope_id: str, item: Any) -> Iterator[dict]:
    """NPS, CSAT, FCR and retention rows of one scope."""
    nps, csat, fcr, ret = item.nps, item.csat, item.fcr, item.retention
    yield _row(
        as_of,
        scope,
        scope_id,
        "nps",
        nps.value,
        numerator=nps.promoters - nps.detractors,
        n=nps.n,
        detail={
            "promoters": nps.promoters,
            "detractors": nps.detractors,
            "ci95": nps.ci95,
        },
    )
    yield _row(
        as_of,
        scope,
        scope_id,
        "csat",
        csat.value,
        numerator=csat.total,
        n=csat.n,
        detail={"scale": list(csat.scale)},
    )
    yield _row(
        as_of,
        scope,
        scope_id,
        "fcr_rate",
        fcr.value,
        numerator=fcr.numerator,
        denominator=fcr.denominator,
    )
    yield _row(
        as_of,
        scope,
        scope_id,
        "nrr",
        ret.nrr,
        numerator=ret.end_arr,
        denominator=ret.start_arr,
        n=ret.cohort,
    )
    yield _row(
        as_of,
        scope,
        scope_id,
        "grr",
        ret.grr,
        numerator=ret.start_arr - ret.contraction - ret.churn,
        denominator=ret.start_arr,
        n=ret.cohort,
    )


def _overall_rows(result: KpiResult) -> Iterator[dict]:
    d, o = result.as_of, result.overall
    yield from _common_rows(d, "overall", "", o)
    ret = o.retention
    yield _row(
        d,
        "overall",
        "",
        "expansion_revenue",
        ret.expansion,
        n=ret.cohort,
        detail={
            "contraction": ret.contraction,
            "churn": ret.churn,
            "start_arr": ret.start_arr,
            "end_arr": ret.end_arr,
        },
    )
    yield _row(d, "overall", "", "active_accounts", o.active_accounts)
    yield _row(d, "overall", "", "inactive_accounts", o.inactive_accounts)
    yield _row(d, "overall", "", "arr", o.arr)
    yield _row(
        d,
        "overall",
        "",
        "license_utilisation",
        o.license_utilisation,
        numerator=o.used_units,
        denominator=o.total_units,
    )
    yield _row(
        d,
        "overall",
        "",
        "seat_utilisation",
        o.seat_utilisation,
        numerator=o.seats_used,
        denominator=o.seats_sold,
    )
    ttv = o.ttv
    yield _row(
        d,
        "overall",
        "",
        "time_to_value",
        ttv.median_days,
        n=ttv.reached,
        detail={"p75_days": ttv.p75_days, "not_yet": ttv.not_yet},
    )
    scored = [a.health.score for a in result.accounts if a.health.score is not None]
    yield _row(
        d,
        "overall",
        "",
        "health_score",
        sum(scored) / len(scored) if scored else None,
        n=len(scored),
        detail=dict(o.bands),
    )
    for channel, ratio in o.fcr_by_channel.items():
        yield _row(
            d,
            "channel",
            channel,
            "fcr_rate",
            ratio.value,
            numerator=ratio.numerator,
            denominator=ratio.denominator,
        )
    for segment, entry in o.segments.items():
        rates = entry["rates"]
        yield _row(
            d,
            "segment",
            segment,
            "logo_churn",
            sum(rates) / len(rates) if rates else None,
            numerator=entry["churned"],
            denominator=entry["at_start"],
            detail={"lifetime_months": entry.get("lifetime_months")},
        )


def _account_rows(result: KpiResult) -> Iterator[dict]:
    d = result.as_of
    for a in result.accounts:
        yield from _common_rows(d, "account", a.sys_id, a)
        h = a.health
        yield _row(
            d,
            "account",
            a.sys_id,
            "health_score",
            h.score,
            detail={"band": h.band, "trend": a.trend, "components": h.components},
        )
        yield _row(d, "account", a.sys_id, "arr", a.arr)
        yield _row(d, "account", a.sys_id, "cltv", a.cltv)
        yield _row(
            d,
            "account",
            a.sys_id,
            "license_utilisation",
            a.usage.utilisation,
            numerator=a.usage.used,
            denominator=a.usage.total,
        )
        yield _row(d, "account", a.sys_id, "active", 1 if a.active else 0)
        yield _row(d, "account", a.sys_id, "time_to_value", a.ttv_days)


def _csm_rows(result: KpiResult) -> Iterator[dict]:
    d = result.as_of
    for c in result.csms:
        yield from _common_rows(d, "csm", c.sys_id, c)
        yield _row(
            d,
            "csm",
            c.sys_id,
            "productivity",
            c.productivity,
            n=c.book,
            detail=dict(c.components),
        )
        yield _row(d, "csm", c.sys_id, "active_accounts", c.active_accounts)
        yield _row(d, "csm", c.sys_id, "arr", c.arr)


def _health_rows(result: KpiResult, now: datetime) -> list[dict]:
    return [
        {
            "account": a.sys_id,
            "as_of": result.as_of,
            "score": a.health.score,
            "band": a.health.band,
            "trend": a.trend,
            "weight_share": a.health.weight_share,
            "nps_value": a.nps_value,
            "nps_n": a.nps.n,
            "reason": a.health.reason,
            "components": a.health.components,
            "computed_at": now,
        }
        for a in result.accounts
    ]


def snapshot_rows(result: KpiResult) -> list[dict]:
    """Every snapshot row of a result (only account rows for a one-account run)."""
    rows = list(_account_rows(result))
    if result.account_filter is None:
        rows += list(_overall_rows(result)) + list(_csm_rows(result))
    return rows


def store_snapshot(engine: Engine, result: KpiResult) -> int:
    """Store a result as the snapshot of its date, replacing that date's rows.

    A one-account result (``compute_kpis(..., account=...)``) replaces only that
    account's rows. Returns the number of ``kpi_snapshot`` rows written.
    """
    ensure_kpi_tables(engine)
    now = datetime.now(UTC)
    rows = [dict(row, computed_at=now) for row in snapshot_rows(result)]
    health = _health_rows(result, now)
    snap, hist = KpiSnapshot.__table__, HealthHistory.__table__
    with engine.begin() as conn:
        if result.account_filter is None:
            conn.execute(delete(snap).where(snap.c.as_of == result.as_of))
            conn.execute(delete(hist).where(hist.c.as_of == result.as_of))
        else:
            conn.execute(
                delete(snap).where(
                    snap.c.as_of == result.as_of,
                    snap.c.scope == "account",
                    snap.c.scope_id == result.account_filter,
                )
            )
            conn.execute(
                delete(hist).where(
                    hist.c.as_of == result.as_of,
                    hist.c.account == result.account_filter,
                )
            )
        if rows:
            conn.execute(insert(snap), rows)
        if health:
            conn.execute(insert(hist), health)
    log.info(
        "Stored %d KPI figures and %d health rows as of %s",
        len(rows),
        len(health),
        result.as_of,
    )
    return len(rows)


def health_scores_near(conn: Connection, at: date, floor: date) -> dict[str, int]:
    """Each account's latest stored score dated between ``floor`` and ``at``."""
    rows = fetch(
        conn,
        "SELECT h.account, h.score FROM health_history h JOIN ("
        " SELECT account, MAX(as_of) AS as_of FROM health_history"
        " WHERE as_of <= :at AND as_of >= :floor GROUP BY account) x"
        " ON x.account = h.account AND x.as_of = h.as_of"
        " WHERE h.score IS NOT NULL",
        {"at": at, "floor": floor},
    )
    return {row[0]: int(row[1]) for row in rows}


def latest_account_health(engine: Engine) -> list[AccountHealth]:
    """Every account's most recent stored health row, ordered by sys_id.

    This is the write-back interface: it reads only stored snapshots (run
    ``compute_kpis`` + ``store_snapshot`` first) and never recomputes.
    """
    ensure_kpi_tables(engine)
    with engine.connect() as conn:
        rows = fetch(
            conn,
            "SELECT h.account, h.score, h.band, h.trend, h.nps_value, h.nps_n,"
            " h.reason, h.as_of, s.value AS active FROM health_history h JOIN ("
            " SELECT account, MAX(as_of) AS as_of FROM health_history"
            " GROUP BY account) x ON x.account = h.account AND x.as_of = h.as_of"
            # The active flag is stored beside the score in the same snapshot;
            # rows written without it (older stores) count as active.
            " LEFT JOIN kpi_snapshot s ON s.as_of = h.as_of AND s.scope = 'account'"
            " AND s.scope_id = h.account AND s.kpi = 'active'"
            " ORDER BY h.account",
            {},
        )
    return [
        AccountHealth(
            sys_id=row[0],
            score=row[1],
            band=row[2],
            trend=row[3],
            nps_value=None if row[4] is None else float(row[4]),
            nps_n=int(row[5] or 0),
            reason=row[6] or "",
            as_of=row[7] if isinstance(row[7], date) else date.fromisoformat(row[7]),
            active=row.active is None or float(row.active) != 0,
        )
        for row in rows
    ]
