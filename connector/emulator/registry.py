"""The live data dictionary of the emulated instance.

``schema.py`` seeds it, but at run time the metadata tables are the truth: a POST
to ``sys_dictionary`` adds a column and a POST to ``sys_db_object`` adds a table,
exactly as an admin would on a real instance. This module holds the in-memory
view of those tables that the query engine and the renderer consult.
"""

from __future__ import annotations

import hashlib
import threading
from dataclasses import dataclass, field

from connector.emulator.schema import SYSTEM_FIELDS, TABLES, FieldDef

NUMERIC_TYPES = frozenset(
    {"integer", "longint", "decimal", "float", "currency", "price", "numeric"}
)
DATE_TYPES = frozenset({"glide_date_time", "glide_date", "due_date", "glide_time"})
REFERENCE_TYPES = frozenset({"reference"})


def stable_sys_id(*parts: str) -> str:
    """A deterministic 32-hex sys_id for metadata rows (same instance, same ids)."""
    return hashlib.md5(":".join(parts).encode()).hexdigest()


@dataclass
class FieldMeta:
    """One column as ``sys_dictionary`` describes it."""

    name: str
    table: str
    internal_type: str = "string"
    reference: str = ""
    max_length: int = 40
    label: str = ""
    display: bool = False

    @property
    def is_numeric(self) -> bool:
        return self.internal_type in NUMERIC_TYPES

    @property
    def is_reference(self) -> bool:
        return self.internal_type in REFERENCE_TYPES and bool(self.reference)


@dataclass
class TableMeta:
    """One table as ``sys_db_object`` describes it."""

    name: str
    label: str
    parent: str | None = None
    created_by: str = "system"
    fields: dict[str, FieldMeta] = field(default_factory=dict)


class Registry:
    """Tables, their (inherited) fields and their choice lists."""

    def __init__(self) -> None:
        self.tables: dict[str, TableMeta] = {}
        self.choices: dict[tuple[str, str], dict[str, str]] = {}
        self._lock = threading.RLock()
        self._cache: dict[str, dict[str, FieldMeta]] = {}

    # --- mutation -----------------------------------------------------------

    def add_table(self, meta: TableMeta) -> None:
        with self._lock:
            self.tables[meta.name] = meta
            self._cache.clear()

    def add_field(self, meta: FieldMeta) -> None:
        with self._lock:
            self.tables[meta.table].fields[meta.name] = meta
            self._cache.clear()

    def remove_field(self, table: str, name: str) -> None:
        with self._lock:
            self.tables[table].fields.pop(name, None)
            self._cache.clear()

    def add_choice(self, table: str, element: str, value: str, label: str) -> None:
        with self._lock:
            self.choices.setdefault((table, element), {})[value] = label

    # --- lookups ------------------------------------------------------------

    def has_table(self, name: str) -> bool:
        return name in self.tables

    def ancestry(self, table: str) -> list[str]:
        """The table and its super classes, nearest first."""
        chain: list[str] = []
        current: str | None = table
        while current and current in self.tables and current not in chain:
            chain.append(current)
            current = self.tables[current].parent
        return chain

    def descendants(self, table: str) -> list[str]:
        """Every table extending ``table`` (any depth), not including it."""
        found: list[str] = []
        for name, meta in self.tables.items():
            if name != table and table in self.ancestry(meta.parent or ""):
                found.append(name)
        return sorted(found)

    def fields(self, table: str) -> dict[str, FieldMeta]:
        """All fields of a table including inherited ones (child wins)."""
        with self._lock:
            cached = self._cache.get(table)
            if cached is None:
                cached = {}
                for name in reversed(self.ancestry(table)):
                    cached.update(self.tables[name].fields)
                self._cache[table] = cached
            return cached

    def field(self, table: str, name: str) -> FieldMeta | None:
        return self.fields(table).get(name)

    def choice_list(self, table: str, element: str) -> dict[str, str] | None:
        """The choice list for a field, looked up the hierarchy."""
        for name in self.ancestry(table):
            found = self.choices.get((name, element))
            if found:
                return found
        return None

    def display_field(self, table: str) -> str | None:
        """The field whose value stands for a record (``Display`` flag, then name)."""
        fields = self.fields(table)
        for name in self.ancestry(table):
            for meta in self.tables[name].fields.values():
                if meta.display:
                    return meta.name
        for fallback in ("name", "number"):
            if fallback in fields:
                return fallback
        return None

    def label(self, table: str) -> str:
        meta = self.tables.get(table)
        return meta.label if meta else table


def field_meta_from_def(table: str, fdef: FieldDef) -> FieldMeta:
    """Convert a schema.py field definition into a runtime field."""
    return FieldMeta(
        name=fdef.name,
        table=table,
        internal_type=fdef.internal_type,
        reference=fdef.reference or "",
        max_length=fdef.max_length,
        label=fdef.label or fdef.name.replace("_", " ").capitalize(),
        display=fdef.display,
    )


def schema_system_fields(table: str) -> list[FieldMeta]:
    """The ``sys_*`` fields every root table carries."""
    return [field_meta_from_def(table, f) for f in SYSTEM_FIELDS]


def registry_from_schema() -> Registry:
    """Build the registry straight from ``schema.py`` (used for a fresh instance)."""
    registry = Registry()
    for tdef in TABLES:
        meta = TableMeta(tdef.name, tdef.label, tdef.parent)
        if tdef.parent is None:
            for fmeta in schema_system_fields(tdef.name):
                meta.fields[fmeta.name] = fmeta
        for fdef in tdef.fields:
            meta.fields[fdef.name] = field_meta_from_def(tdef.name, fdef)
            for value, label in fdef.choices:
                registry.add_choice(tdef.name, fdef.name, value, label)
        registry.add_table(meta)
    return registry
