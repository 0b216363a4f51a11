"""Crash consistency: SIGKILL ``csm-sync`` at seeded random points, restart, compare.

Each scenario starts an emulator with latency faults (so a run lasts seconds),
kills the command under test ``kills`` times and then lets it finish; after every
kill the SQLite file must pass ``integrity_check`` and after the final run the
store must equal the instance (:func:`kit.store_mismatches`). The kill moment is
measured from the child's first write to the store (so import time does not eat
the random delay), or, for the power-cut scenario, lands on a write itself.

CI runs a handful of kills per mode (``test_crash.py``); the long form runs
``python bench/reliability.py crash --kills 50``.
"""

from __future__ import annotations

import random
import signal
import subprocess
import sys
import time
from collections import defaultdict
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from connector.config import Settings, settings_from_dict
from connector.emulator.server import EmulatorServer

from . import kit

MUTATED_TABLES = ["sn_customerservice_case", "interaction"]
HEALTH_FIELD_SKIP = {"u_health_updated"}  # a new time stamp per run, by design
HEALTH_FIELDS = {"u_health_score", "u_health_band", "u_health_trend", "u_nps"}
HEALTH_FIELDS |= {"u_health_reason", "u_health_updated"}


@dataclass
class CrashReport:
    """What one scenario did and found; ``problems`` empty means it held."""

    mode: str
    kills: int = 0
    finished_before_kill: int = 0
    cycles: int = 0
    delays: list[float] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)
    problems: list[str] = field(default_factory=list)

    def line(self) -> str:
        verdict = "held" if not self.problems else f"{len(self.problems)} problems"
        return (
            f"{self.mode}: {self.kills} kills in {self.cycles} cycles "
            f"({self.finished_before_kill} runs ended before their kill point): "
            f"{verdict}"
        )


# --- killing ----------------------------------------------------------------------


def _signature(db: Path) -> tuple[int, ...]:
    parts: list[int] = []
    for path in (db, db.with_name(db.name + "-wal")):
        try:
            stat = path.stat()
            parts += [stat.st_size, stat.st_mtime_ns]
        except FileNotFoundError:
            parts += [-1, -1]
    return tuple(parts)


def wait_first_write(
    process: subprocess.Popen[bytes], db: Path, timeout: float = 60
) -> bool:
    """Block until the child changes the store files; False if it exited first."""
    before = _signature(db)
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if process.poll() is not None:
            return False
        if _signature(db) != before:
            return True
        time.sleep(0.005)
    return process.poll() is None


def kill_after(
    process: subprocess.Popen[bytes], db: Path, delay: float
) -> tuple[bool, float]:
    """SIGKILL ``delay`` s after the child's first store write.

    Returns whether it was killed and how long it ran after that first write.
    """
    if not wait_first_write(process, db):
        process.wait(timeout=120)
        return False, 0.0
    started = time.monotonic()
    deadline = started + delay
    while time.monotonic() < deadline:
        if process.poll() is not None:
            return False, time.monotonic() - started
        time.sleep(0.002)
    return _kill(process), time.monotonic() - started


def kill_on_write(
    process: subprocess.Popen[bytes], db: Path, nth: int
) -> tuple[bool, int]:
    """SIGKILL the moment the ``nth`` write burst to the store files is seen.

    Returns whether it was killed and how many bursts were seen.
    """
    if not wait_first_write(process, db):
        process.wait(timeout=120)
        return False, 0
    seen, last = 0, _signature(db)
    while process.poll() is None:
        now = _signature(db)
        if now != last:
            seen, last = seen + 1, now
            if seen >= nth:
                return _kill(process), seen
    return False, seen


class KillPoints:
    """Seeded kill points that shrink to what runs really take on this machine.

    A run that ends before its kill point proves nothing, so the delay window
    (or the write-burst count) is cut to what that run showed.
    """

    def __init__(
        self, rng: random.Random, report: CrashReport, window: float, bursts: int = 12
    ) -> None:
        self.rng, self.report = rng, report
        self.window, self.bursts = window, bursts

    def kill(
        self, process: subprocess.Popen[bytes], db: Path, *, on_write: bool = False
    ) -> bool:
        if on_write:
            nth = self.rng.randint(1, self.bursts)
            self.report.delays.append(float(nth))
            killed, seen = kill_on_write(process, db, nth)
            if not killed:
                self.bursts = max(1, seen)
        else:
            delay = self.rng.uniform(0, self.window)
            self.report.delays.append(round(delay, 3))
            killed, ran = kill_after(process, db, delay)
            if not killed and ran > 0:
                self.window = max(0.05, 0.9 * ran)
        if killed:
            self.report.kills += 1
        else:
            self.report.finished_before_kill += 1
        return killed


def _kill(process: subprocess.Popen[bytes]) -> bool:
    if process.poll() is not None:
        return False
    process.send_signal(signal.SIGKILL)
    process.wait(timeout=30)
    return True


def run_to_end(
    args: list[str], config: Path, env: dict[str, str], report: CrashReport
) -> subprocess.CompletedProcess[str]:
    done = kit.run_cli(args, config, env)
    if done.returncode != 0:
        report.problems.append(
            f"final 'csm-sync {' '.join(args)}' exited {done.returncode}: "
            f"{done.stderr[-800:]}"
        )
    return done


def _after_kill(store_url: str, report: CrashReport, where: str) -> None:
    verdict = kit.integrity_check(store_url)
    if verdict != "ok":
        report.problems.append(f"{where}: integrity_check says {verdict!r}")


def settings_for(emu: EmulatorServer, data: dict[str, Any]) -> Settings:
    """The same config as the CLI reads, with the password filled in."""
    resolved = dict(data)
    resolved["instance"] = dict(data["instance"])
    resolved["instance"]["auth"] = dict(
        data["instance"]["auth"], password=emu.admin_password
    )
    return settings_from_dict(resolved)


# --- scenarios ----------------------------------------------------------------------


def backfill_crashes(
    workdir: Path,
    *,
    seed: int,
    kills: int,
    per_cycle: int = 4,
    window: float = 3.0,
    power_cut: bool = False,
    accounts: int = 6,
    tables: list[str] | None = None,
) -> CrashReport:
    """Kill ``csm-sync backfill`` ``kills`` times (fresh store per cycle).

    ``power_cut`` kills on a write burst with big pages and no latency (the
    kill lands inside a SQLite commit) instead of after a random delay.
    """
    workdir.mkdir(parents=True, exist_ok=True)
    rng = random.Random(seed)
    report = CrashReport(mode="backfill-power-cut" if power_cut else "backfill")
    instance = {"page_size": 2000} if power_cut else {}
    points = KillPoints(rng, report, window)
    with EmulatorServer(accounts=accounts, seed=seed) as emu:
        if not power_cut:
            emu.instance.faults.update(latency_ms=25)
        mappings = kit.shipped_mappings(tables)
        while report.kills < kills and report.finished_before_kill <= 2 * kills:
            report.cycles += 1
            cycle = workdir / f"backfill-{report.cycles}"
            cycle.mkdir(parents=True, exist_ok=True)
            store_url = f"sqlite:///{cycle / 'store.db'}"
            db = kit.sqlite_path(store_url)
            config = kit.write_config(
                cycle / "config.yaml",
                kit.config_data(
                    emu, store_url, instance=instance, sync={"tables": tables}
                ),
            )
            env = kit.cli_env(emu)
            for _ in range(min(per_cycle, kills - report.kills)):
                process = kit.spawn(["backfill"], config, env, cycle / "logs")
                if not points.kill(process, db, on_write=power_cut):
                    break
                _after_kill(store_url, report, f"cycle {report.cycles}")
            run_to_end(["backfill"], config, env, report)
            report.problems += kit.store_mismatches(emu, store_url, mappings)
    return report


def sync_crashes(
    workdir: Path,
    *,
    seed: int,
    kills: int,
    window: float = 2.5,
    tables: list[str] | None = None,
) -> CrashReport:
    """Kill ``csm-sync sync`` while the mutator updates and deletes rows."""
    from connector.sync.backfill import run_backfill

    workdir.mkdir(parents=True, exist_ok=True)
    rng = random.Random(seed)
    report = CrashReport(mode="sync", cycles=1)
    points = KillPoints(rng, report, window)
    with EmulatorServer(accounts=6, seed=seed) as emu:
        store_url = f"sqlite:///{workdir / 'sync.db'}"
        db = kit.sqlite_path(store_url)
        data = kit.config_data(emu, store_url, sync={"tables": tables})
        config = kit.write_config(workdir / "sync.yaml", data)
        env = kit.cli_env(emu)
        run_backfill(settings_for(emu, data))
        emu.instance.faults.update(latency_ms=25)
        emu.instance.start_mutator(
            rate_per_second=30, tables=MUTATED_TABLES, seed=seed, delete_ratio=0.2
        )
        try:
            while report.kills < kills and report.finished_before_kill <= 2 * kills:
                process = kit.spawn(["sync"], config, env, workdir / "logs")
                if points.kill(process, db):
                    _after_kill(store_url, report, f"sync kill {report.kills}")
        finally:
            emu.instance.stop_mutator()
        time.sleep(1.1)  # the window ends at the instance's current second
        run_to_end(["sync"], config, env, report)
        report.problems += kit.store_mismatches(
            emu, store_url, kit.shipped_mappings(tables)
        )
    return report


class WriteRecorder:
    """Spy on the emulator: every customer_account update it applies."""

    def __init__(self, emu: EmulatorServer) -> None:
        self.writes: dict[tuple[str, str], list[str]] = defaultdict(list)
        self.patches: dict[str, int] = defaultdict(int)
        self.resets = 0
        original = self._original = emu.instance.update

        def update(table: str, sys_id: str, values: dict[str, Any], **kw: Any):  # type: ignore[no-untyped-def]
            if table == "customer_account":
                self.patches[sys_id] += 1
                for name, value in values.items():
                    self.writes[(sys_id, name)].append(str(value))
            return original(table, sys_id, values, **kw)

        emu.instance.update = update  # type: ignore[method-assign]

    def reset(self, emu: EmulatorServer, fields: list[str], store_url: str) -> None:
        """Blank the health fields (unrecorded) and forget what was confirmed, so
        the next run has all the work again (write-back diffs against its state)."""
        import sqlite3

        self.resets += 1
        for row in emu.instance.rows("customer_account"):
            self._original("customer_account", row["sys_id"], dict.fromkeys(fields, ""))
        with sqlite3.connect(kit.sqlite_path(store_url)) as conn:
            conn.execute("DELETE FROM writeback_state")

    def conflicting(self) -> dict[tuple[str, str], set[str]]:
        """Account fields that received two different values."""
        return {
            key: set(values)
            for key, values in self.writes.items()
            if key[1] not in HEALTH_FIELD_SKIP and len(set(values)) > 1
        }


def writeback_crashes(
    workdir: Path,
    *,
    seed: int,
    kills: int,
    window: float = 2.0,
    reset_every: int = 0,
) -> CrashReport:
    """Kill ``csm-sync writeback`` mid-run; no account field gets two values."""
    from connector.kpi import compute_kpis, store_snapshot, utc_today
    from connector.store.engine import open_store
    from connector.sync.backfill import run_backfill
    from connector.writeback import install_fields, run_writeback

    workdir.mkdir(parents=True, exist_ok=True)
    rng = random.Random(seed)
    report = CrashReport(mode="writeback", cycles=1)
    points = KillPoints(rng, report, window)
    with EmulatorServer(accounts=30, seed=seed) as emu:
        store_url = f"sqlite:///{workdir / 'writeback.db'}"
        db = kit.sqlite_path(store_url)
        data = kit.config_data(emu, store_url, writeback={"batch_threshold": 1000})
        config = kit.write_config(workdir / "writeback.yaml", data)
        env = kit.cli_env(emu)
        settings = settings_for(emu, data)
        run_backfill(settings)
        store = open_store(store_url)
        try:
            kpis = compute_kpis(store.engine, settings.kpi, as_of=utc_today())
            store_snapshot(store.engine, kpis)
        finally:
            store.dispose()
        install_fields(settings)
        before = {r["sys_id"]: r for r in emu.instance.rows("customer_account")}
        recorder = WriteRecorder(emu)
        emu.instance.faults.update(latency_ms=40, include_writes=True)
        runs = 0
        while report.kills < kills and report.finished_before_kill <= 2 * kills:
            process = kit.spawn(["writeback"], config, env, workdir / "logs")
            runs += 1
            killed = points.kill(process, db)
            if killed:
                report.notes.append(f"{sum(recorder.patches.values())} PATCHes")
                _after_kill(store_url, report, f"writeback kill {report.kills}")
            if not killed or (reset_every and runs % reset_every == 0):
                # All written: blank the fields so the next run has work again.
                if killed:
                    kit.run_cli(["writeback"], config, env)
                    runs += 1
                recorder.reset(emu, sorted(HEALTH_FIELDS), store_url)
                report.cycles += 1
        emu.instance.faults.update(latency_ms=0)
        run_to_end(["writeback"], config, env, report)
        runs += 1
        report.problems += _writeback_problems(emu, settings, recorder, before, runs)
        check = run_writeback(settings, dry_run=True)
        if check.diffs:
            report.problems.append(f"{len(check.diffs)} accounts still differ")
    return report


def _writeback_problems(
    emu: EmulatorServer,
    settings: Settings,
    recorder: WriteRecorder,
    before: dict[str, dict[str, str]],
    runs: int,
) -> list[str]:
    from sqlalchemy import select

    from connector.store.engine import open_store
    from connector.writeback.models import WritebackState

    problems = [
        f"{account}.{name} written with {sorted(values)}"
        for (account, name), values in recorder.conflicting().items()
    ]
    runs += recorder.resets
    for account, count in recorder.patches.items():
        if count > runs:
            problems.append(f"{account} patched {count} times in {runs} runs")
    store = open_store(settings.store.url, migrate=False)
    try:
        with store.engine.connect() as conn:
            states = conn.execute(select(WritebackState)).all()
    finally:
        store.dispose()
    if not states:
        problems.append("no writeback_state rows after the final run")
    for state in states:
        row = emu.instance.get("customer_account", state.account) or {}
        if state.field in HEALTH_FIELD_SKIP:
            continue
        if row.get(state.field, "") != state.returned:
            problems.append(
                f"{state.account}.{state.field}: instance {row.get(state.field)!r}, "
                f"store says {state.returned!r}"
            )
    moved = sum(
        int(emu.instance.get("customer_account", k)["sys_mod_count"])
        - int(r.get("sys_mod_count") or 0)
        for k, r in before.items()
    )
    if moved > len(before) * runs:
        problems.append(f"{moved} account updates for {len(before)} accounts")
    return problems


def migration_kills(workdir: Path, *, seed: int, kills: int) -> CrashReport:
    """SIGKILL a process while it creates/migrates a new store; reopen must work."""
    import sqlite3

    workdir.mkdir(parents=True, exist_ok=True)
    rng = random.Random(seed)
    report = CrashReport(mode="migration", cycles=kills)
    points = KillPoints(rng, report, window=0.3, bursts=4)
    code = (
        "import sys; from connector.store.engine import open_store; "
        "open_store(sys.argv[1]).dispose()"
    )
    full = _full_table_count(workdir)
    for number in range(kills):
        store_url = f"sqlite:///{workdir / f'migrate-{number}.db'}"
        db = kit.sqlite_path(store_url)
        process = subprocess.Popen([sys.executable, "-c", code, store_url])
        wal = db.with_name(db.name + "-wal")
        # Half the kills land on a write to the new file, half after a delay.
        if points.kill(process, db, on_write=bool(number % 2)):
            # Frames in the WAL at the kill: it landed inside the migration.
            report.notes.append(f"wal {wal.stat().st_size if wal.exists() else 0} B")
        conn = sqlite3.connect(db)
        try:
            verdict = conn.execute("PRAGMA integrity_check").fetchone()[0]
            count = conn.execute(
                "SELECT count(*) FROM sqlite_master WHERE type='table'"
            ).fetchone()[0]
        finally:
            conn.close()
        report.notes.append(f"{count}/{full} tables")
        if verdict != "ok" or count not in (0, full):
            report.problems.append(
                f"kill {number}: integrity {verdict!r}, {count} of {full} tables"
            )
        from connector.store.engine import open_store

        open_store(store_url).dispose()
        if _table_count(db) != full:
            report.problems.append(f"kill {number}: reopen left {_table_count(db)}")
    return report


def _table_count(db: Path) -> int:
    import sqlite3

    conn = sqlite3.connect(db)
    try:
        return int(
            conn.execute(
                "SELECT count(*) FROM sqlite_master WHERE type='table'"
            ).fetchone()[0]
        )
    finally:
        conn.close()


def _full_table_count(workdir: Path) -> int:
    from connector.store.engine import open_store

    reference = workdir / "reference.db"
    open_store(f"sqlite:///{reference}").dispose()
    return _table_count(reference)
