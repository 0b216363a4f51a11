"""KeysetPager / KeyPager: every row of a window exactly once (C01, C02, C12)."""

from __future__ import annotations

import secrets
from collections import Counter
from datetime import UTC, datetime, timedelta

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from connector.servicenow import KeyPager, KeysetPager
from connector.servicenow.values import parse_datetime_utc

from .conftest import CASES

BURST = "2026-02-01 09:00:00"
START = datetime(2026, 2, 1, 9, 0, 0, tzinfo=UTC)


def stamp(moment: datetime) -> str:
    return moment.strftime("%Y-%m-%d %H:%M:%S")


def case(sys_id: str, updated: str, number: int) -> dict[str, str]:
    return {
        "sys_id": sys_id,
        "number": f"CS{number:07d}",
        "sys_created_on": updated,
        "sys_updated_on": updated,
        "state": "1",
    }


def load(emu, rows: list[dict[str, str]]) -> None:
    emu.instance.load_rows(CASES, rows)


def ids(pager) -> list[str]:
    return [row["sys_id"] for page in pager for row in page.rows]


def test_same_second_burst_is_read_exactly_once(empty_emu, make_client):
    burst = [case(secrets.token_hex(16), BURST, n) for n in range(250)]
    load(empty_emu, burst)
    client = make_client(empty_emu)
    pager = KeysetPager(
        client, CASES, fields=["sys_id"], page_size=100, since=None, until=None
    )

    pages = list(pager)

    got = [row["sys_id"] for page in pages for row in page.rows]
    assert [len(page.rows) for page in pages] == [100, 100, 50]
    assert Counter(got) == Counter(row["sys_id"] for row in burst)
    assert pages[-1].last_cursor == pager.cursor == (START, max(got))


def test_cursor_resumes_inside_a_burst_and_catches_later_rows(empty_emu, make_client):
    burst = [case(secrets.token_hex(16), BURST, n) for n in range(250)]
    load(empty_emu, burst)
    client = make_client(empty_emu)
    until = START + timedelta(seconds=10)
    first = KeysetPager(
        client, CASES, fields=["sys_id"], page_size=200, since=None, until=until
    )
    run1 = next(iter(first))
    late = case(secrets.token_hex(16), stamp(START + timedelta(seconds=5)), 999)
    load(empty_emu, [late])

    second = KeysetPager(
        client,
        CASES,
        fields=["sys_id"],
        page_size=200,
        since=run1.last_cursor,
        until=until,
    )
    run2 = ids(second)

    stored = [row["sys_id"] for row in run1.rows] + run2
    assert len(run1.rows) == 200
    assert Counter(stored) == Counter([r["sys_id"] for r in burst] + [late["sys_id"]])


def test_since_without_sys_id_starts_at_that_second(empty_emu, make_client):
    rows = [
        case("a" * 32, stamp(START - timedelta(seconds=1)), 1),
        case("b" * 32, stamp(START), 2),
        case("c" * 32, stamp(START), 3),
        case("d" * 32, stamp(START + timedelta(seconds=1)), 4),
    ]
    load(empty_emu, rows)
    client = make_client(empty_emu)

    from_second = KeysetPager(
        client, CASES, fields=None, page_size=10, since=(START, ""), until=None
    )
    after_b = KeysetPager(
        client, CASES, fields=None, page_size=10, since=(START, "b" * 32), until=None
    )
    bounded = KeysetPager(
        client,
        CASES,
        fields=None,
        page_size=10,
        since=None,
        until=START + timedelta(seconds=1),
    )

    assert ids(from_second) == ["b" * 32, "c" * 32, "d" * 32]
    assert ids(after_b) == ["c" * 32, "d" * 32]
    assert ids(bounded) == ["a" * 32, "b" * 32, "c" * 32]


def test_cancelled_transactions_halve_the_page_until_it_passes(empty_emu, make_client):
    rows = [
        case(secrets.token_hex(16), stamp(START + timedelta(seconds=n % 37)), n)
        for n in range(450)
    ]
    load(empty_emu, rows)
    empty_emu.faults.max_page_rows = 200
    client = make_client(empty_emu)
    pager = KeysetPager(
        client, CASES, fields=["sys_id"], page_size=1000, since=None, until=None
    )

    got = ids(pager)

    assert Counter(got) == Counter(row["sys_id"] for row in rows)
    assert pager.page_size == 125
    assert client.metrics.requests_by_status["500"] == 3


def test_rows_updated_during_paging_never_hide_others(emu, make_client):
    client = make_client(emu)
    until = client.server_time(CASES)
    before = {row["sys_id"]: row for row in emu.instance.rows(CASES)}
    emu.faults.latency_ms = 30
    emu.instance.start_mutator(rate_per_second=60, tables=[CASES], seed=4)
    pager = KeysetPager(
        client,
        CASES,
        fields=["sys_id", "sys_updated_on"],
        page_size=5,
        since=None,
        until=until,
    )

    pages = list(pager)
    emu.instance.stop_mutator()

    got = [row for page in pages for row in page.rows]
    after = {row["sys_id"]: row for row in emu.instance.rows(CASES)}
    untouched = {
        sys_id
        for sys_id, row in before.items()
        if sys_id in after and after[sys_id]["sys_updated_on"] == row["sys_updated_on"]
    }
    got_ids = [row["sys_id"] for row in got]
    assert len(untouched) < len(before)  # the mutator really moved rows
    assert untouched <= set(got_ids)
    assert len(got_ids) == len(set(got_ids))
    assert all(parse_datetime_utc(row["sys_updated_on"]) < until for row in got)


def hidden_and_visible(emu, count: int) -> tuple[list[str], list[str]]:
    """Fresh sys_ids split by the acl_limited user's row ACL."""
    hidden: list[str] = []
    visible: list[str] = []
    while len(hidden) < count or len(visible) < count:
        sys_id = secrets.token_hex(16)
        row = {"sys_id": sys_id, "sys_class_name": CASES}
        if emu.instance.is_hidden(emu.acl_user, row, CASES):
            hidden.append(sys_id)
        else:
            visible.append(sys_id)
    return hidden[:count], visible[:count]


def test_acl_limited_user_pages_through_hidden_stretches(empty_emu, make_client):
    hidden, visible = hidden_and_visible(empty_emu, 80)
    # In cursor order: 30 visible, 30 hidden, 50 visible, then a 50-row hidden tail.
    order = visible[:30] + hidden[:30] + visible[30:80] + hidden[30:80]
    rows = [
        case(sys_id, stamp(START + timedelta(seconds=n)), n)
        for n, sys_id in enumerate(order)
    ]
    load(empty_emu, rows)
    client = make_client(empty_emu, user="acl_limited")
    pager = KeysetPager(
        client, CASES, fields=["sys_id"], page_size=10, since=None, until=None
    )

    got = ids(pager)

    assert got == visible[:80]
    assert pager.rows == 80
    # 8 visible pages + 3 offset steps over the hidden middle + 1 empty page and
    # 4 counted steps over the hidden tail.
    assert client.metrics.requests == 16


def test_acl_limited_user_reads_every_visible_generated_case(emu, make_client):
    client = make_client(emu, user="acl_limited")
    expected = sorted(
        row["sys_id"]
        for row in emu.instance.rows(CASES)
        if not emu.instance.is_hidden(emu.acl_user, row, CASES)
    )
    pager = KeysetPager(
        client, CASES, fields=["sys_id"], page_size=7, since=None, until=None
    )

    got = ids(pager)

    assert sorted(got) == expected
    assert len(got) < len(emu.instance.rows(CASES))


def test_base_query_with_nq_blocks_is_distributed(emu, make_client):
    client = make_client(emu)
    rows = emu.instance.rows(CASES)
    expected = sorted(r["sys_id"] for r in rows if r["state"] in ("3", "7"))
    pager = KeysetPager(
        client,
        CASES,
        base_query="state=3^NQstate=7^ORDERBYnumber^EQ",
        fields=["sys_id"],
        page_size=10,
        since=None,
        until=None,
    )

    got = ids(pager)

    assert sorted(got) == expected
    assert len(got) == len(set(got))


def test_key_pager_sweeps_sys_ids_in_order(emu, make_client):
    client = make_client(emu)
    expected = sorted(row["sys_id"] for row in emu.instance.rows(CASES))
    pager = KeyPager(client, CASES, page_size=9)

    pages = list(pager)

    assert [row["sys_id"] for page in pages for row in page.rows] == expected
    assert set(pages[0].rows[0]) == {"sys_id"}
    assert pages[-1].last_cursor == expected[-1]


def test_empty_window_sends_no_request(emu, make_client):
    client = make_client(emu)
    before = emu.instance.request_count
    pager = KeysetPager(
        client,
        CASES,
        fields=["sys_id"],
        page_size=10,
        since=(START, "f" * 32),
        until=START,
    )

    assert list(pager) == []
    assert emu.instance.request_count == before


@pytest.mark.parametrize("page_size", [1, 3])
def test_tiny_pages_still_return_everything(emu, make_client, page_size):
    client = make_client(emu)
    expected = sorted(row["sys_id"] for row in emu.instance.rows(CASES))[:20]
    pager = KeyPager(
        client,
        CASES,
        base_query=f"sys_id<={expected[-1]}",
        page_size=page_size,
    )

    assert ids(pager) == expected


def test_count_remaining_is_acl_blind_and_follows_the_cursor(emu, make_client):
    client = make_client(emu, user="acl_limited")
    total = emu.instance.count(CASES)
    pager = KeysetPager(
        client, CASES, fields=["sys_id"], page_size=10, since=None, until=None
    )

    ordered = sorted(
        emu.instance.rows(CASES), key=lambda r: (r["sys_updated_on"], r["sys_id"])
    )
    hidden = [emu.instance.is_hidden(emu.acl_user, r, CASES) for r in ordered]
    last_visible = max(i for i, is_hidden in enumerate(hidden) if not is_hidden)

    before = pager.count_remaining()
    seen = ids(pager)
    after = pager.count_remaining()

    assert before == total
    assert len(seen) == hidden.count(False) < total
    assert after == len(ordered) - last_visible - 1  # hidden rows past the end


@settings(
    max_examples=25,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture],
)
@given(
    seconds=st.lists(st.integers(0, 4), min_size=0, max_size=60),
    page_size=st.integers(1, 25),
    as_acl_user=st.booleans(),
)
def test_any_tie_pattern_and_page_size_yields_each_visible_row_once(
    shared_emu, make_client, seconds, page_size, as_acl_user
):
    prefix = f"PX{secrets.token_hex(3).upper()}"
    rows = [
        {
            **case(secrets.token_hex(16), stamp(START + timedelta(seconds=s)), n),
            "number": f"{prefix}{n:04d}",
        }
        for n, s in enumerate(seconds)
    ]
    load(shared_emu, rows)
    user = "acl_limited" if as_acl_user else "admin"
    client = make_client(shared_emu, user=user)
    visible = sorted(
        (r for r in rows if not shared_emu.instance.is_hidden(user, r, CASES)),
        key=lambda r: (r["sys_updated_on"], r["sys_id"]),
    )
    pager = KeysetPager(
        client,
        CASES,
        base_query=f"numberSTARTSWITH{prefix}",
        fields=["sys_id"],
        page_size=page_size,
        since=None,
        until=None,
    )

    got = ids(pager)

    assert got == [r["sys_id"] for r in visible]


def test_a_bounded_window_ends_when_the_counted_rows_are_in(empty_emu, make_client):
    rows = [
        case(secrets.token_hex(16), stamp(START + timedelta(seconds=n)), n)
        for n in range(25)
    ]
    load(empty_emu, rows)
    client = make_client(empty_emu)
    until = START + timedelta(days=1)

    def pages(size: int, since=None) -> tuple[int, int]:
        before = client.metrics.requests
        pager = KeysetPager(
            client, CASES, fields=["sys_id"], page_size=size, since=since, until=until
        )
        return len(ids(pager)), client.metrics.requests - before

    # 25 rows: 3 pages of 10 (no empty page after the short one), one page of
    # 30, one page of 25 (full, yet every counted row is in), one request when
    # nothing is left after the cursor.
    assert pages(10) == (25, 3)
    assert pages(30) == (25, 1)
    assert pages(25) == (25, 2)  # a full last page: one more (counted) request
    assert pages(10, since=(START + timedelta(seconds=30), "")) == (0, 1)


def test_rows_that_leave_a_bounded_window_cost_one_more_request(empty_emu, make_client):
    rows = [
        case(secrets.token_hex(16), stamp(START + timedelta(seconds=n)), n)
        for n in range(30)
    ]
    load(empty_emu, rows)
    client = make_client(empty_emu)
    pager = KeysetPager(
        client,
        CASES,
        fields=["sys_id"],
        page_size=10,
        since=None,
        until=START + timedelta(days=1),
    )
    pages = iter(pager)
    first = next(pages)
    # Two rows ahead of the cursor are deleted: the count (30) is never reached,
    # so the pager asks until the window is really empty.
    for row in rows[20:22]:
        empty_emu.instance.delete(CASES, row["sys_id"])
    rest = [row["sys_id"] for page in pages for row in page.rows]

    assert [r["sys_id"] for r in first.rows] + rest == [
        r["sys_id"] for r in rows[:20] + rows[22:]
    ]
    assert client.metrics.requests == 4  # 10, 10, 8 rows, then an empty counted page


@settings(
    max_examples=25,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture],
)
@given(
    layout=st.lists(st.booleans(), min_size=0, max_size=60),
    page_size=st.integers(min_value=1, max_value=25),
)
def test_bounded_windows_return_every_visible_row_whatever_acls_hide(
    empty_emu, make_client, layout, page_size
):
    """Hidden rows count in X-Total-Count but never come back: nothing is lost."""
    hidden, visible = hidden_and_visible(empty_emu, len(layout))
    order = [hidden.pop() if is_hidden else visible.pop() for is_hidden in layout]
    base = START + timedelta(days=len(empty_emu.instance.rows(CASES)))
    rows = [
        case(sys_id, stamp(base + timedelta(seconds=n)), n)
        for n, sys_id in enumerate(order)
    ]
    load(empty_emu, rows)
    client = make_client(empty_emu, user="acl_limited")
    pager = KeysetPager(
        client,
        CASES,
        fields=["sys_id"],
        page_size=page_size,
        since=(base, ""),
        until=base + timedelta(seconds=len(order)),
    )

    got = ids(pager)

    assert got == [row["sys_id"] for row, h in zip(rows, layout, strict=True) if not h]
