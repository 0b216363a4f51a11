"""Peer: snowloader's ``reconcile`` command (its incremental pass), as documented.

Runs inside ``bench/peers/.venv-snowloader``::

    .venv-snowloader/bin/python snowloader_reconcile.py --instance URL \
        --user U --password P --table T [--query Q] --since S --out FILE

First runs ``snowloader reconcile T --query Q --since S --out FILE`` (its CLI,
in-process, unchanged). That command reads deletions from ``sys_audit_delete``
and gives up (exit 2, no report) when the instance cannot serve that table.
Only then the wrapper asks snowloader's library for the same report with
``include_deletes=False``, which its docstring gives for "where the audit is
not readable": the same connection defaults as the CLI (page size 100,
display values), added and updated rows only, ``deleted`` left empty.

The report file has the CLI's shape (``table``, ``since``, ``complete``,
``added``, ``updated``, ``deleted``) plus ``deletes_read``. Prints
``{"cli_exit": n, "fallback": bool, "added": n, "updated": n, "deleted": n}``.
"""

from __future__ import annotations

import argparse
import json
import re
import sys
from pathlib import Path

import snowloader.connection as snow_connection
from snowloader.cli import _parse_since
from snowloader.cli import main as snowloader_cli

# snowloader only accepts instance URLs with a domain name (``x.service-now.com``);
# the emulator listens on 127.0.0.1, so widen the check. Nothing else changes.
snow_connection._INSTANCE_URL_PATTERN = re.compile(r"^https?://\S+")


def cli_reconcile(args: argparse.Namespace, out: Path) -> int:
    """``snowloader reconcile`` exactly as a user types it; its exit status."""
    argv = [
        "--instance", args.instance, "--user", args.user,
        "--password", args.password,
        "reconcile", args.table, "--since", args.since, "--out", str(out),
    ]  # fmt: skip
    if args.query:
        argv += ["--query", args.query]
    return snowloader_cli(argv)


def library_reconcile(args: argparse.Namespace, out: Path) -> None:
    """The library's reconcile without deletions (the CLI has no such switch)."""
    since = _parse_since(args.since)
    with snow_connection.SnowConnection(
        instance_url=args.instance, username=args.user, password=args.password
    ) as conn:
        report = conn.reconcile(
            args.table, since=since, query=args.query or None, include_deletes=False
        )
    body = {
        "table": report.table,
        "since": report.since.strftime("%Y-%m-%d %H:%M:%S"),
        "complete": report.is_complete,
        "added": report.added,
        "updated": report.updated,
        "deleted": report.deleted,
    }
    out.write_text(json.dumps(body, ensure_ascii=False))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    for name in ("--instance", "--user", "--password", "--table", "--since"):
        parser.add_argument(name, required=True)
    parser.add_argument("--query", default="")
    parser.add_argument("--out", required=True)
    args = parser.parse_args()
    out = Path(args.out)
    out.unlink(missing_ok=True)
    status = cli_reconcile(args, out)
    fallback = not out.exists()
    if fallback:
        library_reconcile(args, out)
    report = json.loads(out.read_text())
    report["deletes_read"] = not fallback
    out.write_text(json.dumps(report, ensure_ascii=False))
    counts = {k: len(report[k]) for k in ("added", "updated", "deleted")}
    print(json.dumps({"cli_exit": status, "fallback": fallback, **counts}))
    sys.stdout.flush()


if __name__ == "__main__":
    main()
