"""Secrets stay secret: nowhere in output, logs, reports, exceptions or the store.

One full one-shot run with recognisable secrets (backfill, kpis, report,
install-fields, writeback, status --format json, sync), then failed runs (a
wrong password, a wrong client secret, with ``--debug`` tracebacks), and every
byte that came out is searched: stdout/stderr, the report HTML, every text
column of every table and the raw SQLite files.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from pathlib import Path

import pytest
from reliability import kit

from connector.emulator.server import EmulatorServer

PASSWORD = "S3cr3t-Canary-91f2"
CLIENT_SECRET = "Canary-Client-77ab"
WRONG_PASSWORD = "Wr0ng-Canary-55cd"
CANARIES = (PASSWORD, CLIENT_SECRET, WRONG_PASSWORD)


@pytest.fixture(scope="module")
def canary_emulator() -> Iterator[EmulatorServer]:
    with EmulatorServer(
        accounts=4, seed=41, admin_password=PASSWORD, client_secret=CLIENT_SECRET
    ) as emu:
        yield emu


def oauth_config(
    emu: EmulatorServer, tmp_path: Path, *, name: str = "config.yaml"
) -> Path:
    data = kit.config_data(
        emu,
        f"sqlite:///{tmp_path / 'store.db'}",
        auth={
            "method": "oauth_password",
            "username": emu.admin_user,
            "password": "${SN_PASSWORD}",
            "client_id": emu.client_id,
            "client_secret": "${SN_CLIENT_SECRET}",
        },
        instance={"max_retries": 1, "page_size": 100},
    )
    return kit.write_config(tmp_path / name, data)


def leaks(text: str | bytes) -> list[str]:
    """The canaries found in ``text`` (also URL- and JSON-escaped forms)."""
    if isinstance(text, bytes):
        text = text.decode("utf-8", errors="replace")
    return [c for c in CANARIES if c in text or c.replace("-", "%2D") in text]


def test_no_secret_anywhere_after_a_full_run_and_failed_runs(
    canary_emulator: EmulatorServer, tmp_path: Path
) -> None:
    emu = canary_emulator
    config = oauth_config(emu, tmp_path)
    env = kit.cli_env(emu, SN_CLIENT_SECRET=CLIENT_SECRET)
    assert env["SN_PASSWORD"] == PASSWORD
    report = tmp_path / "report.html"
    steps = [
        ["backfill"],
        ["kpis", "--format", "json"],
        ["report", "-o", str(report)],
        ["install-fields"],
        ["writeback"],
        ["sync"],
        ["status", "--format", "json"],
    ]
    outputs: list[str] = []
    for args in steps:
        done = kit.run_cli(args, config, env)
        outputs += [done.stdout, done.stderr]
        assert done.returncode == 0, (args, done.stderr[-2000:])
    assert report.stat().st_size > 1000

    wrong = [
        (dict(env, SN_PASSWORD=WRONG_PASSWORD), ["sync"]),
        (dict(env, SN_CLIENT_SECRET=WRONG_PASSWORD), ["sync"]),
        (dict(env, SN_PASSWORD=WRONG_PASSWORD), ["--debug", "backfill"]),
        (dict(env, SN_CLIENT_SECRET=WRONG_PASSWORD), ["--debug", "writeback"]),
    ]
    for bad_env, args in wrong:
        done = kit.run_cli(args, config, bad_env)
        outputs += [done.stdout, done.stderr]
        assert done.returncode != 0, args
        assert re.search(r"auth|401|credential|token", done.stderr, re.I), done.stderr

    found = {
        "stdout/stderr": leaks("\n".join(outputs)),
        "report": leaks(report.read_bytes()),
        "store text": leaks(kit.store_text(f"sqlite:///{tmp_path / 'store.db'}")),
    }
    for path in tmp_path.glob("store.db*"):
        found[path.name] = leaks(path.read_bytes())
    assert {k: v for k, v in found.items() if v} == {}
    # The run really was authenticated with those secrets (not vacuous).
    assert any(r.get("u_health_score") for r in emu.instance.rows("customer_account"))


def test_a_world_readable_config_with_a_literal_password_warns(
    canary_emulator: EmulatorServer, tmp_path: Path
) -> None:
    emu = canary_emulator
    literal = kit.config_data(emu, f"sqlite:///{tmp_path / 's.db'}")
    literal["instance"]["auth"]["password"] = PASSWORD
    open_literal = kit.write_config(tmp_path / "open.yaml", literal, mode=0o644)
    private_literal = kit.write_config(tmp_path / "private.yaml", literal, mode=0o600)
    open_reference = kit.write_config(
        tmp_path / "ref.yaml",
        kit.config_data(emu, f"sqlite:///{tmp_path / 's.db'}"),
        mode=0o644,
    )
    env = kit.cli_env(emu)

    warned = kit.run_cli(["status"], open_literal, env)
    quiet = [kit.run_cli(["status"], p, env) for p in (private_literal, open_reference)]

    assert "readable by other users" in warned.stderr
    assert "chmod 600" in warned.stderr
    assert str(open_literal) in warned.stderr
    assert not leaks(warned.stderr + warned.stdout)
    for done in quiet:
        assert "readable by other users" not in done.stderr
