"""Backfill stores exactly the source; syncs pick up changes and nothing else."""

from __future__ import annotations

from datetime import timedelta

import pytest

from connector.emulator.server import EmulatorServer
from connector.mapping.loader import load_mappings
from connector.sync.backfill import run_backfill
from connector.sync.incremental import run_incremental

from .helpers import (
    SHIPPED,
    Clock,
    assert_store_matches_source,
    live_ids,
    make_settings,
    shipped,
    stored,
)


def test_backfill_stores_exactly_the_source_rows(
    emulator: EmulatorServer, store_url: str
) -> None:
    settings = make_settings(emulator, store_url, slice_days=120, workers=3)

    results = run_backfill(settings)

    assert [r.outcome for r in results] == ["ok"] * len(results)
    mappings = load_mappings(SHIPPED)
    assert {r.mapping for r in results} == {m.name for m in mappings}
    total = sum(assert_store_matches_source(emulator, store_url, m) for m in mappings)
    assert sum(r.inserted for r in results) == total > 0
    assert all(r.quarantined == 0 for r in results)


def test_a_sync_without_changes_fetches_no_rows(
    emulator: EmulatorServer, store_url: str
) -> None:
    settings = make_settings(emulator, store_url)
    run_backfill(settings)
    run_incremental(settings)
    before = stored(store_url, "case")
    requests = emulator.instance.request_count

    results = run_incremental(settings)

    assert [r.fetched for r in results] == [0] * len(results)
    assert sum(r.inserted + r.updated + r.deleted for r in results) == 0
    # Per table: one empty keyset page and one empty audit page, plus the
    # dictionary and choice lookups of the pass.
    assert emulator.instance.request_count - requests < 12 * len(results)
    assert stored(store_url, "case") == before


def test_creates_updates_and_deletes_between_syncs_are_applied(store_url: str) -> None:
    clock = Clock()
    with EmulatorServer(accounts=5, seed=11, clock=clock) as emu:
        settings = make_settings(emu, store_url)
        clock.advance(5)
        run_backfill(settings)
        instance = emu.instance
        account = instance.rows("customer_account")[0]
        case = instance.rows("sn_customerservice_case")[0]
        contact = instance.rows("customer_contact")[0]

        clock.advance(5)
        created = instance.insert(
            "sn_customerservice_case",
            {"account": account["sys_id"], "state": "1", "priority": "2"},
        )
        instance.update("customer_account", account["sys_id"], {"name": "Renamed Co"})
        instance.update("sn_customerservice_case", case["sys_id"], {"state": "6"})
        instance.delete("customer_contact", contact["sys_id"])
        clock.advance(5)
        results = {r.mapping: r for r in run_incremental(settings)}

        assert results["sn_customerservice_case"].inserted == 1
        assert results["sn_customerservice_case"].updated == 1
        assert results["customer_account"].updated == 1
        assert results["customer_contact"].deleted == 1
        cases = stored(store_url, "case")
        assert cases[created["sys_id"]]["account"] == account["sys_id"]
        assert (
            cases[case["sys_id"]]["state"],
            cases[case["sys_id"]]["state_label"],
        ) == (
            "6",
            "Resolved",
        )
        assert stored(store_url, "account")[account["sys_id"]]["name"] == "Renamed Co"
        gone = stored(store_url, "contact")[contact["sys_id"]]
        assert gone["deleted_at"] is not None
        assert abs(gone["deleted_at"] - clock()) < timedelta(seconds=6)
        for name in ("sn_customerservice_case", "customer_account", "customer_contact"):
            assert_store_matches_source(emu, store_url, shipped(name))


def test_backfill_then_sync_starts_at_the_backfill_end(store_url: str) -> None:
    clock = Clock()
    with EmulatorServer(accounts=5, seed=3, clock=clock) as emu:
        settings = make_settings(emu, store_url, tables=["customer_account"])
        clock.advance(3)
        (backfill,) = run_backfill(settings)
        clock.advance(3)

        (first,) = run_incremental(settings)

        assert backfill.inserted == emu.instance.count("customer_account")
        assert first.fetched == 0
        assert first.window[0] == backfill.window[1]
        assert live_ids(store_url, "account") == {
            r["sys_id"] for r in emu.instance.rows("customer_account")
        }


@pytest.mark.parametrize("workers", [1, 4])
def test_small_slices_and_many_workers_give_the_same_rows(
    emulator: EmulatorServer, tmp_sqlite_url: str, workers: int
) -> None:
    settings = make_settings(
        emulator,
        tmp_sqlite_url,
        slice_days=30,
        workers=workers,
        tables=["sn_customerservice_case", "interaction"],
    )

    results = run_backfill(settings)

    assert all(r.ok for r in results)
    for name in ("sn_customerservice_case", "interaction"):
        assert_store_matches_source(emulator, tmp_sqlite_url, shipped(name))
