"""Table API over loopback HTTP: routes, envelopes, paging headers, writes."""

from __future__ import annotations

import socket
import time
from concurrent.futures import ThreadPoolExecutor

import requests

from connector.emulator.server import EmulatorServer

from .helpers import CASE, Api, seed_cases

JSON = "application/json;charset=UTF-8"


def test_list_get_envelope_headers_and_string_values(
    empty_emulator: EmulatorServer, admin: Api
) -> None:
    seed_cases(empty_emulator, 3)

    response = admin.get(f"/api/now/table/{CASE}", sysparm_limit=2)

    assert response.status_code == 200
    assert response.headers["Content-Type"] == JSON
    assert response.headers["X-Total-Count"] == "3"
    rows = response.json()["result"]
    assert [r["number"] for r in rows] == ["CS0000001", "CS0000002"]
    assert all(isinstance(v, str | dict) for r in rows for v in r.values())
    assert rows[0]["sys_class_name"] == CASE
    assert rows[0]["reassignment_count"] == "1"
    assert rows[0]["closed_at"] == ""
    assert set(rows[0]["account"]) == {"link", "value"}


def test_link_header_first_next_last_built_from_request(
    empty_emulator: EmulatorServer, admin: Api
) -> None:
    seed_cases(empty_emulator, 25)

    response = admin.get(
        f"/api/now/table/{CASE}",
        sysparm_query="active=true^ORDERBYnumber",
        sysparm_limit=10,
        sysparm_offset=10,
    )

    link = response.headers["Link"]
    query = "sysparm_query=active%3Dtrue%5EORDERBYnumber"
    base = f"{empty_emulator.url}/api/now/table/{CASE}?{query}"
    assert response.headers["X-Total-Count"] == "17"
    assert link == (
        f'<{base}&sysparm_limit=10&sysparm_offset=0>;rel="first",'
        f'<{base}&sysparm_limit=10&sysparm_offset=0>;rel="prev",'
        f'<{base}&sysparm_limit=10&sysparm_offset=10>;rel="last"'
    )
    assert " " not in link
    assert response.links["first"]["url"].endswith("sysparm_offset=0")


def test_default_limit_and_link_with_appended_offset(
    empty_emulator: EmulatorServer, admin: Api
) -> None:
    seed_cases(empty_emulator, 2)

    response = admin.get(f"/api/now/table/{CASE}")

    assert len(response.json()["result"]) == 2
    assert "sysparm_offset=0&sysparm_limit=10000>" in response.headers["Link"]


def test_no_count_and_suppressed_pagination_header(
    empty_emulator: EmulatorServer, admin: Api
) -> None:
    seed_cases(empty_emulator, 5)

    response = admin.get(
        f"/api/now/table/{CASE}",
        sysparm_no_count="true",
        sysparm_suppress_pagination_header="true",
        sysparm_limit=2,
    )

    assert "X-Total-Count" not in response.headers
    assert "Link" not in response.headers
    assert len(response.json()["result"]) == 2


def test_offset_pages_partition_the_table(
    empty_emulator: EmulatorServer, admin: Api
) -> None:
    ids = seed_cases(empty_emulator, 23)

    seen: list[str] = []
    for offset in range(0, 30, 10):
        page = admin.result(
            f"/api/now/table/{CASE}",
            sysparm_fields="sys_id",
            sysparm_limit=10,
            sysparm_offset=offset,
            sysparm_query="ORDERBYsys_id",
        )
        seen += [r["sys_id"] for r in page]

    assert seen == sorted(ids)


def test_fields_unknown_ignored_and_dot_walk_flat_keys(
    empty_emulator: EmulatorServer, admin: Api
) -> None:
    seed_cases(empty_emulator, 1)

    rows = admin.result(
        f"/api/now/table/{CASE}",
        sysparm_fields="number,no_such_field,account.name,account.rank_tier",
    )

    assert rows == [
        {
            "number": "CS0000001",
            "account.name": "Acme Corp",
            "account.rank_tier": "strategic",
        }
    ]


def test_single_get_is_an_object_and_missing_is_404(
    empty_emulator: EmulatorServer, admin: Api
) -> None:
    ids = seed_cases(empty_emulator, 1)

    found = admin.get(f"/api/now/table/{CASE}/{ids[0]}")
    missing = admin.get(f"/api/now/table/{CASE}/{'f' * 32}")

    assert found.json()["result"]["number"] == "CS0000001"
    assert missing.status_code == 404
    assert missing.json() == {
        "error": {
            "message": "No Record found",
            "detail": "Record doesn't exist or ACL restricts the record retrieval",
        },
        "status": "failure",
    }


def test_unknown_table_is_400_invalid_table(admin: Api) -> None:
    response = admin.get("/api/now/table/no_such_table")

    assert response.status_code == 400
    assert response.json() == {
        "error": {"message": "Invalid table no_such_table", "detail": None},
        "status": "failure",
    }


def test_v1_empty_list_is_404_and_v2_is_empty_result(admin: Api) -> None:
    v1 = admin.get(f"/api/now/v1/table/{CASE}", sysparm_query="number=CS0000000")
    v2 = admin.get(f"/api/now/v2/table/{CASE}", sysparm_query="number=CS0000000")
    plain = admin.get(f"/api/now/table/{CASE}", sysparm_query="number=CS0000000")

    assert v1.status_code == 404
    assert v1.json()["status"] == "failure"
    assert (v2.status_code, v2.json()) == (200, {"result": []})
    assert (plain.status_code, plain.json()) == (200, {"result": []})


def test_url_longer_than_8192_bytes_is_414_html(admin: Api) -> None:
    ids = ",".join(f"{i:032x}" for i in range(250))

    response = admin.get(f"/api/now/table/{CASE}", sysparm_query=f"sys_idIN{ids}")

    assert response.status_code == 414
    assert response.headers["Content-Type"].startswith("text/html")


def test_url_just_under_the_limit_is_served(admin: Api) -> None:
    ids = ",".join(f"{i:032x}" for i in range(200))

    response = admin.get(f"/api/now/table/{CASE}", sysparm_query=f"sys_idIN{ids}")

    assert response.status_code == 200


def test_head_has_headers_but_no_body(
    empty_emulator: EmulatorServer, admin: Api
) -> None:
    seed_cases(empty_emulator, 4)

    response = admin.session.head(f"{admin.url}/api/now/table/{CASE}")

    assert response.status_code == 200
    assert response.headers["X-Total-Count"] == "4"
    assert response.content == b""


def test_post_201_location_and_system_fields(admin: Api) -> None:
    response = admin.post(
        "/api/now/table/customer_account",
        {"name": "Globex", "rank_tier": "valued", "bogus": "x", "sys_mod_count": "9"},
    )

    assert response.status_code == 201
    row = response.json()["result"]
    assert response.headers["Location"].endswith(
        f"/api/now/table/customer_account/{row['sys_id']}"
    )
    assert row["name"] == "Globex"
    assert row["sys_mod_count"] == "0"
    assert row["sys_created_by"] == "admin"
    assert row["number"] == "ACCT0001001"
    assert "bogus" not in row
    assert len(row["sys_id"]) == 32


def test_patch_updates_counters_and_drops_bad_choice(
    empty_emulator: EmulatorServer, admin: Api
) -> None:
    account = empty_emulator.instance.insert(
        "customer_account", {"name": "Initech", "rank_tier": "valued"}
    )
    url = f"/api/now/table/customer_account/{account['sys_id']}"

    first = admin.patch(url, {"notes": "hello", "rank_tier": "not-a-tier"})
    second = admin.put(url, {"notes": "again"})

    assert first.status_code == 200
    assert first.json()["result"]["rank_tier"] == "valued"
    assert first.json()["result"]["notes"] == "hello"
    assert first.json()["result"]["sys_mod_count"] == "1"
    assert second.json()["result"]["sys_mod_count"] == "2"
    assert second.json()["result"]["sys_updated_by"] == "admin"
    assert len(second.json()["result"]["sys_updated_on"]) == 19


def test_put_does_not_create_and_delete_is_204(
    empty_emulator: EmulatorServer, admin: Api
) -> None:
    account = empty_emulator.instance.insert("customer_account", {"name": "Hooli"})
    url = f"/api/now/table/customer_account/{account['sys_id']}"

    missing = admin.put(f"/api/now/table/customer_account/{'a' * 32}", {"name": "x"})
    deleted = admin.delete(url)
    again = admin.delete(url)

    assert missing.status_code == 404
    assert deleted.status_code == 204
    assert deleted.content == b""
    assert again.status_code == 404
    assert empty_emulator.instance.count("customer_account") == 0


def test_no_response_body_header(admin: Api) -> None:
    response = admin.post(
        "/api/now/table/customer_account",
        {"name": "Umbrella"},
        headers={"X-no-response-body": "true"},
    )

    assert response.status_code == 201
    assert response.content == b""
    assert "Location" in response.headers


def test_write_via_parent_table_reaches_the_child_row(
    empty_emulator: EmulatorServer, admin: Api
) -> None:
    ids = seed_cases(empty_emulator, 1)

    response = admin.patch(
        f"/api/now/table/task/{ids[0]}", {"short_description": "moved"}
    )
    child = admin.result(f"/api/now/table/{CASE}/{ids[0]}")
    projected = admin.result(f"/api/now/table/task/{ids[0]}")

    assert response.status_code == 200
    assert child["short_description"] == "moved"
    assert projected["sys_class_name"] == CASE
    assert "account" not in projected


def test_name_value_pairs_accept_choice_labels(
    empty_emulator: EmulatorServer, admin: Api
) -> None:
    seed_cases(empty_emulator, 6)

    rows = admin.result(
        f"/api/now/table/{CASE}", state="Closed", sysparm_fields="state"
    )

    assert [r["state"] for r in rows] == ["3", "3", "3"]


def test_request_count_counts_http_requests(
    empty_emulator: EmulatorServer, admin: Api
) -> None:
    before = empty_emulator.instance.request_count

    for _ in range(3):
        admin.get(f"/api/now/table/{CASE}")

    assert empty_emulator.instance.request_count == before + 3


def test_unauthenticated_is_401_with_the_servicenow_body(
    empty_emulator: EmulatorServer,
) -> None:
    response = requests.get(f"{empty_emulator.url}/api/now/table/{CASE}", timeout=10)
    wrong = requests.get(
        f"{empty_emulator.url}/api/now/table/{CASE}", auth=("admin", "nope"), timeout=10
    )

    expected = {
        "error": {
            "message": "User Not Authenticated",
            "detail": "Required to provide Auth information",
        },
        "status": "failure",
    }
    assert (response.status_code, response.json()) == (401, expected)
    assert (wrong.status_code, wrong.json()) == (401, expected)


def test_concurrent_gets_overlap_and_reuse_connections(
    empty_emulator: EmulatorServer,
) -> None:
    seed_cases(empty_emulator, 30)
    empty_emulator.faults.latency_ms = 200
    url = f"{empty_emulator.url}/api/now/table/{CASE}"

    def fetch(_: int) -> int:
        response = requests.get(url, auth=("admin", "admin"), timeout=30)
        return len(response.json()["result"])

    started = time.monotonic()
    with ThreadPoolExecutor(max_workers=8) as pool:
        sizes = list(pool.map(fetch, range(40)))
    elapsed = time.monotonic() - started

    assert sizes == [30] * 40
    assert elapsed < 40 * 0.2 / 2  # overlapped, not one after the other
    assert len(empty_emulator.instance.store._connections) <= 12


def test_input_display_value_resolves_labels_and_references(
    empty_emulator: EmulatorServer, admin: Api
) -> None:
    empty_emulator.instance.insert("customer_account", {"name": "Acme Corp"})
    user = empty_emulator.instance.insert("sys_user", {"name": "Fred Johnson"})

    response = admin.post(
        f"/api/now/table/{CASE}?sysparm_input_display_value=true",
        {"state": "Closed", "assigned_to": "Fred Johnson", "account": "Acme Corp"},
    )
    raw = admin.post(f"/api/now/table/{CASE}", {"state": "Closed"})

    row = response.json()["result"]
    assert row["state"] == "3"
    assert row["assigned_to"]["value"] == user["sys_id"]
    assert (
        row["account"]["value"]
        == empty_emulator.instance.rows("customer_account")[0]["sys_id"]
    )
    assert raw.json()["result"]["state"] == ""


def test_a_tls_handshake_sent_to_plain_http_gets_a_400_not_a_crash(
    empty_emulator, capsys
) -> None:
    host, port = empty_emulator.url.removeprefix("http://").split(":")
    hello = bytes.fromhex("16030100050100000100")  # start of a TLS ClientHello

    with socket.create_connection((host, int(port)), timeout=5) as conn:
        conn.sendall(hello)
        conn.shutdown(socket.SHUT_WR)  # end of request: the server must answer
        answer = conn.recv(200)

    assert b"Error code: 400" in answer
    assert "Traceback" not in capsys.readouterr().err
    assert (
        requests.get(
            f"{empty_emulator.url}/api/now/table/sys_user",
            auth=("admin", "admin"),
            timeout=5,
        ).status_code
        == 200
    )
