"""Dictionary, choices, custom tables, audit rows and write ACLs (C09, C13)."""

from __future__ import annotations

from connector.emulator.server import EmulatorServer

from .helpers import CASE, Api, make_api, seed_cases


def test_dictionary_describes_fields_and_the_parent_chain(admin: Api) -> None:
    tables = admin.result(
        "/api/now/table/sys_db_object",
        sysparm_query=f"name={CASE}",
        sysparm_fields="name,label,super_class.name",
    )
    rows = admin.result(
        "/api/now/table/sys_dictionary",
        sysparm_query="nameINtask,sn_customerservice_case^ORDERBYelement",
        sysparm_fields="name,element,internal_type,reference,max_length",
    )

    assert tables == [{"name": CASE, "label": "Case", "super_class.name": "task"}]
    by_element = {(r["name"], r["element"]): r for r in rows}
    assert by_element[(CASE, "")]["internal_type"] == "collection"
    assert by_element[(CASE, "account")] == {
        "name": CASE,
        "element": "account",
        "internal_type": "reference",
        "reference": "customer_account",
        "max_length": "40",
    }
    assert by_element[("task", "number")]["internal_type"] == "string"
    assert (CASE, "number") not in by_element  # inherited, defined on task


def test_every_choice_is_in_sys_choice(admin: Api) -> None:
    rows = admin.result(
        "/api/now/table/sys_choice",
        sysparm_query="name=task^element=state^language=en^ORDERBYsequence",
        sysparm_fields="value,label",
    )

    assert [(r["value"], r["label"]) for r in rows] == [
        ("1", "New"),
        ("10", "Open"),
        ("18", "Awaiting Info"),
        ("6", "Resolved"),
        ("3", "Closed"),
        ("7", "Cancelled"),
    ]


def test_new_dictionary_column_is_real_then_removed(
    empty_emulator: EmulatorServer, admin: Api
) -> None:
    account = empty_emulator.instance.insert("customer_account", {"name": "Acme"})
    url = f"/api/now/table/customer_account/{account['sys_id']}"

    created = admin.post(
        "/api/now/table/sys_dictionary",
        {
            "name": "customer_account",
            "element": "u_health_score",
            "column_label": "Health score",
            "internal_type": "integer",
            "max_length": "40",
        },
    )
    stored = admin.patch(url, {"u_health_score": "72"})
    numeric = admin.result(
        "/api/now/table/customer_account", sysparm_query="u_health_score>9"
    )
    removed = admin.delete(
        f"/api/now/table/sys_dictionary/{created.json()['result']['sys_id']}"
    )
    ignored = admin.patch(url, {"u_health_score": "80"})

    assert created.status_code == 201
    assert stored.json()["result"]["u_health_score"] == "72"
    assert [r["name"] for r in numeric] == ["Acme"]
    assert removed.status_code == 204
    assert ignored.status_code == 200
    assert "u_health_score" not in ignored.json()["result"]
    assert "u_health_score" not in admin.result(url)


def test_patch_of_an_unknown_field_is_200_and_not_stored(
    empty_emulator: EmulatorServer, admin: Api
) -> None:
    account = empty_emulator.instance.insert("customer_account", {"name": "Acme"})

    response = admin.patch(
        f"/api/now/table/customer_account/{account['sys_id']}", {"u_health_score": "72"}
    )

    assert response.status_code == 200
    assert "u_health_score" not in response.json()["result"]
    assert "u_health_score" not in empty_emulator.instance.rows("customer_account")[0]


def test_new_choice_is_accepted_afterwards(
    empty_emulator: EmulatorServer, admin: Api
) -> None:
    account = empty_emulator.instance.insert("customer_account", {"name": "Acme"})
    url = f"/api/now/table/customer_account/{account['sys_id']}"

    before = admin.patch(url, {"rank_tier": "platinum"}).json()["result"]
    added = admin.post(
        "/api/now/table/sys_choice",
        {
            "name": "customer_account",
            "element": "rank_tier",
            "value": "platinum",
            "label": "Platinum",
        },
    )
    after = admin.patch(url, {"rank_tier": "platinum"}).json()["result"]
    shown = admin.result(url, sysparm_display_value="true")

    assert before["rank_tier"] == ""
    assert added.status_code == 201
    assert after["rank_tier"] == "platinum"
    assert shown["rank_tier"] == "Platinum"


def test_new_custom_table_works_over_the_table_api(admin: Api) -> None:
    created = admin.post(
        "/api/now/table/sys_db_object", {"name": "u_health_history", "label": "History"}
    )
    column = admin.post(
        "/api/now/table/sys_dictionary",
        {"name": "u_health_history", "element": "u_score", "internal_type": "integer"},
    )
    row = admin.post("/api/now/table/u_health_history", {"u_score": "55"})
    listed = admin.result("/api/now/table/u_health_history", sysparm_query="u_score=55")

    assert created.status_code == 201
    assert column.status_code == 201
    assert row.status_code == 201
    assert [r["u_score"] for r in listed] == ["55"]
    assert listed[0]["sys_created_by"] == "admin"


def test_delete_writes_a_sys_audit_deleted_row(
    empty_emulator: EmulatorServer, admin: Api
) -> None:
    ids = seed_cases(empty_emulator, 2)

    deleted = admin.delete(f"/api/now/table/{CASE}/{ids[0]}")
    audit = admin.result(
        "/api/now/table/sys_audit",
        sysparm_query=f"tablename={CASE}^fieldname=DELETED",
    )

    assert deleted.status_code == 204
    assert len(audit) == 1
    row = audit[0]
    assert {k: row[k] for k in ("fieldname", "oldvalue", "newvalue")} == {
        "fieldname": "DELETED",
        "oldvalue": "DELETED",
        "newvalue": "DELETED",
    }
    assert row["documentkey"] == ids[0]
    assert row["tablename"] == CASE
    assert row["user"] == "admin"
    assert len(row["sys_created_on"]) == 19
    assert empty_emulator.instance.count(CASE) == 1


def test_integration_may_write_only_u_fields_of_accounts(
    empty_emulator: EmulatorServer, admin: Api, integration: Api
) -> None:
    account = empty_emulator.instance.insert("customer_account", {"name": "Acme"})
    url = f"/api/now/table/customer_account/{account['sys_id']}"
    admin.post(
        "/api/now/table/sys_dictionary",
        {"name": "customer_account", "element": "u_health_score"},
    )

    allowed = integration.patch(url, {"u_health_score": "64", "u_unknown": "x"})
    refused = integration.patch(url, {"name": "Renamed"})
    insert = integration.post("/api/now/table/customer_account", {"name": "New"})
    case_write = integration.post(f"/api/now/table/{CASE}", {"short_description": "x"})

    assert allowed.status_code == 200
    assert allowed.json()["result"]["u_health_score"] == "64"
    assert refused.status_code == 403
    assert refused.json() == {
        "error": {
            "message": "Operation Failed",
            "detail": "ACL Exception Update Failed due to security constraints",
        },
        "status": "failure",
    }
    assert insert.json()["error"]["detail"] == (
        "ACL Exception Insert Failed due to security constraints"
    )
    assert case_write.status_code == 403
    assert admin.result(url)["name"] == "Acme"


def test_non_admin_dictionary_write_names_the_missing_role(integration: Api) -> None:
    response = integration.post(
        "/api/now/table/sys_dictionary",
        {"name": "customer_account", "element": "u_sneaky"},
    )

    assert response.status_code == 403
    detail = response.json()["error"]["detail"]
    assert "admin" in detail
    assert "personalize_dictionary" in detail


def test_integration_owns_the_u_tables_it_creates(integration: Api) -> None:
    created = integration.post(
        "/api/now/table/sys_db_object", {"name": "u_sync_log", "label": "Sync log"}
    )
    column = integration.post(
        "/api/now/table/sys_dictionary", {"name": "u_sync_log", "element": "u_note"}
    )
    row = integration.post("/api/now/table/u_sync_log", {"u_note": "ok"})
    not_u = integration.post("/api/now/table/sys_db_object", {"name": "plain_table"})

    assert (created.status_code, column.status_code, row.status_code) == (201, 201, 201)
    assert row.json()["result"]["u_note"] == "ok"
    assert not_u.status_code == 403


def test_ui_layout_tables_are_plain_tables(admin: Api) -> None:
    response = admin.post(
        "/api/now/table/sys_ui_element",
        {"name": "customer_account", "element": "u_health_score", "position": "3"},
    )

    assert response.status_code == 201
    assert response.json()["result"]["position"] == "3"


def test_restricted_user_cannot_see_the_dictionary_or_audit(
    empty_emulator: EmulatorServer,
) -> None:
    emu = empty_emulator
    api = make_api(emu, emu.restricted_user, emu.restricted_password)
    emu.instance.insert("customer_account", {"name": "Acme"})

    dictionary = api.get("/api/now/table/sys_dictionary", sysparm_query="name=task")
    tables = api.get("/api/now/table/sys_db_object")
    audit = api.get("/api/now/table/sys_audit")
    accounts = api.get("/api/now/table/customer_account")

    assert dictionary.status_code == 200
    assert dictionary.json() == {"result": []}
    assert int(dictionary.headers["X-Total-Count"]) > 10  # ACL-blind
    assert tables.status_code == 403
    assert audit.status_code == 403
    assert audit.json()["error"]["message"] == "User Not Authorized"
    assert [r["name"] for r in accounts.json()["result"]] == ["Acme"]


def test_case_updates_write_field_audit_rows(
    empty_emulator: EmulatorServer, admin: Api
) -> None:
    ids = seed_cases(empty_emulator, 1)  # state "1", priority "2"

    admin.patch(f"/api/now/table/{CASE}/{ids[0]}", {"state": "6", "priority": "2"})
    audit = admin.result(
        "/api/now/table/sys_audit",
        sysparm_query=f"documentkey={ids[0]}",
        sysparm_fields="tablename,fieldname,oldvalue,newvalue,user,record_checkpoint",
    )

    assert audit == [
        {
            "tablename": CASE,
            "fieldname": "state",
            "oldvalue": "1",
            "newvalue": "6",
            "user": "admin",
            "record_checkpoint": "1",
        }
    ]
