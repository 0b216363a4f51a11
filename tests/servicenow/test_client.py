"""ServiceNowClient reads, writes and metadata against the emulator."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from connector.errors import InstanceError, InvalidTableError, NotFoundError
from connector.servicenow import BatchItem, Q, chunked_in

from .conftest import CASES


def test_get_page_returns_rows_total_and_server_time(emu, make_client):
    client = make_client(emu)
    expected = emu.instance.count(CASES)

    page = client.get_page(
        CASES, query="", fields=["sys_id", "number"], limit=5, count=True
    )

    assert len(page.rows) == 5
    assert set(page.rows[0]) == {"sys_id", "number"}
    assert page.total == expected
    assert abs(page.server_time - datetime.now(UTC)) < timedelta(seconds=5)


def test_get_page_without_count_has_no_total(emu, make_client):
    client = make_client(emu)

    page = client.get_page(CASES, query="", fields=["sys_id"], limit=1)

    assert page.total is None
    assert "X-Total-Count" not in page.headers


def test_references_come_back_as_bare_sys_ids(emu, make_client):
    client = make_client(emu)

    page = client.get_page(CASES, query="", fields=["account"], limit=3)

    assert all(len(row["account"]) in (0, 32) for row in page.rows)


def test_server_time_follows_the_instance_clock_not_ours(emu, make_client):
    emu.faults.clock_skew_seconds = -7200
    client = make_client(emu)

    server_now = client.server_time(CASES)

    offset = (datetime.now(UTC) - server_now).total_seconds()
    assert 7195 <= offset <= 7205
    assert server_now.tzinfo is not None


def test_get_record_and_missing_record(emu, make_client):
    client = make_client(emu)
    row = emu.instance.rows(CASES)[0]

    found = client.get_record(CASES, row["sys_id"], fields=["number"])
    missing = client.get_record(CASES, "0" * 32)

    assert found == {"number": row["number"]}
    assert missing is None


def test_create_patch_delete_round_trip(emu, make_client):
    client = make_client(emu)

    created = client.create("customer_account", {"name": "Zeta Corp"})
    patched = client.patch("customer_account", created["sys_id"], {"name": "Zeta Ltd"})
    client.delete("customer_account", created["sys_id"])

    assert created["name"] == "Zeta Corp"
    assert patched["name"] == "Zeta Ltd"
    assert emu.instance.get("customer_account", created["sys_id"]) is None


def test_patch_of_missing_record_is_not_found(emu, make_client):
    client = make_client(emu)

    with pytest.raises(NotFoundError):
        client.patch("customer_account", "0" * 32, {"name": "x"})


def test_unknown_table_is_invalid_table_error(emu, make_client):
    client = make_client(emu)

    with pytest.raises(InvalidTableError) as caught:
        client.get_page("u_no_such_table", query="", fields=None, limit=1)

    assert "u_no_such_table" in str(caught.value)
    assert caught.value.status == 400


def test_dictionary_includes_inherited_fields(emu, make_client):
    client = make_client(emu)

    fields = client.dictionary(CASES)

    assert client.table_chain(CASES) == [CASES, "task"]
    assert fields["account"].internal_type == "reference"
    assert fields["account"].reference == "customer_account"
    assert fields["account"].table == CASES
    assert fields["active"].table == "task"
    assert fields["sys_updated_on"].internal_type == "glide_date_time"


def test_dictionary_is_cached_per_client(emu, make_client):
    client = make_client(emu)
    client.dictionary(CASES)
    before = emu.instance.request_count

    client.dictionary(CASES)

    assert emu.instance.request_count == before


def test_choices_map_values_to_labels(emu, make_client):
    client = make_client(emu)

    states = client.choices(CASES, "state")

    assert states["18"] == "Awaiting Info"
    assert states["3"] == "Closed"


def test_stats_groups_counts(emu, make_client):
    client = make_client(emu)
    rows = emu.instance.rows(CASES)
    closed = sum(1 for row in rows if row["state"] == "3")

    plain = client.stats(CASES, query=Q.eq("state", "3").encode())
    grouped = client.stats(CASES, group_by=["state"])

    assert plain["stats"]["count"] == str(closed)
    by_state = {g["groupby_fields"][0]["value"]: g["stats"]["count"] for g in grouped}
    assert by_state["3"] == str(closed)
    assert sum(int(c) for c in by_state.values()) == len(rows)


def test_batch_decodes_inner_bodies(emu, make_client):
    client = make_client(emu)
    account = emu.instance.rows("customer_account")[0]
    url = f"/api/now/table/customer_account/{account['sys_id']}"

    result = client.batch(
        [
            BatchItem("get", "GET", url + "?sysparm_fields=name"),
            BatchItem("patch", "PATCH", url, body={"name": "Renamed"}),
            BatchItem("missing", "GET", "/api/now/table/customer_account/" + "0" * 32),
        ]
    )

    assert result.serviced["get"].body == {"result": {"name": account["name"]}}
    assert result.serviced["patch"].ok
    assert result.serviced["patch"].body["result"]["name"] == "Renamed"
    assert result.serviced["missing"].status_code == 404
    assert result.unserviced == []
    assert emu.instance.get("customer_account", account["sys_id"])["name"] == "Renamed"


def test_choices_fall_back_to_the_parent_table(emu, make_client):
    client = make_client(emu)

    priorities = client.choices(CASES, "priority")
    categories = client.choices(CASES, "category")

    assert priorities["1"] == "1 - Critical"
    assert categories == {"0": "Question", "1": "Issue", "2": "Feature"}


def test_over_long_url_is_a_clear_error_and_chunks_pass(emu, make_client):
    client = make_client(emu)
    ids = sorted(row["sys_id"] for row in emu.instance.rows(CASES))
    many = ids + [f"{n:032x}" for n in range(300)]
    before = emu.instance.request_count

    with pytest.raises(InstanceError) as caught:
        client.get_page(
            CASES, query=Q.in_("sys_id", many).encode(), fields=["sys_id"], limit=500
        )
    sent = emu.instance.request_count - before
    found = [
        row["sys_id"]
        for chunk in chunked_in("sys_id", many, size=100)
        for row in client.get_page(
            CASES, query=chunk.encode(), fields=["sys_id"], limit=100
        ).rows
    ]

    assert caught.value.status == 414
    assert "chunk" in str(caught.value)
    assert sent == 1
    assert sorted(found) == ids


def test_batch_reports_items_left_unserviced_by_the_output_limit(emu, make_client):
    emu.faults.batch_max_output_bytes = 10
    client = make_client(emu)
    accounts = emu.instance.rows("customer_account")[:3]
    items = [
        BatchItem(f"a{n}", "GET", f"/api/now/table/customer_account/{row['sys_id']}")
        for n, row in enumerate(accounts)
    ]

    result = client.batch(items)

    assert list(result.serviced) == ["a0"]
    assert result.unserviced == ["a1", "a2"]
    assert result.serviced["a0"].body["result"]["sys_id"] == accounts[0]["sys_id"]
