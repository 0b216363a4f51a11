"""Rows of ``sys_db_object``, ``sys_dictionary`` and ``sys_choice``, both ways.

A fresh instance writes these rows from ``schema.py``; a reused database file
rebuilds its :class:`Registry` from them, so columns and tables added over the
API survive a restart.
"""

from __future__ import annotations

from connector.emulator.registry import (
    FieldMeta,
    Registry,
    TableMeta,
    stable_sys_id,
)

META_TABLES = ("sys_db_object", "sys_dictionary", "sys_choice")


def _bool(value: bool) -> str:
    return "true" if value else "false"


def table_row(meta: TableMeta) -> dict[str, str]:
    """The ``sys_db_object`` row of a table."""
    parent = stable_sys_id("sys_db_object", meta.parent) if meta.parent else ""
    return {
        "sys_id": stable_sys_id("sys_db_object", meta.name),
        "name": meta.name,
        "label": meta.label,
        "super_class": parent,
    }


def collection_row(meta: TableMeta) -> dict[str, str]:
    """The ``sys_dictionary`` row that stands for the table itself."""
    return {
        "sys_id": stable_sys_id("sys_dictionary", meta.name, ""),
        "name": meta.name,
        "element": "",
        "column_label": meta.label,
        "internal_type": "collection",
        "max_length": "40",
        "reference": "",
        "mandatory": "false",
        "read_only": "false",
        "display": "false",
        "active": "true",
        "choice": "",
    }


def field_row(meta: FieldMeta, has_choices: bool) -> dict[str, str]:
    """The ``sys_dictionary`` row of one column."""
    return {
        "sys_id": stable_sys_id("sys_dictionary", meta.table, meta.name),
        "name": meta.table,
        "element": meta.name,
        "column_label": meta.label,
        "internal_type": meta.internal_type,
        "max_length": str(meta.max_length),
        "reference": meta.reference,
        "mandatory": "false",
        "read_only": _bool(meta.name.startswith("sys_")),
        "display": _bool(meta.display),
        "active": "true",
        "choice": "1" if has_choices else "",
    }


def choice_row(table: str, element: str, value: str, label: str, seq: int) -> dict:
    """One ``sys_choice`` row (English)."""
    return {
        "sys_id": stable_sys_id("sys_choice", table, element, value),
        "name": table,
        "element": element,
        "value": value,
        "label": label,
        "sequence": str(seq),
        "language": "en",
        "inactive": "false",
    }


def metadata_rows(registry: Registry) -> dict[str, list[dict[str, str]]]:
    """Every metadata row describing ``registry``."""
    out: dict[str, list[dict[str, str]]] = {t: [] for t in META_TABLES}
    for meta in registry.tables.values():
        out["sys_db_object"].append(table_row(meta))
        out["sys_dictionary"].append(collection_row(meta))
        for fmeta in meta.fields.values():
            has = (meta.name, fmeta.name) in registry.choices
            out["sys_dictionary"].append(field_row(fmeta, has))
    for (table, element), choices in registry.choices.items():
        for seq, (value, label) in enumerate(choices.items()):
            out["sys_choice"].append(choice_row(table, element, value, label, seq * 10))
    return out


def _to_int(value: str, default: int) -> int:
    try:
        return int(value)
    except ValueError:
        return default


def registry_from_rows(
    tables: list[dict[str, str]],
    dictionary: list[dict[str, str]],
    choices: list[dict[str, str]],
) -> Registry:
    """Rebuild the registry from stored metadata rows."""
    registry = Registry()
    names = {row["sys_id"]: row["name"] for row in tables}
    for row in tables:
        parent = names.get(row.get("super_class", "")) or None
        creator = row.get("sys_created_by") or "system"
        registry.add_table(
            TableMeta(row["name"], row.get("label", ""), parent, creator)
        )
    for row in dictionary:
        if not row.get("element") or row["name"] not in registry.tables:
            continue
        registry.add_field(
            FieldMeta(
                name=row["element"],
                table=row["name"],
                internal_type=row.get("internal_type") or "string",
                reference=row.get("reference", ""),
                max_length=_to_int(row.get("max_length", ""), 40),
                label=row.get("column_label", ""),
                display=row.get("display") == "true",
            )
        )
    ordered = sorted(choices, key=lambda r: _to_int(r.get("sequence", ""), 0))
    for row in ordered:
        if row.get("inactive") != "true":
            registry.add_choice(row["name"], row["element"], row["value"], row["label"])
    return registry
