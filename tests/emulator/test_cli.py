"""``csm-sync emulator``: the real CLI, as a subprocess and through CliRunner."""

from __future__ import annotations

import json
import shutil
import signal
import socket
import subprocess
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import requests
from typer.testing import CliRunner

from connector.cli import app

ADMIN = ("admin", "admin")


@contextmanager
def running(*args: str) -> Iterator[str]:
    """Start the emulator command; yield its URL; stop it with SIGTERM."""
    script = Path(sys.executable).with_name("csm-sync")
    if not script.exists():
        script = Path(shutil.which("csm-sync") or "csm-sync")
    command = [str(script), "emulator", "--port", "0", *args]
    process = subprocess.Popen(command, stdout=subprocess.PIPE, text=True)
    try:
        assert process.stdout is not None
        first = process.stdout.readline()
        assert first.startswith("csm-sync emulator listening on "), first
        yield first.split(" on ", 1)[1].strip()
    finally:
        process.send_signal(signal.SIGTERM)
        process.wait(timeout=20)


def test_refuses_a_non_loopback_host() -> None:
    result = CliRunner().invoke(app, ["emulator", "--host", "10.1.2.3"])

    assert result.exit_code == 2
    assert "--allow-remote" in result.output
    assert "Traceback" not in result.output


def test_bad_as_of_date_is_a_usage_error() -> None:
    result = CliRunner().invoke(app, ["emulator", "--as-of", "yesterday"])

    assert result.exit_code == 2
    assert "YYYY-MM-DD" in result.output


def test_bad_user_time_zone_is_a_usage_error() -> None:
    result = CliRunner().invoke(app, ["emulator", "--user-tz", "admin=Mars/Olympus"])

    assert result.exit_code == 2
    assert "USER=Area/City" in result.output


def test_db_in_a_missing_folder_is_a_usage_error(tmp_path: Path) -> None:
    missing = tmp_path / "nope" / "instance.db"

    result = CliRunner().invoke(app, ["emulator", "--db", str(missing)])

    assert result.exit_code == 2
    assert "does not exist" in result.output


def test_serves_writes_truth_and_reuses_the_db(tmp_path: Path) -> None:
    db, truth = tmp_path / "instance.db", tmp_path / "truth.json"

    with running(
        "--accounts", "2", "--seed", "3", "--db", str(db), "--truth", str(truth)
    ) as url:
        accounts = requests.get(
            f"{url}/api/now/table/customer_account", auth=ADMIN, timeout=10
        )
        requests.post(
            f"{url}/api/now/table/sys_dictionary",
            json={"name": "customer_account", "element": "u_health_score"},
            auth=ADMIN,
            timeout=10,
        )
    first_ids = sorted(r["sys_id"] for r in accounts.json()["result"])

    with running("--accounts", "50", "--db", str(db), "--rate-limit", "100") as url:
        again = requests.get(
            f"{url}/api/now/table/customer_account", auth=ADMIN, timeout=10
        )
        patched = requests.patch(
            f"{url}/api/now/table/customer_account/{first_ids[0]}",
            json={"u_health_score": "81"},
            auth=ADMIN,
            timeout=10,
        )

    assert accounts.headers["X-Total-Count"] == "2"
    assert json.loads(truth.read_text())["accounts"] == 2
    assert sorted(r["sys_id"] for r in again.json()["result"]) == first_ids
    assert again.headers["X-RateLimit-Limit"] == "100"
    assert patched.json()["result"]["u_health_score"] == "81"


def test_fault_and_credential_flags_reach_the_server() -> None:
    args = ("--accounts", "0", "--rate-503", "1", "--integration-password", "s3")
    with running(*args) as url:
        response = requests.get(
            f"{url}/api/now/table/sn_customerservice_case", auth=ADMIN, timeout=10
        )
        old = requests.post(
            f"{url}/api/now/v1/batch", auth=("integration", "integration"), timeout=10
        )
        new = requests.post(
            f"{url}/api/now/v1/batch",
            json={"batch_request_id": "1", "rest_requests": []},
            auth=("integration", "s3"),
            timeout=10,
        )

    assert response.status_code == 503
    assert (old.status_code, new.status_code) == (401, 200)


def test_a_busy_port_is_an_error_naming_the_port_and_the_option() -> None:
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]

        result = CliRunner().invoke(
            app, ["emulator", "--port", str(port), "--accounts", "0"]
        )

    assert result.exit_code == 2
    assert result.stderr.startswith(f"error: port {port} is in use on 127.0.0.1")
    assert "pick another with --port" in result.stderr
    assert "Traceback" not in result.output
