"""``run_writeback``: push the latest health snapshot onto the accounts.

Steps: load the snapshot, check that sys_dictionary has every field (else stop
before sending anything), work out what the instance holds (store state, else
a read of the accounts), send only the differences, verify every field in the
instance's answer, then record state and an audit row per field. Failed
writes are never recorded as state, so the next run tries them again.
"""

from __future__ import annotations

import logging
import uuid
from dataclasses import dataclass, field
from datetime import UTC, datetime

from sqlmodel import Session, select

from connector.config import Settings
from connector.errors import UsageError
from connector.store.engine import Store, open_store
from connector.store.models import Account
from connector.writeback import instance as sn
from connector.writeback.audit import (
    audit_problems,
    forget_fields,
    record_problems,
    record_results,
    remember_confirmed,
)
from connector.writeback.diff import (
    AccountDiff,
    diff_account,
    known_from_instance,
    known_from_state,
)
from connector.writeback.fields import FieldSpec, account_fields, writeback_table
from connector.writeback.guard import check_config, ensure_writable
from connector.writeback.health import (
    HealthRow,
    desired_values,
    load_components,
    load_health,
)
from connector.writeback.history import write_history
from connector.writeback.models import WritebackState, ensure_tables
from connector.writeback.preflight import FieldsNotReadyError, ensure_fields_ready
from connector.writeback.send import Answer, send_diffs
from connector.writeback.verify import (
    FieldResult,
    RunProblem,
    failed_request,
    verify_record,
)

log = logging.getLogger(__name__)


READ_CHUNK = 200  # sys_idIN lists above ~245 ids hit 414 URI Too Long (§1)
RECORD_EVERY = 1000  # fields per store transaction while answers stream in


@dataclass
class WritebackResult:
    """What a write-back run did; ``failed`` > 0 means exit status 1.

    ``failed`` counts failed field writes plus run problems (history); the
    summary reports them apart so its field count matches the dry run's.
    """

    run_id: str
    accounts: int = 0
    sent_accounts: int = 0
    results: list[FieldResult] = field(default_factory=list)
    diffs: list[AccountDiff] = field(default_factory=list)
    problems: list[RunProblem] = field(default_factory=list)
    history_created: int = 0
    dry_run: bool = False
    disabled: bool = False
    # sys_id -> "number name" from the synced account table, for people.
    labels: dict[str, str] = field(default_factory=dict)
    seconds: float = 0.0

    @property
    def written(self) -> int:
        return sum(1 for r in self.results if r.ok)

    @property
    def failed_fields(self) -> int:
        return sum(1 for r in self.results if not r.ok)

    @property
    def failed(self) -> int:
        return self.failed_fields + len(self.problems)

    @property
    def pending(self) -> int:
        return sum(len(d.writes) for d in self.diffs)


def run_writeback(
    settings: Settings,
    *,
    dry_run: bool = False,
    account: str | None = None,
    now: datetime | None = None,
) -> WritebackResult:
    """Write the latest health values to the instance (see module docstring)."""
    check_config(settings)
    started = datetime.now(UTC)
    result = WritebackResult(run_id=uuid.uuid4().hex, dry_run=dry_run)
    if not settings.writeback.enabled:
        log.info("Write-back is disabled (writeback.enabled: false); nothing sent")
        result.disabled = True
        return result
    store = open_store(settings.store.url)
    try:
        ensure_tables(store.engine)
        with sn.open_client(settings) as client:
            _run(client, store, settings, result, account, now or started)
    finally:
        store.dispose()
    result.seconds = (datetime.now(UTC) - started).total_seconds()
    log.info(
        "Write-back %s: %d accounts, %d sent, %d fields written, %d fields failed, "
        "%d run problems, %d history rows, %.1fs",
        "dry run" if dry_run else "run",
        result.accounts,
        result.sent_accounts,
        result.written,
        result.failed_fields,
        len(result.problems),
        result.history_created,
        result.seconds,
    )
    return result


def _run(
    client: sn.Client,
    store: Store,
    settings: Settings,
    result: WritebackResult,
    account: str | None,
    now: datetime,
) -> None:
    table = writeback_table(settings)
    specs = account_fields(settings)
    health = load_health(store, account=account)
    result.accounts = len(health)
    if account and not health:
        raise UsageError(
            f"Account {account!r} has no health snapshot; check the sys_id or run "
            "'csm-sync kpis' first"
        )
    if not health:
        log.warning("No health snapshot to write back; run 'csm-sync kpis' first")
        return

    _check_fields(client, store, table, specs, result, now)
    diffs = _diffs(client, store, table, specs, health, now)
    result.diffs = [d for d in diffs if d.writes]
    result.labels = account_labels(store, [d.account for d in result.diffs])
    if result.dry_run:
        return

    remember_confirmed(store, diffs, now)
    result.sent_accounts = len(result.diffs)
    _send_and_verify(client, store, settings, result, now)
    if settings.writeback.history:
        # Churned accounts get no daily history row: they have no score to chart.
        scored = [h for h in health if h.active]
        components = load_components(store, scored)
        result.history_created = write_history(
            client, settings, scored, result, components
        )
    record_problems(store, result.run_id, result.problems, now)


def account_labels(store: Store, accounts: list[str]) -> dict[str, str]:
    """Number and name of the accounts the sync stored (empty before a sync)."""
    if not accounts:
        return {}
    wanted = set(accounts)
    query = select(Account.sys_id, Account.number, Account.name)
    with Session(store.engine) as session:
        rows = session.exec(query).all()
    return {
        sys_id: " ".join(part for part in (number, name) if part)
        for sys_id, number, name in rows
        if sys_id in wanted and (number or name)
    }


def _check_fields(
    client: sn.Client,
    store: Store,
    table: str,
    specs: list[FieldSpec],
    result: WritebackResult,
    now: datetime,
) -> None:
    """Stop before any write when a field is missing or read-only (C09).

    A real run audits each unusable field; a dry run only drops the stale state.
    """
    try:
        ensure_fields_ready(client, table, specs)
    except FieldsNotReadyError as exc:
        forget_fields(store, exc.missing)
        if not result.dry_run:
            audit_problems(store, result.run_id, exc.problems(), now)
        raise


def _diffs(
    client: sn.Client,
    store: Store,
    table: str,
    specs: list[FieldSpec],
    health: list[HealthRow],
    now: datetime,
) -> list[AccountDiff]:
    accounts = [h.account for h in health]
    query = select(WritebackState)
    if len(accounts) == 1:
        query = query.where(WritebackState.account == accounts[0])
    with Session(store.engine) as session:
        rows = session.exec(query).all()
    wanted = set(accounts)
    known = known_from_state([r for r in rows if r.account in wanted])

    unknown = sorted(
        {a for a in accounts for s in specs if (a, s.element) not in known}
    )
    if unknown:
        fields = [s.element for s in specs]
        known.update(
            known_from_instance(_read_accounts(client, table, unknown, fields), specs)
        )
    return [
        diff_account(h.account, desired_values(h, specs, now=now), specs, known)
        for h in health
    ]


def _read_accounts(
    client: sn.Client, table: str, accounts: list[str], fields: list[str]
) -> dict[str, dict[str, str]]:
    """Current values of never-written accounts, read in URL-safe chunks."""
    records: dict[str, dict[str, str]] = {}
    for start in range(0, len(accounts), READ_CHUNK):
        chunk = accounts[start : start + READ_CHUNK]
        query = "sys_idIN" + ",".join(chunk)
        for row in client.rows(table, query=query, fields=["sys_id", *fields]):
            records[str(row.get("sys_id"))] = row
    return records


def _send_and_verify(
    client: sn.Client,
    store: Store,
    settings: Settings,
    result: WritebackResult,
    now: datetime,
) -> None:
    table = writeback_table(settings)
    by_account = {d.account: d for d in result.diffs}
    answers = send_diffs(
        client,
        table,
        result.diffs,
        threshold=settings.writeback.batch_threshold,
        batch_size=settings.writeback.batch_size,
        guard=lambda t, fields: ensure_writable(settings, t, fields),
    )
    pending: list[FieldResult] = []
    for answer in answers:
        pending.extend(_judge(by_account[answer.account], answer))
        if len(pending) >= RECORD_EVERY:
            _record(store, result, table, pending, now)
            pending = []
    _record(store, result, table, pending, now)


def _record(
    store: Store,
    result: WritebackResult,
    table: str,
    results: list[FieldResult],
    now: datetime,
) -> None:
    result.results.extend(results)
    record_results(store, result.run_id, table, results, now)


def _judge(diff: AccountDiff, answer: Answer) -> list[FieldResult]:
    if answer.record is None:
        return failed_request(diff.writes, answer.error)
    return verify_record(diff.writes, answer.record)
