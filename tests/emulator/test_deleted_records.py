"""``sys_audit_delete`` (Deleted Records): what a delete keeps, and who may read it.

TABLE_API.md §11.4 and C13: a delete of an audited table's record keeps the
record there; every delete still writes its ``sys_audit`` DELETED row; Table
Cleaner deletes leave neither; a user without the right gets 403.
"""

from __future__ import annotations

import xml.etree.ElementTree as ET
from pathlib import Path

from hypothesis import given, settings
from hypothesis import strategies as st

from connector.emulator.instance import Instance, record_payload
from connector.emulator.schema import AUDITED_TABLES
from connector.emulator.server import EmulatorServer

from .helpers import CASE, Api, make_api, seed_cases

DELETED = "/api/now/table/sys_audit_delete"


def _payload_fields(payload: str, table: str) -> dict[str, str]:
    root = ET.fromstring(payload.encode())
    assert root.tag == "record_update"
    assert root.get("table") == table
    (body,) = list(root)
    assert body.tag == table
    return {child.tag: child.text or "" for child in body}


def test_deleting_a_case_keeps_it_in_deleted_records(
    empty_emulator: EmulatorServer, admin: Api
) -> None:
    (sys_id,) = seed_cases(empty_emulator, 1)
    admin.patch(f"/api/now/table/{CASE}/{sys_id}", {"short_description": "a & <b>"})

    assert admin.delete(f"/api/now/table/{CASE}/{sys_id}").status_code == 204

    rows = admin.result(DELETED, sysparm_query=f"documentkey={sys_id}")
    assert len(rows) == 1
    row = rows[0]
    assert row["tablename"] == CASE
    assert row["display_value"] == "CS0000001"
    assert row["sys_created_by"] == empty_emulator.admin_user
    kept = _payload_fields(row["payload"], CASE)
    assert kept["sys_id"] == sys_id
    assert kept["number"] == "CS0000001"
    assert kept["short_description"] == "a & <b>"
    assert kept["state"] == "1"
    audit = admin.result(
        "/api/now/table/sys_audit",
        sysparm_query=f"documentkey={sys_id}^fieldname=DELETED",
    )
    assert len(audit) == 1
    assert audit[0]["sys_created_on"] == row["sys_created_on"]


def test_a_delete_through_the_base_table_is_filed_under_the_real_class(
    empty_emulator: EmulatorServer, admin: Api
) -> None:
    (sys_id,) = seed_cases(empty_emulator, 1)

    assert admin.delete(f"/api/now/table/task/{sys_id}").status_code == 204

    by_case = admin.result(DELETED, sysparm_query=f"tablename={CASE}")
    by_task = admin.result(DELETED, sysparm_query="tablename=task")
    assert [r["documentkey"] for r in by_case] == [sys_id]
    assert by_task == []


def test_an_unaudited_tables_delete_is_only_in_sys_audit(
    empty_emulator: EmulatorServer, admin: Api
) -> None:
    assert "cmdb_model" not in AUDITED_TABLES
    model = empty_emulator.instance.insert("cmdb_model", {"name": "Router X"})

    response = admin.delete(f"/api/now/table/cmdb_model/{model['sys_id']}")

    assert response.status_code == 204
    assert admin.result(DELETED, sysparm_query=f"documentkey={model['sys_id']}") == []
    audit = admin.result(
        "/api/now/table/sys_audit", sysparm_query=f"documentkey={model['sys_id']}"
    )
    assert [r["fieldname"] for r in audit] == ["DELETED"]


def test_snowloader_style_query_finds_deletions_since_a_watermark(
    empty_emulator: EmulatorServer, admin: Api, integration: Api
) -> None:
    ids = seed_cases(empty_emulator, 3)
    account = empty_emulator.instance.rows("customer_account")[0]["sys_id"]
    since = empty_emulator.instance.now_str()
    for sys_id in ids[:2]:
        admin.delete(f"/api/now/table/{CASE}/{sys_id}")
    admin.delete(f"/api/now/table/customer_account/{account}")

    rows = integration.result(
        DELETED,
        sysparm_query=f"sys_created_on>={since}^tablenameIN{CASE},task",
        sysparm_fields="sys_id,tablename,documentkey,sys_created_on",
    )
    later = integration.result(
        DELETED, sysparm_query="sys_created_on>2099-01-01 00:00:00"
    )

    assert sorted(r["documentkey"] for r in rows) == sorted(ids[:2])
    assert set(rows[0]) == {"sys_id", "tablename", "documentkey", "sys_created_on"}
    assert later == []


def test_a_user_without_the_right_gets_403(empty_emulator: EmulatorServer) -> None:
    emu = empty_emulator
    (sys_id,) = seed_cases(emu, 1)
    emu.instance.delete(CASE, sys_id)
    restricted = make_api(emu, emu.restricted_user, emu.restricted_password)
    acl = make_api(emu, emu.acl_user, emu.acl_password)
    query = f"tablename={CASE}^sys_created_on>=2026-01-01 00:00:00"

    denied = restricted.get(DELETED, sysparm_query=query)
    allowed = acl.get(DELETED, sysparm_query=query)

    assert denied.status_code == 403
    assert denied.json()["error"]["message"] == "User Not Authorized"
    assert allowed.status_code == 200
    assert [r["documentkey"] for r in allowed.json()["result"]] == [sys_id]


def test_table_cleaner_deletes_leave_nothing(
    empty_emulator: EmulatorServer, admin: Api
) -> None:
    cleaned, deleted = seed_cases(empty_emulator, 2)

    # Table Cleaner removes rows below the audit layer: straight SQL.
    empty_emulator.instance.store.execute(
        f"DELETE FROM {CASE} WHERE sys_id = ?", (cleaned,)
    )
    admin.delete(f"/api/now/table/{CASE}/{deleted}")

    assert admin.result(f"/api/now/table/{CASE}") == []
    assert [r["documentkey"] for r in admin.result(DELETED)] == [deleted]
    audit = admin.result("/api/now/table/sys_audit", sysparm_fields="documentkey")
    assert [r["documentkey"] for r in audit] == [deleted]


def test_the_dictionary_describes_deleted_records(admin: Api) -> None:
    rows = admin.result(
        "/api/now/table/sys_dictionary",
        sysparm_query="name=sys_audit_delete^elementISNOTEMPTY",
        sysparm_fields="element,internal_type",
    )

    types = {r["element"]: r["internal_type"] for r in rows}
    assert types["tablename"] == "table_name"
    assert types["documentkey"] == "GUID"
    assert types["payload"] == "xml"
    assert "display_value" in types and "sys_created_on" in types


def test_a_reused_database_without_the_table_gains_it(tmp_path: Path) -> None:
    db = str(tmp_path / "old.db")
    first = Instance(db_path=db)
    store = first.store
    # What an emulator from before sys_audit_delete left on disk.
    store.execute('DROP TABLE "sys_audit_delete"')
    for meta in ("sys_db_object", "sys_dictionary", "sys_choice"):
        store.execute(f"DELETE FROM {meta} WHERE name = 'sys_audit_delete'")
    first.close()

    again = Instance(db_path=db)
    try:
        account = again.insert("customer_account", {"name": "Globex"})
        again.delete("customer_account", account["sys_id"])
        rows = again.rows("sys_audit_delete")
    finally:
        again.close()

    assert again.reused
    assert [(r["tablename"], r["display_value"]) for r in rows] == [
        ("customer_account", "Globex")
    ]


@settings(max_examples=60, deadline=None)
@given(value=st.text(st.characters(exclude_categories=["Cs"]), max_size=40))
def test_payload_keeps_any_text_value(value: str) -> None:
    payload = record_payload(CASE, {"sys_id": "a" * 32, "short_description": value})

    kept = _payload_fields(payload, CASE)

    expected = "".join(
        c
        for c in value
        if c in "\t\n\r"
        or ("\x20" <= c <= "\ud7ff")
        or ("\ue000" <= c <= "\ufffd")
        or c >= "\U00010000"
    )
    assert kept["short_description"] == expected
    assert kept["sys_id"] == "a" * 32
