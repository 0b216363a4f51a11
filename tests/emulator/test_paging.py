"""Paging under change and under row ACLs (C01, C02, §5.2)."""

from __future__ import annotations

import time

from connector.emulator.server import EmulatorServer

from .helpers import CASE, Api, make_api, seed_cases

BURST = "2026-02-01 09:00:00"


def offset_scan(api: Api, limit: int, pause: float = 0.0) -> list[str]:
    """Offset paging ordered by the mutable sys_updated_on (the C01 mistake)."""
    seen: list[str] = []
    offset = 0
    while True:
        page = api.result(
            f"/api/now/table/{CASE}",
            sysparm_query="sys_updated_on>=2026-01-01 00:00:00^ORDERBYsys_updated_on",
            sysparm_fields="sys_id",
            sysparm_limit=limit,
            sysparm_offset=offset,
        )
        if not page:
            return seen
        seen += [r["sys_id"] for r in page]
        offset += limit
        time.sleep(pause)


def keyset_query(updated: str, sys_id: str) -> str:
    """tap-servicenow's compound cursor (TABLE_API.md §5.4)."""
    return (
        f"sys_updated_on>={BURST[:10]} 00:00:00^sys_updated_on>{updated}"
        f"^NQsys_updated_on>={BURST[:10]} 00:00:00^sys_updated_on={updated}"
        f"^sys_id>{sys_id}^ORDERBYsys_updated_on^ORDERBYsys_id"
    )


def keyset_scan(api: Api, limit: int, pause: float = 0.0) -> list[str]:
    seen: list[str] = []
    cursor = ("2026-01-01 00:00:00", "")
    while True:
        page = api.result(
            f"/api/now/table/{CASE}",
            sysparm_query=keyset_query(*cursor),
            sysparm_fields="sys_id,sys_updated_on",
            sysparm_limit=limit,
            sysparm_exclude_reference_link="true",
            sysparm_no_count="true",
        )
        if not page:
            return seen
        seen += [r["sys_id"] for r in page]
        cursor = (page[-1]["sys_updated_on"], page[-1]["sys_id"])
        time.sleep(pause)


def test_offset_paging_on_a_mutable_order_skips_a_row(
    empty_emulator: EmulatorServer, admin: Api
) -> None:
    ids = seed_cases(empty_emulator, 6)
    for i, sys_id in enumerate(ids):
        empty_emulator.instance.update(
            CASE, sys_id, {"sys_updated_on": f"2026-01-02 10:00:0{i}"}, raw=True
        )
    query = "sys_updated_on>=2026-01-01 00:00:00^ORDERBYsys_updated_on"

    def page(offset: int) -> list[str]:
        rows = admin.result(
            f"/api/now/table/{CASE}",
            sysparm_query=query,
            sysparm_fields="sys_id",
            sysparm_limit=2,
            sysparm_offset=offset,
        )
        return [r["sys_id"] for r in rows]

    first = page(0)
    admin.patch(f"/api/now/table/{CASE}/{ids[1]}", {"short_description": "edited"})
    rest = page(2) + page(4)

    assert first == ids[:2]
    assert ids[2] not in first + rest  # the C01 skip
    assert rest == [ids[3], ids[4], ids[5], ids[1]]


def test_mutator_breaks_offset_paging_but_not_the_keyset(
    empty_emulator: EmulatorServer, admin: Api
) -> None:
    ids = set(seed_cases(empty_emulator, 200))
    instance = empty_emulator.instance
    instance.start_mutator(150, tables=[CASE], seed=3, delete_ratio=0.0)
    try:
        offset_seen = offset_scan(admin, limit=10, pause=0.03)
        keyset_seen = keyset_scan(admin, limit=10, pause=0.03)
    finally:
        instance.stop_mutator()

    assert ids - set(offset_seen), "offset paging should have skipped a row"
    assert set(keyset_seen) == ids
    audit = instance.rows(CASE)
    assert any(
        r["sys_updated_by"] == "system" and r["sys_mod_count"] != "0" for r in audit
    )


def test_mutator_deletes_leave_audit_rows(empty_emulator: EmulatorServer) -> None:
    seed_cases(empty_emulator, 50)
    instance = empty_emulator.instance

    instance.start_mutator(200, tables=[CASE], seed=1, delete_ratio=1.0)
    time.sleep(0.3)
    instance.stop_mutator()

    gone = 50 - instance.count(CASE)
    audit = [r for r in instance.rows("sys_audit") if r["fieldname"] == "DELETED"]
    assert gone > 0
    assert len(audit) == gone


def test_same_second_burst_is_read_once_by_the_compound_keyset(
    empty_emulator: EmulatorServer, admin: Api
) -> None:
    ids = seed_cases(empty_emulator, 250, updated=BURST)

    seen = keyset_scan(admin, limit=100)

    assert len(seen) == 250
    assert sorted(seen) == sorted(ids)


def test_plain_greater_than_watermark_loses_the_rest_of_a_burst(
    empty_emulator: EmulatorServer, admin: Api
) -> None:
    seed_cases(empty_emulator, 250, updated=BURST)

    first = admin.result(
        f"/api/now/table/{CASE}",
        sysparm_query="ORDERBYsys_updated_on^ORDERBYsys_id",
        sysparm_limit=200,
    )
    second = admin.result(
        f"/api/now/table/{CASE}", sysparm_query=f"sys_updated_on>{BURST}"
    )

    assert len(first) == 200
    assert second == []


def hidden_then_visible(emu: EmulatorServer, n: int) -> list[dict[str, str]]:
    """n cases hidden from acl_limited that sort before n visible ones."""
    hidden: list[dict[str, str]] = []
    visible: list[dict[str, str]] = []
    i = 0
    while len(hidden) < n or len(visible) < n:
        low = {"sys_id": f"0{i:031x}", "short_description": "hidden"}
        high = {"sys_id": f"f{i:031x}", "short_description": "visible"}
        if len(hidden) < n and emu.instance.is_hidden(emu.acl_user, low, CASE):
            hidden.append(low)
        if len(visible) < n and not emu.instance.is_hidden(emu.acl_user, high, CASE):
            visible.append(high)
        i += 1
    return hidden + visible


def test_acl_limited_pages_are_short_but_total_is_acl_blind(
    empty_emulator: EmulatorServer,
) -> None:
    empty_emulator.instance.load_rows(CASE, hidden_then_visible(empty_emulator, 10))
    api = make_api(empty_emulator, empty_emulator.acl_user, empty_emulator.acl_password)

    pages = [
        api.get(
            f"/api/now/table/{CASE}",
            sysparm_query="ORDERBYsys_id",
            sysparm_limit=10,
            sysparm_offset=offset,
        )
        for offset in (0, 10)
    ]

    assert pages[0].json()["result"] == []
    assert pages[0].headers["X-Total-Count"] == "20"
    assert 'rel="next"' in pages[0].headers["Link"]
    second = pages[1].json()["result"]
    assert [r["short_description"] for r in second] == ["visible"] * 10


def test_acl_limited_short_pages_on_a_generated_table(emulator: EmulatorServer) -> None:
    api = make_api(emulator, emulator.acl_user, emulator.acl_password)
    total = emulator.instance.count(CASE)

    sizes: list[int] = []
    for offset in range(0, total, 10):
        response = api.get(
            f"/api/now/table/{CASE}",
            sysparm_query="ORDERBYsys_id",
            sysparm_limit=10,
            sysparm_offset=offset,
        )
        assert response.headers["X-Total-Count"] == str(total)
        sizes.append(len(response.json()["result"]))

    assert min(sizes[:-1]) < 10
    assert 0.5 * total < sum(sizes) < 0.9 * total
    hidden_one = next(
        r["sys_id"]
        for r in emulator.instance.rows(CASE)
        if emulator.instance.is_hidden(emulator.acl_user, r, CASE)
    )
    assert api.get(f"/api/now/table/{CASE}/{hidden_one}").status_code == 404


def test_unstable_order_duplicates_and_skips_without_a_unique_sort(
    empty_emulator: EmulatorServer, admin: Api
) -> None:
    ids = seed_cases(empty_emulator, 60)
    empty_emulator.faults.update(unstable_order=True, seed=5)

    def scan(query: str) -> list[str]:
        seen: list[str] = []
        for offset in range(0, 60, 10):
            page = admin.result(
                f"/api/now/table/{CASE}",
                sysparm_query=query,
                sysparm_fields="sys_id",
                sysparm_limit=10,
                sysparm_offset=offset,
            )
            seen += [r["sys_id"] for r in page]
        return seen

    unordered = scan("")
    ties = scan("ORDERBYstate")
    unique = scan("ORDERBYstate^ORDERBYsys_id")

    assert len(set(unordered)) < 60  # C01 case A: duplicates and skips
    assert len(set(ties)) < 60
    assert unique == sorted(ids, key=lambda i: (int(i, 16) % 2 == 0, i))


def test_mutator_inserts_new_records_mid_run(empty_emulator: EmulatorServer) -> None:
    seed_cases(empty_emulator, 20)
    instance = empty_emulator.instance

    mutator = instance.start_mutator(200, seed=2, delete_ratio=0.0, insert_ratio=1.0)
    time.sleep(0.3)
    instance.stop_mutator()

    rows = instance.rows(CASE)
    new = [r for r in rows if r["sys_created_on"] != BURST]
    assert mutator.inserts == len(new) == len(rows) - 20 > 0
    assert all(r["number"].startswith("CS") for r in new)
    assert len({r["number"] for r in rows}) == len(rows)
