"""Value parsing: reference shapes (C06), typed coercion (C07), UTC stamps (C04)."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st

from connector.servicenow import (
    coerce,
    normalize_reference,
    parse_datetime_utc,
    parse_duration,
)

CASES_DIR = Path("/work/shared/servicenow/cases")
C1 = "000000000000000000000000000000c1"


def load_case(prefix: str) -> dict:
    path = next(CASES_DIR.glob(f"{prefix}-*.json"))
    return json.loads(path.read_text())["minimal_input"]


C06_SHAPES = [
    {
        "link": f"https://example.service-now.com/api/now/table/customer_account/{C1}",
        "value": C1,
    },
    "",
    C1,
    {
        "display_value": "acme",
        "link": f"https://example.service-now.com/api/now/table/customer_account/{C1}",
    },
    "acme",
]


@pytest.mark.skipif(not CASES_DIR.exists(), reason="shared cases not mounted")
def test_c06_fixture_matches_the_shapes_tested_here():
    assert load_case("C06")["account_values_seen"] == C06_SHAPES


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        (C06_SHAPES[0], (C1, False)),
        (C06_SHAPES[1], (None, False)),
        (C06_SHAPES[2], (C1, False)),
        (C06_SHAPES[3], (C1, False)),
        (C06_SHAPES[4], (None, True)),
        (None, (None, False)),
        ("global", ("global", False)),
        ({"display_value": "Fred", "value": C1}, (C1, False)),
        ({"display_value": "", "value": ""}, (None, False)),
        ({"display_value": "Fred Johnson"}, (None, True)),
        ({"link": "https://x/api/now/table/sys_user/" + C1 + "?a=b"}, (C1, False)),
    ],
)
def test_reference_shapes_normalise_to_a_sys_id(value, expected):
    assert tuple(normalize_reference(value)) == expected


@given(st.text().filter(lambda s: len(s.strip()) != 32 and s.strip() != "global"))
def test_display_text_is_never_taken_for_a_key(text):
    reference = normalize_reference(text)

    assert reference.sys_id is None
    assert reference.display_only == bool(text.strip())


C07_TYPES = {
    "active": "boolean",
    "reassignment_count": "integer",
    "reopen_count": "integer",
    "price": "currency",
    "business_duration": "glide_duration",
    "business_stc": "integer",
    "calendar_duration": "glide_duration",
    "resolved_at": "glide_date_time",
    "closed_at": "glide_date_time",
    "subcategory": "string",
}


def test_c07_record_coerces_by_dictionary_type():
    record = load_case("C07")["record"]

    typed = {name: coerce(record[name], kind) for name, kind in C07_TYPES.items()}

    assert typed == {
        "active": False,
        "reassignment_count": None,
        "reopen_count": 0,
        "price": Decimal("139.99"),
        "business_duration": 1892781,
        "business_stc": 1892781,
        "calendar_duration": 0,
        "resolved_at": None,
        "closed_at": None,
        "subcategory": None,
    }
    assert typed["active"] is False


def test_parse_duration_of_the_c07_example():
    assert parse_duration("1970-01-22 21:46:21") == 1892781
    assert parse_duration("1970-01-01 00:02:17") == 137
    assert parse_duration("") is None


def test_c04_pairs_normalise_to_the_utc_value():
    pairs = load_case("C04")["display_value_all_pairs"]

    got = [parse_datetime_utc(pair["sys_created_on"]) for pair in pairs]

    expected = [
        datetime.strptime(p["sys_created_on"]["value"], "%Y-%m-%d %H:%M:%S").replace(
            tzinfo=UTC
        )
        for p in pairs
    ]
    assert got == expected
    assert all(moment.tzinfo is UTC for moment in got)
    # The display value is the same instant shifted into the user's zone.
    first = pairs[0]["sys_created_on"]
    shown = datetime.strptime(first["display_value"], "%Y-%m-%d %H:%M:%S")
    offset = timedelta(minutes=pairs[0]["offset_min"])
    assert shown.replace(tzinfo=UTC) + offset == got[0]


@pytest.mark.parametrize(
    "display",
    ["12-07-2022 15:47:34", "Dec-07-2022 00:38:52 AM    ", "07.12.2022 0:38:52"],
)
def test_display_values_are_refused_not_guessed(display):
    with pytest.raises(ValueError, match="YYYY-MM-DD"):
        parse_datetime_utc(display)
    with pytest.raises(ValueError, match="display value"):
        parse_datetime_utc({"display_value": display})


@pytest.mark.parametrize(
    ("raw", "kind", "expected"),
    [
        ("true", "boolean", True),
        ("", "boolean", None),
        ("2026-03-01", "glide_date", datetime(2026, 3, 1).date()),
        ({"display_value": "Closed", "value": "3"}, "integer", 3),
        ("", "decimal", None),
        (C1, "reference", C1),
        ("", "reference", None),
    ],
)
def test_coerce_scalar_types(raw, kind, expected):
    assert coerce(raw, kind) == expected


def test_coerce_refuses_display_text_in_a_reference():
    with pytest.raises(ValueError, match="quarantine"):
        coerce("acme", "reference")
