"""A deleted record that comes back with its sys_id is live in the store.

A RECOVERED audit row clears the delete mark (C13). A record created again with
the same sys_id (an import that sets sys_id) writes none: the pass then reads
the new record and, later in the same pass, the DELETED audit row of the old
one, which must not mark the newer record.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

from connector.emulator.server import EmulatorServer
from connector.sync.backfill import run_backfill
from connector.sync.incremental import run_incremental

from .helpers import Clock, assert_store_matches_source, make_settings, shipped, stored

ACCOUNTS = "customer_account"


@contextmanager
def backfilled(store_url: str) -> Iterator[tuple]:
    """Five accounts backfilled; yields the emulator, its clock, the settings and
    the first account's full row (what a re-creation writes back)."""
    clock = Clock()
    with EmulatorServer(accounts=5, seed=2, clock=clock) as emu:
        settings = make_settings(emu, store_url, tables=[ACCOUNTS])
        clock.advance(2)
        run_backfill(settings)
        row = emu.instance.get(ACCOUNTS, emu.instance.rows(ACCOUNTS)[0]["sys_id"])
        yield emu, clock, settings, row


def deleted_marks(store_url: str) -> set[str]:
    rows = stored(store_url, "account")
    return {key for key, row in rows.items() if row["deleted_at"] is not None}


def test_deleted_and_created_again_between_two_passes_is_live(store_url: str) -> None:
    with backfilled(store_url) as (emu, clock, settings, row):
        key = row["sys_id"]

        emu.instance.delete(ACCOUNTS, key)  # writes a DELETED audit row
        clock.advance(2)
        again = {k: v for k, v in row.items() if k != "sys_updated_on"}
        emu.instance.insert(ACCOUNTS, {**again, "name": "Back again"})
        clock.advance(2)
        (run,) = run_incremental(settings, reconcile=False)

        assert deleted_marks(store_url) == set()
        assert stored(store_url, "account")[key]["name"] == "Back again"
        assert (run.updated, run.deleted) == (1, 0)
        assert_store_matches_source(emu, store_url, shipped(ACCOUNTS))


def test_deleted_after_its_last_change_is_marked(store_url: str) -> None:
    """The guard must not spare a plain delete (the stored row is older)."""
    with backfilled(store_url) as (emu, clock, settings, row):
        key = row["sys_id"]

        clock.advance(2)
        emu.instance.delete(ACCOUNTS, key)
        clock.advance(2)
        (run,) = run_incremental(settings, reconcile=False)

        assert deleted_marks(store_url) == {key}
        assert run.deleted == 1


def test_deleted_then_created_again_after_a_pass_is_live(store_url: str) -> None:
    with backfilled(store_url) as (emu, clock, settings, row):
        key = row["sys_id"]
        emu.instance.delete(ACCOUNTS, key)
        clock.advance(2)
        run_incremental(settings, reconcile=False)
        assert deleted_marks(store_url) == {key}

        clock.advance(2)
        again = {k: v for k, v in row.items() if k != "sys_updated_on"}
        emu.instance.insert(ACCOUNTS, again)
        clock.advance(2)
        run_incremental(settings, reconcile=False)

        assert deleted_marks(store_url) == set()
        assert_store_matches_source(emu, store_url, shipped(ACCOUNTS))
