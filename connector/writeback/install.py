"""``install-fields``: create the write-back fields, choices and layout entries.

Reads what the instance already has (``sys_dictionary``, ``sys_choice``,
``sys_ui_element``, ``sys_ui_list_element``, ``sys_db_object``) and creates only
what is missing, so a second run creates nothing. With an update-set path it
sends nothing at all and writes the complete change list as XML instead.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path

from connector.config import Settings
from connector.errors import PermissionDeniedError
from connector.writeback import instance as sn
from connector.writeback.guard import check_config, ensure_metadata_write
from connector.writeback.plan import LAYOUT_TABLES, Change, planned_changes
from connector.writeback.updateset import write_update_set

log = logging.getLogger(__name__)

DICTIONARY_ROLES = "admin or personalize_dictionary"
# The role that lets a non-admin change each metadata table.
ROLES = {
    "sys_dictionary": DICTIONARY_ROLES,
    "sys_choice": "admin or personalize_choices",
    "sys_ui_element": "admin or personalize_form",
    "sys_ui_list_element": "admin or personalize_list",
    "sys_db_object": "admin",
}


@dataclass
class InstallResult:
    """What install-fields did (or would do, for an update set)."""

    created: list[Change] = field(default_factory=list)
    existing: list[Change] = field(default_factory=list)
    update_set: Path | None = None

    @property
    def changed(self) -> bool:
        return bool(self.created)


def install_fields(
    settings: Settings, *, update_set: Path | None = None
) -> InstallResult:
    """Create the missing write-back metadata, or write it as an update set.

    Raises:
        ConfigError: the write-back config names a field or table not allowed.
        PermissionDeniedError: the user lacks the dictionary role (exit 1).
    """
    check_config(settings)
    changes = planned_changes(settings)
    for change in changes:
        ensure_metadata_write(settings, change.table, change.record)
    if update_set is not None:
        write_update_set(changes, update_set)
        log.info("Wrote %d changes to update set '%s'", len(changes), update_set)
        return InstallResult(created=changes, update_set=update_set)

    with sn.open_client(settings) as client:
        return _install(client, settings, changes)


def _install(
    client: sn.Client, settings: Settings, changes: list[Change]
) -> InstallResult:
    existing = _existing_keys(client, changes)
    positions = _layout_context(client, changes)
    result = InstallResult()
    for change in changes:
        if change.key in existing[change.table]:
            result.existing.append(change)
            continue
        record = _with_layout(change, positions)
        ensure_metadata_write(settings, change.table, record)
        _create(client, change.table, record)
        existing[change.table].add(change.key)
        result.created.append(change)
        log.info("Created %s", change.summary)
    return result


def _create(client: sn.Client, table: str, record: dict[str, str]) -> None:
    try:
        client.create(table, record)
    except PermissionDeniedError as exc:
        raise missing_role_error(table) from exc


def missing_role_error(table: str) -> PermissionDeniedError:
    """The 403 explained: which role the integration user lacks."""
    return PermissionDeniedError(
        f"The instance does not let this user read or change {table!r}. "
        "install-fields needs a "
        f"user with the {ROLES.get(table, DICTIONARY_ROLES)} role; ask an admin to "
        "grant it, or run "
        "'csm-sync install-fields --update-set FILE' and have an admin import it",
        status=403,
    )


def _existing_keys(
    client: sn.Client, changes: list[Change]
) -> dict[str, set[tuple[str, ...]]]:
    """The identity of every already-present record of the tables we touch."""
    found: dict[str, set[tuple[str, ...]]] = {c.table: set() for c in changes}
    for table in found:
        sample = next(c for c in changes if c.table == table)
        names = sorted({c.record["name"] for c in changes if c.table == table})
        rows = _read(client, table, _names_query(names), sample.key_fields)
        found[table] = {tuple(r.get(f, "") for f in sample.key_fields) for r in rows}
    if not _dictionary_readable(client, found, changes):
        raise missing_role_error("sys_dictionary")
    return found


def _names_query(names: list[str]) -> str:
    return f"nameIN{','.join(names)}"


def _read(
    client: sn.Client, table: str, query: str, fields: Iterable[str]
) -> list[dict[str, str]]:
    try:
        return list(client.rows(table, query=query, fields=[*fields, "sys_id"]))
    except PermissionDeniedError as exc:
        raise missing_role_error(table) from exc


def _dictionary_readable(
    client: sn.Client,
    found: dict[str, set[tuple[str, ...]]],
    changes: list[Change],
) -> bool:
    """False when sys_dictionary hides the account table itself.

    Non-admin users get 200 with zero rows from sys_dictionary (TABLE_API §11.2),
    which would otherwise read as "nothing installed yet".
    """
    if "sys_dictionary" not in found:
        return True
    account = next(c.record["name"] for c in changes if c.table == "sys_dictionary")
    rows = client.rows(
        "sys_dictionary", query=f"name={account}", fields=["element"], limit=1
    )
    return any(True for _ in rows)


def _layout_context(
    client: sn.Client, changes: list[Change]
) -> dict[str, dict[str, str]]:
    """Per layout table: the next free position and the section/list id to join."""
    context: dict[str, dict[str, str]] = {}
    for table, group in (("sys_ui_element", "sys_ui_section"),
                         ("sys_ui_list_element", "list_id")):  # fmt: skip
        names = sorted({c.record["name"] for c in changes if c.table == table})
        if not names:
            continue
        rows = _read(client, table, _names_query(names), ["position", group])
        positions = [_int(r.get("position")) for r in rows]
        groups = [r.get(group, "") for r in rows if r.get(group)]
        context[table] = {
            "next": str(max(positions, default=-1) + 1),
            "group_field": group,
            "group": groups[0] if groups else "",
        }
    return context


def _with_layout(change: Change, context: dict[str, dict[str, str]]) -> dict[str, str]:
    if change.table not in LAYOUT_TABLES:
        return dict(change.record)
    where = context[change.table]
    record = dict(change.record)
    record["position"] = str(int(where["next"]) + int(record["position"]))
    if where["group"]:
        record[where["group_field"]] = where["group"]
    return record


def _int(value: str | None) -> int:
    try:
        return int(float(value or ""))
    except ValueError:
        return -1


def describe(result: InstallResult) -> list[str]:
    """Lines for the terminal."""
    if result.update_set is not None:
        return [
            f"Wrote {len(result.created)} changes to {result.update_set}; nothing "
            "was sent. Import it under System Update Sets > Retrieved Update Sets."
        ]
    if not result.created:
        return [
            f"Nothing to change: all {len(result.existing)} fields, choices and "
            "layout entries are already installed."
        ]
    lines = [f"Created {c.summary}" for c in result.created]
    lines.append(
        f"Created {len(result.created)}, already present {len(result.existing)}."
    )
    return lines
