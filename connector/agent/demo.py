"""``csm-sync demo``: the whole job against an emulated instance, in one command.

Starts an :class:`EmulatorServer` in-process on loopback, writes a config for it,
then backfills, computes KPIs, installs the health fields, writes the scores back,
prints the KPI table and writes the HTML report. Nothing needs to exist first: the
only network is the emulator's plain HTTP on 127.0.0.1. The emulator's password
reaches the config through the environment (``${CSM_DEMO_PASSWORD}``), so neither
the file nor the console shows it.
"""

from __future__ import annotations

import os
import shutil
import signal
import threading
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml
from rich.console import Console
from rich.progress import BarColumn, Progress, TextColumn, TimeElapsedColumn

from connector.agent.bundled import default_mappings_dir
from connector.agent.lock import DaemonLock
from connector.config import Settings, load_settings
from connector.kpi import KpiResult
from connector.store.engine import open_store

PASSWORD_ENV = "CSM_DEMO_PASSWORD"
STORE_FILE = "csm.db"
REPORT_FILE = "report.html"
CONFIG_FILE = "config.yaml"


@dataclass
class DemoOutcome:
    """Where the demo put things, for the summary and for tests."""

    directory: Path
    config: Path
    report: Path
    emulator_url: str
    at_risk_url: str | None
    seconds: float


def run_demo(
    *,
    accounts: int,
    directory: Path,
    serve: bool,
    seed: int,
    console: Console | None = None,
) -> DemoOutcome:
    """Run the demo end to end; with ``serve``, keep the emulator up until Ctrl-C."""
    from connector.emulator.server import EmulatorServer

    # soft_wrap: plain lines (paths, URLs) are never broken; tables still fit.
    console = console or Console(soft_wrap=True)
    started = time.monotonic()
    directory = directory.expanduser().resolve()
    directory.mkdir(parents=True, exist_ok=True)
    console.print(
        f"Starting an emulated instance with {accounts} accounts (seed {seed})"
    )
    with EmulatorServer(accounts=accounts, seed=seed, port=0) as emu:
        os.environ[PASSWORD_ENV] = emu.admin_password
        config = write_config(
            directory, url=emu.url, user=emu.admin_user, truth=emu.instance.truth
        )
        settings = load_settings(config)
        # A daemon left running on this folder's store must not see it replaced.
        with DaemonLock(settings.store.url):
            _fresh_store(directory)
            report, at_risk = _run_job(settings, directory, console)
        outcome = DemoOutcome(
            directory=directory,
            config=config,
            report=report,
            emulator_url=emu.url,
            at_risk_url=_form_url(emu.url, at_risk),
            seconds=time.monotonic() - started,
        )
        _print_summary(outcome, console, serve=serve)
        if serve:
            _serve_until_interrupted(console, emu.admin_user, emu.admin_password)
    return outcome


def _run_job(
    settings: Settings, directory: Path, console: Console
) -> tuple[Path, str | None]:
    from connector.kpi.output import print_table

    _backfill(settings, console)
    with console.status("Computing KPIs"):
        kpis = _compute_kpis(settings)
    with console.status("Installing the health fields and writing scores back"):
        installed = _install_fields(settings)
        written = _writeback(settings)
    console.print(f"Health fields: {installed}; write-back: {written}")
    print_table(kpis, console, limit=10)
    report = _write_report(settings, kpis, directory / REPORT_FILE)
    return report, _most_at_risk(kpis)


def _fresh_store(directory: Path) -> None:
    """Drop a previous demo's store (the emulator is new too); keep the mappings."""
    for suffix in ("", "-wal", "-shm"):
        (directory / f"{STORE_FILE}{suffix}").unlink(missing_ok=True)


def write_config(directory: Path, *, url: str, user: str, truth: dict) -> Path:
    """Write a config for the emulator into ``directory`` (no secret in it).

    The default mappings are copied beside it the first time; later runs keep
    the user's edits.
    """
    mappings = directory / "mappings"
    if not mappings.exists():
        shutil.copytree(default_mappings_dir(), mappings)
    config = {
        "instance": {
            "url": url,
            "auth": {
                "method": "basic",
                "username": user,
                "password": f"${{{PASSWORD_ENV}}}",
            },
            "page_size": 1000,
        },
        "store": {"url": f"sqlite:///{directory / STORE_FILE}"},
        "mappings": "mappings",
        # Two workers: the demo is sized for a 2-core laptop.
        "sync": {"workers": 2},
        "kpi": {"nps_metric": truth["nps_metric"], "csat_metric": truth["csat_metric"]},
        "writeback": {"enabled": True},
        "daemon": {"sync_interval_seconds": 60, "http": "127.0.0.1:9464"},
    }
    path = directory / CONFIG_FILE
    header = (
        "# Written by csm-sync demo for its emulated instance, valid while it runs\n"
        f"# The password comes from ${PASSWORD_ENV}.\n"
    )
    path.write_text(header + yaml.safe_dump(config, sort_keys=False), encoding="utf-8")
    path.chmod(0o600)
    return path


class RichBackfillProgress:
    """Draws one bar per table; called from the backfill's worker threads."""

    def __init__(self, progress: Progress) -> None:
        self.progress = progress
        self._tasks: dict[str, Any] = {}
        self._lock = threading.Lock()

    def start(self, table: str, total: int | None) -> None:
        with self._lock:
            self._tasks[table] = self.progress.add_task(table, total=total)

    def advance(self, table: str, rows: int) -> None:
        with self._lock:
            self.progress.advance(self._tasks[table], rows)

    def finish(self, table: str) -> None:
        with self._lock:
            task = self._tasks[table]
            done = self.progress.tasks[task].completed
            self.progress.update(task, total=done, completed=done)


def _backfill(settings: Settings, console: Console) -> None:
    from connector.sync.backfill import run_backfill

    columns = (
        TextColumn("Backfill {task.description:<32}"),
        BarColumn(),
        TextColumn("{task.completed:>7,.0f} rows"),
        TimeElapsedColumn(),
    )
    with Progress(*columns, console=console) as progress:
        results = run_backfill(settings, progress=RichBackfillProgress(progress))
    failed = [r for r in results if not r.ok]
    rows = sum(r.fetched for r in results)
    console.print(
        f"Backfill done: {len(results)} tables, {rows:,} rows"
        + (f", [red]{len(failed)} failed[/]" if failed else "")
    )
    for result in failed:
        console.print(f"  [red]{result.mapping}[/]: {result.error}")


def _compute_kpis(settings: Settings) -> KpiResult:
    from connector.kpi import compute_kpis, store_snapshot, utc_today

    store = open_store(settings.store.url)
    try:
        result = compute_kpis(store.engine, settings.kpi, as_of=utc_today())
        store_snapshot(store.engine, result)
    finally:
        store.dispose()
    return result


def _install_fields(settings: Settings) -> str:
    from connector.writeback.install import install_fields

    result = install_fields(settings)
    return "created" if result.changed else "already present"


def _writeback(settings: Settings) -> str:
    from connector.writeback.runner import run_writeback

    result = run_writeback(settings)
    return (
        f"{result.written} fields written on {result.sent_accounts} of "
        f"{result.accounts} accounts, {result.failed} failed"
    )


def _write_report(settings: Settings, kpis: KpiResult, path: Path) -> Path:
    from connector.report import write_report

    store = open_store(settings.store.url)
    try:
        write_report(store.engine, kpis, path)
    finally:
        store.dispose()
    return path


def _most_at_risk(kpis: KpiResult) -> str | None:
    """The lowest health score, among active accounts when there are any."""
    scored = [a for a in kpis.accounts if a.health.score is not None]
    candidates = [a for a in scored if a.active] or scored
    if not candidates:
        return None
    return min(candidates, key=lambda a: (a.health.score, a.sys_id)).sys_id


def _form_url(base: str, sys_id: str | None) -> str | None:
    return f"{base}/customer_account.do?sys_id={sys_id}" if sys_id else None


def _print_summary(outcome: DemoOutcome, console: Console, *, serve: bool) -> None:
    console.print()
    console.print(f"Demo finished in {outcome.seconds:.1f} s. Where to look:")
    console.print(f"  config  {outcome.config}")
    console.print(f"  store   {outcome.directory / STORE_FILE}")
    console.print(f"  report  {outcome.report}")
    if outcome.at_risk_url:
        note = "" if serve else " (add --serve to keep the emulator up)"
        console.print(f"  most at-risk account  {outcome.at_risk_url}{note}")


def _serve_until_interrupted(console: Console, user: str, password: str) -> None:
    # The emulator's built-in demo login is public (docs/operations.md); it is
    # shown only here, where a browser needs it to open the account form.
    console.print(
        f"Emulator running: open the links above and sign in as {user} / {password} "
        f"(the local emulator's built-in login). Other commands can use "
        f"{CONFIG_FILE} with {PASSWORD_ENV} set to that password. Ctrl-C stops it."
    )
    stop = threading.Event()
    previous = {
        sig: signal.signal(sig, lambda *_: stop.set())
        for sig in (signal.SIGINT, signal.SIGTERM)
    }
    try:
        while not stop.wait(0.5):
            pass
    finally:
        for sig, handler in previous.items():
            signal.signal(sig, handler)
    console.print("Stopping the emulator")
