"""A killed backfill resumes and ends exact; changes during a backfill all land."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
from sqlalchemy import func, select

from connector.emulator.server import EmulatorServer
from connector.store.engine import open_store
from connector.store.state import SyncRun
from connector.sync.backfill import run_backfill
from connector.sync.incremental import run_incremental

from .helpers import (
    SHIPPED,
    assert_store_matches_source,
    make_settings,
    shipped,
    stored_count,
)

CLI = [str(Path(sys.executable).parent / "csm-sync")]
TABLES = ["sn_customerservice_case", "interaction"]


def write_config(path: Path, emu: EmulatorServer, store_url: str) -> Path:
    path.write_text(
        f"instance:\n  url: {emu.url}\n  page_size: 10\n  backoff_cap_seconds: 0.05\n"
        f"  auth:\n    method: basic\n    username: {emu.admin_user}\n"
        "    password: ${SN_PASSWORD}\n"
        f"store: {{url: '{store_url}'}}\n"
        f"mappings: {SHIPPED}\n"
        "sync: {lag_seconds: 0, slice_days: 120, workers: 2}\n",
        encoding="utf-8",
    )
    path.chmod(0o600)
    return path


def last_run_id(store_url: str) -> int:
    store = open_store(store_url, migrate=False)
    try:
        with store.engine.connect() as conn:
            return int(conn.execute(select(func.max(SyncRun.id))).scalar() or 0)
    finally:
        store.dispose()


def backfill_process(config: Path, emu: EmulatorServer) -> subprocess.Popen:
    args = [*CLI, "backfill", "-c", str(config)]
    for table in TABLES:
        args += ["--table", table]
    env = dict(os.environ, SN_PASSWORD=emu.admin_password)
    return subprocess.Popen(
        args, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE
    )


def kill_after_rows(process: subprocess.Popen, store_url: str, rows: int) -> int:
    """SIGKILL the backfill once at least ``rows`` rows are stored."""
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline and process.poll() is None:
        if stored_count(store_url) >= rows:
            break
        time.sleep(0.05)
    process.send_signal(signal.SIGKILL)
    process.wait(timeout=10)
    return stored_count(store_url)


def test_backfill_killed_twice_resumes_to_exactly_the_source(
    tmp_path: Path, store_url: str
) -> None:
    check_kill_and_resume(tmp_path, store_url, fractions=(0.3, 0.7))


@pytest.mark.slow
def test_backfill_killed_at_four_points_resumes_to_exactly_the_source(
    tmp_path: Path, store_url: str
) -> None:
    check_kill_and_resume(tmp_path, store_url, fractions=(0.0, 0.25, 0.5, 0.75))


def check_kill_and_resume(
    tmp_path: Path, store_url: str, *, fractions: tuple[float, ...]
) -> None:
    """Kill ``csm-sync backfill`` once past each fraction of the rows, then finish."""
    with EmulatorServer(accounts=5, seed=7) as emu:
        emu.instance.faults.update(latency_ms=10)
        config = write_config(tmp_path / "config.yaml", emu, store_url)
        total = sum(emu.instance.count(t) for t in TABLES)

        kept = [
            kill_after_rows(
                backfill_process(config, emu), store_url, max(1, int(total * f))
            )
            for f in fractions
        ]
        first_final_run = last_run_id(store_url) + 1
        final = backfill_process(config, emu)
        _, err = final.communicate(timeout=120)

        assert final.returncode == 0, err.decode()
        assert kept[0] > 0 and kept == sorted(kept) and kept[-1] < total
        for name in TABLES:
            assert_store_matches_source(emu, store_url, shipped(name))
        store = open_store(store_url, migrate=False)
        with store.engine.connect() as conn:
            runs = conn.execute(
                select(SyncRun).where(SyncRun.id >= first_final_run)
            ).all()
        store.dispose()
        # The resumed run inserted exactly what was missing and re-read nothing
        # that had been committed before the kill.
        assert [r.outcome for r in runs] == ["ok"] * len(runs)
        assert sum(r.rows_inserted for r in runs) == total - kept[-1]
        assert sum(r.rows_updated + r.rows_unchanged for r in runs) == 0


def test_mutations_during_a_backfill_land_after_the_next_sync(store_url: str) -> None:
    with EmulatorServer(accounts=5, seed=5) as emu:
        settings = make_settings(
            emu, store_url, tables=TABLES, slice_days=30, instance={"page_size": 10}
        )
        # Slow enough pages that the mutator deletes rows the backfill has already
        # stored (5 ms let a quiet machine finish before any such delete).
        emu.instance.faults.update(latency_ms=30)
        emu.instance.start_mutator(rate_per_second=40, tables=TABLES, delete_ratio=0.3)
        try:
            run_backfill(settings)
        finally:
            emu.instance.stop_mutator()
        time.sleep(1.1)  # the window ends at the server's current second

        results = run_incremental(settings)

        assert all(r.ok for r in results)
        assert sum(r.deleted for r in results) > 0
        for name in TABLES:
            assert_store_matches_source(emu, store_url, shipped(name))


def test_sigterm_finishes_the_page_in_hand_and_a_rerun_completes(
    tmp_path: Path, tmp_sqlite_url: str
) -> None:
    with EmulatorServer(accounts=5, seed=7) as emu:
        emu.instance.faults.update(latency_ms=20)
        config = write_config(tmp_path / "config.yaml", emu, tmp_sqlite_url)
        process = backfill_process(config, emu)
        deadline = time.monotonic() + 60
        while stored_count(tmp_sqlite_url) == 0 and time.monotonic() < deadline:
            time.sleep(0.05)

        process.send_signal(signal.SIGTERM)
        _, err = process.communicate(timeout=60)
        kept = stored_count(tmp_sqlite_url)
        emu.instance.faults.update(latency_ms=0)
        settings = make_settings(emu, tmp_sqlite_url, tables=TABLES, slice_days=120)
        results = run_backfill(settings)

        assert process.returncode == 1
        assert "stopped on request" in err.decode()
        assert "Traceback" not in err.decode()
        assert 0 < kept < sum(emu.instance.count(t) for t in TABLES)
        assert sum(r.unchanged + r.updated for r in results) == 0
        for name in TABLES:
            assert_store_matches_source(emu, tmp_sqlite_url, shipped(name))
