"""The sync commands as a user runs them: exit codes, messages, no tracebacks."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

from connector.emulator.server import EmulatorServer

from .helpers import SHIPPED

CSM_SYNC = str(Path(sys.executable).parent / "csm-sync")


def write_config(
    folder: Path, emu: EmulatorServer, mappings: Path, extra: str = ""
) -> Path:
    path = folder / "config.yaml"
    path.write_text(
        f"instance:\n  url: {emu.url}\n  auth:\n    method: basic\n"
        f"    username: {emu.admin_user}\n    password: ${{SN_PASSWORD}}\n"
        f"store:\n  url: sqlite:///{folder / 'csm.db'}\n"
        f"mappings: {mappings}\nsync:\n  lag_seconds: 0\n{extra}",
        encoding="utf-8",
    )
    path.chmod(0o600)
    return path


def csm_sync(emu: EmulatorServer, *args: str) -> subprocess.CompletedProcess[str]:
    env = dict(os.environ, SN_PASSWORD=emu.admin_password)
    return subprocess.run(
        [CSM_SYNC, *args], capture_output=True, text=True, env=env, timeout=120
    )


def copy_mappings(folder: Path, names: list[str]) -> Path:
    target = folder / "mappings"
    target.mkdir()
    for name in names:
        shutil.copy(SHIPPED / f"{name}.yaml", target)
    return target


def test_c09_unknown_field_stops_check_and_sync_naming_file_field_and_table(
    tmp_path: Path, emulator: EmulatorServer
) -> None:
    mappings = copy_mappings(
        tmp_path, ["customer_account", "sn_pss_core_entitlement_usage"]
    )
    account = mappings / "customer_account.yaml"
    account.write_text(
        account.read_text().replace("country: country", "country: u_countree")
        + "filter: sys_update_on>=2026-03-01 00:00:00\n"
    )
    usage = mappings / "sn_pss_core_entitlement_usage.yaml"
    usage.write_text(
        usage.read_text().replace("entitlement.account", "entitlement.acount")
    )
    config = write_config(tmp_path, emulator, mappings)

    check = csm_sync(emulator, "check", "-c", str(config))
    sync = csm_sync(emulator, "sync", "-c", str(config))

    for result in (check, sync):
        assert result.returncode == 2, result.stderr
        assert "Traceback" not in result.stderr
        assert "3 problems" in result.stderr
        assert (
            f"{account}: fields.country.field: field 'u_countree' does not exist "
            "on table 'customer_account'" in result.stderr
        )
        assert (
            f"{account}: filter: field 'sys_update_on' does not exist" in result.stderr
        )
        assert (
            f"{usage}: fields.account.field: field 'acount' does not exist on table "
            "'service_entitlement'" in result.stderr
        )
    assert not (tmp_path / "csm.db").exists()


def test_bad_mapping_and_config_files_list_every_problem_exit_2(
    tmp_path: Path, emulator: EmulatorServer
) -> None:
    mappings = copy_mappings(tmp_path, ["customer_account"])
    (mappings / "broken.yaml").write_text(
        "source: sys_user\ntarget: users\nfields:\n  name: {field: name, type: text}\n"
    )
    config = write_config(
        tmp_path,
        emulator,
        mappings,
        extra="  workers: 0\n  bogus: 1\nstore:\n  url: mysql://x\n",
    )

    bad_config = csm_sync(emulator, "status", "-c", str(config))
    config = write_config(tmp_path, emulator, mappings)
    bad_mapping = csm_sync(emulator, "backfill", "-c", str(config))
    usage = csm_sync(emulator, "backfill", "-c", str(config), "--since", "yesterday")

    assert bad_config.returncode == 2
    assert "Traceback" not in bad_config.stderr
    assert "not valid YAML" in bad_config.stderr or "sync.workers" in bad_config.stderr
    assert bad_mapping.returncode == 2
    assert "Traceback" not in bad_mapping.stderr
    assert "broken.yaml: fields.name.type:" in bad_mapping.stderr
    assert "broken.yaml: target: unknown table 'users'" in bad_mapping.stderr

    assert usage.returncode == 2
    assert "--since 'yesterday' is not an ISO date" in usage.stderr


def test_config_problems_are_all_listed(
    tmp_path: Path, emulator: EmulatorServer
) -> None:
    config = tmp_path / "config.yaml"
    config.write_text(
        "instance:\n  url: ftp://x\n  auth: {method: basic}\n"
        "store: {url: 'mysql://x'}\nsync: {workers: 0, bogus: 1}\n"
    )

    result = csm_sync(emulator, "sync", "-c", str(config))

    assert result.returncode == 2
    assert "Traceback" not in result.stderr
    for key in (
        "instance.url",
        "instance.auth",
        "store.url",
        "sync.workers",
        "sync.bogus",
    ):
        assert key in result.stderr


def test_backfill_sync_status_round_trip(
    tmp_path: Path, emulator: EmulatorServer
) -> None:
    mappings = copy_mappings(tmp_path, ["customer_account", "sys_choice"])
    config = write_config(tmp_path, emulator, mappings)

    check = csm_sync(emulator, "check", "-c", str(config))
    backfill = csm_sync(emulator, "backfill", "-c", str(config), "--workers", "2")
    sync = csm_sync(emulator, "sync", "-c", str(config))
    status = csm_sync(emulator, "status", "-c", str(config), "--format", "json")

    assert check.returncode == 0, check.stderr
    assert "2 mappings match the instance's dictionary" in check.stdout
    assert backfill.returncode == 0, backfill.stderr
    assert (
        "Synced 'customer_account' mode=backfill outcome=ok rows in=5"
        in backfill.stderr
    )
    assert sync.returncode == 0, sync.stderr
    assert (
        "Synced 'customer_account' mode=incremental outcome=ok rows in=0" in sync.stderr
    )
    lines = {row["mapping"]: row for row in json.loads(status.stdout)}
    accounts = emulator.instance.count("customer_account")
    assert lines["customer_account"]["rows"] == accounts
    assert lines["customer_account"]["last_run_outcome"] == "ok"
    assert lines["sys_choice"]["rows"] == emulator.instance.count("sys_choice")


def test_status_lag_is_how_far_the_store_trails_not_the_newest_rows_age(
    tmp_path: Path, emulator: EmulatorServer
) -> None:
    mappings = copy_mappings(tmp_path, ["customer_account"])
    config = write_config(tmp_path, emulator, mappings)
    rows = emulator.instance.rows("customer_account")
    newest = max(r["sys_updated_on"] for r in rows)
    until = newest.replace(" ", "T") + "Z"

    backfill = csm_sync(emulator, "backfill", "-c", str(config), "--until", until)
    sync = csm_sync(emulator, "sync", "-c", str(config))
    status = csm_sync(emulator, "status", "-c", str(config), "--format", "json")

    assert backfill.returncode == 0, backfill.stderr
    assert sync.returncode == 0, sync.stderr
    (line,) = json.loads(status.stdout)
    # The sync ended on the newest row (months old), yet the table is current.
    assert line["cursor"] == newest
    assert 0 <= line["lag_seconds"] < 120


def test_status_runs_without_the_instance_secret_and_sync_reports_it_once(
    tmp_path: Path, emulator: EmulatorServer
) -> None:
    mappings = copy_mappings(tmp_path, ["customer_account"])
    config = write_config(tmp_path, emulator, mappings)
    backfill = csm_sync(emulator, "backfill", "-c", str(config))
    no_secret = {k: v for k, v in os.environ.items() if k != "SN_PASSWORD"}

    def run(*args: str) -> subprocess.CompletedProcess[str]:
        argv = [CSM_SYNC, *args, "-c", str(config)]
        return subprocess.run(
            argv, capture_output=True, text=True, env=no_secret, timeout=120
        )

    status = run("status", "--format", "json")
    sync = run("sync")

    assert backfill.returncode == 0, backfill.stderr
    assert status.returncode == 0, status.stderr
    (line,) = json.loads(status.stdout)
    assert line["rows"] == emulator.instance.count("customer_account")
    assert sync.returncode == 2
    assert "invalid configuration (1 problem)" in sync.stderr
    assert (
        "instance.auth.password: environment variable SN_PASSWORD is not set"
        in sync.stderr
    )
    assert "needs password" not in sync.stderr


def test_a_config_copied_away_from_its_mappings_says_where_the_shipped_ones_are(
    tmp_path: Path, emulator: EmulatorServer
) -> None:
    config = tmp_path / "config.yaml"
    config.write_text(
        f"instance:\n  url: {emulator.url}\n  auth:\n    method: basic\n"
        f"    username: {emulator.admin_user}\n    password: ${{SN_PASSWORD}}\n"
    )

    result = csm_sync(emulator, "check", "-c", str(config))

    assert result.returncode == 2
    assert f"{tmp_path / 'mappings'}: mappings folder not found" in result.stderr
    assert "point 'mappings:' in the config at a folder" in result.stderr
    shipped = Path(result.stderr.split("shipped with csm-sync: ")[1].split()[0])
    assert (shipped / "customer_account.yaml").is_file()
