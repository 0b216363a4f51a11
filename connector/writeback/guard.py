"""The write allow-list: what write-back may ever send to the instance.

Write-back runs as an integration user that can usually write more than health
fields. A typo or a hostile config (``fields.score: name``) must never turn it
into a tool that overwrites account names or sys_ids, so every write request is
checked here first, independently of how the config was validated.
"""

from __future__ import annotations

import re
from collections.abc import Iterable

from connector.config import Settings
from connector.errors import ConfigError, Problem, WriteBackError
from connector.writeback.fields import (
    ACCOUNT_FIELDS,
    ACCOUNT_TABLE,
    HISTORY_TABLE,
    account_fields,
    history_fields,
)

# Global-scope custom columns: u_ prefix, lowercase ASCII, digits, underscores.
CUSTOM_NAME = re.compile(r"^u_[a-z0-9]+(?:_[a-z0-9]+)*$")
CONFIG_SOURCE = "<config>"
METADATA_TABLES = frozenset(
    {"sys_dictionary", "sys_choice", "sys_ui_element", "sys_ui_list_element",
     "sys_db_object"}
)  # fmt: skip


def config_problems(settings: Settings) -> list[Problem]:
    """Every reason the write-back config is unsafe, named by its key."""
    problems = []
    table = settings.writeback.table
    if table != ACCOUNT_TABLE:
        problems.append(
            Problem(
                CONFIG_SOURCE,
                "writeback.table",
                f"{table!r} is not allowed; write-back only writes {ACCOUNT_TABLE!r}",
            )
        )

    seen: dict[str, str] = {}
    for key in ACCOUNT_FIELDS:
        element = getattr(settings.writeback.fields, key)
        if element is None:
            continue
        where = f"writeback.fields.{key}"
        if not CUSTOM_NAME.match(element):
            problems.append(
                Problem(
                    CONFIG_SOURCE,
                    where,
                    f"{element!r} is not a custom field; expected a name such "
                    "as 'u_health_score' (lowercase, starting with 'u_')",
                )
            )
        elif element in seen:
            problems.append(
                Problem(
                    CONFIG_SOURCE, where, f"{element!r} is also used by {seen[element]}"
                )
            )
        seen.setdefault(element, where)
    return problems


def check_config(settings: Settings) -> None:
    """Raise ConfigError (exit 2) when the write-back config is unsafe."""
    problems = config_problems(settings)
    if problems:
        raise ConfigError(problems)


def allowed_fields(settings: Settings, table: str) -> frozenset[str]:
    """Field names write-back may write on ``table`` (empty when not allowed)."""
    if table == ACCOUNT_TABLE and settings.writeback.table == ACCOUNT_TABLE:
        specs = account_fields(settings)
    elif table == HISTORY_TABLE:
        specs = history_fields(settings)
    else:
        return frozenset()
    return frozenset(s.element for s in specs if CUSTOM_NAME.match(s.element))


def ensure_writable(settings: Settings, table: str, fields: Iterable[str]) -> None:
    """Refuse a data write to any table or field outside the allow-list."""
    allowed = allowed_fields(settings, table)
    if not allowed:
        raise WriteBackError(
            f"Refused to write table {table!r}: write-back only writes "
            f"{ACCOUNT_TABLE!r} and {HISTORY_TABLE!r}"
        )
    refused = sorted(set(fields) - allowed)
    if refused:
        raise WriteBackError(
            f"Refused to write {', '.join(map(repr, refused))} on {table!r}: only "
            "the configured write-back fields (custom 'u_' fields) may be written"
        )


def ensure_metadata_write(settings: Settings, table: str, row: dict[str, str]) -> None:
    """Refuse a metadata insert that would define anything but our own fields."""
    if table not in METADATA_TABLES:
        raise WriteBackError(f"Refused to write metadata table {table!r}")
    if table == "sys_db_object":
        if row.get("name") != HISTORY_TABLE:
            raise WriteBackError(f"Refused to create table {row.get('name')!r}")
        return
    target, element = row.get("name", ""), row.get("element", "")
    if element not in allowed_fields(settings, target):
        raise WriteBackError(
            f"Refused to change {table!r} for {target}.{element}: not a "
            "configured write-back field"
        )
