"""Encoded-query builder: refuses what it cannot escape, keeps meaning exact."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta, timezone

import pytest
from hypothesis import example, given
from hypothesis import strategies as st

from connector.servicenow import Q, QueryValueError, chunked_in
from connector.servicenow.query import parse, parse_term

FIELDS = st.from_regex(r"[a-z][a-z0-9_]{0,20}(\.[a-z][a-z0-9_]{0,10})?", fullmatch=True)
SAFE_TEXT = st.text(min_size=1).filter(
    lambda s: (
        "^" not in s
        and "\n" not in s
        and "\r" not in s
        and not s.strip().lower().startswith("javascript:")
    )
)


@given(field=FIELDS, value=SAFE_TEXT)
def test_accepted_values_round_trip_into_exactly_one_term(field, value):
    encoded = Q.eq(field, value).encode()

    parsed = parse(encoded)

    assert parsed.blocks == ((encoded,),)
    assert parse_term(encoded) == parse_term(f"{field}={value}")
    assert parse_term(encoded).field == field
    assert parse_term(encoded).value == value


@given(
    field=FIELDS,
    prefix=st.text(),
    bad=st.sampled_from(["^", "\n", "\r", "^NQ", "^OR"]),
    suffix=st.text(),
)
def test_values_with_separators_are_refused(field, prefix, bad, suffix):
    with pytest.raises(QueryValueError):
        Q.eq(field, prefix + bad + suffix)


@given(values=st.lists(SAFE_TEXT, min_size=1, max_size=5))
def test_in_lists_refuse_commas_and_keep_every_value(values):
    if any("," in v for v in values):
        with pytest.raises(QueryValueError):
            Q.in_("state", values)
        return

    term = parse_term(Q.in_("state", values).encode())

    assert term.operator == "IN"
    assert term.value.split(",") == values


@given(
    moment=st.datetimes(
        min_value=datetime(2000, 1, 1),
        max_value=datetime(2099, 1, 1),
        timezones=st.sampled_from(
            [
                UTC,
                timezone(timedelta(hours=5, minutes=30)),
                timezone(-timedelta(hours=8)),
            ]
        ),
    ).map(lambda d: d.replace(microsecond=0))
)
def test_datetimes_are_always_written_in_utc(moment):
    term = parse_term(Q.gte("sys_updated_on", moment).encode())

    written = datetime.strptime(term.value, "%Y-%m-%d %H:%M:%S").replace(tzinfo=UTC)

    assert written == moment
    assert "javascript" not in term.value


def test_naive_and_fractional_datetimes_are_refused():
    with pytest.raises(QueryValueError, match="no time zone"):
        Q.gt("sys_updated_on", datetime(2026, 1, 1))
    with pytest.raises(QueryValueError, match="fraction"):
        Q.gt("sys_updated_on", datetime(2026, 1, 1, 0, 0, 0, 5, tzinfo=UTC))


@pytest.mark.parametrize(
    "name", ["State", "state;drop", "a^b", "", "sys id", "x..y", ".x"]
)
def test_bad_field_names_are_refused(name):
    with pytest.raises(QueryValueError):
        Q.eq(name, "1")


def test_javascript_values_are_refused():
    with pytest.raises(QueryValueError, match="javascript"):
        Q.gte("sys_updated_on", "javascript:gs.dateGenerate('2026-03-01','00:00:00')")


def test_and_distributes_over_nq_blocks():
    base = parse("state=3^NQstate=7^ORDERBYnumber")

    query = Q.and_(
        base, Q.gt("sys_id", "a" * 32), Q.order_by("sys_updated_on", "sys_id")
    )

    assert query.encode() == (
        f"state=3^sys_id>{'a' * 32}^NQstate=7^sys_id>{'a' * 32}"
        "^ORDERBYnumber^ORDERBYsys_updated_on^ORDERBYsys_id"
    )


def test_or_keeps_terms_in_one_clause():
    query = Q.and_(Q.eq("active", True), Q.or_(Q.eq("state", 1), Q.eq("state", 10)))

    assert query.encode() == "active=true^state=1^ORstate=10"
    assert parse(query.encode()).blocks == (("active=true", "state=1^ORstate=10"),)


def test_scalar_values_render_as_instance_literals():
    assert Q.eq("due", date(2026, 3, 1)).encode() == "due=2026-03-01"
    assert Q.eq("active", False).encode() == "active=false"
    assert Q.lte("priority", 2).encode() == "priority<=2"


def test_chunked_in_keeps_urls_short():
    ids = [f"{n:032x}" for n in range(250)]

    chunks = list(chunked_in("sys_id", ids, size=100))

    assert [len(parse_term(c.encode()).value.split(",")) for c in chunks] == [
        100,
        100,
        50,
    ]
    assert [v for c in chunks for v in parse_term(c.encode()).value.split(",")] == ids
    assert all(len(c.encode()) < 3400 for c in chunks)


OPERATORS = {"eq": "=", "ne": "!=", "gt": ">", "gte": ">=", "lt": "<", "lte": "<="}


@example(op="gt", field="priority", value="=5")
@example(op="lt", field="priority", value="=5")
@example(op="ne", field="priority", value="=5")
@given(
    op=st.sampled_from(sorted(OPERATORS)),
    field=FIELDS,
    value=SAFE_TEXT | SAFE_TEXT.map(lambda s: "=" + s),
)
def test_every_comparison_keeps_its_operator(op, field, value):
    try:
        encoded = getattr(Q, op)(field, value).encode()
    except QueryValueError:
        assert op in ("gt", "lt")
        assert value.startswith("=")  # '>' + '=5' would read as '>=5'
        return

    term = parse_term(encoded)

    assert (term.field, term.operator, term.value) == (field, OPERATORS[op], value)
