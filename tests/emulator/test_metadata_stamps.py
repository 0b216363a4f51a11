"""Dictionary and choice edits show in counts and stamps, as on a real instance.

A sync trusts its saved dictionary while ``X-Total-Count`` and the newest
``sys_updated_on`` of the same filters are unchanged, so every edit made over
the API must move one of them.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from connector.config import settings_from_dict
from connector.emulator.registry import stable_sys_id
from connector.emulator.server import EmulatorServer
from connector.servicenow.client import ServiceNowClient
from connector.servicenow.metadata import read_signature

from .helpers import make_api

FILTERS = {
    "sys_dictionary": "nameINcore_company,customer_account^elementISNOTEMPTY",
    "sys_choice": "nameINcore_company,customer_account^elementINrank_tier",
}


class Clock:
    def __init__(self) -> None:
        self.now = datetime(2026, 11, 20, 10, 0, tzinfo=UTC)

    def __call__(self) -> datetime:
        return self.now


def test_column_and_choice_edits_over_the_api_move_count_or_newest_stamp() -> None:
    clock = Clock()
    with EmulatorServer(accounts=0, clock=clock) as emu:
        admin = make_api(emu, emu.admin_user, emu.admin_password)
        settings = settings_from_dict(
            {
                "instance": {
                    "url": emu.url,
                    "auth": {
                        "method": "basic",
                        "username": emu.admin_user,
                        "password": emu.admin_password,
                    },
                },
                "store": {"url": "sqlite:///unused.db"},
            }
        )
        with ServiceNowClient(settings.instance) as client:
            start = read_signature(client, FILTERS)
            clock.now += timedelta(seconds=5)
            added = admin.post(
                "/api/now/table/sys_dictionary",
                {"name": "customer_account", "element": "u_segment"},
            ).json()["result"]
            with_column = read_signature(client, FILTERS)
            clock.now += timedelta(seconds=5)
            choice = stable_sys_id(
                "sys_choice", "customer_account", "rank_tier", "valued"
            )
            relabelled = admin.patch(
                f"/api/now/table/sys_choice/{choice}", {"label": "Valued+"}
            )
            with_label = read_signature(client, FILTERS)
            dropped = admin.delete(f"/api/now/table/sys_dictionary/{added['sys_id']}")
            without_column = read_signature(client, FILTERS)

    count, _newest = start["sys_dictionary"]
    assert with_column["sys_dictionary"] == (count + 1, "2026-11-20 10:00:05")
    assert relabelled.status_code == 200
    assert with_label["sys_choice"] == (start["sys_choice"][0], "2026-11-20 10:00:10")
    assert dropped.status_code == 204
    assert without_column["sys_dictionary"][0] == count
