"""RowMapper against a plain model of the mapping rules, on every shipped mapping.

``RowMapper`` generates its per-column code for speed; the model below applies
the documented rules one field at a time (values map, ``coerce_value``, default,
choice label, extra). Records mix good values, empty ones, display values and
wrong shapes, so rows, quarantine reasons and unknown choices are all compared.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from hypothesis import given, settings
from hypothesis import strategies as st

from connector.mapping.coerce import CoercionError, coerce_value
from connector.mapping.loader import load_mappings
from connector.mapping.model import Mapping
from connector.mapping.rows import UNKNOWN_LABEL, RowMapper, RowProblem

SHIPPED = Path(__file__).resolve().parents[2] / "mappings"
# The shipped files use neither values maps nor defaults: one mapping that does.
EXTENDED = Mapping(
    source="sn_customerservice_case",
    target="case",
    name="extended",
    fields={
        "state": {"field": "state", "type": "choice", "label": True},
        "channel": {"field": "contact_type", "type": "choice", "label": True},
        "priority": {"field": "priority", "type": "integer"},
        "made_sla": {"field": "made_sla", "type": "boolean"},
        "account": {"field": "account", "type": "reference"},
        "opened_at": {"field": "opened_at", "type": "datetime"},
    },
    values={"state": {"New": "1", "Gone": "x"}, "made_sla": {"x": "true"}},
    defaults={"priority": 4, "made_sla": False, "channel": "email"},
    extra=["u_tier", "account"],
)
MAPPINGS = [*load_mappings(SHIPPED), EXTENDED]
GUID = "0123456789abcdef0123456789ABCDEF"
STAMP = "2026-01-02 10:00:00"
LINK = f"https://x.service-now.com/api/now/table/t/{GUID}"
ODD = [
    None,
    "",
    " ",
    "acme",
    "a\x00b",
    7,
    True,
    {"display_value": "Acme"},
    {"value": ""},
    ["x"],
]
BY_KIND: dict[str, list[Any]] = {
    "string": ["x", "New", "1", "3", "-2"],
    "choice": ["1", "3", "10", "-2", "email", "web", "New", "Gone"],
    "integer": ["0", "12", "-3", " 7 ", "1e3", "99999999999999999999", "０"],
    "decimal": ["1.5", "139.99", "2,209,752", "1e40", ".5"],
    "boolean": ["true", "false", "TRUE", " 1 ", "0", "yes", "x"],
    "datetime": [STAMP, "2026-02-30 10:00:00", "06/12/2022 23:38:52 PM"],
    "date": ["2026-01-02", "2026-13-01", "2026-1-2"],
    "duration": ["1970-01-22 21:46:21", "1970-01-01 00:00:00", "25 Days"],
    "reference": [GUID, "global", f" {GUID} ", {"value": GUID, "link": LINK}],
}
LABELS = {"state": {"1": "New", "3": "Closed"}, "channel": {"email": "Email"}}
MAPPERS = [RowMapper(mapping, labels=LABELS) for mapping in MAPPINGS]


def value_for(kind: str) -> st.SearchStrategy[Any]:
    good = ["", None, *BY_KIND[kind]]
    wrapped = [
        {"value": v, "display_value": "shown"} for v in good if isinstance(v, str)
    ]
    # Mostly good values, so that whole rows (not only quarantines) are compared.
    return st.sampled_from(good * 6 + wrapped + ODD) | st.text(max_size=6)


@st.composite
def records(draw: st.DrawFn, mapping: Mapping) -> dict[str, Any]:
    kinds = {"sys_created_on": "datetime", "sys_updated_on": "datetime"}
    kinds |= {spec.field: spec.type for spec in mapping.fields.values()}
    kinds |= {name: "string" for name in mapping.extra if name not in kinds}
    record = {field: draw(value_for(kind)) for field, kind in kinds.items()}
    record[mapping.key] = draw(st.sampled_from([GUID] * 6 + ["", None, "bad!", 5]))
    return record


def model_map(mapping: Mapping, record: dict[str, Any]) -> tuple:
    """(row or None, problems, unknown choices) by the documented rules."""
    key = record.get(mapping.key)
    if not isinstance(key, str) or not key or "!" in key:
        raw = key if key is None or isinstance(key, str) else repr(key)
        return None, [RowProblem(mapping.key, raw, "missing or malformed key")], []
    row: dict[str, Any] = {"sys_id": key, "deleted_at": None}
    problems: list[RowProblem] = []
    unknown: list[tuple[str, str]] = []

    def put(column: str, source: str, raw: Any, kind: str) -> None:
        try:
            row[column] = coerce_value(raw, kind)
        except CoercionError as exc:
            text = raw if isinstance(raw, str) else repr(raw)
            problems.append(RowProblem(source, text.replace("\x00", "\\x00"), str(exc)))
            row[column] = None

    for stamp in ("sys_created_on", "sys_updated_on"):
        put(stamp, stamp, record.get(stamp), "datetime")
    for column, spec in mapping.fields.items():
        raw = record.get(spec.field)
        table = mapping.values.get(column) or {}
        if isinstance(raw, str) and raw in table:
            raw = table[raw]
        put(column, spec.field, raw, spec.type)
        if row[column] is None and column in mapping.defaults:
            row[column] = coerce_value(str(mapping.defaults[column]).lower(), spec.type)
        if spec.label:
            code = row[column]
            label = None if code is None else LABELS.get(column, {}).get(str(code))
            if code is not None and label is None:
                unknown.append((column, str(code)))
                label = UNKNOWN_LABEL
            row[f"{column}_label"] = label
    if mapping.extra:
        row["extra"] = {
            name: (value.get("value", value.get("display_value")))
            if isinstance(value := record.get(name), dict)
            else value
            for name in mapping.extra
        }
    return (None if problems else row), problems, unknown


@settings(max_examples=100, deadline=None)
@given(data=st.data())
def test_the_mapper_does_what_the_rules_say(data: st.DataObject) -> None:
    for mapping, mapper in zip(MAPPINGS, MAPPERS, strict=True):
        record = data.draw(records(mapping), label=mapping.name)

        result = mapper.map(record)

        row, problems, unknown = model_map(mapping, record)
        assert (mapping.name, result.row) == (mapping.name, row)
        assert result.problems == problems, mapping.name
        assert result.unknown_choices == unknown, mapping.name
        if row is not None:
            assert list(result.row) == list(row), "column order is the plan's"
