"""The health values write-back wants on each account, from the KPI snapshots.

The KPI engine owns how scores are computed; write-back only turns the latest
snapshot of each account into the strings it sends, one per configured field.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from datetime import date, datetime
from typing import Any

from sqlmodel import Session, select

from connector.kpi import latest_account_health
from connector.kpi.models import HealthHistory
from connector.store.engine import Store
from connector.writeback.fields import FieldSpec
from connector.writeback.normalise import to_text

REASON_MAX = 255


@dataclass(frozen=True)
class HealthRow:
    """An account's latest health snapshot, as write-back needs it."""

    account: str
    as_of: date
    score: int | None
    band: str | None
    trend: int | None
    nps: float | None
    nps_n: int | None
    reason: str | None
    # Not an active customer on as_of: no score, band or trend (write-back
    # clears them and writes the reason); no history row either.
    active: bool = True


def load_health(store: Store, *, account: str | None = None) -> list[HealthRow]:
    """Each account's most recent health snapshot (optionally one account)."""
    rows = [
        HealthRow(
            account=h.sys_id,
            as_of=h.as_of,
            score=h.score,
            band=h.band,
            trend=h.trend,
            nps=h.nps_value,
            nps_n=h.nps_n,
            reason=h.reason,
            active=h.active,
        )
        for h in latest_account_health(store.engine)
        if account is None or h.sys_id == account
    ]
    return rows


def load_components(store: Store, rows: list[HealthRow]) -> dict[str, dict]:
    """Component scores behind each row, for the history table."""
    wanted = {(r.account, r.as_of) for r in rows}
    query = select(HealthHistory.account, HealthHistory.as_of, HealthHistory.components)
    with Session(store.engine) as session:
        found = session.exec(query).all()
    return {a: c or {} for a, d, c in found if (a, d) in wanted}


def _whole(value: float | None) -> str:
    return "" if value is None else str(round(value))


def desired_values(
    row: HealthRow, specs: list[FieldSpec], *, now: datetime
) -> dict[str, str]:
    """Field name → the string write-back wants on the account.

    ``updated`` is the time of this write; it is only sent beside a real change.
    """
    by_key = {
        "score": _whole(row.score),
        "band": (row.band or "").lower(),
        "trend": _whole(row.trend),
        # The KPI leaves NPS empty below the minimum sample; so does the field.
        "nps": _whole(row.nps),
        "reason": (row.reason or "").strip()[:REASON_MAX],
        "updated": to_text(now.replace(microsecond=0)),
    }
    return {spec.element: by_key[spec.key] for spec in specs}


def history_components(components: dict[str, Any] | None) -> str:
    """The component scores as compact JSON for ``u_components``."""
    if not components:
        return ""
    return json.dumps(components, sort_keys=True, separators=(",", ":"))[:4000]
