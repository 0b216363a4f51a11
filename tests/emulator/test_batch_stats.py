"""Batch API (§7.1) and Aggregate API (§7.2)."""

from __future__ import annotations

import base64
import json

from connector.emulator.server import EmulatorServer

from .helpers import CASE, Api, seed_cases


def b64(body: object) -> str:
    return base64.b64encode(json.dumps(body).encode()).decode()


def test_batch_runs_each_item_as_the_caller(
    empty_emulator: EmulatorServer, admin: Api, integration: Api
) -> None:
    seed_cases(empty_emulator, 3)
    request = {
        "batch_request_id": "1",
        "rest_requests": [
            {
                "id": "11",
                "method": "GET",
                "url": f"/api/now/table/{CASE}?sysparm_limit=1&sysparm_fields=number",
                "headers": [{"name": "Accept", "value": "application/json"}],
                "exclude_response_headers": True,
            },
            {
                "id": "12",
                "method": "POST",
                "url": "/api/now/table/customer_account",
                "headers": [{"name": "Content-Type", "value": "application/json"}],
                "body": b64({"name": "Batch Co"}),
            },
        ],
    }

    as_admin = admin.post("/api/now/v1/batch", request).json()
    as_integration = integration.post("/api/now/v1/batch", request).json()

    assert as_admin["batch_request_id"] == "1"
    assert as_admin["unserviced_requests"] == []
    got, made = as_admin["serviced_requests"]
    assert (got["id"], got["status_code"], got["headers"]) == ("11", 200, [])
    assert json.loads(base64.b64decode(got["body"])) == {
        "result": [{"number": "CS0000001"}]
    }
    assert made["status_code"] == 201
    assert made["status_text"] == "CREATED"
    assert json.loads(base64.b64decode(made["body"]))["result"]["name"] == "Batch Co"
    assert any(h["name"] == "Location" for h in made["headers"])
    assert as_integration["serviced_requests"][1]["status_code"] == 403


def test_batch_budget_moves_the_rest_to_unserviced(
    empty_emulator: EmulatorServer, admin: Api
) -> None:
    seed_cases(empty_emulator, 20)
    empty_emulator.faults.batch_max_output_bytes = 10
    items = [
        {"id": str(i), "method": "GET", "url": f"/api/now/table/{CASE}"}
        for i in range(4)
    ]

    answer = admin.post(
        "/api/now/v1/batch", {"batch_request_id": "7", "rest_requests": items}
    )

    assert answer.status_code == 200
    body = answer.json()
    assert [s["id"] for s in body["serviced_requests"]] == ["0"]
    assert body["unserviced_requests"] == ["1", "2", "3"]


def test_batch_time_budget_serves_at_least_one(
    empty_emulator: EmulatorServer, admin: Api
) -> None:
    empty_emulator.faults.batch_time_budget_s = 0.0
    items = [
        {"id": str(i), "method": "GET", "url": f"/api/now/table/{CASE}"}
        for i in range(3)
    ]

    body = admin.post(
        "/api/now/v1/batch", {"batch_request_id": "8", "rest_requests": items}
    ).json()

    assert [s["id"] for s in body["serviced_requests"]] == ["0"]
    assert body["unserviced_requests"] == ["1", "2"]


def test_stats_without_group_by(empty_emulator: EmulatorServer, admin: Api) -> None:
    seed_cases(empty_emulator, 8)

    result = admin.result(
        f"/api/now/stats/{CASE}",
        sysparm_count="true",
        sysparm_avg_fields="reassignment_count",
        sysparm_sum_fields="reassignment_count",
        sysparm_min_fields="priority,number",
        sysparm_max_fields="number",
        sysparm_query="number<=CS0000006",
    )

    # reassignment_count = i % 7 for i = 1..6 -> 1..6; priority = 1 + i % 4.
    assert result == {
        "stats": {
            "count": "6",
            "avg": {"reassignment_count": "3.5000"},
            "sum": {"reassignment_count": "21"},
            "min": {"priority": "1", "number": "CS0000001"},
            "max": {"number": "CS0000006"},
        }
    }


def test_stats_group_by(empty_emulator: EmulatorServer, admin: Api) -> None:
    seed_cases(empty_emulator, 6)

    result = admin.result(
        f"/api/now/stats/{CASE}",
        sysparm_count="true",
        sysparm_avg_fields="priority",
        sysparm_group_by="state",
    )

    assert result == [
        {
            "stats": {"count": "3", "avg": {"priority": "2.6667"}},
            "groupby_fields": [{"field": "state", "value": "1"}],
        },
        {
            "stats": {"count": "3", "avg": {"priority": "2.3333"}},
            "groupby_fields": [{"field": "state", "value": "3"}],
        },
    ]


def test_stats_having_and_display_values(
    empty_emulator: EmulatorServer, admin: Api
) -> None:
    seed_cases(empty_emulator, 7)  # priority = 1 + i % 4: 2,3,4,1,2,3,4

    result = admin.result(
        f"/api/now/stats/{CASE}",
        sysparm_count="true",
        sysparm_group_by="priority",
        sysparm_having="count^priority^>^1",
        sysparm_display_value="all",
    )

    assert [r["stats"]["count"] for r in result] == ["2", "2", "2"]
    assert [r["groupby_fields"] for r in result] == [
        [{"field": "priority", "value": v, "display_value": label}]
        for v, label in (("2", "2 - High"), ("3", "3 - Moderate"), ("4", "4 - Low"))
    ]


def test_stats_is_403_when_acls_hide_rows(
    empty_emulator: EmulatorServer, acl_api: Api
) -> None:
    case_stats = acl_api.get(f"/api/now/stats/{CASE}", sysparm_count="true")
    account_stats = acl_api.get("/api/now/stats/customer_account", sysparm_count="true")

    assert case_stats.status_code == 403
    assert case_stats.json()["status"] == "failure"
    assert account_stats.json() == {"result": {"stats": {"count": "0"}}}
