"""Adoption (licence and seat utilisation), time to value, engagement, renewals.

* Usage rows belong to an account through ``entitlement_usage.account``, else the
  entitlement's account. An account's *latest period* is its most recent
  ``period_start`` on or before the as-of date with entitled units > 0; licence
  utilisation = Σ used ÷ Σ total units over that period's rows. The overall figure
  pools the latest periods of the active accounts (so a churned account's old
  usage does not weigh on today's figure).
* Seat utilisation = used units of the latest period ÷ Σ ``quantity`` of the sold
  products active on the date.
* Time to value: from the account's first sold-product ``start_date`` to the
  ``period_start`` of its first usage period (ending on/after that start) at or
  above ``ttv_utilisation``, in whole days (0 when usage came first); median and
  P75 by linear interpolation over accounts that got there; accounts started but
  not there yet are counted apart (``not_yet``).
* Engagement: date of the latest interaction opened by the end of the as-of date.
* Renewal: the nearest ``end_date`` ≥ d among the sold products active on d
  (``None`` when every active product is open-ended).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, datetime

from sqlalchemy.engine import Connection

from connector.kpi.sql import (
    days_between_dates,
    fetch,
    interpolate,
    num,
    percentile_sql,
)


@dataclass(frozen=True)
class Usage:
    """An account's latest-period usage and seats."""

    used: float = 0.0
    total: float = 0.0
    seats_sold: float = 0.0

    @property
    def utilisation(self) -> float | None:
        return self.used / self.total if self.total else None

    @property
    def seat_utilisation(self) -> float | None:
        return self.used / self.seats_sold if self.seats_sold and self.total else None


@dataclass(frozen=True)
class TimeToValue:
    """TTV over the cohort of started accounts."""

    median_days: float | None = None
    p75_days: float | None = None
    reached: int = 0
    not_yet: int = 0


_PERIODS = (
    # The CAST gives the key a column affinity, so SQLite can index the CTE.
    "usage AS (SELECT CAST(COALESCE(u.account, e.account) AS VARCHAR(32))"
    " AS account,"
    " u.period_start AS period_start, COALESCE(u.period_end, u.period_start)"
    " AS period_end, u.used_units AS used_units, u.total_units AS total_units"
    " FROM entitlement_usage u LEFT JOIN entitlement e ON e.sys_id = u.entitlement"
    " WHERE u.deleted_at IS NULL AND u.period_start <= :as_of),"
    " periods AS MATERIALIZED (SELECT account, period_start,"
    " MAX(period_end) AS period_end,"
    " SUM(COALESCE(used_units, 0)) AS used, SUM(COALESCE(total_units, 0)) AS total"
    " FROM usage WHERE account IS NOT NULL GROUP BY account, period_start)"
)


def compute_usage(conn: Connection, params: dict) -> dict[str, Usage]:
    """Latest-period usage and sold seats per account."""
    usage = fetch(
        conn,
        f"WITH {_PERIODS}, latest AS (SELECT account, used, total,"
        " ROW_NUMBER() OVER (PARTITION BY account ORDER BY period_start DESC) AS rn"
        " FROM periods WHERE total > 0)"
        " SELECT account, used, total FROM latest WHERE rn = 1",
        params,
    )
    seats = fetch(
        conn,
        "SELECT sp.account, SUM(COALESCE(sp.quantity, 0)) AS seats FROM sold_product sp"
        " WHERE sp.deleted_at IS NULL AND sp.start_date <= :as_of"
        " AND (sp.end_date IS NULL OR sp.end_date >= :as_of) GROUP BY sp.account",
        params,
    )
    sold = {row[0]: num(row.seats) or 0.0 for row in seats}
    return {
        row.account: Usage(
            num(row.used) or 0.0, num(row.total) or 0.0, sold.get(row.account, 0.0)
        )
        for row in usage
    }


def _ttv_ctes(dialect: str) -> str:
    gap = days_between_dates(dialect, "r.reached", "s.started")
    return (
        f"{_PERIODS},"
        " starts AS MATERIALIZED (SELECT sp.account AS account,"
        " MIN(sp.start_date) AS started"
        " FROM sold_product sp JOIN account a ON a.sys_id = sp.account"
        " WHERE sp.deleted_at IS NULL AND a.deleted_at IS NULL"
        " AND sp.start_date <= :as_of GROUP BY sp.account),"
        " reached AS MATERIALIZED (SELECT p.account AS account,"
        " MIN(p.period_start) AS reached"
        " FROM periods p JOIN starts s ON s.account = p.account"
        " WHERE p.total > 0 AND p.used >= :ttv_threshold * p.total"
        " AND p.period_end >= s.started GROUP BY p.account),"
        " ttv AS MATERIALIZED (SELECT s.account AS account,"
        f" CASE WHEN r.reached IS NULL THEN NULL WHEN {gap} < 0 THEN 0 ELSE {gap} END"
        " AS days FROM starts s LEFT JOIN reached r ON r.account = s.account)"
    )


def compute_ttv(conn: Connection, params: dict) -> tuple[TimeToValue, dict]:
    """Median/P75 time to value and the not-yet count; also days per account."""
    ctes = _ttv_ctes(conn.dialect.name)
    # One statement for the summary, so the usage periods are grouped once.
    ranked = (
        "ranked AS MATERIALIZED (SELECT days, ROW_NUMBER() OVER (ORDER BY days) AS rn,"
        " COUNT(*) OVER () AS n FROM ttv WHERE days IS NOT NULL)"
    )
    median = percentile_sql("SELECT * FROM ranked", "days", 1, 2)
    p75 = percentile_sql("SELECT * FROM ranked", "days", 3, 4)
    row = fetch(
        conn,
        f"WITH {ctes}, {ranked} SELECT m.v_lo, m.v_hi, m.frac,"
        " q.v_lo AS q_lo, q.v_hi AS q_hi, q.frac AS q_frac, c.reached, c.not_yet"
        f" FROM ({median}) m, ({p75}) q, (SELECT COUNT(days) AS reached,"
        " SUM(CASE WHEN days IS NULL THEN 1 ELSE 0 END) AS not_yet FROM ttv) c",
        params,
    )[0]
    per_account = fetch(conn, f"WITH {ctes} SELECT account, days FROM ttv", params)
    summary = TimeToValue(
        interpolate(row.v_lo, row.v_hi, row.frac),
        interpolate(row.q_lo, row.q_hi, row.q_frac),
        int(row.reached or 0),
        int(row.not_yet or 0),
    )
    return summary, {row.account: row.days for row in per_account}


def compute_last_interaction(conn: Connection, params: dict) -> dict[str, datetime]:
    """Latest interaction opened per account by the end of the as-of date."""
    rows = fetch(
        conn,
        "SELECT account, MAX(opened_at) AS last_at FROM interaction"
        " WHERE deleted_at IS NULL AND account IS NOT NULL AND opened_at < :end"
        " GROUP BY account",
        params,
    )
    return {row.account: _as_datetime(row.last_at) for row in rows}


def compute_renewals(conn: Connection, params: dict) -> dict[str, date | None]:
    """Per account with an active product: the nearest end date (None = evergreen)."""
    rows = fetch(
        conn,
        "SELECT sp.account, MIN(sp.end_date) AS renewal"
        " FROM sold_product sp WHERE sp.deleted_at IS NULL AND sp.start_date <= :as_of"
        " AND (sp.end_date IS NULL OR sp.end_date >= :as_of) GROUP BY sp.account",
        params,
    )
    return {row.account: _as_date(row.renewal) for row in rows}


def _as_datetime(value) -> datetime:
    # text() queries return SQLite timestamps as strings; PostgreSQL as datetimes.
    return value if isinstance(value, datetime) else datetime.fromisoformat(str(value))


def _as_date(value) -> date | None:
    if value is None or isinstance(value, date):
        return value
    return date.fromisoformat(str(value)[:10])
