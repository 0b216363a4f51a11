"""Crash consistency (CI form): a few seeded SIGKILLs per mode, then an exact store.

The long form (``python bench/reliability.py crash --kills 50``) runs the same
scenarios with many more kill points.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from . import crash

CI_TABLES = ["sn_customerservice_case", "interaction", "customer_account"]


def _held(report: crash.CrashReport, *, min_kills: int) -> None:
    assert report.problems == [], report.problems
    # A run that ended before its kill point proves nothing; most must be killed.
    assert report.kills >= min_kills, report.line()


def test_backfill_killed_at_random_points_resumes_exact(tmp_path: Path) -> None:
    report = crash.backfill_crashes(
        tmp_path, seed=3, kills=3, per_cycle=3, window=2.0, tables=CI_TABLES
    )
    _held(report, min_kills=2)


def test_backfill_killed_inside_sqlite_commits_keeps_a_sound_file(
    tmp_path: Path,
) -> None:
    report = crash.backfill_crashes(
        tmp_path,
        seed=4,
        kills=3,
        per_cycle=3,
        power_cut=True,
        accounts=20,
        tables=CI_TABLES,
    )
    _held(report, min_kills=2)


def test_sync_killed_while_the_instance_changes_ends_exact(tmp_path: Path) -> None:
    report = crash.sync_crashes(tmp_path, seed=5, kills=3, tables=CI_TABLES)
    _held(report, min_kills=2)


def test_writeback_killed_mid_run_never_writes_two_values(tmp_path: Path) -> None:
    report = crash.writeback_crashes(tmp_path, seed=6, kills=3)
    _held(report, min_kills=2)


def test_store_creation_killed_midway_reopens_whole(tmp_path: Path) -> None:
    report = crash.migration_kills(tmp_path, seed=1, kills=3)
    assert report.problems == [], report.problems


@pytest.mark.slow
def test_every_mode_survives_ten_kills(tmp_path: Path) -> None:
    reports = [
        crash.backfill_crashes(tmp_path / "b", seed=13, kills=10),
        crash.sync_crashes(tmp_path / "s", seed=15, kills=10),
        crash.writeback_crashes(tmp_path / "w", seed=16, kills=10),
    ]
    for report in reports:
        _held(report, min_kills=7)
