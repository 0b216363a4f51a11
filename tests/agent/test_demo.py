"""``csm-sync demo``: the whole job in one command against a loopback emulator."""

from __future__ import annotations

import re
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import requests
from typer.testing import CliRunner

from connector.cli import app

from .daemon_harness import CSM_SYNC, HOLD_SCRIPT


def _demo(tmp_path: Path, *args: str) -> tuple[subprocess.CompletedProcess[str], float]:
    started = time.monotonic()
    done = subprocess.run(
        [*CSM_SYNC, "demo", "--dir", str(tmp_path / "demo"), *args],
        capture_output=True,
        text=True,
        timeout=240,
        cwd=tmp_path,
    )
    return done, time.monotonic() - started


def test_demo_runs_the_whole_job(tmp_path: Path) -> None:
    done, _ = _demo(tmp_path, "--accounts", "30")

    assert done.returncode == 0, done.stderr
    out = done.stdout
    assert re.search(r"Backfill done: \d+ tables, [\d,]+ rows\n", out)
    assert "KPIs as of" in out and "NPS" in out and "lowest health first" in out
    assert "30 of 30 accounts, 0 failed" in out
    report = tmp_path / "demo" / "report.html"
    assert report.stat().st_size > 10_000
    assert f"report  {report}" in out
    assert "/customer_account.do?sys_id=" in out
    config = (tmp_path / "demo" / "config.yaml").read_text()
    assert "${CSM_DEMO_PASSWORD}" in config
    assert (tmp_path / "demo" / "mappings" / "customer_account.yaml").is_file()
    assert "Traceback" not in done.stderr


def test_demo_runs_again_in_the_same_folder(tmp_path: Path) -> None:
    first, _ = _demo(tmp_path, "--accounts", "5")
    edited = tmp_path / "demo" / "mappings" / "customer_account.yaml"
    edited.write_text(edited.read_text() + "\n# edited by the user\n")

    again, _ = _demo(tmp_path, "--accounts", "5")

    assert first.returncode == 0 and again.returncode == 0, again.stderr
    # The user's mapping edits survive; the store starts fresh with the emulator.
    assert "# edited by the user" in edited.read_text()
    assert "5 of 5 accounts, 0 failed" in again.stdout


@pytest.mark.slow
def test_default_demo_ends_well_under_two_minutes(tmp_path: Path) -> None:
    done, seconds = _demo(tmp_path)

    assert done.returncode == 0, done.stderr
    assert "200 of 200 accounts" in done.stdout
    assert seconds < 120


def test_demo_serve_shows_the_score_on_the_account_form(tmp_path: Path) -> None:
    demo = subprocess.Popen(
        [*CSM_SYNC, "demo", "--accounts", "6", "--dir", str(tmp_path), "--serve"],
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    try:
        assert demo.stdout is not None
        lines = []
        for line in demo.stdout:
            lines.append(line)
            if "Ctrl-C stops it" in line:
                break
        url = re.search(r"http://\S+/customer_account\.do\?sys_id=\w+", "".join(lines))
        assert url, "".join(lines)
        page = requests.get(url.group(0), auth=("admin", "admin"), timeout=10)
        demo.send_signal(signal.SIGTERM)
        code = demo.wait(timeout=20)
    finally:
        if demo.poll() is None:
            demo.kill()
            demo.wait()

    assert page.status_code == 200
    assert re.search(r'u_health_score">\d+<', page.text)
    assert code == 0


def test_demo_leaves_a_store_alone_while_a_daemon_holds_it(tmp_path: Path) -> None:
    demo_dir = tmp_path / "demo"
    demo_dir.mkdir()
    (demo_dir / "csm.db").write_bytes(b"a daemon's store")
    holder = subprocess.Popen(
        [sys.executable, "-c", HOLD_SCRIPT, f"sqlite:///{demo_dir / 'csm.db'}"],
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        assert holder.stdout is not None and holder.stdout.readline() == "held\n"
        done, _ = _demo(tmp_path, "--accounts", "5")
    finally:
        holder.kill()
        holder.wait()

    assert done.returncode == 1
    assert f"pid {holder.pid}" in done.stderr
    assert (demo_dir / "csm.db").read_bytes() == b"a daemon's store"


def test_help_says_what_the_demo_serves_and_writes() -> None:
    result = CliRunner().invoke(app, ["demo", "--help"], env={"COLUMNS": "200"})

    text = " ".join(result.stdout.split())
    assert result.exit_code == 0
    assert "no network" not in text
    assert "Serves the emulator over plain HTTP on 127.0.0.1" in text
    assert "writes config.yaml, the mappings, the store and report.html" in text
