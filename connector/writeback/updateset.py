"""Write the install-fields changes as an update-set XML file an admin imports.

The file has the shape ServiceNow exports as "retrieved update set" XML: an
``<unload>`` root holding one ``sys_remote_update_set`` and one
``sys_update_xml`` per change, whose ``payload`` is the escaped
``<record_update>`` document of the record. Importing it (System Update Sets >
Retrieved Update Sets > Import Update Set from XML) then preview and commit
creates the same fields, choices and layout entries ``install-fields`` would.
"""

from __future__ import annotations

import hashlib
import xml.etree.ElementTree as ET
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

from connector.writeback.plan import Change

UPDATE_SET_NAME = "csm-sync health fields"
UPDATE_SET_DESCRIPTION = (
    "Customer account fields (and optional history table) that csm-sync "
    "writes health scores to"
)
# Human-readable record types as the update-set list shows them.
RECORD_TYPES = {
    "sys_dictionary": "Dictionary",
    "sys_choice": "Choice List",
    "sys_ui_element": "Form Layout",
    "sys_ui_list_element": "List Layout",
    "sys_db_object": "Table",
}


def sys_id_for(*parts: str) -> str:
    """A stable sys_id, so re-exporting gives the same file (and import updates)."""
    return hashlib.md5(":".join(("csm-sync", *parts)).encode()).hexdigest()


def _sub(parent: ET.Element, tag: str, text: str = "", **attrs: str) -> ET.Element:
    element = ET.SubElement(parent, tag, attrs)
    element.text = text
    return element


@dataclass(frozen=True)
class Entry:
    """One ``sys_update_xml`` row: an update name and the records it carries."""

    name: str
    kind: str
    table: str
    target: str
    payload: str


def update_name(change: Change) -> str:
    """The ``sys_update_name`` ServiceNow gives a record of this kind."""
    record = change.record
    if change.table == "sys_dictionary":
        return f"sys_dictionary_{record['name']}_{record['element']}"
    if change.table == "sys_choice":
        return f"sys_choice_{record['name']}_{record['element']}"
    if change.table == "sys_db_object":
        return f"sys_db_object_{record['name']}"
    return f"{change.table}_{sys_id_for(change.table, *change.key)}"


def _record(parent: ET.Element, change: Change, now: str) -> None:
    record = ET.SubElement(parent, change.table, {"action": "INSERT_OR_UPDATE"})
    for name, value in change.record.items():
        _sub(record, name, value)
    _sub(record, "sys_id", sys_id_for(change.table, *change.key))
    _sub(record, "sys_class_name", change.table)
    _sub(record, "sys_created_by", "csm-sync")
    _sub(record, "sys_created_on", now)


def payload_xml(changes: list[Change], now: str) -> str:
    """The ``<record_update>`` document of one update name.

    A choice list travels as one document per field (``<sys_choice field=…
    table=…>`` wrapping every choice), as ServiceNow records it: separate
    entries with the same update name would replace each other on commit.
    """
    first = changes[0]
    if first.table == "sys_choice":
        root = ET.Element("record_update")
        wrapper = ET.SubElement(
            root,
            "sys_choice",
            {"field": first.record["element"], "table": first.record["name"]},
        )
        for change in changes:
            _record(wrapper, change, now)
    else:
        root = ET.Element("record_update", {"table": first.table})
        _record(root, first, now)
        _sub(root.find(first.table), "sys_update_name", update_name(first))
    return ET.tostring(root, encoding="unicode")


def entries(changes: list[Change], now: str) -> list[Entry]:
    """Group changes by update name (choices of one field share one)."""
    groups: dict[str, list[Change]] = {}
    for change in changes:
        groups.setdefault(update_name(change), []).append(change)
    out = []
    for name, group in groups.items():
        first = group[0]
        target = first.summary
        if first.table == "sys_choice":
            target = f"choice list {first.record['name']}.{first.record['element']}"
        out.append(
            Entry(
                name=name,
                kind=RECORD_TYPES.get(first.table, first.table),
                table=first.record.get("name", ""),
                target=target,
                payload=payload_xml(group, now),
            )
        )
    return out


def _update_set_header(root: ET.Element, set_id: str, now: str, count: int) -> None:
    header = ET.SubElement(
        root, "sys_remote_update_set", {"action": "INSERT_OR_UPDATE"}
    )
    _sub(header, "name", UPDATE_SET_NAME)
    _sub(header, "description", UPDATE_SET_DESCRIPTION)
    _sub(header, "application", "global", display_value="Global")
    _sub(header, "application_scope", "global")
    _sub(header, "remote_sys_id", set_id)
    _sub(header, "state", "loaded")
    _sub(header, "sys_class_name", "sys_remote_update_set")
    _sub(header, "sys_created_by", "csm-sync")
    _sub(header, "sys_created_on", now)
    _sub(header, "sys_id", set_id)
    _sub(header, "updates", str(count))


def _update_xml(root: ET.Element, entry: Entry, set_id: str, now: str) -> None:
    row = ET.SubElement(root, "sys_update_xml", {"action": "INSERT_OR_UPDATE"})
    _sub(row, "action", "INSERT_OR_UPDATE")
    _sub(row, "application", "global", display_value="Global")
    _sub(row, "category", "customer")
    _sub(row, "name", entry.name)
    _sub(row, "payload", entry.payload)
    _sub(row, "remote_update_set", set_id, display_value=UPDATE_SET_NAME)
    _sub(row, "replace_on_upgrade", "false")
    _sub(row, "sys_created_by", "csm-sync")
    _sub(row, "sys_created_on", now)
    _sub(row, "sys_id", sys_id_for("sys_update_xml", entry.name))
    _sub(row, "table", entry.table)
    _sub(row, "target_name", entry.target)
    _sub(row, "type", entry.kind)
    _sub(row, "update_domain", "global")


def build_update_set(changes: list[Change], *, now: datetime | None = None) -> str:
    """The whole update-set document as text."""
    stamp = (now or datetime.now(UTC)).strftime("%Y-%m-%d %H:%M:%S")
    set_id = sys_id_for("sys_remote_update_set", UPDATE_SET_NAME)
    root = ET.Element("unload", {"unload_date": stamp})
    rows = entries(changes, stamp)
    _update_set_header(root, set_id, stamp, len(rows))
    for entry in rows:
        _update_xml(root, entry, set_id, stamp)
    ET.indent(root)
    body = ET.tostring(root, encoding="unicode")
    return '<?xml version="1.0" encoding="UTF-8"?>\n' + body + "\n"


def write_update_set(
    changes: list[Change], path: Path, *, now: datetime | None = None
) -> Path:
    """Write the update set to ``path`` and return it."""
    path.write_text(build_update_set(changes, now=now), encoding="utf-8")
    return path
