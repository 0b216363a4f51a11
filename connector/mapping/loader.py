"""Load every mapping file under a folder and check it against the canonical tables.

Every problem in every file is collected and raised at once as a
:class:`~connector.errors.MappingError` naming the file, the key and what was
expected, so a user fixes a folder of mappings in one pass.
"""

from __future__ import annotations

import datetime as dt
import decimal
from importlib import resources
from pathlib import Path
from typing import Any

import sqlalchemy as sa
import yaml
from pydantic import ValidationError

from connector import yamlfile
from connector.errors import MappingError, Problem
from connector.mapping.model import BOOKKEEPING_COLUMNS, FieldSpec, Mapping
from connector.store.models import CANONICAL_MODELS, SyncedRecord

BUNDLED_FOLDER = "default_mappings"


def _folder_not_found() -> str:
    """The missing-folder message, pointing at the mappings shipped in the package.

    A config copied out of the checkout keeps ``mappings: mappings``, which then
    names a folder next to the copy that does not exist.
    """
    bundled = Path(str(resources.files("connector") / BUNDLED_FOLDER))
    return (
        "mappings folder not found; point 'mappings:' in the config at a folder "
        f"of mapping files, e.g. the ones shipped with csm-sync: {bundled}"
    )


# The shipped mappings are 1-3 KB each; a file past this is a mistake (or an
# attack), refused before parsing.
MAX_MAPPING_BYTES = 1_000_000

# Which mapping types may fill a column of a given Python type.
COMPATIBLE_TYPES: dict[type, tuple[str, ...]] = {
    str: ("string", "reference", "choice"),
    int: ("integer", "duration"),
    decimal.Decimal: ("decimal", "integer"),
    bool: ("boolean",),
    dt.datetime: ("datetime",),
    dt.date: ("date",),
}


def column_types(model: type[SyncedRecord]) -> dict[str, type]:
    """Column name → Python type of a canonical table."""
    types = {}
    for column in model.__table__.columns:  # type: ignore[attr-defined]
        kind = column.type
        if isinstance(kind, sa.TypeDecorator):  # sqlmodel's AutoString, UTCDateTime
            kind = kind.impl_instance
        try:
            types[column.name] = kind.python_type
        except NotImplementedError:
            types[column.name] = object
    return types


def load_mappings(folder: Path, *, tables: list[str] | None = None) -> list[Mapping]:
    """Load and check every ``*.yaml`` mapping in ``folder``.

    Args:
        folder: the mappings folder.
        tables: keep only mappings whose name (file stem), source or target is
            listed; every file is still checked.

    Raises:
        MappingError: listing every problem in every file.
    """
    problems: list[Problem] = []
    files = sorted([*folder.glob("*.yaml"), *folder.glob("*.yml")])
    if not folder.is_dir():
        raise MappingError(Problem(str(folder), "-", _folder_not_found()))
    if not files:
        raise MappingError(Problem(str(folder), "-", "no *.yaml mapping files found"))

    mappings = [m for path in files if (m := _load_file(path, problems)) is not None]
    problems += _cross_file_problems(mappings)
    if tables:
        problems += _unknown_selection(folder, mappings, tables)
    if problems:
        raise MappingError(problems)
    if tables:
        wanted = set(tables)
        mappings = [m for m in mappings if {m.name, m.source, m.target} & wanted]
    return mappings


def _load_file(path: Path, problems: list[Problem]) -> Mapping | None:
    source = str(path)
    try:
        if not path.is_file():  # a FIFO blocks, /dev/zero never ends
            problems.append(Problem(source, "-", "not a regular file"))
            return None
        with path.open("rb") as handle:
            data = handle.read(MAX_MAPPING_BYTES + 1)
        if len(data) > MAX_MAPPING_BYTES:
            problems.append(
                Problem(source, "-", f"larger than {MAX_MAPPING_BYTES} bytes")
            )
            return None
        raw = yamlfile.load(data.decode("utf-8"))
    except (OSError, UnicodeDecodeError) as exc:
        problems.append(Problem(source, "-", f"cannot read as UTF-8 text: {exc}"))
        return None
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None) or getattr(exc, "context_mark", None)
        where = f"line {mark.line + 1}" if mark else "-"
        reason = getattr(exc, "problem", None) or str(exc)
        problems.append(Problem(source, where, f"not valid YAML: {reason}"))
        return None
    if not isinstance(raw, dict):
        problems.append(
            Problem(source, "-", "expected a mapping with source, target, fields")
        )
        return None

    # Field specs are checked one by one so one bad spec does not hide the others.
    raw = dict(raw)
    fields = raw.get("fields")
    before = len(problems)
    if isinstance(fields, dict) and fields:
        raw["fields"] = _good_field_specs(fields, source, problems)
    try:
        mapping = Mapping.model_validate({**raw, "name": path.stem, "path": path})
    except ValidationError as exc:
        problems += _problems_from_validation(exc, source)
        return None
    found = check_against_model(mapping)
    if not fields and len(problems) == before:
        found.append(Problem(source, "fields", "expected at least one column"))
    problems += found
    return (
        None
        if found or not isinstance(fields, dict) or len(fields) != len(mapping.fields)
        else mapping
    )


def _good_field_specs(fields: dict, source: str, problems: list[Problem]) -> dict:
    good = {}
    for column, spec in fields.items():
        value = {"field": spec} if isinstance(spec, str) else spec
        try:
            good[column] = FieldSpec.model_validate(value)
        except ValidationError as exc:
            for problem in _problems_from_validation(exc, source):
                key = f"fields.{column}" + (
                    "" if problem.key == "-" else f".{problem.key}"
                )
                problems.append(Problem(source, key, problem.message))
    return good


def _problems_from_validation(error: ValidationError, source: str) -> list[Problem]:
    problems = []
    for item in error.errors():
        key = ".".join(str(part) for part in item["loc"]) or "-"
        message = item["msg"].removeprefix("Value error, ")
        if item["type"] == "extra_forbidden":
            message = (
                "unknown key (expected one of: "
                + ", ".join(
                    name
                    for name in Mapping.model_fields
                    if name not in ("name", "path")
                )
                + ")"
            )
        elif item["type"] == "missing":
            message = "required key is missing"
        elif item["type"] == "literal_error":
            message = f"{message}, got {_shown(item.get('input'))}"
        problems.append(Problem(source, key, message))
    return problems


def check_against_model(mapping: Mapping) -> list[Problem]:
    """Problems with the mapping's target table and columns (no instance needed)."""
    source = str(mapping.path)
    model = CANONICAL_MODELS.get(mapping.target)
    if model is None:
        known = ", ".join(sorted(CANONICAL_MODELS))
        message = f"unknown table {mapping.target!r}; expected one of: {known}"
        return [Problem(source, "target", message)]

    types = column_types(model)
    problems = _field_problems(mapping, types, source)
    for section in ("defaults", "values"):
        for column in getattr(mapping, section):
            if column not in mapping.fields:
                message = f"expected a column listed under fields, got {column!r}"
                problems.append(Problem(source, f"{section}.{column}", message))
    if mapping.extra and "extra" not in types:
        message = f"table {mapping.target!r} has no extra column"
        problems.append(Problem(source, "extra", message))
    return problems


def _field_problems(
    mapping: Mapping, types: dict[str, type], source: str
) -> list[Problem]:
    """Each ``fields`` entry: a known column, a fitting type, filled only once."""
    problems: list[Problem] = []
    filled: dict[str, str] = {}

    def claim(column: str, key: str) -> None:
        if column in filled:
            message = f"column {column!r} is already filled by {filled[column]}"
            problems.append(Problem(source, key, message))
        filled[column] = key

    for column, spec in mapping.fields.items():
        key = f"fields.{column}"
        if column in BOOKKEEPING_COLUMNS:
            message = f"{column!r} is filled by the sync itself; remove it"
            problems.append(Problem(source, key, message))
            continue
        if column not in types:
            problems.append(_unknown_column(source, key, mapping.target, types))
            continue
        claim(column, key)
        allowed = COMPATIBLE_TYPES.get(types[column], ())
        if spec.type not in allowed:
            message = (
                f"column {mapping.target}.{column} holds {types[column].__name__}; "
                f"expected type {' or '.join(allowed) or 'none'}, got {spec.type!r}"
            )
            problems.append(Problem(source, f"{key}.type", message))
        if spec.label:
            label = f"{column}_label"
            if label in types:
                claim(label, f"{key}.label")
            else:
                message = f"table {mapping.target!r} has no column {label!r}"
                problems.append(Problem(source, f"{key}.label", message))
    return problems


def _unknown_column(
    source: str, key: str, target: str, types: dict[str, type]
) -> Problem:
    known = ", ".join(c for c in types if c not in BOOKKEEPING_COLUMNS)
    return Problem(
        source,
        key,
        f"table {target!r} has no column {key.split('.')[-1]!r}; "
        f"expected one of: {known}",
    )


def _cross_file_problems(mappings: list[Mapping]) -> list[Problem]:
    problems = []
    by_target: dict[str, Mapping] = {}
    for mapping in mappings:
        first = by_target.setdefault(mapping.target, mapping)
        if first is not mapping:
            problems.append(
                Problem(
                    str(mapping.path),
                    "target",
                    f"table {mapping.target!r} is already filled by {first.path.name}; "
                    "one mapping per store table",
                )
            )
    return problems


def _unknown_selection(
    folder: Path, mappings: list[Mapping], tables: list[str]
) -> list[Problem]:
    known = {name for m in mappings for name in (m.name, m.source, m.target)}
    return [
        Problem(
            str(folder),
            "--table",
            f"no mapping named {name!r}; expected one of: "
            + ", ".join(sorted(m.name for m in mappings)),
        )
        for name in tables
        if name not in known
    ]


def _shown(value: Any) -> str:
    """A short form of a YAML value for a message (never repr() a whole tree:
    an alias bomb is cheap to load but not to print)."""
    if value is None or isinstance(value, (str, int, float, bool)):
        text = repr(value)
        return text if len(text) <= 80 else text[:77] + "..."
    return f"a {type(value).__name__}"
