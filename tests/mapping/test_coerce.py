"""Coercion by declared type (C04, C06, C07)."""

from __future__ import annotations

from datetime import UTC, date, datetime
from decimal import Decimal

import pytest
from hypothesis import given
from hypothesis import strategies as st

from connector.mapping.coerce import CoercionError, coerce_value

C1 = "000000000000000000000000000000c1"


def test_c07_record_coerces_to_the_expected_types() -> None:
    record = {
        "active": ("false", "boolean"),
        "reassignment_count": ("", "integer"),
        "reopen_count": ("0", "integer"),
        "price": ("139.99", "decimal"),
        "business_duration": ("1970-01-22 21:46:21", "duration"),
        "calendar_duration": ("1970-01-01 00:00:00", "duration"),
        "resolved_at": ("", "datetime"),
        "subcategory": (None, "string"),
    }

    typed = {name: coerce_value(raw, kind) for name, (raw, kind) in record.items()}

    assert typed == {
        "active": False,
        "reassignment_count": None,
        "reopen_count": 0,
        "price": Decimal("139.99"),
        "business_duration": 1892781,
        "calendar_duration": 0,
        "resolved_at": None,
        "subcategory": None,
    }
    assert typed["active"] is False


@pytest.mark.parametrize(
    ("raw", "kind"),
    [
        ("2,209,752", "decimal"),
        ("2,209,752", "integer"),
        ("25 Days 13 Hours 49 Minutes", "duration"),
        ("yes", "boolean"),
        ("12-07-2022 15:47:34", "datetime"),
        ("06/12/2022 23:38:52 PM", "datetime"),
        ("2026-13-01", "date"),
        ("acme", "reference"),
        (
            {"display_value": "acme", "link": "https://x/api/now/table/a/acme"},
            "reference",
        ),
    ],
)
def test_display_values_are_refused_not_guessed(raw: object, kind: str) -> None:
    with pytest.raises(CoercionError):
        coerce_value(raw, kind)


def test_c04_datetime_is_the_utc_value_and_tz_aware() -> None:
    value = coerce_value(
        {"display_value": "07.12.2022 0:38:52", "value": "2022-12-06 19:38:52"},
        "datetime",
    )

    assert value == datetime(2022, 12, 6, 19, 38, 52, tzinfo=UTC)
    assert value.utcoffset().total_seconds() == 0


@pytest.mark.parametrize(
    "shape",
    [
        {
            "link": f"https://example.service-now.com/api/now/table/customer_account/{C1}",
            "value": C1,
        },
        C1,
        {
            "display_value": "acme",
            "link": f"https://example.service-now.com/api/now/table/customer_account/{C1}",
        },
    ],
)
def test_c06_reference_shapes_yield_the_sys_id(shape: object) -> None:
    assert coerce_value(shape, "reference") == C1


def test_c06_empty_reference_is_null() -> None:
    assert coerce_value("", "reference") is None


def test_dates_and_booleans() -> None:
    assert coerce_value("2026-02-28", "date") == date(2026, 2, 28)
    assert coerce_value("true", "boolean") is True
    assert coerce_value("", "boolean") is None


@given(st.integers(min_value=-(10**12), max_value=10**12))
def test_integers_round_trip(number: int) -> None:
    assert coerce_value(str(number), "integer") == number


@given(
    st.decimals(
        allow_nan=False,
        allow_infinity=False,
        places=4,
        min_value=-(10**9),
        max_value=10**9,
    )
)
def test_decimals_round_trip(number: Decimal) -> None:
    assert coerce_value(str(number), "decimal") == number


@given(st.integers(min_value=0, max_value=10**8))
def test_durations_are_seconds_since_the_1970_epoch(seconds: int) -> None:
    text = datetime.fromtimestamp(seconds, UTC).strftime("%Y-%m-%d %H:%M:%S")

    assert coerce_value(text, "duration") == seconds


C04_PAIRS = [
    ("2022-12-07 05:38:52", "2022-12-07 13:38:52"),
    ("12-07-2022 15:47:34", "2022-12-07 13:47:34"),
    ("06/12/2022 23:38:52 PM", "2022-12-07 09:38:52"),
    ("07.12.2022 0:38:52", "2022-12-06 19:38:52"),
    ("Dec-07-2022 00:38:52 AM    ", "2022-12-06 19:38:52"),
]


@pytest.mark.parametrize(("display", "value"), C04_PAIRS)
def test_c04_every_display_format_normalises_to_the_utc_value(
    display: str, value: str
) -> None:
    moment = coerce_value({"display_value": display, "value": value}, "datetime")

    assert moment == datetime.strptime(value, "%Y-%m-%d %H:%M:%S").replace(tzinfo=UTC)
    with pytest.raises(CoercionError):
        coerce_value({"display_value": display}, "datetime")


@pytest.mark.parametrize(
    ("raw", "kind"),
    [
        ("2026-02-30 10:00:00", "datetime"),
        ("2026-02-30 10:00:00", "duration"),
        ("٢٠٢٦-٠١-٠١ ١٠:٠٠:٠٠", "datetime"),
        ("١٢", "integer"),
    ],
)
def test_impossible_dates_and_non_ascii_digits_are_refused(raw: str, kind: str) -> None:
    with pytest.raises(CoercionError):
        coerce_value(raw, kind)
