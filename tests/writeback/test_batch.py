"""Many accounts go through the Batch API in bounded groups; unserviced items retry."""

from __future__ import annotations

import logging
import time
from collections.abc import Iterator
from datetime import UTC, datetime

import pytest
from sqlalchemy import insert

from connector.config import settings_from_dict
from connector.emulator.server import EmulatorServer
from connector.kpi.models import HealthHistory
from connector.kpi.store import ensure_kpi_tables
from connector.store.engine import open_store
from connector.writeback.install import install_fields
from connector.writeback.runner import run_writeback

from .conftest import AS_OF, config_dict

NOW = datetime(2026, 12, 3, 6, 0, tzinfo=UTC)
STAMP = "2026-01-01 00:00:00"


@pytest.fixture
def bare_emu() -> Iterator[EmulatorServer]:
    with EmulatorServer(accounts=0) as server:
        yield server


def make_accounts(emu: EmulatorServer, count: int) -> list[str]:
    """Bulk-load ``count`` accounts; returns their sys_ids."""
    ids = [f"{i:032x}" for i in range(1, count + 1)]
    emu.instance.load_rows(
        "customer_account",
        [
            {"sys_id": s, "name": f"Account {i}", "number": f"ACCT{i:07d}",
             "sys_created_on": STAMP, "sys_updated_on": STAMP}
            for i, s in enumerate(ids)
        ],
    )  # fmt: skip
    return ids


def seed_scores(store_url: str, ids: list[str]) -> None:
    store = open_store(store_url)
    ensure_kpi_tables(store.engine)
    rows = [
        {"account": s, "as_of": AS_OF, "score": i % 101, "band": "red", "trend": 0,
         "nps_value": None, "nps_n": 0, "reason": f"weakest: support {i % 7}"}
        for i, s in enumerate(ids)
    ]  # fmt: skip
    with store.engine.begin() as conn:
        conn.execute(insert(HealthHistory.__table__), rows)
    store.dispose()


def settings_for(emu: EmulatorServer, store_url: str, **writeback):
    return settings_from_dict(config_dict(emu, store_url, writeback=writeback))


def stored_scores(emu: EmulatorServer) -> dict[str, str]:
    return {
        r["sys_id"]: r["u_health_score"] for r in emu.instance.rows("customer_account")
    }


def test_300_accounts_go_through_the_batch_api(bare_emu, tmp_sqlite_url):
    ids = make_accounts(bare_emu, 300)
    settings = settings_for(bare_emu, tmp_sqlite_url, batch_threshold=20, batch_size=50)
    install_fields(settings)
    seed_scores(tmp_sqlite_url, ids)
    before = bare_emu.instance.request_count

    result = run_writeback(settings, now=NOW)

    assert result.failed == 0
    assert result.sent_accounts == 300
    assert stored_scores(bare_emu) == {s: str(i % 101) for i, s in enumerate(ids)}
    # 6 batches of 50 plus a handful of reads, never one PATCH per account.
    assert bare_emu.instance.request_count - before < 20


def test_unserviced_items_are_sent_again(bare_emu, tmp_sqlite_url, caplog):
    ids = make_accounts(bare_emu, 4)
    settings = settings_for(bare_emu, tmp_sqlite_url, batch_threshold=2, batch_size=2)
    install_fields(settings)
    seed_scores(tmp_sqlite_url, ids)
    # Output cap of 1 byte: each batch services its first item only (§7.1).
    bare_emu.faults.batch_max_output_bytes = 1

    with caplog.at_level(logging.WARNING, logger="connector.writeback.send"):
        result = run_writeback(settings, now=NOW)

    assert result.failed == 0
    assert stored_scores(bare_emu) == {s: str(i % 101) for i, s in enumerate(ids)}
    assert "unserviced" in caplog.text


def test_unserviced_retries_are_bounded_and_reported(bare_emu, tmp_sqlite_url):
    ids = make_accounts(bare_emu, 30)
    settings = settings_for(bare_emu, tmp_sqlite_url, batch_threshold=5, batch_size=10)
    install_fields(settings)
    seed_scores(tmp_sqlite_url, ids)
    bare_emu.faults.batch_max_output_bytes = 1

    result = run_writeback(settings, now=NOW)

    # 3 batches serve 3 items per round, 3 rounds: 9 accounts, the rest failed.
    written = {r.write.account for r in result.results if r.ok}
    failed = {r.write.account for r in result.results if not r.ok}
    assert len(written) == 9
    assert len(failed) == 21
    assert all(
        "not serviced by the Batch API" in r.message for r in result.results if not r.ok
    )


@pytest.mark.slow
def test_10k_accounts_through_the_batch_api(bare_emu, tmp_sqlite_url, capsys):
    ids = make_accounts(bare_emu, 10_000)
    settings = settings_for(
        bare_emu, tmp_sqlite_url, batch_threshold=20, batch_size=200
    )
    install_fields(settings)
    seed_scores(tmp_sqlite_url, ids)

    started = time.perf_counter()
    result = run_writeback(settings, now=NOW)
    seconds = time.perf_counter() - started

    assert result.failed == 0
    assert result.sent_accounts == 10_000
    assert stored_scores(bare_emu) == {s: str(i % 101) for i, s in enumerate(ids)}
    with capsys.disabled():
        print(f"\nwrite-back of 10,000 accounts via Batch API: {seconds:.1f}s")
