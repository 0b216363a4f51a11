"""``csm-sync emulator``: serve an emulated instance until Ctrl-C."""

from __future__ import annotations

import errno
import ipaddress
import json
import logging
import signal
import socket
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import date
from pathlib import Path
from typing import Annotated
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

import typer
from rich.console import Console
from rich.progress import Progress, SpinnerColumn, TextColumn

from connector.cli import app, fail, handles_errors
from connector.emulator.faults import FaultSettings, RateLimitRule
from connector.emulator.instance import ProgressFn

LOG = logging.getLogger(__name__)


def is_loopback(host: str) -> bool:
    """True for ``localhost`` and loopback addresses (127/8, ::1)."""
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


@contextmanager
def generation_progress(console: Console) -> Iterator[ProgressFn | None]:
    """A rich progress line while the dataset is generated (terminal only)."""
    if not console.is_terminal:
        yield None
        return
    columns = (SpinnerColumn(), TextColumn("{task.description}"))
    with Progress(*columns, console=console, transient=True) as progress:
        task = progress.add_task("Generating dataset", total=None)
        loaded = {"rows": 0}

        def report(table: str, rows: int) -> None:
            loaded["rows"] += rows
            progress.update(
                task,
                description=f"Generating dataset: {loaded['rows']:,} rows ({table})",
            )

        yield report


def _faults(
    *,
    latency_ms: float,
    rate_429: float,
    retry_after: int,
    rate_500: float,
    rate_502: float,
    rate_503: float,
    rate_202: float,
    rate_html: float,
    rate_truncated: float,
    rate_cancelled: float,
    max_page_rows: int | None,
    rate_hang: float,
    hang_seconds: float,
    clock_skew: float,
    fault_seed: int,
    faults_on_writes: bool,
    rate_limit: int | None,
    invalid_query_no_rows: bool,
    unstable_order: bool,
    session_queue_limit: int | None,
) -> FaultSettings:
    rules = [RateLimitRule(limit=rate_limit)] if rate_limit else []
    return FaultSettings(
        latency_ms=latency_ms,
        rate_429=rate_429,
        retry_after=retry_after if retry_after >= 0 else None,
        rate_500=rate_500,
        rate_502=rate_502,
        rate_503=rate_503,
        rate_202_empty=rate_202,
        rate_html=rate_html,
        rate_truncated=rate_truncated,
        rate_cancelled=rate_cancelled,
        max_page_rows=max_page_rows,
        rate_hang=rate_hang,
        hang_seconds=hang_seconds,
        clock_skew_seconds=clock_skew,
        seed=fault_seed,
        include_writes=faults_on_writes,
        rate_limit_rules=rules,
        invalid_query_returns_no_rows=invalid_query_no_rows,
        unstable_order=unstable_order,
        session_queue_limit=session_queue_limit,
    )


Rate = Annotated[float, typer.Option(min=0.0, max=1.0, help="Probability 0..1.")]


@app.command("emulator", rich_help_panel="Try it")
@handles_errors
def emulator_command(
    host: Annotated[str, typer.Option(help="Address to bind.")] = "127.0.0.1",
    port: Annotated[int, typer.Option(help="Port (0 = any free port).")] = 8080,
    seed: Annotated[int, typer.Option(help="Dataset seed.")] = 7,
    accounts: Annotated[int, typer.Option(help="Accounts to generate.")] = 200,
    as_of: Annotated[
        str | None, typer.Option("--as-of", help="Dataset end date YYYY-MM-DD.")
    ] = None,
    db: Annotated[
        Path | None, typer.Option(help="SQLite file; reused when it has data.")
    ] = None,
    tls: Annotated[bool, typer.Option("--tls", help="Serve HTTPS.")] = False,
    tls_dir: Annotated[
        Path | None, typer.Option(help="Where to write ca.pem and the server cert.")
    ] = None,
    truth: Annotated[
        Path | None, typer.Option(help="Write the dataset truth as JSON here.")
    ] = None,
    admin_password: Annotated[str, typer.Option(help="Password of 'admin'.")] = "admin",
    integration_password: Annotated[
        str, typer.Option(help="Password of 'integration'.")
    ] = "integration",
    acl_password: Annotated[
        str, typer.Option(help="Password of 'acl_limited'.")
    ] = "acl_limited",
    client_id: Annotated[str, typer.Option(help="OAuth client id.")] = "csm-sync",
    client_secret: Annotated[
        str, typer.Option(help="OAuth client secret.")
    ] = "csm-sync-secret",
    allow_remote: Annotated[
        bool, typer.Option("--allow-remote", help="Allow a non-loopback --host.")
    ] = False,
    token_lifetime: Annotated[int, typer.Option(help="OAuth expires_in (s).")] = 1800,
    latency_ms: Annotated[float, typer.Option(help="Delay per request.")] = 0.0,
    rate_429: Rate = 0.0,
    retry_after: Annotated[
        int, typer.Option(help="Retry-After of injected 429s (-1 = none).")
    ] = 60,
    rate_500: Rate = 0.0,
    rate_502: Rate = 0.0,
    rate_503: Rate = 0.0,
    rate_202: Rate = 0.0,
    rate_html: Rate = 0.0,
    rate_truncated: Rate = 0.0,
    rate_cancelled: Rate = 0.0,
    max_page_rows: Annotated[
        int | None, typer.Option(help="Cancel pages asking for more rows.")
    ] = None,
    rate_hang: Rate = 0.0,
    hang_seconds: Annotated[float, typer.Option(help="Sleep of a hang.")] = 0.0,
    clock_skew: Annotated[float, typer.Option(help="Server clock offset (s).")] = 0.0,
    fault_seed: Annotated[int, typer.Option(help="Seed of the fault dice.")] = 0,
    faults_on_writes: Annotated[
        bool, typer.Option(help="Also inject faults into writes.")
    ] = False,
    rate_limit: Annotated[
        int | None, typer.Option(help="Rate-limit rule: requests/hour, all users.")
    ] = None,
    invalid_query_no_rows: Annotated[
        bool, typer.Option(help="glide.invalid_query.returns_no_rows=true")
    ] = False,
    unstable_order: Annotated[
        bool, typer.Option(help="Break sort ties (and no-ORDERBY order) at random.")
    ] = False,
    session_queue_limit: Annotated[
        int | None,
        typer.Option(help="Requests that may queue on one JSESSIONID before 202."),
    ] = None,
    user_tz: Annotated[
        list[str] | None,
        typer.Option("--user-tz", help="USER=Area/City: a user's time zone."),
    ] = None,
    mutate_rate: Annotated[
        float, typer.Option(help="Background updates/deletes per second.")
    ] = 0.0,
) -> None:
    """Serve an emulated ServiceNow instance until Ctrl-C."""
    from connector.emulator.server import EmulatorServer

    if not is_loopback(host) and not allow_remote:
        fail(
            f"--host {host} is not a loopback address; the emulator has well-known "
            "passwords, so pass --allow-remote to expose it on purpose",
            2,
        )
    _check_port_free(host, port)
    day = _parse_day(as_of)
    zones = _parse_zones(user_tz or [])
    if db is not None and not db.parent.is_dir():
        fail(f"--db {db}: folder {db.parent} does not exist; create it first", 2)
    faults = _faults(
        latency_ms=latency_ms, rate_429=rate_429, retry_after=retry_after,
        rate_500=rate_500, rate_502=rate_502, rate_503=rate_503, rate_202=rate_202,
        rate_html=rate_html, rate_truncated=rate_truncated,
        rate_cancelled=rate_cancelled, max_page_rows=max_page_rows,
        rate_hang=rate_hang, hang_seconds=hang_seconds, clock_skew=clock_skew,
        fault_seed=fault_seed, faults_on_writes=faults_on_writes,
        rate_limit=rate_limit, invalid_query_no_rows=invalid_query_no_rows,
        unstable_order=unstable_order, session_queue_limit=session_queue_limit,
    )  # fmt: skip
    console = Console(stderr=True)
    with generation_progress(console) as progress:
        server = EmulatorServer(
            accounts=accounts,
            seed=seed,
            as_of=day,
            tls=tls,
            db_path=str(db) if db else None,
            host=host,
            port=port,
            tls_dir=str(tls_dir) if tls_dir else None,
            faults=faults,
            progress=progress,
            admin_password=admin_password,
            integration_password=integration_password,
            acl_password=acl_password,
            client_id=client_id,
            client_secret=client_secret,
            token_lifetime_s=token_lifetime,
            user_time_zones=zones,
        )
    if truth is not None:
        truth.write_text(json.dumps(server.instance.truth, indent=2, default=str))
    if mutate_rate > 0:
        server.instance.start_mutator(mutate_rate, seed=seed)
    _banner(server)
    signal.signal(signal.SIGTERM, _interrupt)
    try:
        server.serve_forever()
    except KeyboardInterrupt:
        typer.echo("stopping", err=True)
    finally:
        server.stop()


def _check_port_free(host: str, port: int) -> None:
    """Fail with a sentence when ``host:port`` cannot be bound.

    Checked before the dataset is generated, which takes a while; left to the
    server, the bind fails later with werkzeug's own text and no ``error:``.
    """
    if port == 0:
        return
    try:
        family = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)[0][0]
        with socket.socket(family, socket.SOCK_STREAM) as probe:
            # As the server does, so a port in TIME_WAIT does not count as taken.
            probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
            probe.bind((host, port))
    except OSError as exc:
        if exc.errno == errno.EADDRINUSE:
            fail(
                f"port {port} is in use on {host}; pick another with --port "
                "(--port 0 takes any free one)",
                2,
            )
        reason = exc.strerror or str(exc)
        fail(f"cannot listen on {host}:{port} ({reason}); pick another --port", 2)


def _interrupt(signum: int, frame: object) -> None:
    raise KeyboardInterrupt


def _parse_zones(pairs: list[str]) -> dict[str, str]:
    zones: dict[str, str] = {}
    for pair in pairs:
        user, _, zone = pair.partition("=")
        try:
            ZoneInfo(zone)
        except (ValueError, ZoneInfoNotFoundError):
            fail(
                f"--user-tz {pair!r}: expected USER=Area/City, e.g. admin=Europe/Paris",
                2,
            )
        zones[user] = zone
    return zones


def _parse_day(raw: str | None) -> date | None:
    if raw is None:
        return None
    try:
        return date.fromisoformat(raw)
    except ValueError:
        fail(f"--as-of {raw!r} is not a date; expected YYYY-MM-DD", 2)
    return None


def _banner(server: object) -> None:
    from connector.emulator.server import EmulatorServer

    assert isinstance(server, EmulatorServer)
    lines = [
        f"csm-sync emulator listening on {server.url}",
        f"  admin:        {server.admin_user} / {server.admin_password}",
        f"  integration:  {server.integration_user} / {server.integration_password}",
        f"  acl-limited:  {server.acl_user} / {server.acl_password}",
        f"  restricted:   {server.restricted_user} / {server.restricted_password}",
        f"  OAuth client: {server.client_id} / {server.client_secret}",
    ]
    if server.ca_file:
        lines.append(f"  CA file:      {server.ca_file}")
    if server.instance.reused:
        lines.append(f"  database:     {server.instance.store.path} (reused as is)")
    lines.append("Press Ctrl-C to stop.")
    typer.echo("\n".join(lines))
    sys.stdout.flush()
