"""Rows to Table API JSON for each ``sysparm_display_value`` mode (§4.2).

Shapes follow TABLE_API.md §4.2 and samples S1–S3: every value a string;
references as ``{link, value}``, ``{display_value, link}`` or all three; a
choice without a label displays as JSON null, like the recorded instances do.
"""

from __future__ import annotations

from collections import defaultdict
from datetime import UTC, datetime, tzinfo
from typing import TYPE_CHECKING, Any

from connector.emulator.registry import FieldMeta
from connector.emulator.storage import quote_ident

if TYPE_CHECKING:
    from connector.emulator.instance import Instance

_CHUNK = 500


def duration_prose(value: str) -> str:
    """``1970-01-22 21:46:21`` -> ``21 Days 21 Hours 46 Minutes``."""
    try:
        day = int(value[8:10]) - 1
        hours, minutes, seconds = (int(p) for p in value[11:19].split(":"))
    except (ValueError, IndexError):
        return value
    parts = [(day, "Day"), (hours, "Hour"), (minutes, "Minute")]
    words = [f"{n} {unit}{'s' if n != 1 else ''}" for n, unit in parts if n]
    if not words:
        return f"{seconds} Second{'s' if seconds != 1 else ''}"
    return " ".join(words)


def local_time(value: str, tz: tzinfo) -> str:
    """A stored UTC date-time shown in the user's zone (C04)."""
    try:
        moment = datetime.strptime(value, "%Y-%m-%d %H:%M:%S").replace(tzinfo=UTC)
    except ValueError:
        return value
    return moment.astimezone(tz).strftime("%Y-%m-%d %H:%M:%S")


class Renderer:
    """Renders rows of one table for one request."""

    def __init__(
        self, instance: Instance, base_url: str, tz: tzinfo | None = None
    ) -> None:
        self.instance = instance
        self.registry = instance.registry
        self.base_url = base_url.rstrip("/")
        self.tz = tz  # display values of date-times are in the user's zone

    def meta_for(self, table: str, key: str) -> FieldMeta | None:
        if "." in key:
            resolved = self.instance.compiler.resolve(table, key)
            return resolved[1] if resolved else None
        return self.registry.field(table, key)

    def render(
        self,
        table: str,
        rows: list[dict[str, str]],
        keys: list[str],
        *,
        mode: str = "false",
        exclude_link: bool = False,
    ) -> list[dict[str, Any]]:
        """Rows as JSON objects with exactly ``keys`` (in that order)."""
        metas = {k: self.meta_for(table, k) for k in keys}
        if mode == "false":
            return self._raw(rows, keys, metas, exclude_link)
        displays: dict[str, dict[str, str]] = {}
        if mode in ("true", "all"):
            displays = self._reference_displays(rows, metas)
        return [
            {
                key: self._cell(
                    table, row.get(key, ""), metas[key], mode, exclude_link, displays
                )
                for key in keys
            }
            for row in rows
        ]

    def _raw(
        self,
        rows: list[dict[str, str]],
        keys: list[str],
        metas: dict[str, FieldMeta | None],
        exclude_link: bool,
    ) -> list[dict[str, Any]]:
        """Fast path for display_value=false: stored strings, links if wanted."""
        out = [{k: row.get(k, "") for k in keys} for row in rows]
        if exclude_link:
            return out
        refs = [(k, m.reference) for k, m in metas.items() if m and m.is_reference]
        prefix = f"{self.base_url}/api/now/table/"
        for row in out:
            for key, target in refs:
                value = row[key]
                if value:
                    row[key] = {"link": f"{prefix}{target}/{value}", "value": value}
        return out

    def _cell(
        self,
        table: str,
        value: str,
        meta: FieldMeta | None,
        mode: str,
        exclude_link: bool,
        displays: dict[str, dict[str, str]],
    ) -> Any:
        if meta is not None and meta.is_reference:
            return self._reference(value, meta, mode, exclude_link, displays)
        if mode == "false":
            return value
        shown = self.display(table, value, meta)
        if mode == "true":
            return shown
        return {"display_value": shown, "value": value}

    def _reference(
        self,
        value: str,
        meta: FieldMeta,
        mode: str,
        exclude_link: bool,
        displays: dict[str, dict[str, str]],
    ) -> Any:
        link = f"{self.base_url}/api/now/table/{meta.reference}/{value}"
        shown = displays.get(meta.reference, {}).get(value, "")
        if mode == "false":
            if not value or exclude_link:
                return value
            return {"link": link, "value": value}
        if mode == "true":
            if not value or exclude_link:
                return shown if value else ""
            return {"display_value": shown, "link": link}
        if not value:
            return {"display_value": "", "value": ""}
        if exclude_link:
            return {"display_value": shown, "value": value}
        return {"display_value": shown, "link": link, "value": value}

    def display(self, table: str, value: str, meta: FieldMeta | None) -> str | None:
        """The display value of a non-reference field."""
        if meta is None:
            return value
        owner = meta.table if meta.table in self.registry.tables else table
        choices = self.registry.choice_list(owner, meta.name)
        if choices:
            return choices.get(value)
        kind = meta.internal_type
        if kind == "sys_class_name":
            return self.registry.label(value) if value else value
        if kind == "due_date" and not value:
            return "UNKNOWN"
        if kind in ("glide_date_time", "due_date") and value and self.tz:
            return local_time(value, self.tz)
        if kind == "glide_duration" and value:
            return duration_prose(value)
        if kind in ("integer", "longint") and value:
            try:
                return f"{int(value):,}"
            except ValueError:
                return value
        if kind in ("currency", "price") and value:
            try:
                return f"${float(value):,.2f}"
            except ValueError:
                return value
        return value

    def _reference_displays(
        self, rows: list[dict[str, str]], metas: dict[str, FieldMeta | None]
    ) -> dict[str, dict[str, str]]:
        """Display values of every referenced record on the page, per target."""
        wanted: dict[str, set[str]] = defaultdict(set)
        for key, meta in metas.items():
            if meta is not None and meta.is_reference:
                wanted[meta.reference].update(r.get(key, "") for r in rows)
        found: dict[str, dict[str, str]] = {}
        for target, ids in wanted.items():
            found[target] = self._lookup(target, sorted(i for i in ids if i))
        return found

    def _lookup(self, target: str, ids: list[str]) -> dict[str, str]:
        column = self.registry.display_field(target)
        if not ids or column is None or not self.registry.has_table(target):
            return {}
        out: dict[str, str] = {}
        source = self.instance.source(target)
        for start in range(0, len(ids), _CHUNK):
            chunk = ids[start : start + _CHUNK]
            marks = ",".join("?" * len(chunk))
            sql = (
                f"SELECT sys_id, {quote_ident(column)} FROM {source}"
                f" WHERE sys_id IN ({marks})"
            )
            out.update(dict(self.instance.store.query(sql, chunk)))
        return out
