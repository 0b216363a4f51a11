"""Store side of write-back: confirmed state and the audit log, written in bulk.

One statement per batch of fields (an upsert for state, an insert for the log)
keeps a 10,000-account run from spending its time in ORM round trips.
"""

from __future__ import annotations

import logging
from datetime import datetime

from sqlalchemy import Connection, delete, insert

from connector.store.engine import Store, dialect_insert
from connector.writeback.diff import AccountDiff
from connector.writeback.models import WritebackLog, WritebackState
from connector.writeback.normalise import normalise
from connector.writeback.verify import FieldResult, RunProblem

log = logging.getLogger(__name__)

STATE = WritebackState.__table__
LOG = WritebackLog.__table__
STATE_UPDATES = ("value", "returned", "source", "confirmed_at")
WARNINGS_PER_CALL = 20  # a broken field fails on every account: say it a few times


def state_row(
    account: str, name: str, value: str, returned: str, source: str, now: datetime
) -> dict[str, object]:
    """A ``writeback_state`` row as a dict for bulk statements."""
    return {
        "account": account,
        "field": name,
        "value": value,
        "returned": returned,
        "source": source,
        "confirmed_at": now,
    }


def upsert_state(conn: Connection, rows: list[dict[str, object]]) -> None:
    """Insert or replace state rows by (account, field), in one statement."""
    statement = dialect_insert(conn)(STATE)
    updates = {c: statement.excluded[c] for c in STATE_UPDATES}
    conn.execute(
        statement.on_conflict_do_update(
            index_elements=["account", "field"], set_=updates
        ),
        rows,
    )


def remember_confirmed(store: Store, diffs: list[AccountDiff], now: datetime) -> None:
    """Values the instance already held (first run) need no write next time."""
    rows = [
        state_row(d.account, name, value, raw, "instance", now)
        for d in diffs
        for name, (value, raw) in d.confirmed.items()
    ]
    if rows:
        with store.write() as conn:
            upsert_state(conn, rows)


def forget_fields(store: Store, fields: list[str]) -> None:
    """Drop confirmed state of fields the instance lost: the values went too.

    Without this, re-creating a deleted field would leave it empty for good,
    because the state still claims the old value is there.
    """
    if fields:
        with store.write() as conn:
            conn.execute(delete(STATE).where(STATE.c.field.in_(fields)))


def record_results(
    store: Store, run_id: str, table: str, results: list[FieldResult], now: datetime
) -> None:
    """Audit every field and remember the confirmed ones, in one transaction."""
    if not results:
        return
    confirmed = [
        state_row(
            r.write.account, r.write.spec.element,
            normalise(r.write.new, r.write.spec.internal_type), r.returned or "",
            "write", now,
        )
        for r in results
        if r.ok
    ]  # fmt: skip
    with store.write() as conn:
        conn.execute(insert(LOG), [_log_row(run_id, table, r, now) for r in results])
        if confirmed:
            upsert_state(conn, confirmed)

    failed = [r for r in results if not r.ok]
    for r in failed[:WARNINGS_PER_CALL]:
        log.warning("Write-back of %s failed: %s", r.write.account, r.message)
    if len(failed) > WARNINGS_PER_CALL:
        log.warning("... and %d more failed fields", len(failed) - WARNINGS_PER_CALL)


def _log_row(run_id: str, table: str, r: FieldResult, now: datetime) -> dict:
    return {
        "run_id": run_id,
        "table_name": table,
        "account": r.write.account,
        "field": r.write.spec.element,
        "old_value": r.write.old,
        "new_value": r.write.new,
        "returned": r.returned,
        "outcome": r.outcome,
        "message": r.message,
        "at": now,
    }


def record_problems(
    store: Store, run_id: str, problems: list[RunProblem], now: datetime
) -> None:
    """Audit and log run-level failures (history) of a run that went on."""
    audit_problems(store, run_id, problems, now)
    for problem in problems:
        log.error("Write-back check failed: %s", problem)


def audit_problems(
    store: Store, run_id: str, problems: list[RunProblem], now: datetime
) -> None:
    """Audit run-level failures without logging them (the caller reports them)."""
    if not problems:
        return
    rows = [
        {"run_id": run_id, "table_name": p.table, "account": "", "field": p.field,
         "old_value": "", "new_value": "", "returned": None, "outcome": "failed",
         "message": p.message, "at": now}
        for p in problems
    ]  # fmt: skip
    with store.write() as conn:
        conn.execute(insert(LOG), rows)
