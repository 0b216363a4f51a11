"""CLI commands of the sync role: ``check``, ``backfill``, ``sync``, ``status``.

Exit status: 0 success, 1 a table run failed or stopped, 2 bad usage or config.
"""

from __future__ import annotations

import json
import signal
import sys
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer

from connector.cli import ConfigOption, app, handles_errors
from connector.config import Settings, load_settings
from connector.errors import UsageError
from connector.logs import settings_secrets, setup_logging

if TYPE_CHECKING:  # the engine (HTTP client, SQLAlchemy) loads only when a command runs
    from connector.sync.runner import RunResult

TableOption = Annotated[
    list[str] | None,
    typer.Option(
        "--table",
        "-t",
        help="Only this mapping (file name, source or store table); repeatable.",
        show_default=False,
    ),
]


def _settings(config: Path | None, *, needs_instance: bool = True) -> Settings:
    settings = load_settings(config, needs_instance=needs_instance)
    setup_logging(
        level=settings.logging.level,
        fmt=settings.logging.format,
        secrets=settings_secrets(settings),
    )
    return settings


def parse_when(value: str | None, option: str) -> datetime | None:
    """An ISO date or date-time (UTC unless it carries an offset)."""
    if value is None:
        return None
    try:
        moment = datetime.fromisoformat(value.strip().replace("Z", "+00:00"))
    except ValueError:
        raise UsageError(
            f"{option} {value!r} is not an ISO date or date-time "
            "(e.g. 2025-01-01 or 2025-01-01T00:00:00Z)"
        ) from None
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=UTC)
    return moment.astimezone(UTC)


@contextmanager
def stop_on_signals(event: threading.Event) -> Iterator[None]:
    """SIGINT/SIGTERM finish the page in hand and stop; a second SIGINT aborts."""

    def handle(signum: int, _frame: object) -> None:
        if event.is_set() and signum == signal.SIGINT:
            raise KeyboardInterrupt
        event.set()
        typer.secho("stopping after the pages in hand...", err=True)

    previous = {
        sig: signal.signal(sig, handle) for sig in (signal.SIGINT, signal.SIGTERM)
    }
    try:
        yield
    finally:
        for sig, handler in previous.items():
            signal.signal(sig, handler)


def _exit_for(results: list[RunResult]) -> None:
    failed = [r for r in results if not r.ok]
    for result in failed:
        typer.secho(
            f"error: {result.mapping} ({result.mode}) {result.outcome}: {result.error}",
            err=True,
            fg=typer.colors.RED,
        )
    if failed:
        raise typer.Exit(1)


@app.command("check", rich_help_panel="Sync")
@handles_errors
def check_command(config: ConfigOption = None) -> None:
    """Check the config, the mappings and every mapped field against the instance."""
    from connector.sync.checks import run_check

    settings = _settings(config)
    report = run_check(settings)
    for line in report.lines:
        typer.echo(line)
    for warning in report.warnings:
        typer.secho(f"warning: {warning}", err=True, fg=typer.colors.YELLOW)


@app.command("backfill", rich_help_panel="Sync")
@handles_errors
def backfill_command(
    config: ConfigOption = None,
    table: TableOption = None,
    since: Annotated[
        str | None,
        typer.Option(
            help="Start (ISO, UTC); default sync.backfill_since or oldest row."
        ),
    ] = None,
    until: Annotated[
        str | None,
        typer.Option(help="End, exclusive (ISO, UTC); default the instance's clock."),
    ] = None,
    workers: Annotated[
        int | None, typer.Option(min=1, max=32, help="Parallel slices (sync.workers).")
    ] = None,
) -> None:
    """Load history over [since, until), in parallel slices; resumes when re-run."""
    from connector.sync.backfill import run_backfill
    from connector.sync.progress import backfill_progress

    settings = _settings(config)
    start, end = parse_when(since, "--since"), parse_when(until, "--until")
    stop = threading.Event()
    with stop_on_signals(stop), backfill_progress(sys.stdout.isatty()) as progress:
        results = run_backfill(
            settings,
            tables=table,
            since=start,
            until=end,
            workers=workers,
            progress=progress,
            stop_event=stop,
        )
    _exit_for(results)


@app.command("sync", rich_help_panel="Sync")
@handles_errors
def sync_command(
    config: ConfigOption = None,
    table: TableOption = None,
    reconcile: Annotated[
        bool | None,
        typer.Option(
            "--reconcile/--no-reconcile",
            help="Force or skip the key sweep for deletes (default: when due).",
            show_default=False,
        ),
    ] = None,
) -> None:
    """One incremental pass: changed rows since the cursor, then deletes."""
    from connector.sync.incremental import run_incremental

    settings = _settings(config)
    stop = threading.Event()
    with stop_on_signals(stop):
        results = run_incremental(
            settings, tables=table, reconcile=reconcile, stop_event=stop
        )
    _exit_for(results)


@app.command("status", rich_help_panel="Sync")
@handles_errors
def status_command(
    config: ConfigOption = None,
    format: Annotated[
        str, typer.Option("--format", help="'table' or 'json'.")
    ] = "table",
) -> None:
    """Per table: rows stored, cursor, lag, last run and its outcome, quarantined."""
    from connector.sync.status import collect_status, render_table

    if format not in ("table", "json"):
        raise UsageError(f"--format must be 'table' or 'json', got {format!r}")
    settings = _settings(config, needs_instance=False)  # reads the store only
    rows = collect_status(settings)
    if format == "json":
        typer.echo(json.dumps([row.as_dict() for row in rows], indent=2))
    else:
        render_table(rows)
