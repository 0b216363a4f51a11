"""install-fields against the emulator: creates, is idempotent, exports, refuses."""

from __future__ import annotations

import xml.etree.ElementTree as ET
from pathlib import Path

import requests
from typer.testing import CliRunner

from connector.cli import app
from connector.emulator.server import EmulatorServer
from connector.writeback.fields import HISTORY_TABLE
from connector.writeback.install import install_fields

FIELDS = {
    "u_health_score": "integer",
    "u_health_band": "choice",
    "u_health_trend": "integer",
    "u_nps": "integer",
    "u_health_reason": "string",
    "u_health_updated": "glide_date_time",
}
runner = CliRunner()


def table_api(emu: EmulatorServer, table: str, query: str) -> list[dict]:
    response = requests.get(
        f"{emu.url}/api/now/table/{table}",
        params={"sysparm_query": query},
        auth=(emu.admin_user, emu.admin_password),
        timeout=10,
    )
    response.raise_for_status()
    return response.json()["result"]


def test_install_creates_fields_choices_and_layout(emu, make_settings):
    settings = make_settings()

    result = install_fields(settings)

    dictionary = table_api(
        emu, "sys_dictionary", "name=customer_account^elementSTARTSWITHu_"
    )
    assert {r["element"]: r["internal_type"] for r in dictionary} == FIELDS
    reason = next(r for r in dictionary if r["element"] == "u_health_reason")
    assert reason["max_length"] == "255"
    assert reason["column_label"] == "Health reason"
    choices = table_api(
        emu, "sys_choice", "name=customer_account^element=u_health_band"
    )
    assert {(c["value"], c["label"]) for c in choices} == {
        ("green", "Green"), ("yellow", "Yellow"), ("red", "Red"),
    }  # fmt: skip
    form = table_api(emu, "sys_ui_element", "name=customer_account^ORDERBYposition")
    assert [r["element"] for r in form] == list(FIELDS)
    listed = table_api(emu, "sys_ui_list_element", "name=customer_account")
    assert {r["element"] for r in listed} == set(FIELDS)
    assert len(result.created) == 6 + 3 + 6 + 6


def test_second_install_changes_nothing_and_says_so(emu, write_config):
    config = write_config()
    first = runner.invoke(app, ["install-fields", "-c", str(config)])
    assert first.exit_code == 0, first.output
    rows_before = {
        t: emu.instance.count(t)
        for t in (
            "sys_dictionary",
            "sys_choice",
            "sys_ui_element",
            "sys_ui_list_element",
        )
    }

    second = runner.invoke(app, ["install-fields", "-c", str(config)])

    assert second.exit_code == 0, second.output
    assert "Nothing to change" in second.output
    assert (
        "21 fields, choices and layout entries are already installed" in second.output
    )
    assert {t: emu.instance.count(t) for t in rows_before} == rows_before


def test_install_after_a_deleted_field_recreates_only_that_field(emu, make_settings):
    settings = make_settings()
    install_fields(settings)
    row = table_api(emu, "sys_dictionary", "name=customer_account^element=u_nps")[0]
    emu.instance.delete("sys_dictionary", row["sys_id"])

    result = install_fields(settings)

    assert [c.summary for c in result.created] == [
        "field customer_account.u_nps (integer)"
    ]
    assert emu.instance.registry.field("customer_account", "u_nps") is not None


def test_update_set_lists_every_field_and_sends_nothing(emu, write_config, tmp_path):
    config = write_config(history=True)
    target = tmp_path / "health-fields.xml"
    before = emu.instance.request_count

    result = runner.invoke(
        app, ["install-fields", "--update-set", str(target), "-c", str(config)]
    )

    assert result.exit_code == 0, result.output
    assert emu.instance.request_count == before
    root = ET.parse(target).getroot()
    assert root.tag == "unload"
    assert root.find("sys_remote_update_set/name").text == "csm-sync health fields"
    payloads = [
        ET.fromstring(u.find("payload").text) for u in root.iter("sys_update_xml")
    ]
    dictionary = [
        p.find("sys_dictionary") for p in payloads if p.get("table") == "sys_dictionary"
    ]
    defined = {(d.findtext("name"), d.findtext("element")) for d in dictionary}
    assert {("customer_account", f) for f in FIELDS} <= defined
    assert (HISTORY_TABLE, "u_account") in defined
    tables = [p.find("sys_db_object/name").text for p in payloads
              if p.get("table") == "sys_db_object"]  # fmt: skip
    assert tables == [HISTORY_TABLE]
    names = [u.findtext("name") for u in root.iter("sys_update_xml")]
    assert len(names) == len(set(names)), "duplicate update names replace each other"
    choice_lists = [
        p.find("sys_choice") for p in payloads if p.find("sys_choice") is not None
    ]
    assert [c.get("field") for c in choice_lists] == ["u_health_band"]
    values = [c.findtext("value") for c in choice_lists[0].iter("sys_choice")
              if c.get("action")]  # fmt: skip
    assert values == ["green", "yellow", "red"]


def test_user_without_dictionary_rights_is_told_the_role(emu, write_config):
    config = write_config(user="integration")

    result = runner.invoke(app, ["install-fields", "-c", str(config)])

    assert result.exit_code == 1
    assert "admin or personalize_dictionary" in result.output
    assert "--update-set" in result.output
    assert emu.instance.registry.field("customer_account", "u_health_score") is None


def test_history_creates_the_snapshot_table_with_its_fields(emu, make_settings):
    settings = make_settings(history=True)

    install_fields(settings)

    tables = table_api(emu, "sys_db_object", f"name={HISTORY_TABLE}")
    assert len(tables) == 1
    fields = table_api(
        emu, "sys_dictionary", f"name={HISTORY_TABLE}^elementSTARTSWITHu_"
    )
    types = {r["element"]: (r["internal_type"], r["reference"]) for r in fields}
    assert types["u_account"] == ("reference", "customer_account")
    assert types["u_date"] == ("glide_date", "")
    assert set(types) == {"u_account", "u_date", "u_score", "u_band", "u_nps",
                          "u_components"}  # fmt: skip


def test_hostile_field_name_is_refused_before_any_request(emu, write_config):
    config = write_config(fields={"score": "name"})
    before = emu.instance.request_count

    result = runner.invoke(app, ["install-fields", "-c", str(config)])

    assert result.exit_code == 2
    assert "writeback.fields.score" in result.output
    assert emu.instance.request_count == before


def test_update_set_file_is_valid_for_a_path_with_spaces(emu, make_settings, tmp_path):
    target = Path(tmp_path) / "my exports" / "set.xml"
    target.parent.mkdir()

    install_fields(make_settings(), update_set=target)

    assert ET.parse(target).getroot().find("sys_remote_update_set/updates").text == "19"


def import_update_set(emu: EmulatorServer, path: Path) -> int:
    """Apply every record of an update set through the Table API, as a commit would."""
    posted = 0
    for entry in ET.parse(path).getroot().iter("sys_update_xml"):
        payload = ET.fromstring(entry.findtext("payload"))
        for record in payload.iter():
            if record.get("action") != "INSERT_OR_UPDATE":
                continue
            body = {c.tag: c.text or "" for c in record
                    if not c.tag.startswith("sys_")}  # fmt: skip
            response = requests.post(
                f"{emu.url}/api/now/table/{record.tag}",
                json=body,
                auth=(emu.admin_user, emu.admin_password),
                timeout=10,
            )
            assert response.status_code == 201, response.text
            posted += 1
    return posted


def test_imported_update_set_leaves_install_nothing_to_do(emu, make_settings, tmp_path):
    settings = make_settings(history=True)
    target = tmp_path / "set.xml"
    install_fields(settings, update_set=target)

    posted = import_update_set(emu, target)
    result = install_fields(settings)

    assert posted == 28
    assert result.created == []
    assert len(result.existing) == 28
