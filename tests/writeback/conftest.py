"""Fixtures of the write-back tests: a writable emulator, settings, health rows."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from datetime import date
from pathlib import Path
from typing import Any

import pytest
import yaml
from sqlmodel import Session, select

from connector.config import Settings, settings_from_dict
from connector.emulator.server import EmulatorServer
from connector.kpi.models import HealthHistory
from connector.kpi.store import ensure_kpi_tables
from connector.store.engine import open_store
from connector.writeback.models import WritebackLog

AS_OF = date(2026, 12, 3)
ACCOUNT = "customer_account"


@pytest.fixture
def emu() -> Iterator[EmulatorServer]:
    """A fresh 5-account instance per test (tests here change its dictionary)."""
    with EmulatorServer(accounts=5, seed=7) as server:
        yield server


@pytest.fixture
def accounts(emu: EmulatorServer) -> list[str]:
    return sorted(r["sys_id"] for r in emu.instance.rows(ACCOUNT))


def config_dict(
    emu: EmulatorServer,
    store_url: str,
    *,
    user: str = "admin",
    writeback: dict[str, Any] | None = None,
) -> dict[str, Any]:
    passwords = {"admin": emu.admin_password, "restricted": emu.restricted_password}
    password = passwords.get(user, emu.integration_password)
    return {
        "instance": {
            "url": emu.url,
            "auth": {"username": user, "password": password},
            "max_retries": 1,
        },
        "store": {"url": store_url},
        "writeback": writeback or {},
    }


@pytest.fixture
def make_settings(emu: EmulatorServer, tmp_sqlite_url: str) -> Callable[..., Settings]:
    def build(*, user: str = "admin", **writeback: Any) -> Settings:
        return settings_from_dict(
            config_dict(emu, tmp_sqlite_url, user=user, writeback=writeback)
        )

    return build


@pytest.fixture
def write_config(
    emu: EmulatorServer, tmp_sqlite_url: str, tmp_path: Path
) -> Callable[..., Path]:
    """Write a YAML config for CLI tests; returns its path."""

    def write(*, user: str = "admin", **writeback: Any) -> Path:
        path = tmp_path / "config.yaml"
        data = config_dict(emu, tmp_sqlite_url, user=user, writeback=writeback)
        path.write_text(yaml.safe_dump(data), encoding="utf-8")
        path.chmod(0o600)
        return path

    return write


def health(account: str, score: int | None, **kw: Any) -> HealthHistory:
    """A health_history row as the KPI engine stores it."""
    values: dict[str, Any] = {
        "account": account,
        "as_of": AS_OF,
        "score": score,
        "band": None if score is None else _band(score),
        "trend": 2,
        "nps_value": 30.0,
        "nps_n": 8,
        "reason": "weakest: support 20, adoption 35",
        "components": {"support": 20.0, "adoption": 35.0},
    }
    values.update(kw)
    return HealthHistory(**values)


def _band(score: int) -> str:
    return "green" if score >= 70 else "yellow" if score >= 40 else "red"


@pytest.fixture
def seed_health(tmp_sqlite_url: str) -> Callable[[list[HealthHistory]], None]:
    """Store health rows (replacing same account+date) in the test's store."""

    def seed(rows: list[HealthHistory]) -> None:
        store = open_store(tmp_sqlite_url)
        try:
            ensure_kpi_tables(store.engine)
            with Session(store.engine) as session:
                for row in rows:
                    session.merge(row)
                session.commit()
        finally:
            store.dispose()

    return seed


def account_values(emu: EmulatorServer, sys_id: str) -> dict[str, str]:
    """The account as the Table API answers it (display_value=false)."""
    import requests

    response = requests.get(
        f"{emu.url}/api/now/table/{ACCOUNT}/{sys_id}",
        auth=(emu.admin_user, emu.admin_password),
        timeout=10,
    )
    response.raise_for_status()
    return response.json()["result"]


def mod_counts(emu: EmulatorServer) -> dict[str, str]:
    """sys_mod_count per account: any write bumps it."""
    return {r["sys_id"]: r["sys_mod_count"] for r in emu.instance.rows(ACCOUNT)}


def log_rows(store_url: str) -> list[WritebackLog]:
    """Every write-back audit row in the store."""
    store = open_store(store_url)
    try:
        with Session(store.engine) as session:
            return list(session.exec(select(WritebackLog)).all())
    finally:
        store.dispose()
