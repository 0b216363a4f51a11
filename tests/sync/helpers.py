"""Helpers for sync tests: settings for an emulator, a movable clock, an oracle.

The oracle (:func:`expected_value`) re-reads source rows with plain Python, not
with csm-sync's coercion, so a coercion bug cannot hide itself.
"""

from __future__ import annotations

import threading
from datetime import UTC, date, datetime, timedelta
from decimal import Decimal
from pathlib import Path
from typing import Any

from sqlalchemy import func, select

from connector.config import Settings, settings_from_dict
from connector.emulator.server import EmulatorServer
from connector.mapping.loader import load_mappings
from connector.mapping.model import Mapping
from connector.store.engine import open_store
from connector.store.models import CANONICAL_MODELS, Case, Interaction

SHIPPED = Path(__file__).resolve().parents[2] / "mappings"
EPOCH = datetime(1970, 1, 1, tzinfo=UTC)


class Clock:
    """A server clock tests move by hand (time is injected, not slept)."""

    def __init__(self, start: datetime | None = None) -> None:
        base = start or datetime.now(UTC).replace(microsecond=0)
        self.now = base
        self._lock = threading.Lock()

    def __call__(self) -> datetime:
        with self._lock:
            return self.now

    def advance(self, seconds: float = 2) -> None:
        with self._lock:
            self.now += timedelta(seconds=seconds)


def make_settings(
    emu: EmulatorServer,
    store_url: str,
    *,
    mappings: Path = SHIPPED,
    instance: dict[str, Any] | None = None,
    **sync: Any,
) -> Settings:
    """Settings for the emulator's admin user and the given store."""
    return settings_from_dict(
        {
            "instance": {
                "url": emu.url,
                "auth": {
                    "method": "basic",
                    "username": emu.admin_user,
                    "password": emu.admin_password,
                },
                "backoff_cap_seconds": 0.05,
                **(instance or {}),
            },
            "store": {"url": store_url},
            "mappings": str(mappings),
            "sync": {"lag_seconds": 0, "workers": 2, **sync},
        }
    )


def stored(store_url: str, target: str) -> dict[str, dict[str, Any]]:
    """Every stored row of a canonical table, by sys_id."""
    store = open_store(store_url, migrate=False)
    table = CANONICAL_MODELS[target].__table__  # type: ignore[attr-defined]
    try:
        with store.engine.connect() as conn:
            return {r.sys_id: r._asdict() for r in conn.execute(select(table))}
    finally:
        store.dispose()


def live_ids(store_url: str, target: str) -> set[str]:
    """sys_ids of stored rows not marked deleted."""
    return {k for k, r in stored(store_url, target).items() if r["deleted_at"] is None}


def shipped(name: str) -> Mapping:
    (mapping,) = load_mappings(SHIPPED, tables=[name])
    return mapping


def source_rows(emu: EmulatorServer, mapping: Mapping) -> dict[str, dict[str, str]]:
    """The emulator's rows for a mapping (its filter applied), by sys_id."""
    instance = emu.instance
    rows = instance.select(
        mapping.source, instance.compile(mapping.source, mapping.filter)
    )
    return {row["sys_id"]: row for row in rows}


def walk(emu: EmulatorServer, table: str, row: dict[str, str], path: str) -> str:
    """Follow a dot-walk (``entitlement.account``) through the emulator's rows."""
    *hops, last = path.split(".")
    current_table, current = table, row
    for hop in hops:
        reference = emu.instance.registry.fields(current_table)[hop].reference
        target = (
            emu.instance.get(reference, current.get(hop, ""))
            if current.get(hop)
            else None
        )
        if target is None:
            return ""
        current_table, current = reference, target
    return current.get(last, "")


def expected_value(raw: str, kind: str) -> Any:
    """The typed value a raw Table API string must become (independent oracle)."""
    if raw == "":
        return None
    if kind in ("string", "reference", "choice"):
        return raw
    if kind == "integer":
        return int(raw)
    if kind == "decimal":
        return Decimal(raw)
    if kind == "boolean":
        return {"true": True, "false": False}[raw]
    if kind == "datetime":
        return datetime.strptime(raw, "%Y-%m-%d %H:%M:%S").replace(tzinfo=UTC)
    if kind == "date":
        return date.fromisoformat(raw)
    if kind == "duration":
        moment = datetime.strptime(raw, "%Y-%m-%d %H:%M:%S").replace(tzinfo=UTC)
        return int((moment - EPOCH).total_seconds())
    raise AssertionError(kind)


def assert_store_matches_source(
    emu: EmulatorServer, store_url: str, mapping: Mapping
) -> int:
    """Every source row stored once with every mapped value right; returns the count."""
    source = source_rows(emu, mapping)
    local = {
        k: r
        for k, r in stored(store_url, mapping.target).items()
        if r["deleted_at"] is None
    }

    assert set(local) == set(source), (
        f"{mapping.name}: missing {len(set(source) - set(local))}, "
        f"extra {len(set(local) - set(source))}"
    )
    for sys_id, raw in source.items():
        row = local[sys_id]
        assert row["sys_updated_on"] == expected_value(
            raw["sys_updated_on"], "datetime"
        )
        for column, spec in mapping.fields.items():
            value = walk(emu, mapping.source, raw, spec.field)
            want = expected_value(value, spec.type)
            assert row[column] == want, (
                mapping.name,
                sys_id,
                column,
                row[column],
                want,
            )
    return len(source)


def stored_count(store_url: str) -> int:
    """Cases plus interactions stored so far; 0 while the store cannot be read yet."""
    store = open_store(store_url, migrate=False)
    try:
        with store.engine.connect() as conn:
            return sum(
                int(conn.execute(select(func.count()).select_from(m)).scalar() or 0)
                for m in (Case, Interaction)
            )
    except Exception:
        return 0
    finally:
        store.dispose()
