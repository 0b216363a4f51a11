"""The metadata changes ``install-fields`` makes, as plain records.

One list serves both outputs: the installer sends the records that the
instance lacks, the update-set writer serialises all of them. Each change knows
its identity (how to recognise it on the instance) so a second run creates
nothing.
"""

from __future__ import annotations

from dataclasses import dataclass

from connector.config import Settings
from connector.writeback.fields import (
    ACCOUNT_TABLE,
    HISTORY_LABEL,
    HISTORY_TABLE,
    FieldSpec,
    account_fields,
    history_fields,
)

# Appended after the existing form/list entries; the installer offsets these.
LAYOUT_TABLES = ("sys_ui_element", "sys_ui_list_element")


@dataclass(frozen=True)
class Change:
    """One metadata record to create, and the columns that identify it."""

    table: str
    record: dict[str, str]
    key_fields: tuple[str, ...]
    summary: str

    @property
    def key(self) -> tuple[str, ...]:
        return tuple(self.record.get(f, "") for f in self.key_fields)


def dictionary_record(spec: FieldSpec) -> dict[str, str]:
    """The ``sys_dictionary`` row that creates a column (TABLE_API §11.2)."""
    return {
        "name": spec.table,
        "element": spec.element,
        "column_label": spec.label,
        "internal_type": spec.internal_type,
        "max_length": str(spec.max_length),
        "reference": spec.reference,
        "choice": "1" if spec.choices else "",
        "active": "true",
    }


def field_changes(specs: list[FieldSpec]) -> list[Change]:
    """Dictionary rows, then the choice rows of choice fields."""
    changes = []
    for spec in specs:
        changes.append(
            Change(
                "sys_dictionary",
                dictionary_record(spec),
                ("name", "element"),
                f"field {spec.table}.{spec.element} ({spec.internal_type})",
            )
        )
        for seq, (value, label) in enumerate(spec.choices, start=1):
            record = {
                "name": spec.table,
                "element": spec.element,
                "value": value,
                "label": label,
                "sequence": str(seq * 100),
                "language": "en",
                "inactive": "false",
            }
            changes.append(
                Change(
                    "sys_choice",
                    record,
                    ("name", "element", "value"),
                    f"choice {spec.table}.{spec.element}={value} ({label})",
                )
            )
    return changes


def layout_changes(specs: list[FieldSpec]) -> list[Change]:
    """Place each field on the account form and in the account list."""
    changes = []
    for layout, where in zip(LAYOUT_TABLES, ("form", "list"), strict=True):
        for offset, spec in enumerate(specs):
            record = {
                "name": spec.table,
                "element": spec.element,
                "position": str(offset),
            }
            changes.append(
                Change(
                    layout,
                    record,
                    ("name", "element"),
                    f"{where} entry {spec.table}.{spec.element}",
                )
            )
    return changes


def history_table_change() -> Change:
    """The ``sys_db_object`` row of the optional history table."""
    return Change(
        "sys_db_object",
        {"name": HISTORY_TABLE, "label": HISTORY_LABEL, "super_class": ""},
        ("name",),
        f"table {HISTORY_TABLE}",
    )


def planned_changes(settings: Settings) -> list[Change]:
    """Every metadata record write-back needs, in the order they must be made."""
    specs = account_fields(settings)
    changes = field_changes(specs) + layout_changes(specs)
    if settings.writeback.history:
        changes.append(history_table_change())
        changes.extend(field_changes(history_fields(settings)))
    return changes


def target_tables(settings: Settings) -> list[str]:
    """The data tables the plan touches."""
    tables = [ACCOUNT_TABLE]
    if settings.writeback.history:
        tables.append(HISTORY_TABLE)
    return tables
