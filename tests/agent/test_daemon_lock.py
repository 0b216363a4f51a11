"""One daemon per store: the lock refuses a second holder and names the first."""

from __future__ import annotations

import os
import subprocess
import sys
import time
from pathlib import Path

import pytest

from connector.agent.lock import DaemonLock, sqlite_lock_path
from connector.errors import LockedError

from .daemon_harness import HOLD_SCRIPT


def _hold_in_child(url: str) -> subprocess.Popen[str]:
    child = subprocess.Popen(
        [sys.executable, "-c", HOLD_SCRIPT, url], stdout=subprocess.PIPE, text=True
    )
    assert child.stdout is not None
    assert child.stdout.readline().strip() == "held"
    return child


def test_sqlite_lock_refuses_a_second_daemon_and_names_the_pid(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'csm.db'}"
    child = _hold_in_child(url)
    try:
        with pytest.raises(LockedError) as refused:
            DaemonLock(url).acquire()
    finally:
        child.kill()
        child.wait()

    assert f"pid {child.pid}" in str(refused.value)
    assert str(sqlite_lock_path(url)) in str(refused.value)


def test_sqlite_lock_is_free_again_after_the_holder_dies(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'csm.db'}"
    child = _hold_in_child(url)
    child.kill()
    child.wait()

    with DaemonLock(url) as lock:
        holder = sqlite_lock_path(url).read_text().strip()

    assert holder == str(os.getpid())
    assert lock.description.endswith("csm.db.daemon.lock")


def test_lock_file_sits_beside_the_database(tmp_path: Path) -> None:
    path = sqlite_lock_path(f"sqlite:///{tmp_path}/data/store.sqlite")

    assert path == (tmp_path / "data" / "store.sqlite.daemon.lock").resolve()


@pytest.mark.postgres
def test_postgres_advisory_lock_refuses_a_second_session(fresh_pg_url: str) -> None:
    first = DaemonLock(fresh_pg_url)
    first.acquire()
    try:
        with pytest.raises(LockedError) as refused:
            DaemonLock(fresh_pg_url).acquire()
    finally:
        first.release()

    assert f"pid {os.getpid()}" in str(refused.value)


@pytest.mark.postgres
def test_postgres_advisory_lock_is_released_with_its_session(fresh_pg_url: str) -> None:
    child = _hold_in_child(fresh_pg_url)
    child.kill()
    child.wait()
    # The server notices the dead session once its socket closes.
    deadline = time.monotonic() + 10
    while True:
        try:
            with DaemonLock(fresh_pg_url):
                break
        except LockedError:
            if time.monotonic() > deadline:
                raise
            time.sleep(0.2)
