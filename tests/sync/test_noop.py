"""A sync with nothing new is cheap, and still sees dictionary and choice changes.

The dictionary and choice lists are saved in the store after a pass and reused
while the instance reports the same counts and newest stamps for them (one
request per metadata table); delete checks read sys_audit once for all tables.
"""

from __future__ import annotations

from datetime import UTC, datetime

import pytest
from sqlalchemy import func, select

from connector.emulator.registry import stable_sys_id
from connector.emulator.server import EmulatorServer
from connector.errors import MappingError
from connector.store.engine import open_store
from connector.store.state import SyncRun
from connector.sync import checkpoints
from connector.sync.backfill import run_backfill
from connector.sync.incremental import run_incremental

from .helpers import Clock, make_settings, shipped, stored

ACCOUNTS = "customer_account"
CONTACTS = "customer_contact"
# Per pass besides the tables' own windows: three metadata checks, the server
# time and one sys_audit read for every table's deletes.
FIXED_REQUESTS = 5
RUN = SyncRun.__table__  # type: ignore[attr-defined]


def at(text: str) -> datetime:
    return datetime.strptime(text, "%Y-%m-%d %H:%M:%S").replace(tzinfo=UTC)


def requests_of(emu: EmulatorServer, step) -> tuple[int, object]:  # type: ignore[no-untyped-def]
    before = emu.instance.request_count
    result = step()
    return emu.instance.request_count - before, result


def test_a_second_noop_sync_sends_one_request_per_table_plus_five(
    store_url: str,
) -> None:
    clock = Clock(at("2026-11-20 10:00:00"))
    with EmulatorServer(accounts=3, seed=5, clock=clock) as emu:
        settings = make_settings(emu, store_url)
        clock.advance(5)
        run_backfill(settings)
        clock.advance(5)
        first, _ = requests_of(emu, lambda: run_incremental(settings))
        clock.advance(5)

        sent, results = requests_of(emu, lambda: run_incremental(settings))

        tables = len(results)  # type: ignore[arg-type]
        assert tables == 16
        assert all(r.fetched == 0 and r.ok for r in results)  # type: ignore[union-attr]
        assert sent <= tables + FIXED_REQUESTS, sent
        # Before the metadata cache and the shared audit read: ~106 requests.
        assert first <= tables + FIXED_REQUESTS, first


def test_one_table_no_op_costs_its_window_and_five_checks(tmp_sqlite_url: str) -> None:
    clock = Clock(at("2026-11-20 10:00:00"))
    with EmulatorServer(accounts=3, seed=5, clock=clock) as emu:
        settings = make_settings(emu, tmp_sqlite_url, tables=[ACCOUNTS])
        clock.advance(5)
        run_backfill(settings)
        clock.advance(5)
        run_incremental(settings)
        clock.advance(5)

        sent, _ = requests_of(emu, lambda: run_incremental(settings))

        assert sent == 1 + FIXED_REQUESTS


def test_a_mapped_field_dropped_between_syncs_stops_the_next_sync(
    tmp_sqlite_url: str,
) -> None:
    clock = Clock(at("2026-11-20 10:00:00"))
    with EmulatorServer(accounts=3, seed=5, clock=clock) as emu:
        settings = make_settings(emu, tmp_sqlite_url, tables=[ACCOUNTS])
        clock.advance(5)
        run_backfill(settings)
        clock.advance(5)
        cached, _ = requests_of(emu, lambda: run_incremental(settings))
        # The field (inherited from core_company) goes the way an admin drops a
        # column: its sys_dictionary row is deleted.
        row = stable_sys_id("sys_dictionary", "core_company", "country")
        assert emu.instance.delete("sys_dictionary", row)
        runs = run_count(tmp_sqlite_url)

        with pytest.raises(MappingError) as caught:
            run_incremental(settings)

        assert cached == 1 + FIXED_REQUESTS  # the pass before used the cache
        assert "field 'country' does not exist on table 'customer_account'" in str(
            caught.value
        )
        # No table ran without the field (C09): no run was even recorded.
        assert run_count(tmp_sqlite_url) == runs > 0


def test_a_changed_choice_label_is_picked_up_by_the_next_sync(
    store_url: str,
) -> None:
    clock = Clock(at("2026-11-20 10:00:00"))
    with EmulatorServer(accounts=3, seed=5, clock=clock) as emu:
        settings = make_settings(emu, store_url, tables=[ACCOUNTS])
        clock.advance(5)
        run_backfill(settings)
        clock.advance(5)
        run_incremental(settings)
        account = emu.instance.rows(ACCOUNTS)[0]
        tier = account["rank_tier"]
        assert tier, "the generated account has a rank tier"
        choice = stable_sys_id("sys_choice", ACCOUNTS, "rank_tier", tier)
        clock.advance(5)
        assert emu.instance.update("sys_choice", choice, {"label": "Renamed tier"})
        emu.instance.update(ACCOUNTS, account["sys_id"], {"name": "Touched"})
        clock.advance(5)

        (run,) = run_incremental(settings)

        row = stored(store_url, "account")[account["sys_id"]]
        assert run.updated == 1
        assert (row["rank_tier"], row["rank_tier_label"]) == (tier, "Renamed tier")


def test_a_choice_edited_twice_in_the_second_of_a_read_is_not_missed(
    tmp_sqlite_url: str,
) -> None:
    clock = Clock(at("2026-11-20 10:00:00"))
    with EmulatorServer(accounts=3, seed=5, clock=clock) as emu:
        settings = make_settings(emu, tmp_sqlite_url, tables=[ACCOUNTS])
        clock.advance(5)
        run_backfill(settings)
        account = emu.instance.rows(ACCOUNTS)[0]
        choice = stable_sys_id(
            "sys_choice", ACCOUNTS, "rank_tier", account["rank_tier"]
        )
        clock.advance(5)
        # Two edits in the same second as the pass: the second one keeps the
        # count and the newest stamp, so only re-reading can see it.
        assert emu.instance.update("sys_choice", choice, {"label": "First"})
        run_incremental(settings)
        assert emu.instance.update("sys_choice", choice, {"label": "Second"})
        clock.advance(1)
        emu.instance.update(ACCOUNTS, account["sys_id"], {"name": "Touched"})
        clock.advance(5)

        reread, _ = requests_of(emu, lambda: run_incremental(settings))
        clock.advance(5)
        cached, _ = requests_of(emu, lambda: run_incremental(settings))

        row = stored(tmp_sqlite_url, "account")[account["sys_id"]]
        assert row["rank_tier_label"] == "Second"
        assert reread > cached == 1 + FIXED_REQUESTS


def test_one_audit_read_applies_each_tables_deletes_and_moves_each_cursor(
    tmp_sqlite_url: str,
) -> None:
    clock = Clock(at("2026-11-20 10:00:00"))
    with EmulatorServer(accounts=3, seed=5, clock=clock) as emu:
        settings = make_settings(emu, tmp_sqlite_url, tables=[ACCOUNTS, CONTACTS])
        clock.advance(5)
        run_backfill(settings)
        clock.advance(5)
        run_incremental(settings)
        account = emu.instance.rows(ACCOUNTS)[0]["sys_id"]
        contact = emu.instance.rows(CONTACTS)[0]["sys_id"]
        clock.advance(5)
        emu.instance.delete(ACCOUNTS, account)
        clock.advance(5)
        emu.instance.delete(CONTACTS, contact)
        clock.advance(5)

        sent, results = requests_of(emu, lambda: run_incremental(settings))

        deleted = {r.mapping: r.deleted for r in results}  # type: ignore[union-attr]
        assert deleted == {ACCOUNTS: 1, CONTACTS: 1}
        assert stored(tmp_sqlite_url, "account")[account]["deleted_at"] is not None
        assert stored(tmp_sqlite_url, "contact")[contact]["deleted_at"] is not None
        assert sent == 2 + FIXED_REQUESTS
        # Both cursors stand on the newest audit row read (the contact's).
        newest = max(
            (r for r in emu.instance.rows("sys_audit") if r["fieldname"] == "DELETED"),
            key=lambda r: (r["sys_updated_on"], r["sys_id"]),
        )
        for name in (ACCOUNTS, CONTACTS):
            assert delete_cursor(tmp_sqlite_url, name) == (
                at(newest["sys_updated_on"]),
                newest["sys_id"],
            )


def run_count(store_url: str) -> int:
    store = open_store(store_url, migrate=False)
    try:
        with store.engine.connect() as conn:
            return int(conn.execute(select(func.count()).select_from(RUN)).scalar())
    finally:
        store.dispose()


def delete_cursor(store_url: str, name: str) -> tuple | None:
    store = open_store(store_url, migrate=False)
    try:
        state = checkpoints.load_state(store, shipped(name))
        return checkpoints.delete_cursor_of(state)
    finally:
        store.dispose()
