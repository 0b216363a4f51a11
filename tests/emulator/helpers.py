"""Helpers for the emulator tests: an authenticated HTTP client and seed rows."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import requests

from connector.emulator.server import EmulatorServer

CASE = "sn_customerservice_case"


@dataclass
class Api:
    """A ``requests`` session bound to one emulator and one user."""

    url: str
    session: requests.Session

    def get(self, path: str, **params: Any) -> requests.Response:
        return self.session.get(self.url + path, params=params, timeout=30)

    def post(self, path: str, body: Any, **kw: Any) -> requests.Response:
        return self.session.post(self.url + path, json=body, timeout=30, **kw)

    def patch(self, path: str, body: Any, **kw: Any) -> requests.Response:
        return self.session.patch(self.url + path, json=body, timeout=30, **kw)

    def put(self, path: str, body: Any) -> requests.Response:
        return self.session.put(self.url + path, json=body, timeout=30)

    def delete(self, path: str) -> requests.Response:
        return self.session.delete(self.url + path, timeout=30)

    def result(self, path: str, **params: Any) -> Any:
        response = self.get(path, **params)
        assert response.status_code == 200, response.text
        return response.json()["result"]


def make_api(emu: EmulatorServer, user: str, password: str) -> Api:
    session = requests.Session()
    session.auth = (user, password)
    session.headers["Accept"] = "application/json"
    return Api(emu.url, session)


def seed_cases(
    emu: EmulatorServer, n: int, *, updated: str = "2026-02-01 09:00:00"
) -> list[str]:
    """``n`` cases on one account, all updated in the same second; their sys_ids."""
    instance = emu.instance
    account = instance.insert(
        "customer_account", {"name": "Acme Corp", "rank_tier": "strategic"}
    )
    rows = [
        {
            "sys_id": f"{i:032x}",
            "number": f"CS{i:07d}",
            "short_description": f"case {i}",
            "account": account["sys_id"],
            "state": "1" if i % 2 else "3",
            "priority": str(1 + i % 4),
            "reassignment_count": str(i % 7),
            "active": "true" if i % 3 else "false",
            "opened_at": f"2026-01-{1 + i % 28:02d} 10:00:00",
            "sys_created_on": updated,
            "sys_updated_on": updated,
            "sys_created_by": "system",
            "sys_updated_by": "system",
        }
        for i in range(1, n + 1)
    ]
    instance.load_rows(CASE, rows)
    return [r["sys_id"] for r in rows]
