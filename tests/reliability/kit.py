"""Shared parts of the reliability suite: configs, the CLI, the store oracle.

Used by the CI tests in this folder and by the long-form harness
(``bench/reliability.py``), which puts ``tests/`` on ``sys.path`` first.

The oracle (:func:`store_mismatches`) rebuilds every canonical row from the
emulator's raw rows with the independent reader of ``tests/sync/helpers.py``
(plain Python, not csm-sync's coercion) and compares a content hash per row.
"""

from __future__ import annotations

import hashlib
import os
import sqlite3
import subprocess
import sys
import time
from collections.abc import Callable, Iterable
from datetime import UTC, date, datetime
from decimal import Decimal
from pathlib import Path
from typing import Any

import yaml
from sqlalchemy import select
from sync.helpers import expected_value, source_rows, walk

from connector.emulator.server import EmulatorServer
from connector.mapping.loader import load_mappings
from connector.mapping.model import Mapping
from connector.store.engine import open_store
from connector.store.models import CANONICAL_MODELS

REPO = Path(__file__).resolve().parents[2]
SHIPPED = REPO / "mappings"
CLI = str(Path(sys.executable).parent / "csm-sync")
PASSWORD_ENV = "SN_PASSWORD"
SECRET_ENV = "SN_CLIENT_SECRET"


# --- configs and the CLI ---------------------------------------------------------


def config_data(
    emu: EmulatorServer,
    store_url: str,
    *,
    auth: dict[str, Any] | None = None,
    instance: dict[str, Any] | None = None,
    sync: dict[str, Any] | None = None,
    **sections: Any,
) -> dict[str, Any]:
    """A config dict for ``emu``; the password is a ``${SN_PASSWORD}`` reference."""
    return {
        "instance": {
            "url": emu.url,
            "auth": auth
            or {
                "method": "basic",
                "username": emu.admin_user,
                "password": f"${{{PASSWORD_ENV}}}",
            },
            "page_size": 20,
            "backoff_cap_seconds": 0.05,
            **(instance or {}),
        },
        "store": {"url": store_url},
        "mappings": str(SHIPPED),
        "sync": {"lag_seconds": 0, "slice_days": 120, "workers": 2, **(sync or {})},
        **sections,
    }


def write_config(path: Path, data: dict[str, Any], *, mode: int = 0o600) -> Path:
    """Write ``data`` as YAML with owner-only permissions; returns ``path``."""
    path.write_text(yaml.safe_dump(data, sort_keys=False), encoding="utf-8")
    path.chmod(mode)
    return path


def cli_env(emu: EmulatorServer, **extra: str) -> dict[str, str]:
    """The environment a CLI child needs: the secrets the config refers to."""
    env = dict(os.environ, **extra)
    env[PASSWORD_ENV] = emu.admin_password
    env.setdefault(SECRET_ENV, emu.client_secret)
    env.pop("CSM_SYNC_CONFIG", None)
    return env


def spawn(
    args: list[str], config: Path, env: dict[str, str], log_dir: Path
) -> subprocess.Popen[bytes]:
    """Start ``csm-sync ARGS -c CONFIG``; output goes to files (no pipe stalls)."""
    log_dir.mkdir(parents=True, exist_ok=True)
    stem = f"{args[0]}-{time.monotonic_ns()}"
    out = (log_dir / f"{stem}.out").open("wb")
    err = (log_dir / f"{stem}.err").open("wb")
    try:
        return subprocess.Popen(
            [CLI, *args, "-c", str(config)], env=env, stdout=out, stderr=err
        )
    finally:
        out.close()
        err.close()


def run_cli(
    args: list[str], config: Path, env: dict[str, str], *, timeout: float = 180
) -> subprocess.CompletedProcess[str]:
    """Run ``csm-sync ARGS -c CONFIG`` to the end and capture its output."""
    return subprocess.run(
        [CLI, *args, "-c", str(config)],
        env=env,
        capture_output=True,
        text=True,
        timeout=timeout,
        check=False,
    )


# --- the store oracle --------------------------------------------------------------


def shipped_mappings(tables: Iterable[str] | None = None) -> list[Mapping]:
    return load_mappings(SHIPPED, tables=list(tables) if tables else None)


def canon(value: Any) -> str:
    """One stable text form per value, so equal values hash equal."""
    if value is None:
        return "∅"
    if isinstance(value, datetime):
        moment = value if value.tzinfo else value.replace(tzinfo=UTC)
        return moment.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S")
    if isinstance(value, date):
        return value.isoformat()
    if isinstance(value, Decimal):
        return format(value.normalize(), "f")
    if isinstance(value, bool):
        return "true" if value else "false"
    return str(value)


def row_hash(values: dict[str, Any]) -> str:
    text = "\x1f".join(f"{k}={canon(values[k])}" for k in sorted(values))
    return hashlib.sha256(text.encode()).hexdigest()


def expected_row(emu: EmulatorServer, mapping: Mapping, raw: dict[str, str]) -> dict:
    """The canonical row a raw source row must become (independent reader)."""
    row = {
        "sys_id": raw["sys_id"],
        "sys_updated_on": expected_value(raw["sys_updated_on"], "datetime"),
    }
    for column, spec in mapping.fields.items():
        value = walk(emu, mapping.source, raw, spec.field)
        if column in mapping.values and value in mapping.values[column]:
            value = str(mapping.values[column][value])
        row[column] = expected_value(value, spec.type)
    return row


def stored_rows(store_url: str, target: str) -> dict[str, dict[str, Any]]:
    store = open_store(store_url, migrate=False)
    table = CANONICAL_MODELS[target].__table__  # type: ignore[attr-defined]
    try:
        with store.engine.connect() as conn:
            return {r.sys_id: r._asdict() for r in conn.execute(select(table))}
    finally:
        store.dispose()


def store_mismatches(
    emu: EmulatorServer,
    store_url: str,
    mappings: list[Mapping],
    *,
    visible: Callable[[str, dict[str, str]], bool] | None = None,
    ignore: set[str] | frozenset[str] = frozenset(),
) -> list[str]:
    """Every way the store differs from the instance; empty when exact.

    Per mapping: source rows missing from the store, live stored rows gone from
    the source, and rows whose content hash (sys_id, sys_updated_on and every
    mapped column) differs. ``visible(table, row)`` drops rows the sync user
    cannot see (ACLs); ``ignore`` skips sys_ids a test judges itself.
    """
    problems: list[str] = []
    for mapping in mappings:
        source = source_rows(emu, mapping)
        if visible is not None:
            source = {k: r for k, r in source.items() if visible(mapping.source, r)}
        source = {k: r for k, r in source.items() if k not in ignore}
        stored = stored_rows(store_url, mapping.target)
        live = {
            k for k, r in stored.items() if r["deleted_at"] is None and k not in ignore
        }
        missing, extra = set(source) - live, live - set(source)
        if missing or extra:
            problems.append(
                f"{mapping.name}: {len(missing)} missing (e.g. {sorted(missing)[:2]}),"
                f" {len(extra)} extra (e.g. {sorted(extra)[:2]})"
            )
        differ = []
        for sys_id in set(source) & live:
            want = expected_row(emu, mapping, source[sys_id])
            have = {column: stored[sys_id][column] for column in want}
            if row_hash(want) != row_hash(have):
                diff = {
                    c: (have[c], want[c])
                    for c in want
                    if canon(have[c]) != canon(want[c])
                }
                differ.append(f"{sys_id} {diff}")
        if differ:
            problems.append(f"{mapping.name}: {len(differ)} rows differ: {differ[:2]}")
    return problems


def sqlite_path(store_url: str) -> Path:
    return Path(store_url.removeprefix("sqlite:///"))


def integrity_check(store_url: str) -> str:
    """``PRAGMA integrity_check`` of a SQLite store, read by plain sqlite3."""
    conn = sqlite3.connect(sqlite_path(store_url), timeout=30)
    try:
        return str(conn.execute("PRAGMA integrity_check").fetchone()[0])
    finally:
        conn.close()


def store_text(store_url: str) -> str:
    """Every text value of every table of a SQLite store, one per line."""
    conn = sqlite3.connect(sqlite_path(store_url), timeout=30)
    lines: list[str] = []
    try:
        tables = [
            r[0]
            for r in conn.execute("SELECT name FROM sqlite_master WHERE type='table'")
        ]
        for table in tables:
            for row in conn.execute(f'SELECT * FROM "{table}"'):
                lines.extend(str(v) for v in row if isinstance(v, str | bytes))
    finally:
        conn.close()
    return "\n".join(lines)
