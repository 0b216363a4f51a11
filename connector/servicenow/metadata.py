"""Read the data dictionary: table hierarchy, columns and choice lists (§11).

Inherited columns live on ancestor tables (``task`` for a case), so every lookup
walks ``sys_db_object.super_class`` first. Choice lists fall back to the parent
table when the child defines none (C08).

Rows are read in bulk (``nameIN`` every table asked for) and kept raw in a
:class:`DataDictionary`, which can be saved and reused by a later pass. A saved
copy is trusted only while the instance reports, per metadata table and for
the same filter, the same row count and the same newest ``sys_updated_on``
(:meth:`DataDictionary.signature_queries`): one request per metadata table
instead of re-reading everything. A dropped field changes the count and an
added or edited one the newest stamp, so the check before every sync that
protects against C09 still sees the instance as it is now.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from connector.errors import InvalidTableError, PermissionDeniedError
from connector.servicenow.models import FieldInfo
from connector.servicenow.pager import KeyPager, PageSource
from connector.servicenow.query import Q, Query, format_datetime
from connector.servicenow.values import normalize_reference, unwrap

STAMP = "sys_updated_on"
TABLE_FIELDS = ("sys_id", "name", "super_class", STAMP)
DICTIONARY_FIELDS = (
    "sys_id",
    "name",
    "element",
    "internal_type",
    "reference",
    "max_length",
    STAMP,
)
CHOICE_FIELDS = ("sys_id", "name", "element", "value", "label", "language", STAMP)
META_TABLES = ("sys_db_object", "sys_dictionary", "sys_choice")
PAGE_SIZE = 1000
LANGUAGE = "en"
# Names per ``IN`` list; keeps metadata URLs far below the ~8 KB limit (§1).
IN_CHUNK = 100
SNAPSHOT_VERSION = 1

# (row count, newest sys_updated_on) per metadata table.
Signature = dict[str, tuple[int, str]]


@dataclass
class DataDictionary:
    """The metadata rows read so far, raw, and which filters they cover.

    ``tables`` holds ``sys_db_object`` rows of every name in ``table_names``;
    ``columns`` the ``sys_dictionary`` rows of every table in ``column_tables``;
    ``choices`` the ``sys_choice`` rows of ``choice_tables`` x
    ``choice_elements``. ``first_read`` is the instance's clock when the first
    of these rows was read.
    """

    tables: dict[str, dict[str, str]] = field(default_factory=dict)
    table_names: set[str] = field(default_factory=set)
    columns: dict[str, dict[str, str]] = field(default_factory=dict)
    column_tables: set[str] = field(default_factory=set)
    choices: dict[str, dict[str, str]] = field(default_factory=dict)
    choice_tables: set[str] = field(default_factory=set)
    choice_elements: set[str] = field(default_factory=set)
    first_read: datetime | None = None
    reads: int = 0

    # --- reading --------------------------------------------------------------

    def load_tables(self, client: PageSource, names: Iterable[str]) -> None:
        """Read the ``sys_db_object`` rows of ``names`` and all their ancestors."""
        missing = sorted(set(names) - self.table_names)
        if not missing:
            return
        for row in self._read(client, "sys_db_object", "name", missing, TABLE_FIELDS):
            self.tables[row["sys_id"]] = row
        self.table_names.update(missing)
        while parents := sorted(self._unknown_parents()):
            rows = self._read(client, "sys_db_object", "sys_id", parents, TABLE_FIELDS)
            for row in rows:
                self.tables[row["sys_id"]] = row
                self.table_names.add(row["name"])
            if not rows:
                break  # parents hidden or gone: chains end there

    def load_columns(self, client: PageSource, tables: Iterable[str]) -> None:
        """Read the ``sys_dictionary`` column rows of ``tables``."""
        missing = sorted(set(tables) - self.column_tables)
        if not missing:
            return
        rows = self._read(
            client,
            "sys_dictionary",
            "name",
            missing,
            DICTIONARY_FIELDS,
            extra=Q.is_not_empty("element"),
        )
        for row in rows:
            self.columns[row["sys_id"]] = row
        self.column_tables.update(missing)

    def load_choices(
        self, client: PageSource, tables: Iterable[str], elements: Iterable[str]
    ) -> None:
        """Read the ``sys_choice`` rows of every table x element asked so far.

        The rows held always cover a whole tables x elements product, so their
        count can be compared with one ``nameIN..^elementIN..`` count.
        """
        tables, elements = set(tables), set(elements)
        if tables <= self.choice_tables and elements <= self.choice_elements:
            return
        all_tables = sorted(self.choice_tables | tables)
        all_elements = sorted(self.choice_elements | elements)
        rows = self._read(
            client,
            "sys_choice",
            "name",
            all_tables,
            CHOICE_FIELDS,
            extra=Q.in_("element", all_elements),
        )
        self.choices = {row["sys_id"]: row for row in rows}
        self.choice_tables.update(all_tables)
        self.choice_elements.update(all_elements)

    def _read(
        self,
        client: PageSource,
        table: str,
        key: str,
        values: Sequence[str],
        fields: Sequence[str],
        *,
        extra: Query | None = None,
    ) -> list[dict[str, str]]:
        rows: list[dict[str, str]] = []
        for start in range(0, len(values), IN_CHUNK):
            chunk = Q.in_(key, values[start : start + IN_CHUNK])
            query = Q.and_(chunk, extra or Query())
            rows += [
                _plain(row, fields)
                for row in self._read_all(client, table, query, fields)
            ]
        self.reads += 1
        return rows

    def _read_all(
        self, client: PageSource, table: str, query: Query, fields: Sequence[str]
    ) -> list[dict[str, Any]]:
        """Every row of ``query``: one counted request when it holds them all.

        Otherwise (more rows than a page, or rows hidden by ACLs) keyset paging
        goes on after the last row, as everywhere else.
        """
        first = client.get_page(
            table,
            query=Q.and_(query, Q.order_by("sys_id")).encode(),
            fields=fields,
            limit=PAGE_SIZE,
            count=True,
        )
        if self.first_read is None:
            self.first_read = first.server_time
        rows = list(first.rows)
        if first.total is not None and len(rows) >= first.total:
            return rows
        pager = KeyPager(
            client,
            table,
            base_query=query.encode(),
            fields=fields,
            page_size=PAGE_SIZE,
            since=str(unwrap(rows[-1]["sys_id"])) if rows else None,
        )
        return rows + [row for page in pager for row in page.rows]

    def _unknown_parents(self) -> set[str]:
        known = set(self.tables)
        parents = {_parent_id(row) for row in self.tables.values()}
        return {p for p in parents if p and p not in known}

    # --- views ------------------------------------------------------------------

    def chain(self, table: str) -> list[str]:
        """``table`` and its ancestors, leaf first; InvalidTableError if unknown."""
        by_name = {row["name"]: row for row in self.tables.values()}
        chain: list[str] = []
        row = by_name.get(table)
        if row is None:
            raise InvalidTableError(
                f"Table {table!r} is not in sys_db_object. Check the table "
                "name in the mapping.",
                url="/api/now/table/sys_db_object",
            )
        while row is not None and row["name"] not in chain:
            chain.append(row["name"])
            row = self.tables.get(_parent_id(row))
        return chain

    def fields_of(self, chain: Sequence[str]) -> dict[str, FieldInfo]:
        """Columns of ``chain[0]`` including inherited ones; a child's entry wins.

        Raises PermissionDeniedError when ``sys_dictionary`` gave no rows:
        non-admin users typically get 200 and nothing (TABLE_API §11.2), which
        must not be mistaken for "the table has no fields".
        """
        depth = {name: index for index, name in enumerate(chain)}
        rows = [row for row in self.columns.values() if row["name"] in depth]
        if not rows:
            raise PermissionDeniedError(
                f"sys_dictionary returned no columns for {chain[0]!r}; the "
                "integration user probably cannot read sys_dictionary. Grant it "
                "read access (e.g. the personalize_dictionary role).",
                url="/api/now/table/sys_dictionary",
            )
        # Root first, so a child's definition (or override) is applied last.
        rows.sort(key=lambda row: -depth[row["name"]])
        return {info.name: info for info in map(field_info, rows)}

    def own_choices(self, table: str, element: str) -> dict[str, str]:
        """Value -> label of the choice rows ``table`` itself has for ``element``."""
        rows = [
            row
            for row in self.choices.values()
            if row["name"] == table and row["element"] == element
        ]
        rows.sort(key=lambda row: row["sys_id"])
        return {row["value"]: row["label"] for row in _prefer_language(rows)}

    # --- validation ----------------------------------------------------------------

    def signature_queries(self) -> dict[str, str]:
        """Per metadata table, the filter the rows held cover (to count remotely)."""
        queries: dict[str, str] = {}
        if self.table_names:
            queries["sys_db_object"] = _in_query("name", self.table_names)
        if self.column_tables:
            queries["sys_dictionary"] = Q.and_(
                Q.raw(_in_query("name", self.column_tables)),
                Q.is_not_empty("element"),
            ).encode()
        if self.choice_tables and self.choice_elements:
            queries["sys_choice"] = Q.and_(
                Q.raw(_in_query("name", self.choice_tables)),
                Q.in_("element", sorted(self.choice_elements)),
            ).encode()
        return queries

    def signature(self) -> Signature:
        """(count, newest sys_updated_on) of the rows held, per metadata table."""
        held = {
            "sys_db_object": self.tables,
            "sys_dictionary": self.columns,
            "sys_choice": self.choices,
        }
        covered = self.signature_queries()
        return {
            table: (len(rows), max((r[STAMP] for r in rows.values()), default=""))
            for table, rows in held.items()
            if table in covered
        }

    def settled(self) -> bool:
        """True when every row held is older than the second the reads began.

        An edit made after a row was read then always carries a newer stamp
        than any row held, so a same-count, same-newest signature really means
        "unchanged"; an edit in that very second could otherwise hide behind
        an equal stamp. (Stamps and the ``Date`` header share the instance's
        clock.)
        """
        if self.first_read is None:
            return not self.table_names
        began = format_datetime(self.first_read.replace(microsecond=0))
        return all(newest < began for _count, newest in self.signature().values())

    # --- persistence ----------------------------------------------------------------

    def to_json(self) -> dict[str, Any]:
        """A JSON-able copy (see :meth:`from_json`)."""
        return {
            "version": SNAPSHOT_VERSION,
            "tables": sorted(self.tables.values(), key=lambda r: r["sys_id"]),
            "table_names": sorted(self.table_names),
            "columns": sorted(self.columns.values(), key=lambda r: r["sys_id"]),
            "column_tables": sorted(self.column_tables),
            "choices": sorted(self.choices.values(), key=lambda r: r["sys_id"]),
            "choice_tables": sorted(self.choice_tables),
            "choice_elements": sorted(self.choice_elements),
            "first_read": self.first_read.isoformat() if self.first_read else None,
        }

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> DataDictionary | None:
        """The dictionary saved by :meth:`to_json`; None for another version."""
        if data.get("version") != SNAPSHOT_VERSION:
            return None
        first = data.get("first_read")
        return cls(
            tables={r["sys_id"]: r for r in data["tables"]},
            table_names=set(data["table_names"]),
            columns={r["sys_id"]: r for r in data["columns"]},
            column_tables=set(data["column_tables"]),
            choices={r["sys_id"]: r for r in data["choices"]},
            choice_tables=set(data["choice_tables"]),
            choice_elements=set(data["choice_elements"]),
            first_read=datetime.fromisoformat(first) if first else None,
        )


def read_signature(client: PageSource, queries: Mapping[str, str]) -> Signature:
    """(X-Total-Count, newest sys_updated_on) per metadata table: one request each.

    A table whose count the instance does not send gets -1, which never matches.
    """
    found: Signature = {}
    for table, query in queries.items():
        newest_first = Q.and_(Q.raw(query), Q.order_by(STAMP, descending=True))
        page = client.get_page(
            table, query=newest_first.encode(), fields=[STAMP], limit=1, count=True
        )
        newest = str(unwrap(page.rows[0].get(STAMP)) or "") if page.rows else ""
        found[table] = (page.total if page.total is not None else -1, newest)
    return found


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


def _plain(row: Mapping[str, Any], fields: Sequence[str]) -> dict[str, str]:
    """A metadata row as plain strings (references reduced to their sys_id)."""
    out = {name: str(unwrap(row.get(name)) or "") for name in fields}
    if "super_class" in out:
        out["super_class"] = normalize_reference(row.get("super_class")).sys_id or ""
    return out


def _parent_id(row: Mapping[str, str]) -> str:
    return row.get("super_class") or ""


def _in_query(name: str, values: Iterable[str]) -> str:
    return Q.in_(name, sorted(values)).encode()


def _prefer_language(rows: list[dict[str, str]]) -> list[dict[str, str]]:
    """Rows in ``LANGUAGE`` (or untagged); all rows when none match."""
    matching = [r for r in rows if r.get("language", "") in ("", LANGUAGE)]
    return matching or rows
