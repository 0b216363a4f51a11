"""Mappings against the emulated instance's sys_dictionary (C07 types, C09 names)."""

from __future__ import annotations

from pathlib import Path

import pytest

from connector.config import settings_from_dict
from connector.emulator.server import EmulatorServer
from connector.errors import MappingError
from connector.mapping.dictionary import filter_fields
from connector.mapping.loader import load_mappings
from connector.servicenow.client import ServiceNowClient
from connector.sync.prepare import check_mappings, load_labels

SHIPPED = Path(__file__).resolve().parents[2] / "mappings"


def client_for(emu: EmulatorServer, tmp_path: Path) -> ServiceNowClient:
    auth = {"username": emu.admin_user, "password": emu.admin_password}
    settings = settings_from_dict({"instance": {"url": emu.url, "auth": auth}})
    return ServiceNowClient(settings.instance)


def test_shipped_mappings_match_the_emulated_dictionary(
    emulator: EmulatorServer, tmp_path: Path
) -> None:
    with client_for(emulator, tmp_path) as client:
        check_mappings(client, load_mappings(SHIPPED))


def test_names_types_and_dot_walks_are_checked(
    emulator: EmulatorServer, tmp_path: Path
) -> None:
    (tmp_path / "case.yaml").write_text(
        "source: sn_customerservice_case\ntarget: case\n"
        "filter: active=true^ORpriorty=1^NQaccount.nam=x\n"
        "fields:\n"
        "  business_duration: {field: business_duration, type: integer}\n"
        "  opened_at: {field: opened_at, type: datetime}\n"
        "  category: {field: number.foo, type: choice}\n"
        "extra: [u_missing]\n"
    )
    (tmp_path / "ghost.yaml").write_text(
        "source: u_ghost_table\ntarget: account\nfields: {name: name}\n"
    )

    with client_for(emulator, tmp_path) as client, pytest.raises(MappingError) as err:
        check_mappings(client, load_mappings(tmp_path))

    messages = sorted(str(p).split(": ", 1)[1] for p in err.value.problems)
    assert messages == [
        "extra[0]: field 'u_missing' does not exist on table "
        "'sn_customerservice_case' (sys_dictionary, parent tables included)",
        "fields.business_duration.type: field 'business_duration' is "
        "'glide_duration' on the instance; expected type duration, got 'integer'",
        "fields.category.field: field 'number' on table 'sn_customerservice_case' "
        "is not a reference, so 'number.foo' cannot dot-walk through it",
        "filter: field 'nam' does not exist on table 'customer_account' "
        "(sys_dictionary, parent tables included) in 'account.nam'",
        "filter: field 'priorty' does not exist on table 'sn_customerservice_case' "
        "(sys_dictionary, parent tables included)",
        "source: table 'u_ghost_table' does not exist on the instance "
        "(no sys_dictionary entries)",
    ]


def test_labels_merge_the_parent_choice_list(
    emulator: EmulatorServer, tmp_path: Path
) -> None:
    (mapping,) = load_mappings(SHIPPED, tables=["sn_customerservice_case"])

    with client_for(emulator, tmp_path) as client:
        labels = load_labels(client, mapping)

    assert labels["state"]["6"] == "Resolved"
    assert labels["channel"]["email"] == "Email"


def test_filter_fields_splits_every_operator() -> None:
    query = "tablename=x^fieldnameINa,b^ORdocumentkeyISEMPTY^NQuser.name!=y^ORDERBYz^EQ"

    assert filter_fields(query) == [
        "tablename",
        "fieldname",
        "documentkey",
        "user.name",
    ]
