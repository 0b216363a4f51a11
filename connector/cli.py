"""The ``csm-sync`` command line: parse, load config, hand off to a role package.

Exit status: 0 success, 1 a failed run, 2 bad usage or config. Errors print as
sentences on stderr, never as tracebacks (``--debug`` shows the traceback).
"""

from __future__ import annotations

import importlib
import sys
from collections.abc import Callable
from functools import wraps
from pathlib import Path
from typing import Annotated, Any, TypeVar

import typer

from connector import __version__
from connector.errors import ConfigError, CsmSyncError

app = typer.Typer(
    name="csm-sync",
    help=(
        "Sync ServiceNow CSM data into SQL, compute customer-success KPIs and "
        "write health scores back to accounts."
    ),
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
)

F = TypeVar("F", bound=Callable[..., Any])

ConfigOption = Annotated[
    Path | None,
    typer.Option(
        "--config",
        "-c",
        help="Config file (default: $CSM_SYNC_CONFIG, else ./config.yaml).",
        show_default=False,
    ),
]

_state: dict[str, Any] = {"debug": False}


def fail(message: str, code: int) -> None:
    """Print a one-paragraph error on stderr and exit with ``code``."""
    typer.secho(f"error: {message}", err=True, fg=typer.colors.RED)
    raise typer.Exit(code)


def handles_errors(func: F) -> F:
    """Turn csm-sync errors into a clear message and the documented exit status."""

    @wraps(func)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        try:
            return func(*args, **kwargs)
        except ConfigError as exc:
            if _state["debug"]:
                raise
            lines = "\n".join(f"  - {p}" for p in exc.problems)
            noun = "problem" if len(exc.problems) == 1 else "problems"
            typer.secho(
                f"error: invalid configuration ({len(exc.problems)} {noun}):\n{lines}",
                err=True,
                fg=typer.colors.RED,
            )
            raise typer.Exit(2) from None
        except CsmSyncError as exc:
            if _state["debug"]:
                raise
            fail(str(exc), exc.exit_code)
        except KeyboardInterrupt:
            typer.secho("interrupted", err=True)
            raise typer.Exit(130) from None

    return wrapper  # type: ignore[return-value]


def _version_callback(value: bool) -> None:
    if value:
        typer.echo(f"csm-sync {__version__}")
        raise typer.Exit()


@app.callback()
def root(
    version: Annotated[
        bool,
        typer.Option(
            "--version",
            callback=_version_callback,
            is_eager=True,
            help="Print the version and exit.",
        ),
    ] = False,
    debug: Annotated[
        bool, typer.Option("--debug", help="Show tracebacks for errors.")
    ] = False,
) -> None:
    """csm-sync: ServiceNow CSM connector and sync agent."""
    _state["debug"] = debug


def main() -> None:
    """Console-script entry point."""
    try:
        app()
    except SystemExit as exc:
        sys.exit(exc.code)


# Import order is the order of the help panels: try it, sync, KPIs, write-back,
# service.
COMMAND_MODULES = (
    "connector.emulator.commands",
    "connector.sync.commands",
    "connector.kpi.commands",
    "connector.writeback.commands",
    "connector.agent.commands",
)
# The module that registers each command, so the console script imports only
# the one it runs: the others (KPI engine, write-back, scheduler...) cost ~0.1 s
# of every start. A command missing here still works: all modules load.
COMMAND_HOME = {
    "demo": "connector.agent.commands",
    "run": "connector.agent.commands",
    "emulator": "connector.emulator.commands",
    "check": "connector.sync.commands",
    "backfill": "connector.sync.commands",
    "sync": "connector.sync.commands",
    "status": "connector.sync.commands",
    "kpis": "connector.kpi.commands",
    "report": "connector.kpi.commands",
    "install-fields": "connector.writeback.commands",
    "writeback": "connector.writeback.commands",
}


def _register_commands(argv: list[str]) -> None:
    """Import each role's commands module; each registers its commands on ``app``.

    Run as the ``csm-sync`` script with a known command, only that command's
    module is imported; help, tests and anything else get every command.
    """
    home = _home_of_command(argv)
    for module in [home] if home else COMMAND_MODULES:
        importlib.import_module(module)


def _home_of_command(argv: list[str]) -> str | None:
    if not argv or Path(argv[0]).name != "csm-sync":
        return None
    # The root options (--debug, --version, --help) take no value, so the first
    # other word is the command.
    command = next((word for word in argv[1:] if not word.startswith("-")), None)
    return COMMAND_HOME.get(command or "")


_register_commands(sys.argv)

if __name__ == "__main__":
    main()
