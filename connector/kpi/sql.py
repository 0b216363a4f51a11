"""SQL helpers shared by the KPI queries: typed parameters, dialect differences.

The KPI queries are plain text SQL that runs unchanged on SQLite and PostgreSQL.
The few places where the dialects differ (day arithmetic, date literals) go
through the helpers here, so each query reads as one statement.
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, time, timedelta
from typing import Any, Generic, TypeVar

from sqlalchemy import Date, DateTime, bindparam, text
from sqlalchemy.engine import Connection, Row

CASE_TABLE = "sn_customerservice_case"
RESOLVED_STATES = ("6", "3")
CANCELLED_STATE = "7"
AWAITING_INFO_STATE = "18"
CLOSED_STATES = (*RESOLVED_STATES, CANCELLED_STATE)
INACTIVE_CONTRACT_STATES = ("draft", "cancelled")

T = TypeVar("T")


def in_list(values: Sequence[str]) -> str:
    """Render constant codes as an SQL ``IN`` list (codes are ours, never user data)."""
    return (
        "(" + ", ".join("'" + value.replace("'", "''") + "'" for value in values) + ")"
    )


def day_end(as_of: date) -> datetime:
    """The exclusive upper bound of an as-of date: midnight that ends it (UTC)."""
    return datetime.combine(as_of + timedelta(days=1), time.min, tzinfo=UTC)


def window_start(as_of: date, days: int) -> datetime:
    """Start of a window of ``days`` whole days that ends with ``as_of``."""
    return day_end(as_of) - timedelta(days=days)


def days_between_times(dialect: str, later: str, earlier: str) -> str:
    """SQL for the fractional days between two timestamp expressions."""
    if dialect == "sqlite":
        return f"(julianday({later}) - julianday({earlier}))"
    return f"(EXTRACT(EPOCH FROM ({later} - {earlier})) / 86400.0)"


def days_between_dates(dialect: str, later: str, earlier: str) -> str:
    """SQL for the whole days between two date expressions."""
    if dialect == "sqlite":
        return f"CAST(julianday({later}) - julianday({earlier}) AS INTEGER)"
    return f"({later} - {earlier})"


def date_param(dialect: str, name: str) -> str:
    """A date parameter usable as a select-list value (PostgreSQL needs its type)."""
    return f":{name}" if dialect == "sqlite" else f"CAST(:{name} AS DATE)"


def account_filter(alias: str) -> str:
    """Customer accounts that count: not deleted, not flagged non-customer/inactive."""
    return (
        f"{alias}.deleted_at IS NULL"
        f" AND ({alias}.customer IS NULL OR {alias}.customer = TRUE)"
    )


def csm_map_cte() -> str:
    """CTE ``csm_map(account, csm, k)``: each account's CSMs and how many it has.

    A CSM is a team member whose responsibility name equals ``:responsibility``;
    ``k`` is the number of distinct such users on the account (the 1/k split).
    """
    return (
        "csm_pairs AS ("
        ' SELECT DISTINCT tm.account AS account, tm."user" AS csm'
        " FROM team_member tm JOIN account a ON a.sys_id = tm.account"
        " WHERE tm.deleted_at IS NULL AND a.deleted_at IS NULL"
        ' AND tm."user" IS NOT NULL AND tm.responsibility_name = :responsibility),'
        " csm_map AS MATERIALIZED ("
        " SELECT account, csm, COUNT(*) OVER (PARTITION BY account) AS k"
        " FROM csm_pairs)"
    )


_CSM_ROW = (
    'tm.deleted_at IS NULL AND tm."user" IS NOT NULL'
    " AND tm.responsibility_name = :responsibility"
)


def csm_join(account: str) -> str:
    """JOIN clause adding ``tm``: one row per (account, CSM) for ``account``.

    Joins the indexed base table rather than the :func:`csm_map_cte` CTE: SQLite
    builds no index on a CTE, and a CTE-to-CTE join is quadratic. A user listed
    twice on one account counts once (the row with the lowest sys_id).
    """
    return (
        f" JOIN team_member tm ON tm.account = {account} AND {_CSM_ROW}"
        " AND NOT EXISTS (SELECT 1 FROM team_member t2"
        ' WHERE t2.account = tm.account AND t2."user" = tm."user"'
        " AND t2.deleted_at IS NULL AND t2.responsibility_name = tm.responsibility_name"
        " AND t2.sys_id < tm.sys_id)"
        " JOIN account csm_account ON csm_account.sys_id = tm.account"
        " AND csm_account.deleted_at IS NULL"
    )


CSM_K = (
    '(SELECT COUNT(DISTINCT t3."user") FROM team_member t3'
    ' WHERE t3.account = tm.account AND t3.deleted_at IS NULL AND t3."user" IS NOT NULL'
    " AND t3.responsibility_name = :responsibility)"
)
"""SQL: how many CSMs the joined ``tm`` row's account has (the 1/k split)."""


def percentile_sql(ranked: str, column: str, num: int, den: int) -> str:
    """The ``num/den`` percentile of ``column`` by linear interpolation, in SQL.

    Same result as ``PERCENTILE_CONT(num/den)``, which SQLite lacks: position
    ``h = (n − 1)·p`` (0-based) is split into whole and fractional parts with
    integer arithmetic, and the two neighbouring ranked values are blended.
    ``ranked`` must expose ``column``, ``rn`` (1-based row number) and ``n``.
    """
    lo = f"(((n - 1) * {num}) / {den} + 1)"
    frac = f"((((n - 1) * {num}) % {den}) * 1.0 / {den})"
    return (
        f"SELECT MAX(CASE WHEN rn = {lo} THEN {column} END) AS v_lo,"
        f" MAX(CASE WHEN rn = {lo} + 1 THEN {column} END) AS v_hi,"
        f" MAX({frac}) AS frac, MAX(n) AS n FROM ({ranked}) pct"
    )


def interpolate(v_lo: Any, v_hi: Any, frac: Any) -> float | None:
    """Finish :func:`percentile_sql`: blend the two neighbours (None when empty)."""
    if v_lo is None:
        return None
    low = float(v_lo)
    high = low if v_hi is None else float(v_hi)
    return low + float(frac or 0) * (high - low)


@dataclass
class Scoped(Generic[T]):
    """One figure at the three scopes: overall, per account, per CSM."""

    overall: T
    account: dict[str, T] = field(default_factory=dict)
    csm: dict[str, T] = field(default_factory=dict)


def _typed(name: str, value: Any) -> Any:
    if isinstance(value, datetime):
        # Canonical timestamps are timezone-aware UTC (TIMESTAMPTZ on PostgreSQL).
        return bindparam(name, value, type_=DateTime(timezone=True))
    if isinstance(value, date):
        return bindparam(name, value, type_=Date())
    return bindparam(name, value)


def fetch(conn: Connection, sql: str, params: Mapping[str, Any]) -> list[Row]:
    """Run one text query with typed parameters (only those the query names)."""
    used = {k: v for k, v in params.items() if re.search(rf":{k}\b", sql)}
    statement = text(sql).bindparams(*(_typed(k, v) for k, v in used.items()))
    return list(conn.execute(statement))


def fetch_scoped(
    conn: Connection, ctes: str, parts: Mapping[str, str], params: Mapping[str, Any]
) -> dict[str, list[Row]]:
    """Run several grouped selects over the same CTEs as ONE statement.

    ``parts`` maps a scope name to a select whose first column is the group key
    (``''`` for an ungrouped total) followed by the same aggregate columns. The
    selects are joined with ``UNION ALL`` so each materialised CTE is computed
    once, not once per scope. Returns the rows per scope.
    """
    union = " UNION ALL ".join(
        f"SELECT '{scope}' AS scope, q.* FROM ({select}) q"
        for scope, select in parts.items()
    )
    found: dict[str, list[Row]] = {scope: [] for scope in parts}
    for row in fetch(conn, f"WITH {ctes} {union}", params):
        found[row.scope].append(row)
    return found


def num(value: Any) -> float | None:
    """Decimal/int/None from a driver → float/None."""
    return None if value is None else float(value)
