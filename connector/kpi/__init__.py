"""KPI engine: customer-success KPIs in SQL, health scores and their snapshots.

Public interface (stable; other roles rely on it):

* :func:`compute_kpis` — every KPI as of a date → :class:`KpiResult`;
* :func:`store_snapshot` — store a result, replacing that date's snapshot;
* :func:`latest_account_health` — each account's latest stored health
  (:class:`AccountHealth`), the input of write-back.
"""

from connector.kpi.engine import (
    AccountKpis,
    CsmKpis,
    KpiResult,
    OverallKpis,
    compute_kpis,
    utc_today,
)
from connector.kpi.store import (
    AccountHealth,
    ensure_kpi_tables,
    latest_account_health,
    store_snapshot,
)

__all__ = [
    "AccountHealth",
    "AccountKpis",
    "CsmKpis",
    "KpiResult",
    "OverallKpis",
    "compute_kpis",
    "ensure_kpi_tables",
    "latest_account_health",
    "store_snapshot",
    "utc_today",
]
