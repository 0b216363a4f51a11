"""Map one Table API record to one canonical row, or say why it cannot be.

A :class:`RowMapper` is built once per mapping and run (after the instance's
dictionary and choice lists are known); it never raises on bad data: a bad value
or a missing key comes back as :class:`RowProblem` entries and the row is
quarantined by the caller (the sync goes on).
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, NamedTuple

from connector.errors import MappingError, Problem
from connector.mapping.coerce import CoercionError, coerce_value, coercer
from connector.mapping.model import Mapping

UNKNOWN_LABEL = "unknown"
_SYS_ID = re.compile(r"^[0-9A-Za-z_]{1,64}$")


@dataclass(frozen=True)
class RowProblem:
    """Why a record was quarantined: which field, its raw value, the reason."""

    field: str
    raw_value: str | None
    reason: str


@dataclass
class MappedRow:
    """The outcome of mapping one record."""

    sys_id: str
    row: dict[str, Any] | None
    problems: list[RowProblem] = field(default_factory=list)
    unknown_choices: list[tuple[str, str]] = field(default_factory=list)


class _Column(NamedTuple):
    """One mapped column, with everything ``map`` needs looked up in advance."""

    name: str
    source: str
    coerce: Callable[[Any], Any]
    values: dict[str, Any] | None
    default: Any
    label: str | None  # the ``*_label`` column, when the mapping asks for one


_NO_DEFAULT = object()
_DATETIME = coercer("datetime")


class RowMapper:
    """Applies one mapping: values maps, coercion, defaults, choice labels, extra."""

    def __init__(
        self, mapping: Mapping, *, labels: dict[str, dict[str, str]] | None = None
    ) -> None:
        """Build a mapper; ``labels`` is column → {choice code: label}."""
        self.mapping = mapping
        self.labels = labels or {}
        self.defaults = _coerce_defaults(mapping)
        # map() runs once per fetched record: resolve every per-column lookup here.
        self._columns = tuple(
            _Column(
                name=column,
                source=spec.field,
                coerce=coercer(spec.type),
                values=mapping.values.get(column) or None,
                default=self.defaults.get(column, _NO_DEFAULT),
                label=f"{column}_label" if spec.label else None,
            )
            for column, spec in mapping.fields.items()
        )
        self._extra = tuple(mapping.extra)

    def map(self, record: dict[str, Any]) -> MappedRow:
        """Map one record; ``row`` is None when the record must be quarantined."""
        key = record.get(self.mapping.key)
        sys_id = key if isinstance(key, str) else ""
        result = MappedRow(sys_id=sys_id, row=None)
        if not sys_id or not _SYS_ID.match(sys_id):
            result.problems.append(
                RowProblem(self.mapping.key, _text(key), "missing or malformed key")
            )
            return result

        problems = result.problems
        get = record.get
        row: dict[str, Any] = {"sys_id": sys_id, "deleted_at": None}
        for column in ("sys_created_on", "sys_updated_on"):
            raw = get(column)
            try:
                row[column] = _DATETIME(raw)
            except CoercionError as exc:
                problems.append(RowProblem(column, _text(raw), str(exc)))
        for name, source, coerce, values, default, label in self._columns:
            raw = get(source)
            if values and isinstance(raw, str) and raw in values:
                raw = values[raw]
            try:
                value = coerce(raw)
            except CoercionError as exc:
                problems.append(RowProblem(source, _text(raw), str(exc)))
                value = None  # the row is dropped; the label below still warns
            if value is None and default is not _NO_DEFAULT:
                value = default
            row[name] = value
            if label:
                row[label] = self._label(name, value, result)
        if self._extra:
            row["extra"] = {name: _plain(get(name)) for name in self._extra}
        if not problems:
            result.row = row
        return result

    def _label(self, column: str, code: Any, result: MappedRow) -> str | None:
        if code is None:
            return None
        label = self.labels.get(column, {}).get(str(code))
        if label is None:
            # Codes differ per instance (C08): keep the row and its raw code.
            result.unknown_choices.append((column, str(code)))
            return UNKNOWN_LABEL
        return label


def _coerce_defaults(mapping: Mapping) -> dict[str, Any]:
    defaults, problems = {}, []
    for column, value in mapping.defaults.items():
        kind = mapping.fields[column].type
        text = str(value).lower() if isinstance(value, bool) else str(value)
        try:
            defaults[column] = coerce_value(text, kind)
        except CoercionError as exc:
            problems.append(Problem(str(mapping.path), f"defaults.{column}", str(exc)))
    if problems:
        raise MappingError(problems)
    return defaults


def _text(raw: Any) -> str | None:
    if raw is None:
        return None
    text = raw if isinstance(raw, str) else repr(raw)
    # PostgreSQL text cannot hold NUL: the quarantine shows it escaped.
    return text.replace("\x00", "\\x00")


def _plain(raw: Any) -> Any:
    if isinstance(raw, dict):
        return raw.get("value", raw.get("display_value"))
    return raw
