"""The encoded-query engine, driven over HTTP against hand-made rows."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from connector.emulator import gsdates
from connector.emulator.server import EmulatorServer

from .helpers import CASE, Api, make_api, seed_cases


@pytest.fixture(scope="module")
def world() -> Iterator[tuple[EmulatorServer, Api]]:
    """40 seeded cases on one account, read-only for every test here."""
    with EmulatorServer(accounts=0) as emu:
        seed_cases(emu, 40)
        api = make_api(emu, emu.admin_user, emu.admin_password)
        yield emu, api
        api.session.close()


def numbers(api: Api, query: str, table: str = CASE) -> list[str]:
    rows = api.result(
        f"/api/now/table/{table}",
        sysparm_query=query,
        sysparm_fields="number",
    )
    return [r["number"] for r in rows]


def ids(*indexes: int) -> list[str]:
    return [f"CS{i:07d}" for i in indexes]


@pytest.mark.parametrize(
    ("query", "expected"),
    [
        ("number=CS0000005", ids(5)),
        ("priority<=1", ids(4, 8, 12, 16, 20, 24, 28, 32, 36, 40)),
        ("reassignment_count>5^ORDERBYnumber", ids(6, 13, 20, 27, 34)),
        ("reassignment_count>=6^number<CS0000020", ids(6, 13)),
        ("numberINCS0000001,CS0000003,CS9999999", ids(1, 3)),
        ("numberNOT INCS0000001,CS0000002^number<CS0000005", ids(3, 4)),
        ("short_descriptionLIKEase 3", ids(3, *range(30, 40))),
        ("short_descriptionNOT LIKEcase 1^number<=CS0000012", ids(2, *range(3, 10))),
        ("numberSTARTSWITHCS000001", ids(*range(10, 20))),
        ("numberENDSWITH7", ids(7, 17, 27, 37)),
        ("reassignment_countBETWEEN5@6^number<CS0000015", ids(5, 6, 12, 13)),
        ("number=CS0000002^ORnumber=CS0000004", ids(2, 4)),
        ("number=CS0000002^NQnumber=CS0000009", ids(2, 9)),
        ("number<CS0000003^NQnumber>CS0000038^EQ", ids(1, 2, 39, 40)),
        ("closed_atISEMPTY^number<CS0000003", ids(1, 2)),
        ("closed_atISNOTEMPTY", []),
        ("closed_atEMPTYSTRING^number=CS0000001", ids(1)),
        ("numberANYTHING^number<CS0000003", ids(1, 2)),
        ("sys_created_onSAMEASsys_updated_on^number<CS0000003", ids(1, 2)),
        ("sys_created_onNSAMEASsys_updated_on", []),
        ("state=NOT_A_NUMBER", []),
        ("state==1", []),
        ("state=99999", []),
        ("account.name=Acme Corp^number<CS0000003", ids(1, 2)),
        ("account.name=Other", []),
        ("account.rank_tier=strategic^number=CS0000004", ids(4)),
    ],
)
def test_operators(
    world: tuple[EmulatorServer, Api], query: str, expected: list
) -> None:
    _, api = world

    found = numbers(api, query)

    assert sorted(found) == sorted(expected)


def test_boolean_not_true_also_matches_empty(empty_emulator: EmulatorServer) -> None:
    api = make_api(empty_emulator, "admin", "admin")
    for value in ("true", "false", ""):
        empty_emulator.instance.insert("customer_account", {"name": value or "empty"})
        empty_emulator.instance.insert(
            "customer_account", {"name": f"a-{value}", "active": value}
        )

    rows = api.result(
        "/api/now/table/customer_account",
        sysparm_query="active!=true^nameSTARTSWITHa-",
        sysparm_fields="name",
    )

    assert sorted(r["name"] for r in rows) == ["a-", "a-false"]


def test_order_by_chain_numeric_and_desc(world: tuple[EmulatorServer, Api]) -> None:
    _, api = world

    found = numbers(api, "number<=CS0000008^ORDERBYDESCpriority^ORDERBYnumber")

    # priority is 1 + i % 4, sorted numerically, descending; ties by number.
    assert found == ids(3, 7, 2, 6, 1, 5, 4, 8)


def test_integer_order_is_numeric_not_lexical(empty_emulator: EmulatorServer) -> None:
    api = make_api(empty_emulator, "admin", "admin")
    for count in ("10", "9", "100"):
        empty_emulator.instance.insert(
            CASE, {"short_description": count, "reassignment_count": count}
        )

    rows = api.result(
        f"/api/now/table/{CASE}",
        sysparm_query="ORDERBYreassignment_count",
        sysparm_fields="reassignment_count",
    )

    assert [r["reassignment_count"] for r in rows] == ["9", "10", "100"]


def test_unknown_field_term_is_dropped(world: tuple[EmulatorServer, Api]) -> None:
    _, api = world

    response = api.get(
        f"/api/now/table/{CASE}",
        sysparm_query="sys_update_on>=2026-03-01 00:00:00",
        sysparm_limit=1,
    )
    mixed = numbers(api, "no_such_field=banana^number=CS0000007")
    misspelt_isnotempty = api.get(
        f"/api/now/table/{CASE}", sysparm_query="no_such_fieldISNOTEMPTY"
    )

    assert response.headers["X-Total-Count"] == "40"
    assert mixed == ids(7)
    assert misspelt_isnotempty.headers["X-Total-Count"] == "40"


def test_invalid_query_returns_no_rows_switch(
    world: tuple[EmulatorServer, Api],
) -> None:
    emu, api = world
    emu.faults.invalid_query_returns_no_rows = True
    try:
        response = api.get(f"/api/now/table/{CASE}", sysparm_query="no_such=1")
        valid = numbers(api, "number=CS0000001")
    finally:
        emu.faults.invalid_query_returns_no_rows = False

    assert response.json() == {"result": []}
    assert response.headers["X-Total-Count"] == "0"
    assert valid == ids(1)


def test_multi_level_dot_walk(empty_emulator: EmulatorServer) -> None:
    instance = empty_emulator.instance
    api = make_api(empty_emulator, "admin", "admin")
    account = instance.insert("customer_account", {"name": "Parent Co"})
    contact = instance.insert(
        "customer_contact", {"name": "Ann Lee", "account": account["sys_id"]}
    )
    instance.insert(CASE, {"short_description": "walk", "contact": contact["sys_id"]})
    instance.insert(CASE, {"short_description": "no contact"})

    rows = api.result(
        f"/api/now/table/{CASE}",
        sysparm_query="contact.account.name=Parent Co",
        sysparm_fields="short_description,contact.account.name,contact.account",
    )

    assert rows == [
        {
            "short_description": "walk",
            "contact.account.name": "Parent Co",
            "contact.account": {
                "link": f"{empty_emulator.url}/api/now/table/customer_account/"
                + account["sys_id"],
                "value": account["sys_id"],
            },
        }
    ]


def test_javascript_date_helpers_use_the_server_clock() -> None:
    now = datetime(2026, 3, 10, 15, 30, 0, tzinfo=UTC)
    with EmulatorServer(accounts=0, clock=lambda: now) as emu:
        api = make_api(emu, "admin", "admin")
        for day in (
            "2026-03-10 01:00:00",
            "2026-03-09 23:59:59",
            "2026-02-15 12:00:00",
        ):
            emu.instance.insert(CASE, {"short_description": day, "opened_at": day})

        def opened(query: str) -> list[str]:
            rows = api.result(
                f"/api/now/table/{CASE}",
                sysparm_query=query + "^ORDERBYopened_at",
                sysparm_fields="opened_at",
            )
            return [r["opened_at"] for r in rows]

        today = opened("opened_at>=javascript:gs.beginningOfToday()")
        last_month = opened(
            "opened_atBETWEENjavascript:gs.beginningOfLastMonth()"
            "@javascript:gs.endOfLastMonth()"
        )
        day_ago = opened("opened_at>javascript:gs.daysAgo(1)")
        generated = opened("opened_at<javascript:gs.dateGenerate('2026-03-01','end')")

    assert today == ["2026-03-10 01:00:00"]
    assert last_month == ["2026-02-15 12:00:00"]
    assert day_ago == ["2026-03-09 23:59:59", "2026-03-10 01:00:00"]
    assert generated == ["2026-02-15 12:00:00"]


@pytest.mark.parametrize(
    ("expression", "expected"),
    [
        ("gs.beginningOfToday()", "2026-03-11 00:00:00"),
        ("gs.endOfYesterday()", "2026-03-10 23:59:59"),
        ("gs.beginningOfThisWeek()", "2026-03-09 00:00:00"),
        ("gs.endOfThisWeek()", "2026-03-15 23:59:59"),
        ("gs.beginningOfLastWeek()", "2026-03-02 00:00:00"),
        ("gs.beginningOfThisMonth()", "2026-03-01 00:00:00"),
        ("gs.endOfLastMonth()", "2026-02-28 23:59:59"),
        ("gs.beginningOfThisQuarter()", "2026-01-01 00:00:00"),
        ("gs.endOfThisYear()", "2026-12-31 23:59:59"),
        ("gs.beginningOfLastYear()", "2025-01-01 00:00:00"),
        ("gs.daysAgo(2)", "2026-03-09 08:07:06"),
        ("gs.daysAgoStart(2)", "2026-03-09 00:00:00"),
        ("gs.daysAgoEnd(0)", "2026-03-11 23:59:59"),
        ("gs.daysAgo(-1)", "2026-03-12 08:07:06"),
        ("gs.hoursAgo(3)", "2026-03-11 05:07:06"),
        ("gs.hoursAgoStart(1)", "2026-03-11 07:00:00"),
        ("gs.hoursAgoEnd(1)", "2026-03-11 07:59:59"),
        ("gs.minutesAgo(10)", "2026-03-11 07:57:06"),
        ("gs.minutesAgoStart(1)", "2026-03-11 08:06:00"),
        ("gs.monthsAgo(1)", "2026-02-11 08:07:06"),
        ("gs.monthsAgoStart(1)", "2026-02-01 00:00:00"),
        ("gs.monthsAgoEnd(1)", "2026-02-28 23:59:59"),
        ("gs.quartersAgoStart(1)", "2025-10-01 00:00:00"),
        ("gs.yearsAgo(1)", "2025-03-11 08:07:06"),
        ("gs.nowDateTime()", "2026-03-11 08:07:06"),
        ("gs.now()", "2026-03-11"),
        ("gs.dateGenerate('2026-01-05','start')", "2026-01-05 00:00:00"),
        ("gs.dateGenerate('2026-01-05','12:00:00')", "2026-01-05 12:00:00"),
        ("gs.noSuchHelper()", None),
    ],
)
def test_gs_helpers(expression: str, expected: str | None) -> None:
    now = datetime(2026, 3, 11, 8, 7, 6)

    assert gsdates.evaluate(expression, now) == expected


@settings(
    max_examples=40,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture],
)
@given(
    op=st.sampled_from(["=", "!=", ">", ">=", "<", "<="]),
    value=st.integers(min_value=-1, max_value=8),
    field=st.sampled_from(["reassignment_count", "priority"]),
)
def test_numeric_comparisons_match_an_oracle(
    world: tuple[EmulatorServer, Api], op: str, value: int, field: str
) -> None:
    emu, api = world
    rows = emu.instance.rows(CASE)
    compare = {
        "=": lambda a, b: a == b,
        "!=": lambda a, b: a != b,
        ">": lambda a, b: a > b,
        ">=": lambda a, b: a >= b,
        "<": lambda a, b: a < b,
        "<=": lambda a, b: a <= b,
    }[op]
    expected = sorted(r["number"] for r in rows if compare(int(r[field]), value))

    found = sorted(numbers(api, f"{field}{op}{value}"))

    assert found == expected


def test_unknown_sort_field_is_not_an_invalid_query(
    world: tuple[EmulatorServer, Api],
) -> None:
    emu, api = world
    emu.faults.invalid_query_returns_no_rows = True
    try:
        found = numbers(api, "number<CS0000003^ORDERBYno_such_field^ORDERBYDESCnumber")
    finally:
        emu.faults.invalid_query_returns_no_rows = False

    assert found == ids(2, 1)


TERM_FIELDS = ("number", "opened_at", "short_description")
TERM_VALUES = {
    "number": [f"CS{i:07d}" for i in (0, 3, 12, 25, 39, 41)],
    "opened_at": ["2026-01-05 10:00:00", "2026-01-15 00:00:00", "2026-01-28 10:00:00"],
    "short_description": ["case 1", "case 2", "case 33"],
}
PY_OPS = {
    "=": lambda a, b: a == b,
    "!=": lambda a, b: a != b,
    ">": lambda a, b: a > b,
    ">=": lambda a, b: a >= b,
    "<": lambda a, b: a < b,
    "STARTSWITH": lambda a, b: a.lower().startswith(b.lower()),
}
term = st.builds(
    lambda f, op, data: (f, op, data.draw(st.sampled_from(TERM_VALUES[f]))),
    st.sampled_from(TERM_FIELDS),
    st.sampled_from(list(PY_OPS)),
    st.data(),
)
group = st.lists(term, min_size=1, max_size=2)  # OR-ed terms
block = st.lists(group, min_size=1, max_size=3)  # AND-ed groups
query_blocks = st.lists(block, min_size=1, max_size=3)  # ^NQ blocks


def encode(blocks: list) -> str:
    def enc_group(g: list) -> str:
        return "^OR".join(f"{f}{op}{v}" for f, op, v in g)

    return "^NQ".join("^".join(enc_group(g) for g in b) for b in blocks)


def matches(row: dict[str, str], blocks: list) -> bool:
    return any(
        all(any(PY_OPS[op](row[f], v) for f, op, v in g) for g in b) for b in blocks
    )


@settings(
    max_examples=60,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture],
)
@given(blocks=query_blocks)
def test_and_or_nq_queries_match_an_oracle(
    world: tuple[EmulatorServer, Api], blocks: list
) -> None:
    emu, api = world
    expected = sorted(
        r["number"] for r in emu.instance.rows(CASE) if matches(r, blocks)
    )

    found = sorted(numbers(api, encode(blocks)))

    assert found == expected


def test_user_time_zone_moves_display_values_and_gs_calendars() -> None:
    now = datetime(2026, 7, 5, 6, 0, 0, tzinfo=UTC)  # 23:00 on 4 July in Los Angeles
    zones = {"integration": "America/Los_Angeles"}
    with EmulatorServer(accounts=0, clock=lambda: now, user_time_zones=zones) as emu:
        for opened in ("2026-07-04 10:00:00", "2026-07-05 02:00:00"):
            emu.instance.insert(CASE, {"opened_at": opened})  # 03:00 / 19:00 PDT
        local = make_api(emu, "integration", "integration")
        utc = make_api(emu, "admin", "admin")
        query = "opened_at>=javascript:gs.beginningOfToday()^ORDERBYopened_at"

        shown = local.result(
            f"/api/now/table/{CASE}",
            sysparm_query="ORDERBYopened_at",
            sysparm_display_value="all",
            sysparm_fields="opened_at",
        )
        local_today = local.result(
            f"/api/now/table/{CASE}", sysparm_query=query, sysparm_fields="opened_at"
        )
        utc_today = utc.result(
            f"/api/now/table/{CASE}", sysparm_query=query, sysparm_fields="opened_at"
        )

    assert shown[1]["opened_at"] == {
        "display_value": "2026-07-04 19:00:00",
        "value": "2026-07-05 02:00:00",
    }
    # Los Angeles' "today" began at 2026-07-04 07:00 UTC: both rows are in it.
    assert [r["opened_at"] for r in local_today] == [
        "2026-07-04 10:00:00",
        "2026-07-05 02:00:00",
    ]
    assert [r["opened_at"] for r in utc_today] == ["2026-07-05 02:00:00"]


def test_gs_helpers_in_a_user_zone() -> None:
    from zoneinfo import ZoneInfo

    now = datetime(2026, 3, 11, 3, 0, 0)  # UTC; 10 March 20:00 in Los Angeles
    tz = ZoneInfo("America/Los_Angeles")

    assert gsdates.evaluate("gs.beginningOfToday()", now, tz) == "2026-03-10 07:00:00"
    assert gsdates.evaluate("gs.dateGenerate('2026-03-10','start')", now, tz) == (
        "2026-03-10 07:00:00"
    )
    assert gsdates.evaluate("gs.now()", now, tz) == "2026-03-10"


def test_gs_get_user_id_is_the_session_user(empty_emulator: EmulatorServer) -> None:
    instance = empty_emulator.instance
    mine = instance.user_sys_id("integration")
    instance.insert(CASE, {"short_description": "mine", "assigned_to": mine})
    instance.insert(CASE, {"short_description": "other", "assigned_to": "a" * 32})
    api = make_api(empty_emulator, "integration", "integration")

    rows = api.result(
        f"/api/now/table/{CASE}",
        sysparm_query="assigned_to=javascript:gs.getUserID()",
        sysparm_fields="short_description",
    )

    assert rows == [{"short_description": "mine"}]
