"""``csm-sync run`` end to end: a subprocess daemon against an emulated instance."""

from __future__ import annotations

import shutil
import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest
import requests
from prometheus_client.parser import text_string_to_metric_families

from connector.agent.bundled import default_mappings_dir
from connector.emulator.server import EmulatorServer

from .daemon_harness import (
    ADMIN_PASSWORD,
    CLIENT_SECRET,
    CSM_SYNC,
    Agent,
    env,
    free_port,
    healthz,
    install_fields,
    json_lines,
    query,
    start_emulator,
    sync_runs,
    wait_for,
    write_config,
)


@pytest.fixture
def emu() -> Iterator[EmulatorServer]:
    server = start_emulator(accounts=5)
    yield server
    server.stop()


def _metrics(port: int) -> dict[tuple[str, tuple], float]:
    text = requests.get(f"http://127.0.0.1:{port}/metrics", timeout=5).text
    return {
        (s.name, tuple(sorted(s.labels.items()))): s.value
        for family in text_string_to_metric_families(text)
        for s in family.samples
    }


def _case(db: Path, sys_id: str) -> dict | None:
    """The stored case (priority, short description), or None."""
    rows = query(db, 'SELECT priority FROM "case" WHERE sys_id = ?', sys_id)
    return {"priority": rows[0][0]} if rows else None


def _start(argv: list[str]) -> subprocess.Popen[str]:
    return subprocess.Popen(
        argv, env=env(), stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True
    )


def _finish(proc: subprocess.Popen[str]) -> str:
    """Wait for a one-shot command; return its stderr."""
    _, err = proc.communicate(timeout=60)
    return err


def test_daemon_syncs_scores_serves_and_stops_cleanly(
    emu: EmulatorServer, tmp_path: Path
) -> None:
    port = free_port()
    config = write_config(tmp_path, emu.url, emu.instance.truth, http_port=port)
    db = tmp_path / "csm.db"
    install_fields(config)
    agent = Agent(config, tmp_path / "run1.log", "--log-format", "json")
    try:
        # First start: a backfill of the empty store, then KPIs and write-back.
        wait_for(
            lambda: sync_runs(port) >= 1, timeout=90, what="the first sync", agent=agent
        )
        wait_for(
            lambda: all(
                r.get("u_health_score") for r in emu.instance.rows("customer_account")
            ),
            timeout=60,
            what="health scores on the emulator's accounts",
            agent=agent,
        )
        wait_for(lambda: sync_runs(port, job="writeback") >= 1, what="a write-back")
        accounts = query(db, "SELECT count(*) FROM account")[0][0]
        status, body = healthz(port)
        metrics = _metrics(port)

        # A second daemon on the same store is refused and told who holds it;
        # a one-shot writer beside the daemon waits its turn (C19).
        second = _start([*CSM_SYNC, "run", "-c", str(config)])
        one_shots = [
            _start([*CSM_SYNC, command, "-c", str(config)])
            for command in ("kpis", "sync", "status")
        ]
        second_err = _finish(second)
        one_shot_errs = [_finish(proc) for proc in one_shots]

        # Changes on the instance reach the store on the next ticks.
        case = emu.instance.rows("sn_customerservice_case")[0]
        emu.instance.update(
            "sn_customerservice_case", case["sys_id"], {"priority": "1"}
        )
        new = emu.instance.insert(
            "sn_customerservice_case",
            {"short_description": "Printer on fire", "account": case["account"]},
        )
        wait_for(
            lambda: (
                _case(db, new["sys_id"])
                and _case(db, case["sys_id"]) == {"priority": 1}
            ),
            timeout=30,
            what="the inserted and updated case in the store",
            agent=agent,
        )
        code, seconds = agent.terminate()
    finally:
        agent.kill()

    assert accounts == 5
    assert status == 200 and body["status"] == "ok"
    assert body["jobs"]["kpi"]["last_success"] is not None
    assert body["jobs"]["writeback"]["failures"] == 0
    rows = metrics[
        (
            "csm_sync_rows_synced_total",
            (("outcome", "inserted"), ("table", "customer_account")),
        )
    ]
    assert rows == 5
    assert metrics[("csm_sync_last_success_timestamp_seconds", (("job", "sync"),))] > 0
    assert metrics[("csm_sync_instance_requests_total", (("status", "200"),))] > 0
    assert metrics[("csm_sync_writebacks_total", (("outcome", "written"),))] > 0
    assert ("csm_sync_lag_seconds", (("table", "customer_account"),)) in metrics
    assert second.returncode == 1
    assert f"pid {agent.pid}" in second_err
    assert [p.returncode for p in one_shots] == [0, 0, 0], one_shot_errs
    assert not any("database is locked" in err for err in one_shot_errs)
    assert code == 0
    assert seconds < 10

    log = agent.log_text()
    assert ADMIN_PASSWORD not in log and CLIENT_SECRET not in log
    lines = json_lines(log)
    run_lines = [line for line in lines if line["logger"].startswith("connector.sync")]
    assert run_lines and all(line["run_id"] != "-" for line in run_lines)
    assert any(line["table"] != "-" for line in run_lines)
    writebacks = [
        line for line in lines if line["logger"].startswith("connector.writeback")
    ]
    assert writebacks and all(
        line["table"] == "customer_account" for line in writebacks
    )
    assert any("received SIGTERM" in line["message"] for line in lines)


def _count(db: Path, sql: str, *params: object) -> int:
    return query(db, sql, *params)[0][0]


CASE_CURSOR = (
    "SELECT cursor_ts FROM sync_state WHERE mapping = 'sn_customerservice_case'"
)
BACKFILL_RUNS = "SELECT count(*) FROM sync_run WHERE mode = 'backfill'"


def test_restart_resumes_from_the_cursor(emu: EmulatorServer, tmp_path: Path) -> None:
    port = free_port()
    config = write_config(tmp_path, emu.url, emu.instance.truth, http_port=port)
    db = tmp_path / "csm.db"
    first = Agent(config, tmp_path / "run1.log")
    try:
        wait_for(
            lambda: sync_runs(port) >= 1, timeout=90, what="the backfill", agent=first
        )
        code, _ = first.terminate()
    finally:
        first.kill()
    cases_before = _count(db, 'SELECT count(*) FROM "case"')
    backfills_before = _count(db, BACKFILL_RUNS)
    cursor_before = query(db, CASE_CURSOR)[0][0]
    account = emu.instance.rows("customer_account")[0]["sys_id"]
    new = emu.instance.insert(
        "sn_customerservice_case",
        {"short_description": "After restart", "account": account},
    )

    second = Agent(config, tmp_path / "run2.log")
    try:
        wait_for(
            lambda: _case(db, new["sys_id"]),
            timeout=60,
            what="the case created while the daemon was down",
            agent=second,
        )
        second.terminate()
    finally:
        second.kill()

    assert code == 0
    assert _count(db, 'SELECT count(*) FROM "case"') == cases_before + 1
    assert _count(db, 'SELECT count(DISTINCT sys_id) FROM "case"') == cases_before + 1
    # The restart continued incrementally from the cursor; no second backfill.
    assert backfills_before > 0
    assert _count(db, BACKFILL_RUNS) == backfills_before
    assert _count(db, "SELECT count(*) FROM sync_run WHERE mode = 'incremental'") > 0
    assert query(db, CASE_CURSOR)[0][0] > cursor_before


def test_unreachable_instance_turns_health_red_then_stops_with_status_1(
    tmp_path: Path,
) -> None:
    port = free_port()
    truth = {"nps_metric": None, "csat_metric": None}
    dead = f"http://127.0.0.1:{free_port()}"
    config = write_config(
        tmp_path,
        dead,
        truth,
        http_port=port,
        sync_interval_seconds=1,
        max_failures=4,
        failure_window_seconds=60,
    )
    agent = Agent(config, tmp_path / "run.log")
    try:
        answer = wait_for(
            lambda: (h := healthz(port)) and h[0] == 503 and h,
            timeout=30,
            what="/healthz turning 503",
            agent=agent,
        )
        code = agent.proc.wait(timeout=30)
    finally:
        agent.kill()

    log = agent.log_text()
    assert "could not reach the instance" in answer[1]["reason"]
    assert code == 1
    assert "will retry on the next tick (1 of 4 failures allowed within 60 s)" in log
    assert "4 failures within 60 s (daemon.max_failures 4)" in log
    assert "Traceback" not in log


def test_sigterm_mid_backfill_then_restart_loses_nothing(tmp_path: Path) -> None:
    emu = start_emulator(accounts=15)
    try:
        port = free_port()
        # Small pages: the backfill is still running when the signal lands.
        config = write_config(
            tmp_path, emu.url, emu.instance.truth, http_port=port, page_size=10
        )
        db = tmp_path / "csm.db"
        first = Agent(config, tmp_path / "run1.log")
        try:
            wait_for(
                lambda: "mode=backfill outcome=ok" in first.log_text(),
                timeout=60,
                what="the first backfilled table",
                agent=first,
            )
            code, seconds = first.terminate()
        finally:
            first.kill()
        stopped_log = first.log_text()
        partial = _count(db, 'SELECT count(*) FROM "case"')

        second = Agent(config, tmp_path / "run2.log")
        try:
            wait_for(
                lambda: sync_runs(port) >= 1,
                timeout=120,
                what="the resumed backfill",
                agent=second,
            )
            second.terminate()
        finally:
            second.kill()
        source = {
            table: len(emu.instance.rows(table))
            for table in ("sn_customerservice_case", "interaction", "customer_account")
        }
    finally:
        emu.stop()

    assert code == 0 and seconds < 10
    assert "received SIGTERM" in stopped_log
    assert partial < source["sn_customerservice_case"]
    assert "Backfilling" in second.log_text()
    assert (
        _count(db, 'SELECT count(*) FROM "case"') == source["sn_customerservice_case"]
    )
    assert _count(db, "SELECT count(*) FROM interaction") == source["interaction"]
    assert _count(db, "SELECT count(*) FROM account") == source["customer_account"]


@pytest.mark.postgres
def test_daemon_on_postgresql_holds_the_advisory_lock(
    emu: EmulatorServer, tmp_path: Path, fresh_pg_url: str
) -> None:
    port = free_port()
    config = write_config(
        tmp_path, emu.url, emu.instance.truth, http_port=port, store_url=fresh_pg_url
    )
    agent = Agent(config, tmp_path / "run.log")
    try:
        wait_for(lambda: sync_runs(port) >= 1, timeout=90, what="a sync", agent=agent)
        second_err = _finish(_start([*CSM_SYNC, "run", "-c", str(config)]))
        code, _ = agent.terminate()
    finally:
        agent.kill()

    assert f"another csm-sync daemon (pid {agent.pid} on" in second_err
    assert code == 0


def test_public_endpoint_address_is_a_config_error(tmp_path: Path) -> None:
    truth = {"nps_metric": None, "csat_metric": None}
    config = write_config(tmp_path, "http://127.0.0.1:9", truth, http_port=9464)
    config.write_text(config.read_text().replace("127.0.0.1:9464", "0.0.0.0:9464"))

    done = subprocess.run(
        [*CSM_SYNC, "run", "-c", str(config)],
        env=env(),
        capture_output=True,
        text=True,
        timeout=60,
    )

    assert done.returncode == 2
    assert f"{config}: daemon.http: '0.0.0.0' is not a loopback address" in done.stderr
    assert "daemon.http_allow_remote: true" in done.stderr
    assert "Traceback" not in done.stderr
    assert not (tmp_path / "csm.db.daemon.lock").exists()


def test_a_broken_mapping_is_refused_at_start(tmp_path: Path) -> None:
    truth = {"nps_metric": None, "csat_metric": None}
    mappings = tmp_path / "mappings"
    shutil.copytree(default_mappings_dir(), mappings)
    broken = mappings / "customer_account.yaml"
    broken.write_text(broken.read_text() + "colour: blue\n")
    config = write_config(tmp_path, "http://127.0.0.1:9", truth, http_port=free_port())
    text = config.read_text().replace(str(default_mappings_dir()), str(mappings))
    config.write_text(text)

    done = subprocess.run(
        [*CSM_SYNC, "run", "-c", str(config)],
        env=env(),
        capture_output=True,
        text=True,
        timeout=60,
    )

    assert done.returncode == 2
    assert f"{broken}: colour" in done.stderr
    assert "Traceback" not in done.stderr
