"""Row mapping: labels with fallback codes kept (C08), bad rows explained (C06/C07)."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path

from connector.mapping.loader import load_mappings
from connector.mapping.rows import UNKNOWN_LABEL, RowMapper

SHIPPED = Path(__file__).resolve().parents[2] / "mappings"
CASE_ID = "0000000000000000000000000000a001"
ACCOUNT = "000000000000000000000000000000c1"


def case_mapper() -> RowMapper:
    (mapping,) = load_mappings(SHIPPED, tables=["sn_customerservice_case"])
    labels = {"state": {"1": "New", "10": "Open", "18": "Awaiting Info", "3": "Closed"}}
    return RowMapper(mapping, labels=labels)


def case_record(**overrides: object) -> dict:
    record = {
        "sys_id": CASE_ID,
        "sys_created_on": "2026-01-02 10:00:00",
        "sys_updated_on": "2026-01-02 11:00:00",
        "number": "CS0001001",
        "account": {
            "link": f"https://x/api/now/table/customer_account/{ACCOUNT}",
            "value": ACCOUNT,
        },
        "contact": "",
        "state": "18",
        "priority": "2",
        "contact_type": "email",
        "reassignment_count": "",
        "made_sla": "false",
        "business_duration": "1970-01-22 21:46:21",
        "resolved_at": "",
    }
    record.update(overrides)
    return record


def test_a_good_case_maps_to_typed_columns_with_labels() -> None:
    result = case_mapper().map(case_record())

    assert result.problems == []
    row = result.row
    assert row["sys_id"] == CASE_ID
    assert row["sys_updated_on"] == datetime(2026, 1, 2, 11, tzinfo=UTC)
    assert row["account"] == ACCOUNT
    assert row["contact"] is None
    assert (row["state"], row["state_label"]) == ("18", "Awaiting Info")
    assert row["priority"] == 2
    assert row["made_sla"] is False
    assert row["business_duration"] == 1892781
    assert row["reassignment_count"] is None
    assert row["deleted_at"] is None


def test_c08_unknown_code_keeps_row_raw_code_and_unknown_label() -> None:
    result = case_mapper().map(case_record(state="-2"))

    assert result.row is not None
    assert (result.row["state"], result.row["state_label"]) == ("-2", UNKNOWN_LABEL)
    assert ("state", "-2") in result.unknown_choices


def test_c06_display_text_reference_quarantines_the_row_with_a_reason() -> None:
    result = case_mapper().map(case_record(account="acme", priority="high"))

    assert result.row is None
    fields = {p.field: p for p in result.problems}
    assert set(fields) == {"account", "priority"}
    assert fields["account"].raw_value == "acme"
    assert "display text" in fields["account"].reason
    assert "expected an integer" in fields["priority"].reason


def test_missing_key_is_a_problem() -> None:
    result = case_mapper().map(case_record(sys_id=""))

    assert result.row is None
    assert result.problems[0].field == "sys_id"


def test_values_map_defaults_and_extra(tmp_path: Path) -> None:
    (tmp_path / "acct.yaml").write_text(
        "source: customer_account\ntarget: account\n"
        "fields:\n  name: name\n"
        "  rank_tier: {field: rank_tier, type: choice, label: true}\n"
        "  active: {field: active, type: boolean}\n"
        "defaults: {active: true}\n"
        "values: {rank_tier: {1: strategic}}\n"
        "extra: [u_segment, account_parent]\n"
    )
    (mapping,) = load_mappings(tmp_path)
    mapper = RowMapper(mapping, labels={"rank_tier": {"strategic": "Strategic"}})

    row = mapper.map(
        {
            "sys_id": ACCOUNT,
            "name": "acme",
            "rank_tier": "1",
            "active": "",
            "u_segment": "SMB",
            "account_parent": {"link": "l", "value": CASE_ID},
            "sys_updated_on": "2026-01-01 00:00:00",
        }
    ).row

    assert row["rank_tier"] == "strategic"
    assert row["rank_tier_label"] == "Strategic"
    assert row["active"] is True
    assert row["extra"] == {"u_segment": "SMB", "account_parent": CASE_ID}
