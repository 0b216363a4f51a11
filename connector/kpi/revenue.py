"""ARR, expansion/NRR/GRR, logo churn for CLTV, and active accounts.

* ARR of an account at date d = Σ ``annual_price`` of its sold products with
  ``start_date ≤ d`` and (no ``end_date`` or ``end_date ≥ d``). The product's
  ``state`` is ignored on purpose: it is today's state, and ARR a year ago must
  count a product that has expired since.
* Expansion over the window (default 365 days, t0 = d − window, t1 = d) on the
  cohort of accounts with ARR₀ > 0: expansion Σ max(ARR₁ − ARR₀, 0); contraction
  Σ (ARR₀ − ARR₁) where 0 < ARR₁ < ARR₀; churn Σ ARR₀ where ARR₁ = 0;
  NRR = ΣARR₁ / ΣARR₀; GRR = (ΣARR₀ − contraction − churn) / ΣARR₀ (≤ 1).
* Monthly logo churn of a segment (``rank_tier``; empty = ``none``): for each of
  the six whole months before the as-of month, accounts paying (ARR > 0) on the
  month's first day and not paying on the next month's first day ÷ accounts
  paying on the first day; the segment's churn is the mean of the months that had
  paying accounts. ``L = min(1/churn, cltv_max_months)`` (the cap also when churn
  is 0) and ``CLTV = ARR/12 × gross_margin × L``.
* Active on d: a customer account (not deleted, ``customer`` and ``active`` not
  false) with a sold product covering d, or an entitlement covering d whose state
  is not draft/cancelled. Per CSM each active account counts 1/k.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date

from sqlalchemy.engine import Connection

from connector.kpi.sql import (
    CSM_K,
    INACTIVE_CONTRACT_STATES,
    Scoped,
    account_filter,
    csm_join,
    date_param,
    fetch,
    fetch_scoped,
    in_list,
    num,
)

MONTHS_OF_CHURN = 6


@dataclass(frozen=True)
class Retention:
    """A cohort's ARR movement over the expansion window."""

    start_arr: float = 0.0
    end_arr: float = 0.0
    expansion: float = 0.0
    contraction: float = 0.0
    churn: float = 0.0
    cohort: int = 0

    @property
    def nrr(self) -> float | None:
        return self.end_arr / self.start_arr if self.start_arr else None

    @property
    def grr(self) -> float | None:
        if not self.start_arr:
            return None
        return (self.start_arr - self.contraction - self.churn) / self.start_arr


def _arr_at(param: str) -> str:
    """SQL: ``(account, arr)`` for accounts whose ARR at ``:param`` is known."""
    return (
        "SELECT sp.account AS account, SUM(COALESCE(sp.annual_price, 0)) AS arr"
        " FROM sold_product sp JOIN account a ON a.sys_id = sp.account"
        f" WHERE sp.deleted_at IS NULL AND {account_filter('a')}"
        f" AND sp.start_date <= :{param}"
        f" AND (sp.end_date IS NULL OR sp.end_date >= :{param})"
        " GROUP BY sp.account"
    )


def compute_arr(conn: Connection, params: dict) -> dict[str, float]:
    """ARR per account on the as-of date (accounts with products only)."""
    rows = fetch(conn, _arr_at("as_of"), params)
    return {row.account: num(row.arr) or 0.0 for row in rows}


def _retention_ctes() -> str:
    return (
        f"arr0 AS MATERIALIZED ({_arr_at('t0')}),"
        f" arr1 AS MATERIALIZED ({_arr_at('as_of')}),"
        " pairs AS MATERIALIZED (SELECT a0.account AS account, a0.arr AS arr0,"
        " COALESCE(a1.arr, 0) AS arr1 FROM arr0 a0"
        " LEFT JOIN arr1 a1 ON a1.account = a0.account WHERE a0.arr > 0)"
    )


_RETENTION_SELECT = (
    "SUM(arr0) AS start_arr, SUM(arr1) AS end_arr,"
    " SUM(CASE WHEN arr1 > arr0 THEN arr1 - arr0 ELSE 0 END) AS expansion,"
    " SUM(CASE WHEN arr1 > 0 AND arr1 < arr0 THEN arr0 - arr1 ELSE 0 END)"
    " AS contraction,"
    " SUM(CASE WHEN arr1 <= 0 THEN arr0 ELSE 0 END) AS churn, COUNT(*) AS cohort"
)


def _retention(row) -> Retention:
    return Retention(
        num(row.start_arr) or 0.0,
        num(row.end_arr) or 0.0,
        num(row.expansion) or 0.0,
        num(row.contraction) or 0.0,
        num(row.churn) or 0.0,
        int(row.cohort or 0),
    )


def compute_retention(conn: Connection, params: dict) -> Scoped[Retention]:
    """Expansion, contraction, churn, NRR and GRR overall, per account and per book."""
    rows = fetch_scoped(
        conn,
        _retention_ctes(),
        {
            "overall": f"SELECT '' AS id, {_RETENTION_SELECT} FROM pairs",
            "account": f"SELECT account AS id, {_RETENTION_SELECT} FROM pairs"
            " GROUP BY account",
            "csm": f'SELECT tm."user" AS id, {_RETENTION_SELECT}'
            f' FROM pairs p {csm_join("p.account")} GROUP BY tm."user"',
        },
        params,
    )
    return Scoped(
        _retention(rows["overall"][0]),
        {row.id: _retention(row) for row in rows["account"]},
        {row.id: _retention(row) for row in rows["csm"]},
    )


def month_starts(as_of: date, months: int = MONTHS_OF_CHURN) -> list[date]:
    """First days of the ``months`` whole months before ``as_of``'s month and its."""
    year, month = as_of.year, as_of.month
    starts = []
    for back in range(months, -1, -1):
        index = year * 12 + (month - 1) - back
        starts.append(date(index // 12, index % 12 + 1, 1))
    return starts


def compute_segment_churn(conn: Connection, as_of: date) -> dict[str, dict]:
    """Per segment: monthly logo churn rates of the trailing six whole months."""
    dialect = conn.dialect.name
    starts = month_starts(as_of)
    params = {f"b{i}": day for i, day in enumerate(starts)}
    bounds = " UNION ALL ".join(
        f"SELECT {i} AS idx, {date_param(dialect, f'b{i}')} AS d"
        for i in range(len(starts))
    )
    rows = fetch(
        conn,
        f"WITH bounds AS ({bounds}),"
        " paying AS MATERIALIZED (SELECT b.idx AS idx, sp.account AS account"
        " FROM bounds b JOIN sold_product sp ON sp.start_date <= b.d"
        " AND (sp.end_date IS NULL OR sp.end_date >= b.d)"
        " JOIN account a ON a.sys_id = sp.account"
        f" WHERE sp.deleted_at IS NULL AND {account_filter('a')}"
        " GROUP BY b.idx, sp.account HAVING SUM(COALESCE(sp.annual_price, 0)) > 0)"
        " SELECT COALESCE(NULLIF(a.rank_tier, ''), 'none') AS segment, s.idx AS idx,"
        " COUNT(*) AS at_start,"
        " SUM(CASE WHEN e.account IS NULL THEN 1 ELSE 0 END) AS churned"
        " FROM paying s JOIN account a ON a.sys_id = s.account"
        " LEFT JOIN paying e ON e.account = s.account AND e.idx = s.idx + 1"
        f" WHERE s.idx < {len(starts) - 1}"
        " GROUP BY COALESCE(NULLIF(a.rank_tier, ''), 'none'), s.idx"
        " ORDER BY 1, 2",  # months in order: the rates list is month by month
        params,
    )
    segments: dict[str, dict] = {}
    for row in rows:
        entry = segments.setdefault(
            row.segment, {"at_start": 0, "churned": 0, "rates": []}
        )
        entry["at_start"] += int(row.at_start)
        entry["churned"] += int(row.churned)
        entry["rates"].append(int(row.churned) / int(row.at_start))
    return segments


def lifetime_months(rates: list[float], cap: float) -> float:
    """``min(1 / mean monthly churn, cap)``; the cap when there is no churn."""
    churn = sum(rates) / len(rates) if rates else 0.0
    return cap if churn <= 0 else min(1.0 / churn, cap)


def compute_active(conn: Connection, params: dict) -> tuple[set[str], dict[str, float]]:
    """Active accounts on the date, and each CSM's 1/k-weighted count."""
    inactive = in_list(INACTIVE_CONTRACT_STATES)
    active = (
        "active AS MATERIALIZED (SELECT a.sys_id AS account FROM account a"
        f" WHERE {account_filter('a')} AND (a.active IS NULL OR a.active = TRUE)"
        " AND (EXISTS (SELECT 1 FROM sold_product sp WHERE sp.account = a.sys_id"
        " AND sp.deleted_at IS NULL AND sp.start_date <= :as_of"
        " AND (sp.end_date IS NULL OR sp.end_date >= :as_of))"
        " OR EXISTS (SELECT 1 FROM entitlement e WHERE e.account = a.sys_id"
        " AND e.deleted_at IS NULL AND e.start_date <= :as_of"
        " AND (e.end_date IS NULL OR e.end_date >= :as_of)"
        f" AND (e.state IS NULL OR e.state NOT IN {inactive}))))"
    )
    accounts = fetch(conn, f"WITH {active} SELECT account FROM active", params)
    csms = fetch(
        conn,
        f'WITH {active} SELECT tm."user", SUM(1.0 / {CSM_K}) AS weight'
        f' FROM active x {csm_join("x.account")} GROUP BY tm."user"',
        params,
    )
    return {row[0] for row in accounts}, {row[0]: float(row.weight) for row in csms}
