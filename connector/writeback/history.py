"""Optional history: one ``u_csm_health_snapshot`` row per account and day.

ServiceNow's own reports can chart a trend only from rows, not from a field
that is overwritten, so each account's snapshot of the day is inserted once.
Idempotent: the rows of the day are queried first (by ``u_date`` and
``u_account``) and only the missing ones are created.
"""

from __future__ import annotations

import logging
from typing import TYPE_CHECKING

from connector.config import Settings
from connector.errors import InstanceError
from connector.writeback import instance as sn
from connector.writeback.fields import HISTORY_TABLE
from connector.writeback.guard import ensure_writable
from connector.writeback.health import HealthRow, history_components
from connector.writeback.normalise import to_text
from connector.writeback.verify import RunProblem

if TYPE_CHECKING:
    from connector.writeback.runner import WritebackResult

log = logging.getLogger(__name__)

READ_CHUNK = 200


def history_record(row: HealthRow, components: dict | None = None) -> dict[str, str]:
    """The history row of one account's snapshot."""
    return {
        "u_account": row.account,
        "u_date": to_text(row.as_of),
        "u_score": to_text(row.score),
        "u_band": row.band or "",
        "u_nps": "" if row.nps is None else str(round(row.nps)),
        "u_components": history_components(components),
    }


def existing_days(client: sn.Client, rows: list[HealthRow]) -> set[tuple[str, str]]:
    """(account, date) pairs that already have a history row."""
    found: set[tuple[str, str]] = set()
    by_day: dict[str, list[str]] = {}
    for row in rows:
        by_day.setdefault(to_text(row.as_of), []).append(row.account)
    for day, accounts in by_day.items():
        for start in range(0, len(accounts), READ_CHUNK):
            chunk = accounts[start : start + READ_CHUNK]
            query = f"u_date={day}^u_accountIN{','.join(chunk)}"
            for rec in client.rows(
                HISTORY_TABLE, query=query, fields=["u_account", "u_date"]
            ):
                found.add((str(rec.get("u_account")), str(rec.get("u_date"))[:10]))
    return found


def write_history(
    client: sn.Client,
    settings: Settings,
    rows: list[HealthRow],
    result: WritebackResult,
    components: dict[str, dict] | None = None,
) -> int:
    """Insert the missing history rows; failures become run problems."""
    try:
        have = existing_days(client, rows)
    except InstanceError as exc:
        result.problems.append(
            RunProblem(
                HISTORY_TABLE,
                "",
                f"cannot read history rows ({exc}): run `csm-sync install-fields` "
                "with writeback.history: true",
            )
        )
        return 0

    missing = [r for r in rows if (r.account, to_text(r.as_of)) not in have]
    components = components or {}
    records = [history_record(r, components.get(r.account)) for r in missing]
    for record in records:
        ensure_writable(settings, HISTORY_TABLE, list(record))
    created, errors = client.create_many(HISTORY_TABLE, records)
    for error in errors[:5]:
        result.problems.append(RunProblem(HISTORY_TABLE, "", error))
    if len(errors) > 5:
        result.problems.append(
            RunProblem(HISTORY_TABLE, "", f"{len(errors) - 5} more inserts failed")
        )
    log.info("History: %d rows created, %d already present", created, len(have))
    return created
