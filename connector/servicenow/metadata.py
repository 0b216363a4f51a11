"""Read the data dictionary: table hierarchy, columns and choice lists (§11).

Inherited columns live on ancestor tables (``task`` for a case), so every lookup
walks ``sys_db_object.super_class`` first. Choice lists fall back to the parent
table when the child defines none (C08).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any, Protocol

from connector.errors import InvalidTableError, PermissionDeniedError
from connector.servicenow.models import FieldInfo, Page
from connector.servicenow.pager import KeyPager, PageSource
from connector.servicenow.query import Q
from connector.servicenow.values import normalize_reference, unwrap

DICTIONARY_FIELDS = ("name", "element", "internal_type", "reference", "max_length")
CHOICE_FIELDS = ("value", "label", "language")
PAGE_SIZE = 1000
LANGUAGE = "en"


class MetadataSource(PageSource, Protocol):
    """What metadata reads need from a client."""

    def get_record(
        self, table: str, sys_id: str, *, fields: Sequence[str] | None = None
    ) -> dict[str, Any] | None: ...


def read_table_chain(client: MetadataSource, table: str) -> list[str]:
    """``table`` and its ancestors, leaf first; InvalidTableError if unknown."""
    chain: list[str] = []
    current: str | None = table
    while current and current not in chain:
        page = _table_row(client, current)
        if not page.rows:
            if not chain:
                raise InvalidTableError(
                    f"Table {table!r} is not in sys_db_object. Check the table "
                    "name in the mapping.",
                    url="/api/now/table/sys_db_object",
                )
            break
        chain.append(current)
        current = _parent_name(client, page.rows[0].get("super_class"))
    return chain


def read_dictionary(client: PageSource, chain: Sequence[str]) -> dict[str, FieldInfo]:
    """Columns of ``chain[0]`` including inherited ones; a child's entry wins.

    Raises PermissionDeniedError when ``sys_dictionary`` answers with no rows:
    non-admin users typically get 200 and nothing (TABLE_API §11.2), which must
    not be mistaken for "the table has no fields".
    """
    query = Q.and_(Q.in_("name", chain), Q.is_not_empty("element")).encode()
    rows = read_all(client, "sys_dictionary", query, DICTIONARY_FIELDS)
    if not rows:
        raise PermissionDeniedError(
            f"sys_dictionary returned no columns for {chain[0]!r}; the integration "
            "user probably cannot read sys_dictionary. Grant it read access "
            "(e.g. the personalize_dictionary role).",
            url="/api/now/table/sys_dictionary",
        )

    depth = {name: index for index, name in enumerate(chain)}
    # Root first, so a child's definition (or override) is applied last.
    rows.sort(key=lambda row: -depth.get(str(unwrap(row.get("name"))), 0))
    return {info.name: info for info in map(field_info, rows)}


def read_choices(
    client: PageSource, chain: Sequence[str], element: str
) -> dict[str, str]:
    """Choice value -> label from the first table in ``chain`` that has any."""
    for owner in chain:
        query = Q.and_(Q.eq("name", owner), Q.eq("element", element)).encode()
        rows = _prefer_language(read_all(client, "sys_choice", query, CHOICE_FIELDS))
        if rows:
            return {str(unwrap(r["value"])): str(unwrap(r["label"])) for r in rows}
    return {}


def read_all(
    client: PageSource, table: str, query: str, fields: Sequence[str]
) -> list[dict[str, Any]]:
    """Every row matching ``query``, keyset-paged on sys_id."""
    pager = KeyPager(
        client, table, base_query=query, fields=fields, page_size=PAGE_SIZE
    )
    return [row for page in pager for row in page.rows]


def field_info(row: Mapping[str, Any]) -> FieldInfo:
    """One ``sys_dictionary`` row as a :class:`FieldInfo`."""
    length = str(unwrap(row.get("max_length")) or "").strip()
    return FieldInfo(
        name=str(unwrap(row["element"])),
        internal_type=str(unwrap(row.get("internal_type")) or "string"),
        reference=str(unwrap(row.get("reference")) or "") or None,
        max_length=int(length) if length.isdigit() else None,
        table=str(unwrap(row.get("name"))),
    )


def _table_row(client: PageSource, name: str) -> Page:
    return client.get_page(
        "sys_db_object",
        query=Q.eq("name", name).encode(),
        fields=["name", "super_class"],
        limit=1,
    )


def _parent_name(client: MetadataSource, super_class: Any) -> str | None:
    parent_id = normalize_reference(super_class).sys_id
    if not parent_id:
        return None
    parent = client.get_record("sys_db_object", parent_id, fields=["name"])
    return str(parent["name"]) if parent and parent.get("name") else None


def _prefer_language(rows: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Rows in ``LANGUAGE`` (or untagged); all rows when none match."""
    matching = [
        r for r in rows if str(unwrap(r.get("language")) or "") in ("", LANGUAGE)
    ]
    return matching or rows
