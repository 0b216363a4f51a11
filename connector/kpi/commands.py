"""CLI commands of the kpi role: ``csm-sync kpis`` and ``csm-sync report``."""

from __future__ import annotations

import json
import logging
from datetime import date
from enum import StrEnum
from pathlib import Path
from typing import Annotated

import typer
from rich.console import Console

from connector.cli import ConfigOption, app, handles_errors
from connector.config import load_settings
from connector.errors import UsageError

log = logging.getLogger(__name__)


class OutputFormat(StrEnum):
    table = "table"
    json = "json"
    csv = "csv"


def _as_of(value: str | None) -> date:
    from connector.kpi import utc_today

    if value is None:
        return utc_today()
    try:
        return date.fromisoformat(value)
    except ValueError:
        raise UsageError(
            f"--as-of {value!r} is not a date; use YYYY-MM-DD, e.g. 2026-12-01"
        ) from None


def _open_engine(url: str):  # type: ignore[no-untyped-def]
    from connector.store.engine import open_store

    return open_store(url).engine


@app.command("kpis", rich_help_panel="KPIs")
@handles_errors
def kpis_command(
    as_of: Annotated[
        str | None, typer.Option("--as-of", help="Date the figures describe (UTC).")
    ] = None,
    account: Annotated[
        str | None, typer.Option("--account", help="Only this account's sys_id.")
    ] = None,
    output: Annotated[
        OutputFormat,
        typer.Option(
            "--format",
            help="table, json or csv. csv has one row per account only; the "
            "overall and per-CSM figures are in json (and the table).",
        ),
    ] = OutputFormat.table,
    config: ConfigOption = None,
) -> None:
    """Compute every KPI as of a date, store the snapshot and print it.

    The table shows the overall figures, the active accounts lowest health
    first and the CSMs; json holds everything; csv one row per account.
    """
    from connector.kpi import compute_kpis, store_snapshot
    from connector.kpi.output import print_table, to_contract, to_csv

    day = _as_of(as_of)
    settings = load_settings(config, needs_instance=False)
    engine = _open_engine(settings.store.url)
    try:
        result = compute_kpis(engine, settings.kpi, as_of=day, account=account)
        if account is not None and not result.accounts:
            raise UsageError(f"--account {account!r} is not a stored customer account")
        store_snapshot(engine, result)
    finally:
        engine.dispose()

    if output is OutputFormat.json:
        typer.echo(json.dumps(to_contract(result), indent=2))
    elif output is OutputFormat.csv:
        typer.echo(to_csv(result), nl=False)
    else:
        print_table(result, Console())


@app.command("report", rich_help_panel="KPIs")
@handles_errors
def report_command(
    out: Annotated[
        Path, typer.Option("--output", "-o", help="HTML file to write.")
    ] = Path("report.html"),
    as_of: Annotated[
        str | None, typer.Option("--as-of", help="Date the figures describe (UTC).")
    ] = None,
    config: ConfigOption = None,
) -> None:
    """Write one self-contained HTML report (inline SVG charts, works offline).

    Today's figures are computed and stored as today's snapshot first, so the
    trend charts end with them.
    """
    from connector.kpi import compute_kpis, store_snapshot
    from connector.report import write_report

    day = _as_of(as_of)
    settings = load_settings(config, needs_instance=False)
    engine = _open_engine(settings.store.url)
    try:
        result = compute_kpis(engine, settings.kpi, as_of=day)
        store_snapshot(engine, result)
        write_report(engine, result, out)
    finally:
        engine.dispose()
    typer.echo(f"Wrote {out}")
