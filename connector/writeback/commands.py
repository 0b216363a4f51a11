"""CLI commands of the writeback role: ``install-fields`` and ``writeback``."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer
from rich.console import Console
from rich.table import Table

from connector.cli import ConfigOption, app, handles_errors
from connector.config import load_settings
from connector.writeback.install import describe, install_fields
from connector.writeback.runner import WritebackResult, run_writeback

DIFF_ROWS_SHOWN = 200


@app.command("install-fields", rich_help_panel="Write-back")
@handles_errors
def install_fields_command(
    update_set: Annotated[
        Path | None,
        typer.Option(
            "--update-set",
            help="Write the changes as an update-set XML file and send nothing.",
            dir_okay=False,
        ),
    ] = None,
    config: ConfigOption = None,
) -> None:
    """Create the health fields, choices and layout entries on customer_account."""
    settings = load_settings(config)
    result = install_fields(settings, update_set=update_set)
    for line in describe(result):
        typer.echo(line)


@app.command("writeback", rich_help_panel="Write-back")
@handles_errors
def writeback_command(
    dry_run: Annotated[
        bool, typer.Option("--dry-run", help="Show the diff; send no write request.")
    ] = False,
    account: Annotated[
        str | None,
        typer.Option(
            "--account", help="Only this account (sys_id).", show_default=False
        ),
    ] = None,
    config: ConfigOption = None,
) -> None:
    """Write the latest health scores onto the ServiceNow accounts.

    Run `csm-sync install-fields` once first: when a health field is missing or
    read-only on the instance, write-back (and --dry-run) stops before sending
    anything. Exit status: 0 all fields written (or nothing to do), 1 a field
    failed or the fields are not installed, 2 bad config or --account.
    """
    settings = load_settings(config)
    result = run_writeback(settings, dry_run=dry_run, account=account)
    console = Console()
    if dry_run:
        print_diff(console, result)
    else:
        print_failures(console, result)
    typer.echo(summary(result))
    if result.failed:
        raise typer.Exit(1)


def print_diff(console: Console, result: WritebackResult) -> None:
    """The pending changes as a table (old → new per field)."""
    table = Table(title="Write-back diff (dry run: nothing sent)")
    for column in ("account", "field", "instance now", "would write"):
        table.add_column(column)
    shown = 0
    for diff in result.diffs:
        for write in diff.writes:
            if shown < DIFF_ROWS_SHOWN:
                who = result.labels.get(write.account, write.account)
                table.add_row(who, write.spec.element, write.old, write.new)
            shown += 1
    console.print(table)
    if shown > DIFF_ROWS_SHOWN:
        console.print(f"... and {shown - DIFF_ROWS_SHOWN} more field changes")


def print_failures(console: Console, result: WritebackResult) -> None:
    """Every failed field with its cause and fix."""
    failed = [r for r in result.results if not r.ok]
    for problem in result.problems:
        console.print(f"[red]FAILED[/red] {problem}", highlight=False)
    for r in failed[:DIFF_ROWS_SHOWN]:
        who = result.labels.get(r.write.account, r.write.account)
        console.print(
            f"[red]FAILED[/red] {who} {r.write.spec.element}: {r.message}",
            highlight=False,
        )
    if len(failed) > DIFF_ROWS_SHOWN:
        console.print(f"... and {len(failed) - DIFF_ROWS_SHOWN} more failed fields")


def summary(result: WritebackResult) -> str:
    """One line: accounts, sent, written, failed."""
    if result.disabled:
        return "Write-back is disabled (writeback.enabled: false); nothing sent."
    if result.dry_run:
        return (
            f"Dry run: {result.accounts} accounts, "
            f"{len(result.diffs)} would change ({result.pending} fields); nothing sent."
        )
    problems = f"{len(result.problems)} run problems, " if result.problems else ""
    return (
        f"Write-back: {result.accounts} accounts, {result.sent_accounts} sent, "
        f"{result.written} fields written, {result.failed_fields} fields failed, "
        f"{problems}{result.history_created} history rows, {result.seconds:.1f}s."
    )
