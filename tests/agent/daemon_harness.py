"""Drive ``csm-sync run`` as a subprocess against an in-process emulator."""

from __future__ import annotations

import json
import os
import signal
import socket
import sqlite3
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import requests
import yaml

from connector.agent.bundled import default_mappings_dir
from connector.emulator.server import EmulatorServer

ADMIN_PASSWORD = "Adm1n-pw-9f3e7c"
CLIENT_SECRET = "oauth-s3cret-41b2d8"
# Holds a store's daemon lock in a child process until killed.
HOLD_SCRIPT = """
import sys, time
from connector.agent.lock import DaemonLock
with DaemonLock(sys.argv[1]):
    print("held", flush=True)
    time.sleep(60)
"""
PASSWORD_ENV = "CSM_E2E_PASSWORD"
# The console script's entry point, without relying on PATH.
CSM_SYNC = [sys.executable, "-c", "from connector.cli import main; main()"]
SECRET_ENV = "CSM_E2E_CLIENT_SECRET"


def free_port() -> int:
    """A loopback port that was free a moment ago."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def start_emulator(accounts: int = 12) -> EmulatorServer:
    """An emulator whose credentials are recognisable in captured logs."""
    emu = EmulatorServer(
        accounts=accounts,
        seed=7,
        port=0,
        admin_password=ADMIN_PASSWORD,
        client_secret=CLIENT_SECRET,
    )
    return emu.start()


def write_config(
    directory: Path,
    emu_url: str,
    truth: dict,
    *,
    http_port: int,
    store_url: str | None = None,
    page_size: int = 1000,
    **daemon: Any,
) -> Path:
    """A daemon config with seconds-scale schedules and secrets from the env."""
    config = {
        "instance": {
            "url": emu_url,
            "auth": {
                "method": "oauth_password",
                "username": "admin",
                "password": f"${{{PASSWORD_ENV}}}",
                "client_id": "csm-sync",
                "client_secret": f"${{{SECRET_ENV}}}",
            },
            "timeout_seconds": 5,
            "page_size": page_size,
            "max_retries": 1,
            "backoff_cap_seconds": 1,
        },
        "store": {"url": store_url or f"sqlite:///{directory / 'csm.db'}"},
        "mappings": str(default_mappings_dir()),
        "sync": {"workers": 2, "lag_seconds": 0},
        "kpi": {"nps_metric": truth["nps_metric"], "csat_metric": truth["csat_metric"]},
        "daemon": {
            "sync_interval_seconds": 2,
            "reconcile_interval_seconds": 3600,
            "http": f"127.0.0.1:{http_port}",
            "max_staleness_seconds": 600,
            **daemon,
        },
        "logging": {"level": "INFO"},
    }
    path = directory / "config.yaml"
    path.write_text(yaml.safe_dump(config), encoding="utf-8")
    path.chmod(0o600)
    return path


def install_fields(config: Path) -> None:
    """The operator's one-time step before write-back: create the health fields."""
    done = subprocess.run(
        [*CSM_SYNC, "install-fields", "-c", str(config)],
        env=env(),
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert done.returncode == 0, done.stderr


def env() -> dict[str, str]:
    return {**os.environ, PASSWORD_ENV: ADMIN_PASSWORD, SECRET_ENV: CLIENT_SECRET}


class Agent:
    """One ``csm-sync run`` subprocess with its stderr in a file."""

    def __init__(self, config: Path, log_path: Path, *extra: str) -> None:
        self.log_path = log_path
        self._log = log_path.open("ab")
        self.proc = subprocess.Popen(
            [*CSM_SYNC, "run", "-c", str(config), *extra],
            stdout=self._log,
            stderr=subprocess.STDOUT,
            env=env(),
        )

    @property
    def pid(self) -> int:
        return self.proc.pid

    def terminate(self, timeout: float = 15) -> tuple[int, float]:
        """SIGTERM; return (exit status, seconds it took)."""
        started = time.monotonic()
        self.proc.send_signal(signal.SIGTERM)
        code = self.proc.wait(timeout=timeout)
        self._log.close()
        return code, time.monotonic() - started

    def kill(self) -> None:
        if self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait()
        self._log.close()

    def log_text(self) -> str:
        return self.log_path.read_text(encoding="utf-8", errors="replace")


def wait_for(
    predicate: Callable[[], Any],
    *,
    timeout: float = 60,
    what: str = "condition",
    agent: Agent | None = None,
) -> Any:
    """Poll ``predicate`` until it returns something truthy (or the agent dies)."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if agent is not None and agent.proc.poll() is not None:
            raise AssertionError(
                f"the daemon exited ({agent.proc.returncode}) before {what}:\n"
                + agent.log_text()[-3000:]
            )
        value = predicate()
        if value:
            return value
        time.sleep(0.25)
    raise AssertionError(f"timed out after {timeout} s waiting for {what}")


def healthz(port: int) -> tuple[int, dict] | None:
    try:
        response = requests.get(f"http://127.0.0.1:{port}/healthz", timeout=2)
    except requests.ConnectionError:
        return None
    return response.status_code, response.json()


def sync_runs(port: int, job: str = "sync") -> int:
    """Successful runs of a job so far, from /healthz (0 before it is up)."""
    answer = healthz(port)
    if not answer:
        return 0
    status = answer[1]["jobs"].get(job) or {}
    return int(status.get("runs", 0)) - int(status.get("failures", 0))


def query(db: Path, sql: str, *params: Any) -> list[tuple]:
    """Read the store beside the daemon (a second connection, WAL)."""
    conn = sqlite3.connect(db, timeout=10)
    try:
        return conn.execute(sql, params).fetchall()
    finally:
        conn.close()


def json_lines(text: str) -> list[dict]:
    """Every log line as JSON (fails on a line that is not)."""
    return [json.loads(line) for line in text.splitlines() if line.strip()]
