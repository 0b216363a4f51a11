"""The saved dictionary must never serve a choice the instance no longer has."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

import requests

from connector.emulator.registry import stable_sys_id
from connector.emulator.server import EmulatorServer
from connector.sync.backfill import run_backfill
from connector.sync.incremental import run_incremental

from .helpers import Clock, make_settings, stored
from .test_noop import ACCOUNTS, at


def api(emu: EmulatorServer, method: str, path: str, **kw):  # type: ignore[no-untyped-def]
    response = requests.request(
        method,
        f"{emu.url}/api/now/table/{path}",
        auth=(emu.admin_user, emu.admin_password),
        timeout=30,
        **kw,
    )
    assert response.status_code < 300, response.text
    return response


@contextmanager
def synced(store_url: str) -> Iterator[tuple]:
    """An emulator whose accounts are backfilled and synced once (the dictionary
    snapshot saved); yields it, its clock, the settings, an account and the
    sys_id of that account's tier choice."""
    clock = Clock(at("2026-11-20 10:00:00"))
    with EmulatorServer(accounts=3, seed=5, clock=clock) as emu:
        settings = make_settings(emu, store_url, tables=[ACCOUNTS])
        clock.advance(5)
        run_backfill(settings)
        clock.advance(5)
        run_incremental(settings)  # saves the snapshot
        account = emu.instance.rows(ACCOUNTS)[0]
        tier = account["rank_tier"]
        choice = stable_sys_id("sys_choice", ACCOUNTS, "rank_tier", tier)
        yield emu, clock, settings, account, choice


def test_choice_deleted_and_another_added_in_the_same_second_over_http(
    tmp_sqlite_url: str,
) -> None:
    with synced(tmp_sqlite_url) as (emu, clock, settings, account, choice):
        tier = account["rank_tier"]
        # Same clock second as the saved read: delete the tier's choice and add
        # another choice (same count), then touch the account.
        api(emu, "DELETE", f"sys_choice/{choice}")
        api(
            emu,
            "POST",
            "sys_choice",
            json={
                "name": ACCOUNTS,
                "element": "rank_tier",
                "value": "zz_new",
                "label": "Brand new",
                "language": "en",
            },
        )
        api(emu, "PATCH", f"{ACCOUNTS}/{account['sys_id']}", json={"name": "Touched"})
        clock.advance(5)

        (run,) = run_incremental(settings)

        row = stored(tmp_sqlite_url, "account")[account["sys_id"]]
        assert run.updated == 1
        assert (row["rank_tier"], row["rank_tier_label"]) == (tier, "unknown")


def test_choice_label_edited_in_the_second_of_the_saved_read_over_http(
    tmp_sqlite_url: str,
) -> None:
    with synced(tmp_sqlite_url) as (emu, clock, settings, account, choice):
        api(emu, "PATCH", f"sys_choice/{choice}", json={"label": "Edited"})
        run_incremental(settings)  # same second: the edit is at "now"
        api(emu, "PATCH", f"sys_choice/{choice}", json={"label": "Edited again"})
        run_incremental(settings)  # still the same second
        api(emu, "PATCH", f"{ACCOUNTS}/{account['sys_id']}", json={"name": "Touched"})
        clock.advance(5)
        run_incremental(settings)

        row = stored(tmp_sqlite_url, "account")[account["sys_id"]]
        assert row["rank_tier_label"] == "Edited again"
