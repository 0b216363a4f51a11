"""CLI commands of the kpi role: ``csm-sync kpis`` and ``csm-sync report``."""

from __future__ import annotations

import json
import logging
from datetime import date
from enum import StrEnum
from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer
from rich.console import Console

from connector.cli import ConfigOption, app, handles_errors
from connector.config import load_settings
from connector.errors import UsageError

if TYPE_CHECKING:  # SQLAlchemy loads only when a command runs
    from sqlalchemy.engine import Engine

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


def _account_sys_id(engine: Engine, value: str) -> str:
    """The sys_id of the stored account ``value`` names, by sys_id or by number.

    The table and csv show names and sys_ids, the instance shows ACCT numbers:
    accept either rather than make the user look one up.
    """
    from sqlalchemy import or_, select

    from connector.store.models import Account

    query = select(Account.sys_id).where(
        or_(Account.sys_id == value, Account.number == value),
        Account.deleted_at.is_(None),
    )
    with engine.connect() as conn:
        sys_ids = list(conn.execute(query).scalars())

    # A sys_id match wins over another account whose number happens to equal it.
    if value in sys_ids:
        return value
    if sys_ids:
        return sys_ids[0]
    raise UsageError(
        f"--account {value!r} matches no stored account by sys_id or by number "
        "(e.g. ACCT0001001); run 'csm-sync kpis --format csv' for the sys_ids"
    )


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
        str | None,
        typer.Option(
            "--account", help="Only this account: its sys_id or number (ACCT...)."
        ),
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
        sys_id = _account_sys_id(engine, account) if account is not None else None
        result = compute_kpis(engine, settings.kpi, as_of=day, account=sys_id)
        if sys_id is not None and not result.accounts:
            raise UsageError(
                f"--account {account!r} is stored but is not a customer account "
                "(customer is false), so it has no KPIs"
            )
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
