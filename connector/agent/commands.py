"""CLI commands of the agent role: ``run`` (the daemon) and ``demo``."""

from __future__ import annotations

from enum import StrEnum
from pathlib import Path
from typing import Annotated, Literal

import typer

from connector.cli import ConfigOption, app, handles_errors
from connector.config import load_settings, resolve_config_path
from connector.logs import settings_secrets, setup_logging


class LogFormat(StrEnum):
    """Log line formats."""

    text = "text"
    json = "json"


LogFormatOption = Annotated[
    LogFormat | None,
    typer.Option(
        "--log-format",
        help="Log lines as text or JSON; overrides logging.format.",
        show_default=False,
    ),
]


def _log_format(value: LogFormat | None, configured: str) -> Literal["text", "json"]:
    return value.value if value else configured  # type: ignore[return-value]


@app.command("run", rich_help_panel="Run as a service")
@handles_errors
def run_command(
    config: ConfigOption = None, log_format: LogFormatOption = None
) -> None:
    """Run the agent: scheduled syncs, KPIs, write-back, /healthz and /metrics.

    SIGINT or SIGTERM finishes the page in hand and exits 0; too many failures
    within daemon.failure_window_seconds exit 1; a configuration problem exits 2.
    See docs/operations.md.
    """
    from connector.agent.daemon import Daemon

    settings = load_settings(config)
    setup_logging(
        level=settings.logging.level,
        fmt=_log_format(log_format, settings.logging.format),
        secrets=settings_secrets(settings),
    )
    source = str(resolve_config_path(config))
    raise typer.Exit(Daemon(settings, source=source).run())


@app.command("demo", rich_help_panel="Try it")
@handles_errors
def demo_command(
    accounts: Annotated[
        int,
        typer.Option("--accounts", min=5, help="Accounts in the emulated instance."),
    ] = 200,
    directory: Annotated[
        Path,
        typer.Option(
            "--dir",
            help="Where the config, store and report go (the store is replaced).",
        ),
    ] = Path("csm-demo"),
    serve: Annotated[
        bool,
        typer.Option("--serve", help="Keep the emulator running until Ctrl-C."),
    ] = False,
    seed: Annotated[int, typer.Option("--seed", help="Dataset seed.")] = 7,
    log_format: LogFormatOption = None,
) -> None:
    """Run the whole job against an emulated instance; no ServiceNow needed.

    Serves the emulator over plain HTTP on 127.0.0.1 (a free port), writes
    config.yaml, the mappings, the store and report.html into --dir, then
    backfills, computes KPIs and writes health scores back to the emulator.
    Needs no config file of yours and nothing beyond this machine.
    """
    from connector.agent.demo import run_demo

    setup_logging(level="WARNING", fmt=_log_format(log_format, "text"))
    run_demo(accounts=accounts, directory=directory, serve=serve, seed=seed)
