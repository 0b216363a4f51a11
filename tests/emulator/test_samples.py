"""Samples S1–S3: the emulator answers with the recorded shapes per display mode.

Values differ (incident/sc_task there, a case here); what must match is each
field's JSON shape: a string, null, or an object with exactly these keys.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from connector.emulator.server import EmulatorServer

from .helpers import CASE, Api

SAMPLES = Path(__file__).parent / "samples"

# (sample field, our case field); our case sets the populated/empty state to match.
S1_MAP = [
    ("sys_id", "sys_id"),
    ("number", "number"),
    ("active", "active"),
    ("state", "state"),
    ("priority", "priority"),
    ("reassignment_count", "reassignment_count"),
    ("sys_mod_count", "sys_mod_count"),
    ("made_sla", "made_sla"),
    ("opened_at", "opened_at"),
    ("closed_at", "closed_at"),
    ("sys_updated_on", "sys_updated_on"),
    ("business_duration", "business_duration"),
    ("assigned_to", "assigned_to"),  # populated reference
    ("company", "parent"),  # empty reference
]
S2_MAP = [
    ("sys_id", "sys_id"),
    ("number", "number"),
    ("active", "active"),
    ("assigned_to", "parent"),  # empty reference
    ("assignment_group", "assigned_to"),  # populated reference
    ("contact_type", "contact_type"),  # empty choice: display null
    ("escalation", "escalation"),
    ("priority", "priority"),
    ("state", "state"),
    ("reassignment_count", "reassignment_count"),
    ("sys_class_name", "sys_class_name"),
    ("short_description", "short_description"),
    ("opened_at", "opened_at"),
    ("sys_updated_on", "sys_updated_on"),
    ("sys_mod_count", "sys_mod_count"),
]
S3_MAP = [
    ("sys_id", "sys_id"),
    ("number", "number"),
    ("state", "state"),
    ("priority", "priority"),
    ("active", "active"),
    ("escalation", "escalation"),
    ("subcategory", "contact_type"),  # choice without a label: null
    ("sys_class_name", "sys_class_name"),
    ("reassignment_count", "reassignment_count"),
    ("opened_at", "opened_at"),
    ("opened_by", "assigned_to"),  # populated reference with link
    ("assigned_to", "parent"),  # empty reference
]


def shape(value: Any) -> Any:
    if value is None:
        return "null"
    if isinstance(value, dict):
        return tuple(sorted((k, shape(v)) for k, v in value.items()))
    return type(value).__name__


def sample(name: str) -> dict[str, Any]:
    path = next(SAMPLES.glob(f"{name}-*.json"))
    return json.loads(path.read_text())


@pytest.fixture
def case_id(empty_emulator: EmulatorServer) -> str:
    instance = empty_emulator.instance
    user = instance.insert("sys_user", {"name": "Fred Johnson", "user_name": "fred"})
    row = instance.insert(
        CASE,
        {
            "short_description": "Printer on fire",
            "state": "3",
            "priority": "4",
            "active": "false",
            "reassignment_count": "0",
            "made_sla": "true",
            "escalation": "0",
            "opened_at": "2026-01-02 03:04:05",
            "closed_at": "2026-01-03 03:04:05",
            "business_duration": "1970-01-02 20:17:39",
            "assigned_to": user["sys_id"],
        },
    )
    return row["sys_id"]


def _ours(admin: Api, case_id: str, **params: str) -> dict[str, Any]:
    rows = admin.result(
        f"/api/now/table/{CASE}", sysparm_query=f"sys_id={case_id}", **params
    )
    assert len(rows) == 1
    return rows[0]


def test_s1_default_values_shapes(admin: Api, case_id: str) -> None:
    recorded = sample("S1")
    ours = _ours(admin, case_id)

    response = admin.get(f"/api/now/table/{CASE}", sysparm_limit=2)

    assert response.headers["Content-Type"] == recorded["headers"]["Content-Type"]
    first = recorded["body"]["result"][0]
    for theirs, mine in S1_MAP:
        assert shape(ours[mine]) == shape(first[theirs]), (theirs, mine)
    assert ours["assigned_to"]["link"].endswith(
        f"/api/now/table/sys_user/{ours['assigned_to']['value']}"
    )


def test_s2_display_value_all_shapes(admin: Api, case_id: str) -> None:
    recorded = sample("S2")["body"]["result"][0]

    ours = _ours(
        admin,
        case_id,
        sysparm_display_value="all",
        sysparm_exclude_reference_link="true",
    )

    for theirs, mine in S2_MAP:
        assert shape(ours[mine]) == shape(recorded[theirs]), (theirs, mine)
    assert ours["state"] == {"display_value": "Closed", "value": "3"}
    assert ours["sys_class_name"] == {"display_value": "Case", "value": CASE}
    assert ours["assigned_to"]["display_value"] == "Fred Johnson"
    assert all(isinstance(v, dict) for v in ours.values())


def test_display_value_all_keeps_the_link_when_not_excluded(
    admin: Api, case_id: str
) -> None:
    ours = _ours(admin, case_id, sysparm_display_value="all")

    assert sorted(ours["assigned_to"]) == ["display_value", "link", "value"]
    assert ours["parent"] == {"display_value": "", "value": ""}


def test_s3_display_value_true_shapes(admin: Api, case_id: str) -> None:
    recorded = sample("S3")["body"]["result"][0]

    ours = _ours(admin, case_id, sysparm_display_value="true")

    for theirs, mine in S3_MAP:
        assert shape(ours[mine]) == shape(recorded[theirs]), (theirs, mine)
    assert ours["priority"] == "4 - Low"
    assert ours["assigned_to"]["display_value"] == "Fred Johnson"
    assert ours["business_duration"] == "1 Day 20 Hours 17 Minutes"


def test_display_true_with_excluded_link_is_a_plain_string(
    admin: Api, case_id: str
) -> None:
    ours = _ours(
        admin,
        case_id,
        sysparm_display_value="true",
        sysparm_exclude_reference_link="true",
    )
    raw = _ours(admin, case_id, sysparm_exclude_reference_link="true")

    assert ours["assigned_to"] == "Fred Johnson"
    assert ours["parent"] == ""
    assert isinstance(raw["assigned_to"], str)
    assert len(raw["assigned_to"]) == 32
