"""The mapping file model: one YAML file maps one ServiceNow table to a store table.

A file names the source table, the canonical table it fills (a key of
:data:`~connector.store.models.CANONICAL_MODELS`), and per canonical column the
ServiceNow field (dot-walks allowed) and its type. The shape is checked here; the
names are checked against the canonical models in :mod:`connector.mapping.loader`
and against the instance's ``sys_dictionary`` in :mod:`connector.mapping.dictionary`.
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

Scalar = str | int | float | bool | None

FieldType = Literal[
    "string",
    "integer",
    "decimal",
    "boolean",
    "datetime",
    "date",
    "duration",
    "reference",
    "choice",
]
FIELD_TYPES: tuple[str, ...] = FieldType.__args__  # type: ignore[attr-defined]

# A ServiceNow element name, optionally dot-walked ("entitlement.account").
_FIELD_NAME = re.compile(r"^[a-z][a-z0-9_]*(\.[a-z][a-z0-9_]*)*$")

# Columns every canonical table fills from the record itself, not from `fields`.
BOOKKEEPING_COLUMNS = (
    "sys_id",
    "sys_created_on",
    "sys_updated_on",
    "deleted_at",
    "extra",
)


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class FieldSpec(_Strict):
    """How one canonical column is filled from one ServiceNow field."""

    field: str
    type: FieldType = "string"
    label: bool = False

    @field_validator("field")
    @classmethod
    def _check_name(cls, value: str) -> str:
        if not _FIELD_NAME.match(value):
            raise ValueError(
                f"expected a ServiceNow field name such as 'account' or "
                f"'entitlement.account', got {value!r}"
            )
        return value

    @model_validator(mode="after")
    def _label_needs_choice(self) -> FieldSpec:
        if self.label and self.type != "choice":
            raise ValueError("'label: true' is only allowed with 'type: choice'")
        return self

    @property
    def path(self) -> list[str]:
        """The dot-walk path, e.g. ``['entitlement', 'account']``."""
        return self.field.split(".")


class Mapping(_Strict):
    """One mapping file, validated for shape."""

    source: str
    target: str
    key: str = "sys_id"
    cursor: str = "sys_updated_on"
    # "full" re-reads the whole table by sys_id when due (tables without a
    # usable sys_updated_on, small metadata tables) instead of keyset windows.
    mode: Literal["incremental", "full"] = "incremental"
    filter: str = ""
    fields: dict[str, FieldSpec]
    # Scalars only: a YAML alias tree here is cheap to load, not to str().
    defaults: dict[str, Scalar] = Field(default_factory=dict)
    values: dict[str, dict[str, Scalar]] = Field(default_factory=dict)
    extra: list[str] = Field(default_factory=list)
    # Filled by the loader, not by the file.
    name: str = ""
    path: Path = Path("-")

    @field_validator("fields", mode="before")
    @classmethod
    def _expand_shorthand(cls, value: Any) -> Any:
        # `column: field_name` is short for `column: {field: field_name}`.
        if isinstance(value, dict):
            return {
                col: {"field": spec} if isinstance(spec, str) else spec
                for col, spec in value.items()
            }
        return value

    @field_validator("values", mode="before")
    @classmethod
    def _stringify_raw_values(cls, value: Any) -> Any:
        # YAML reads `1: New` with an integer key; Table API values are strings.
        if isinstance(value, dict):
            return {
                col: {str(k): v for k, v in table.items()}
                if isinstance(table, dict)
                else table
                for col, table in value.items()
            }
        return value

    @field_validator("source", "key", "cursor")
    @classmethod
    def _check_plain_name(cls, value: str) -> str:
        if not re.match(r"^[a-z][a-z0-9_]*$", value):
            raise ValueError(
                f"expected a ServiceNow table or field name, got {value!r}"
            )
        return value

    @field_validator("extra")
    @classmethod
    def _check_extra(cls, value: list[str]) -> list[str]:
        bad = [name for name in value if not _FIELD_NAME.match(name)]
        if bad:
            raise ValueError(f"expected ServiceNow field names, got {bad!r}")
        if len(set(value)) != len(value):
            raise ValueError("lists a field more than once")
        return value

    @field_validator("filter")
    @classmethod
    def _check_filter(cls, value: str) -> str:
        # The engine appends its own ORDERBY; a filter that orders would break keysets.
        if re.search(r"\^?(ORDERBY|ORDERBYDESC|GROUPBY)", value):
            raise ValueError(
                "must not contain ORDERBY or GROUPBY (the sync orders rows)"
            )
        if "javascript:" in value:
            raise ValueError(
                "must not use javascript: expressions (read in the session user's "
                "time zone); use plain UTC literals"
            )
        return value

    def source_fields(self) -> list[str]:
        """Every ServiceNow field this mapping reads, for ``sysparm_fields``."""
        names = [self.key, "sys_created_on", "sys_updated_on", self.cursor]
        names += [spec.field for spec in self.fields.values()]
        names += self.extra
        return list(dict.fromkeys(names))
