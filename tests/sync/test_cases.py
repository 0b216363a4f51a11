"""Client-side cases at sync level: C01 C02 C06 C07 C08 C11 C13 C19."""

from __future__ import annotations

import logging
import threading
import time
from datetime import UTC, datetime

from sqlalchemy import select, text, update

from connector.emulator.auth import User
from connector.emulator.server import EmulatorServer
from connector.store.engine import open_store
from connector.store.models import Account
from connector.store.state import QuarantinedRow
from connector.sync import checkpoints
from connector.sync.backfill import run_backfill
from connector.sync.incremental import run_incremental, run_reconcile

from .helpers import Clock, assert_store_matches_source, make_settings, shipped, stored

CASES = "sn_customerservice_case"


def sid(n: int, prefix: str = "a") -> str:
    return f"{prefix}{n:031x}"


def add_case(emu: EmulatorServer, n: int, updated: str, **fields: str) -> str:
    sys_id = sid(n)
    emu.instance.insert(
        CASES,
        {
            "sys_id": sys_id,
            "sys_created_on": updated,
            "sys_updated_on": updated,
            "number": f"CS{n:07d}",
            "state": "1",
            **fields,
        },
        raw=True,
    )
    return sys_id


def cursor(store_url: str, name: str = CASES) -> tuple | None:
    store = open_store(store_url, migrate=False)
    try:
        return checkpoints.cursor_of(checkpoints.load_state(store, shipped(name)))
    finally:
        store.dispose()


def at(text_: str) -> datetime:
    return datetime.strptime(text_, "%Y-%m-%d %H:%M:%S").replace(tzinfo=UTC)


def test_c02_same_second_burst_and_a_later_row_all_stored_once(store_url: str) -> None:
    clock = Clock(at("2026-02-01 09:00:30"))
    with EmulatorServer(accounts=0, clock=clock) as emu:
        burst = [add_case(emu, n, "2026-02-01 09:00:00") for n in range(250)]
        settings = make_settings(
            emu, store_url, tables=[CASES], instance={"page_size": 200}
        )
        stop_after_first_page = threading.Event()
        stop_after_first_page.set()

        (run1,) = run_incremental(settings, stop_event=stop_after_first_page)
        late = add_case(emu, 900, "2026-02-01 09:00:05")
        clock.advance(10)
        (run2,) = run_incremental(settings)

        assert (run1.outcome, run1.inserted) == ("stopped", 200)
        assert (run2.inserted, run2.unchanged, run2.updated) == (51, 0, 0)
        assert set(stored(store_url, "case")) == {*burst, late}
        # The cursor is the last stored row, never the clock (C02).
        assert cursor(store_url) == (at("2026-02-01 09:00:05"), late)


def test_c01_rows_updated_between_pages_are_neither_lost_nor_doubled(
    store_url: str,
) -> None:
    clock = Clock(at("2026-01-02 12:00:00"))
    with EmulatorServer(accounts=0, clock=clock) as emu:
        ids = [add_case(emu, n, f"2026-01-02 10:{n:02d}:00") for n in range(30)]
        settings = make_settings(
            emu, store_url, tables=[CASES], instance={"page_size": 10}
        )
        moved: list[str] = []

        def move_rows(_table: str, _rows: int) -> None:
            # An already-read row and an unread one are updated mid-run; under
            # offset paging every later row would shift and one would be skipped.
            if not moved:
                for sys_id in (ids[1], ids[15]):
                    emu.instance.update(CASES, sys_id, {"state": "10"})
                    moved.append(sys_id)

        (first,) = run_incremental(settings, progress=move_rows)
        clock.advance(5)
        (second,) = run_incremental(settings)

        # Both moved rows now sit past the window end (the server's clock), so
        # the first pass stores each other row once and the second the two. The
        # unread one may already be in the page fetched ahead (old version):
        # then the first pass has 30 rows and the second updates both.
        assert first.inserted == first.fetched in (29, 30)
        assert second.fetched == 2
        assert first.inserted + second.inserted == 30
        assert second.updated == 2 - second.inserted
        assert_store_matches_source(emu, store_url, shipped(CASES))
        assert {stored(store_url, "case")[s]["state"] for s in moved} == {"10"}


def test_c06_c07_bad_values_are_quarantined_and_released_when_fixed(
    store_url: str,
) -> None:
    clock = Clock(at("2026-03-01 08:00:00"))
    with EmulatorServer(accounts=0, clock=clock) as emu:
        good = add_case(
            emu,
            1,
            "2026-03-01 07:00:00",
            reassignment_count="",
            business_duration="1970-01-22 21:46:21",
            made_sla="false",
            resolved_at="",
        )
        bad = add_case(emu, 2, "2026-03-01 07:00:01", account="acme", priority="high")
        settings = make_settings(emu, store_url, tables=[CASES])

        (run1,) = run_incremental(settings)
        quarantined = _quarantine(store_url)
        emu.instance.update(
            CASES, bad, {"account": sid(7, "c"), "priority": "2"}, raw=True
        )
        clock.advance(5)
        (run2,) = run_incremental(settings)

        assert (run1.inserted, run1.quarantined, run1.outcome) == (1, 1, "ok")
        assert {(q.sys_id, q.field, q.raw_value) for q in quarantined} == {
            (bad, "account", "acme"),
            (bad, "priority", "high"),
        }
        assert all(q.reason and q.source_table == CASES for q in quarantined)
        row = stored(store_url, "case")[good]
        assert (row["reassignment_count"], row["business_duration"]) == (None, 1892781)
        assert (row["made_sla"], row["resolved_at"]) == (False, None)
        assert run2.inserted == 1
        assert stored(store_url, "case")[bad]["account"] == sid(7, "c")
        assert _quarantine(store_url) == []


def _quarantine(store_url: str) -> list[QuarantinedRow]:
    store = open_store(store_url, migrate=False)
    with store.engine.connect() as conn:
        rows = [
            QuarantinedRow.model_validate(r._asdict())
            for r in conn.execute(select(QuarantinedRow.__table__))
        ]
    store.dispose()
    return rows


def test_c08_labels_fall_back_to_the_parent_and_unknown_codes_are_kept(
    store_url: str, caplog
) -> None:
    clock = Clock(at("2026-03-01 08:00:00"))
    with EmulatorServer(accounts=0, clock=clock) as emu:
        emu.instance.insert(
            "sys_choice",
            {
                "name": CASES,
                "element": "state",
                "value": "18",
                "label": "Waiting on you",
            },
        )
        for n, state in enumerate(("18", "3", "-2")):
            add_case(emu, n, "2026-03-01 07:00:00", state=state)
        settings = make_settings(emu, store_url, tables=[CASES])

        with caplog.at_level(logging.WARNING):
            (run,) = run_incremental(settings)

        rows = stored(store_url, "case")
        labels = {rows[sid(n)]["state"]: rows[sid(n)]["state_label"] for n in range(3)}
        assert run.inserted == 3
        assert labels == {"18": "Waiting on you", "3": "Closed", "-2": "unknown"}
        assert "Unknown choice code '-2'" in caplog.text


def test_c11_auth_failure_mid_window_keeps_the_cursor_on_the_last_page(
    store_url: str,
) -> None:
    clock = Clock(at("2026-02-01 12:00:00"))
    with EmulatorServer(accounts=0, clock=clock) as emu:
        ids = sorted(add_case(emu, n, "2026-02-01 10:00:00") for n in range(35))
        settings = make_settings(
            emu, store_url, tables=[CASES], instance={"page_size": 10}
        )
        users = emu.instance.auth.users
        admin = users[emu.admin_user]

        def revoke(_table: str, _rows: int) -> None:
            users[admin.name] = User(admin.name, "rotated", admin.roles)

        (failed,) = run_incremental(settings, progress=revoke)
        kept_cursor = cursor(store_url)
        users[admin.name] = admin
        (resumed,) = run_incremental(settings)

        # The page in flight when the password changed may have been read
        # already (workers fetch one page ahead): 1 or 2 pages are stored, and
        # the cursor is the last stored row either way.
        kept = failed.inserted
        assert failed.outcome == "failed" and kept in (10, 20)
        assert kept_cursor == (at("2026-02-01 10:00:00"), ids[kept - 1])
        assert (resumed.inserted, resumed.unchanged) == (35 - kept, 0)
        assert set(stored(store_url, "case")) == set(ids)


def test_c13_audited_unaudited_and_recovered_deletes(store_url: str) -> None:
    clock = Clock()
    with EmulatorServer(accounts=5, seed=2, clock=clock) as emu:
        settings = make_settings(emu, store_url, tables=["customer_account"])
        clock.advance(2)
        run_backfill(settings)
        first, second, third = (
            r["sys_id"] for r in emu.instance.rows("customer_account")[:3]
        )

        emu.instance.delete("customer_account", first)  # audited
        emu.instance.store.execute(  # Table Cleaner: no audit row (KB0634666)
            "DELETE FROM customer_account WHERE sys_id = ?", (second,)
        )
        row = emu.instance.get("customer_account", third)
        emu.instance.delete("customer_account", third)
        clock.advance(2)
        emu.instance.insert("customer_account", row, raw=True)
        emu.instance.insert(
            "sys_audit",
            {
                "tablename": "customer_account",
                "documentkey": third,
                "fieldname": "RECOVERED",
                "oldvalue": "",
                "newvalue": "RECOVERED",
            },
            raw=True,
        )
        clock.advance(2)
        (audited,) = run_incremental(settings, reconcile=False)
        marked = {k for k, r in stored(store_url, "account").items() if r["deleted_at"]}
        (swept,) = run_incremental(settings, reconcile=True)

        assert marked == {first}
        assert audited.deleted == 2  # first, and third before its recovery
        assert swept.deleted == 1
        gone = {k for k, r in stored(store_url, "account").items() if r["deleted_at"]}
        assert gone == {first, second}
        assert_store_matches_source(emu, store_url, shipped("customer_account"))

        emu.instance.store.execute(
            "DELETE FROM customer_account WHERE sys_id = ?", (third,)
        )
        (reconciled,) = run_reconcile(settings)

        assert (reconciled.mode, reconciled.deleted) == ("reconcile", 1)
        assert stored(store_url, "account")[third]["deleted_at"] is not None


def test_c19_a_sync_and_a_reader_writer_thread_never_see_database_locked(
    tmp_sqlite_url: str,
) -> None:
    with EmulatorServer(accounts=5, seed=7) as emu:
        tables = [CASES, "interaction", "customer_account"]
        settings = make_settings(
            emu, tmp_sqlite_url, slice_days=120, workers=3, tables=tables
        )
        other = open_store(tmp_sqlite_url)
        errors: list[BaseException] = []
        done = threading.Event()
        writes = 0

        def health_job() -> None:
            # Read cases, write accounts, on its own connections (C19's second thread).
            nonlocal writes
            try:
                while not done.is_set():
                    with other.engine.begin() as conn:
                        conn.execute(text('SELECT count(*) FROM "case"')).scalar()
                        conn.execute(update(Account).values(country="checked"))
                    writes += 1
                    time.sleep(0.002)  # a busy job, not a spin loop
            except BaseException as exc:
                errors.append(exc)

        worker = threading.Thread(target=health_job)
        worker.start()
        try:
            results = run_backfill(settings) + run_incremental(settings)
        finally:
            done.set()
            worker.join(timeout=30)
            other.dispose()

        assert errors == []
        assert all(r.ok for r in results), [r.error for r in results]
        assert writes > 10
        with open_store(tmp_sqlite_url).engine.connect() as conn:
            assert conn.exec_driver_sql("PRAGMA journal_mode").scalar() == "wal"
            assert conn.exec_driver_sql("PRAGMA busy_timeout").scalar() >= 5000


def test_pages_shortened_by_acls_do_not_end_the_window(tmp_sqlite_url: str) -> None:
    clock = Clock(at("2026-03-01 08:00:00"))
    with EmulatorServer(accounts=0, clock=clock) as emu:
        ids = [
            add_case(emu, n, f"2026-03-01 07:{n // 60:02d}:{n % 60:02d}")
            for n in range(120)
        ]
        visible = {
            s
            for s in ids
            if not emu.instance.is_hidden(
                emu.acl_user, emu.instance.get(CASES, s), CASES
            )
        }
        auth = {
            "method": "basic",
            "username": emu.acl_user,
            "password": emu.acl_password,
        }
        settings = make_settings(
            emu,
            tmp_sqlite_url,
            tables=[CASES],
            instance={"page_size": 10, "auth": auth},
        )

        (run,) = run_incremental(settings)

        assert 0 < len(visible) < len(ids)
        assert run.ok and run.inserted == len(visible)
        assert set(stored(tmp_sqlite_url, "case")) == visible
