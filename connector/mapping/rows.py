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
# Filled from the record itself, before the mapping's fields.
_STAMPS = tuple(
    _Column(name, name, coercer("datetime"), None, _NO_DEFAULT, None)
    for name in ("sys_created_on", "sys_updated_on")
)
Fill = Callable[[Callable[[str], Any], dict[str, Any], MappedRow], None]


class RowMapper:
    """Applies one mapping: values maps, coercion, defaults, choice labels, extra."""

    def __init__(
        self, mapping: Mapping, *, labels: dict[str, dict[str, str]] | None = None
    ) -> None:
        """Build a mapper; ``labels`` is column → {choice code: label}."""
        self.mapping = mapping
        self.labels = labels or {}
        self.defaults = _coerce_defaults(mapping)
        columns = _STAMPS + tuple(
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
        self._fill = _compile_fill(columns, self._label)
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

        get = record.get
        row: dict[str, Any] = {"sys_id": sys_id, "deleted_at": None}
        self._fill(get, row, result)
        if self._extra:
            row["extra"] = {name: _plain(get(name)) for name in self._extra}
        if not result.problems:
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


def _compile_fill(
    columns: tuple[_Column, ...],
    label: Callable[[str, Any, MappedRow], str | None],
) -> Fill:
    """A function filling a row's columns from a record, generated per mapping.

    ``map`` runs once per fetched record: the per-column steps (values map,
    coercion, default, label) are written out for each column, only those the
    mapping uses, instead of a loop testing every step for every column. A value
    that does not coerce becomes a problem and None (the row is then dropped;
    the default and label still apply, so an unknown choice is still reported).
    """
    names: dict[str, Any] = {
        "CoercionError": CoercionError,
        "problem": _problem,
        "label": label,
    }
    lines = ["def fill(get, row, result):", "    problems = result.problems"]
    for i, column in enumerate(columns):
        names[f"c{i}"] = column.coerce
        lines.append(f"    raw = get({column.source!r})")
        if column.values:
            names[f"v{i}"] = column.values
            lines.append(
                f"    if isinstance(raw, str) and raw in v{i}: raw = v{i}[raw]"
            )
        lines += [
            "    try:",
            f"        value = c{i}(raw)",
            "    except CoercionError as exc:",
            f"        problems.append(problem({column.source!r}, raw, exc))",
            "        value = None",
        ]
        if column.default is not _NO_DEFAULT:
            names[f"d{i}"] = column.default
            lines.append(f"    if value is None: value = d{i}")
        lines.append(f"    row[{column.name!r}] = value")
        if column.label:
            lines.append(
                f"    row[{column.label!r}] = label({column.name!r}, value, result)"
            )
    # Names are the mapping's validated field and column names, quoted by repr.
    exec("\n".join(lines) + "\n", names)
    return names["fill"]


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


def _problem(source: str, raw: Any, exc: CoercionError) -> RowProblem:
    return RowProblem(source, _text(raw), str(exc))


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
