"""Check mappings against the instance's ``sys_dictionary`` and load choice labels.

The Table API silently drops unknown field names: a misspelt filter returns the
whole table and an unknown ``sysparm_fields`` entry just never comes back (C09).
So every name a mapping uses (filter, fields, dot-walks, extra, key, cursor) is
looked up in the dictionary of its table, parents included, before any sync;
an unknown name is an error naming the file, the field and the table. Declared
types are cross-checked with ``internal_type`` (C07).
"""

from __future__ import annotations

import re
from collections.abc import Callable
from collections.abc import Mapping as AbcMapping
from typing import Any, Protocol

from connector.errors import Problem
from connector.mapping.model import Mapping

# Mapping types a dictionary internal_type may be read as; unlisted types allow all.
ALLOWED_TYPES: dict[str, set[str]] = {
    "glide_date_time": {"datetime"},
    "due_date": {"datetime"},
    "glide_date": {"date"},
    "glide_duration": {"duration"},
    "timer": {"duration"},
    "boolean": {"boolean"},
    "integer": {"integer", "choice", "decimal"},
    "longint": {"integer", "decimal"},
    "decimal": {"decimal"},
    "float": {"decimal"},
    "currency": {"decimal"},
    "price": {"decimal"},
    "reference": {"reference"},
    "GUID": {"reference", "string"},
    "document_id": {"reference", "string"},
    "choice": {"choice", "string"},
    "string": {"string", "choice", "reference"},
    "table_name": {"string", "choice"},
    "email": {"string"},
    "sys_class_name": {"string", "choice"},
}

# One condition of an encoded query starts with a field name then an operator.
_CONDITION_FIELD = re.compile(r"^([a-z][a-z0-9_]*(?:\.[a-z][a-z0-9_]*)*)")
_NOT_FIELDS = ("ORDERBY", "GROUPBY", "RLQUERY", "ENDRLQUERY")


class FieldInfoLike(Protocol):
    """What the client's dictionary entries provide."""

    name: str
    internal_type: str
    reference: str | None


DictionaryLookup = Callable[[str], AbcMapping[str, Any]]


def filter_fields(query: str) -> list[str]:
    """The field names an encoded query refers to (``^``, ``^OR``, ``^NQ`` split)."""
    names = []
    for part in re.split(r"\^NQ|\^OR|\^", query or ""):
        part = part.strip()
        if not part or part == "EQ" or part.startswith(_NOT_FIELDS):
            continue
        match = _CONDITION_FIELD.match(part)
        if match:
            names.append(match.group(1))
    return list(dict.fromkeys(names))


def check_against_dictionary(
    mapping: Mapping, lookup: DictionaryLookup
) -> list[Problem]:
    """Problems with every field name and type the mapping uses on the instance.

    Args:
        mapping: a loaded mapping.
        lookup: table name → {element: FieldInfo} (parents included), e.g. the
            client's ``dictionary``; returns an empty mapping for an unknown table.
    """
    source = str(mapping.path)
    columns = lookup(mapping.source)
    if not columns:
        return [
            Problem(
                source,
                "source",
                f"table {mapping.source!r} does not exist on the instance "
                "(no sys_dictionary entries)",
            )
        ]

    problems: list[Problem] = []
    uses = [("key", mapping.key), ("cursor", mapping.cursor)]
    uses += [("filter", name) for name in filter_fields(mapping.filter)]
    uses += [
        (f"fields.{col}.field", spec.field) for col, spec in mapping.fields.items()
    ]
    uses += [(f"extra[{i}]", name) for i, name in enumerate(mapping.extra)]
    for key, name in uses:
        info, problem = resolve_field(
            mapping.source, name, lookup, source=source, key=key
        )
        if problem:
            problems.append(problem)
            continue
        if key.startswith("fields."):
            column = key.split(".")[1]
            problems += _check_type(mapping, column, info, source)
    return problems


def resolve_field(
    table: str, name: str, lookup: DictionaryLookup, *, source: str, key: str
) -> tuple[Any, Problem | None]:
    """Follow a (dot-walked) field name through the dictionary to its entry."""
    current, info = table, None
    parts = name.split(".")
    for depth, part in enumerate(parts):
        columns = lookup(current)
        info = columns.get(part) if columns else None
        if info is None:
            return None, Problem(
                source,
                key,
                f"field {part!r} does not exist on table {current!r} "
                f"(sys_dictionary, parent tables included)"
                + (f" in {name!r}" if len(parts) > 1 else ""),
            )
        if depth < len(parts) - 1:
            if not getattr(info, "reference", None):
                return None, Problem(
                    source,
                    key,
                    f"field {part!r} on table {current!r} is not a reference, "
                    f"so {name!r} cannot dot-walk through it",
                )
            current = info.reference
    return info, None


def _check_type(mapping: Mapping, column: str, info: Any, source: str) -> list[Problem]:
    spec = mapping.fields[column]
    internal = getattr(info, "internal_type", "") or ""
    allowed = ALLOWED_TYPES.get(internal)
    if allowed is None or spec.type in allowed:
        return []
    return [
        Problem(
            source,
            f"fields.{column}.type",
            f"field {spec.field!r} is {internal!r} on the instance; expected type "
            f"{' or '.join(sorted(allowed))}, got {spec.type!r}",
        )
    ]
