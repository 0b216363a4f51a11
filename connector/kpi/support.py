"""First contact resolution and the case figures behind support burden and hygiene.

FCR denominator: cases not deleted, in state Resolved (6) or Closed (3) — so
Cancelled (7) never counts — whose resolution time (``resolved_at``, else
``closed_at``) falls in the FCR window. A case is FCR when every enabled rule holds:

* ``no_reassignment``: ``reassignment_count`` is 0 or empty;
* ``no_awaiting_info``: no state change into Awaiting Info (18) ever;
* ``no_reopen``: no change out of 6/3 into an open state (not 6/3/7) within
  ``fcr_reopen_days`` of the first resolution (first change into 6/3, else
  ``resolved_at``);
* ``max_interactions``: at most ``fcr_max_interactions`` distinct interactions
  linked to the case (links and interactions marked deleted do not count).

A case is *open at the as-of date* when it was opened before the date ended and
its resolution time is later (or missing while its state is not 6/3); cancelled
cases are never open. Support burden per account = open P1/P2 cases at the date +
cases opened in the support window per 30 days.
"""

from __future__ import annotations

from dataclasses import dataclass

from sqlalchemy.engine import Connection

from connector.config import KpiSettings
from connector.kpi.sql import (
    AWAITING_INFO_STATE,
    CANCELLED_STATE,
    CASE_TABLE,
    CLOSED_STATES,
    RESOLVED_STATES,
    Scoped,
    csm_join,
    days_between_times,
    fetch,
    fetch_scoped,
    in_list,
)


@dataclass(frozen=True)
class Ratio:
    """A rate with its inputs."""

    numerator: float = 0.0
    denominator: float = 0.0

    @property
    def value(self) -> float | None:
        return self.numerator / self.denominator if self.denominator else None

    def __add__(self, other: Ratio) -> Ratio:
        return Ratio(
            self.numerator + other.numerator, self.denominator + other.denominator
        )


@dataclass(frozen=True)
class CaseLoad:
    """An account's case counts at the as-of date."""

    open_p12: int = 0
    opened_recent: int = 0
    open_all: int = 0
    open_overdue: int = 0


@dataclass
class FcrResult:
    """FCR at every scope, plus the split by channel."""

    scoped: Scoped[Ratio]
    channels: dict[str, Ratio]


def _rules_sql(settings: KpiSettings, dialect: str) -> str:
    """The enabled FCR rules as one SQL condition over ``f``, ``ch`` and ``lk``."""
    first_resolved = "COALESCE(ch.first_resolved, f.resolved)"
    reopen_gap = days_between_times(dialect, "ch.first_reopen", first_resolved)
    reopen_days = int(settings.fcr_reopen_days)
    rules = {
        "no_reassignment": "COALESCE(f.reassignment_count, 0) = 0",
        "no_awaiting_info": "COALESCE(ch.waited, 0) = 0",
        "no_reopen": (f"(ch.first_reopen IS NULL OR {reopen_gap} > {reopen_days})"),
        "max_interactions": (
            f"COALESCE(lk.k, 0) <= {int(settings.fcr_max_interactions)}"
        ),
    }
    enabled = [rules[name] for name in settings.fcr_rules]
    return " AND ".join(enabled) if enabled else "1 = 1"


def _fcr_ctes(settings: KpiSettings, dialect: str) -> str:
    """CTEs ending in ``flagged(account, channel, fcr)``: one row per FCR case."""
    resolved, closed = in_list(RESOLVED_STATES), in_list(CLOSED_STATES)
    return (
        "fcr_cases AS MATERIALIZED ("
        " SELECT c.sys_id AS sys_id, c.account AS account,"
        " COALESCE(NULLIF(c.channel, ''), 'unknown') AS channel,"
        " c.reassignment_count AS reassignment_count,"
        " COALESCE(c.resolved_at, c.closed_at) AS resolved"
        ' FROM "case" c'
        f" WHERE c.deleted_at IS NULL AND c.state IN {resolved}"
        " AND COALESCE(c.resolved_at, c.closed_at) >= :fcr_start"
        " AND COALESCE(c.resolved_at, c.closed_at) < :end),"
        " ch AS MATERIALIZED ("
        ' SELECT sc."case" AS case_id,'
        f" MAX(CASE WHEN sc.new_state = '{AWAITING_INFO_STATE}' THEN 1 ELSE 0 END)"
        " AS waited,"
        f" MIN(CASE WHEN sc.new_state IN {resolved} THEN sc.changed_at END)"
        " AS first_resolved,"
        f" MIN(CASE WHEN sc.old_state IN {resolved} AND sc.new_state NOT IN {closed}"
        " THEN sc.changed_at END) AS first_reopen"
        ' FROM case_state_change sc JOIN fcr_cases f ON f.sys_id = sc."case"'
        ' WHERE sc.deleted_at IS NULL GROUP BY sc."case"),'
        " lk AS MATERIALIZED ("
        " SELECT l.document_id AS case_id, COUNT(DISTINCT l.interaction) AS k"
        " FROM interaction_link l JOIN fcr_cases f ON f.sys_id = l.document_id"
        f" WHERE l.deleted_at IS NULL AND l.document_table = '{CASE_TABLE}'"
        " AND NOT EXISTS (SELECT 1 FROM interaction i WHERE i.sys_id = l.interaction"
        " AND i.deleted_at IS NOT NULL)"
        " GROUP BY l.document_id),"
        " flagged AS MATERIALIZED ("
        " SELECT f.account AS account, f.channel AS channel,"
        f" CASE WHEN {_rules_sql(settings, dialect)} THEN 1 ELSE 0 END AS fcr"
        " FROM fcr_cases f LEFT JOIN ch ON ch.case_id = f.sys_id"
        " LEFT JOIN lk ON lk.case_id = f.sys_id)"
    )


def compute_fcr(conn: Connection, settings: KpiSettings, params: dict) -> FcrResult:
    """FCR numerator/denominator overall, per channel, per account and per CSM."""
    ctes = _fcr_ctes(settings, conn.dialect.name)
    agg = "SUM(fcr) AS num, COUNT(*) AS den"
    rows = fetch_scoped(
        conn,
        ctes,
        {
            "channel": f"SELECT channel AS id, {agg} FROM flagged GROUP BY channel",
            "account": f"SELECT account AS id, {agg} FROM flagged"
            " WHERE account IS NOT NULL GROUP BY account",
            "csm": f'SELECT tm."user" AS id, {agg} FROM flagged f'
            f' {csm_join("f.account")} GROUP BY tm."user"',
        },
        params,
    )
    ratios = {
        scope: {row.id: Ratio(float(row.num or 0), float(row.den)) for row in found}
        for scope, found in rows.items()
    }
    overall = sum(ratios["channel"].values(), Ratio())
    return FcrResult(
        Scoped(overall, ratios["account"], ratios["csm"]), ratios["channel"]
    )


def compute_case_load(conn: Connection, params: dict) -> dict[str, CaseLoad]:
    """Per account: open P1/P2, recently opened, open and open-overdue case counts.

    Overdue = an open case that missed its SLA (``made_sla`` false) or whose
    escalation is Overdue (3).
    """
    resolved_states = in_list(RESOLVED_STATES)
    done = "COALESCE(c.resolved_at, c.closed_at)"
    is_open = (
        f"({done} >= :end OR ({done} IS NULL AND c.state NOT IN {resolved_states}))"
    )
    rows = fetch(
        conn,
        "SELECT c.account,"
        f" SUM(CASE WHEN {is_open} AND c.priority IN (1, 2) THEN 1 ELSE 0 END) AS p12,"
        " SUM(CASE WHEN c.opened_at >= :support_start THEN 1 ELSE 0 END) AS recent,"
        f" SUM(CASE WHEN {is_open} THEN 1 ELSE 0 END) AS open_all,"
        f" SUM(CASE WHEN {is_open} AND (c.made_sla = FALSE OR c.escalation >= 3)"
        " THEN 1 ELSE 0 END) AS overdue"
        ' FROM "case" c WHERE c.deleted_at IS NULL AND c.account IS NOT NULL'
        f" AND (c.state IS NULL OR c.state <> '{CANCELLED_STATE}')"
        " AND c.opened_at < :end GROUP BY c.account",
        params,
    )
    return {
        row[0]: CaseLoad(
            int(row.p12 or 0),
            int(row.recent or 0),
            int(row.open_all or 0),
            int(row.overdue or 0),
        )
        for row in rows
    }
