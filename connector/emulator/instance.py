"""The emulated instance without HTTP: data, dictionary, writes and their rules.

The HTTP app (``app.py``) and the background mutator both go through the same
:meth:`Instance.insert`, :meth:`Instance.update` and :meth:`Instance.delete`, so
system fields and ``sys_audit`` rows are maintained identically for each.
"""

from __future__ import annotations

import hashlib
import json
import logging
import re
import threading
import uuid
import xml.etree.ElementTree as ET
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from typing import TYPE_CHECKING, Any
from zoneinfo import ZoneInfo

from connector.emulator import metadata
from connector.emulator.auth import Authenticator, RateLimiter, User
from connector.emulator.faults import FaultSettings
from connector.emulator.query import Compiled, QueryCompiler
from connector.emulator.registry import (
    FieldMeta,
    Registry,
    TableMeta,
    registry_from_schema,
    schema_system_fields,
    stable_sys_id,
)
from connector.emulator.schema import AUDITED_TABLES as DELETE_AUDITED_TABLES
from connector.emulator.storage import Store, quote_ident

if TYPE_CHECKING:
    from connector.emulator.mutator import Mutator

LOG = logging.getLogger(__name__)

CASE_TABLE = "sn_customerservice_case"
# Tables whose field changes are written to sys_audit (the dataset's history
# has state/assigned_to rows for cases, so API and mutator updates match it).
# Which deletes are kept in sys_audit_delete is the schema's ``audited`` flag.
AUDITED_TABLES = frozenset({"sn_customerservice_case"})
# Tables a no-role account gets 403 on (TABLE_API.md §8.3, §11.1; C13).
RESTRICTED_TABLES = frozenset({"sys_db_object", "sys_audit", "sys_audit_delete"})
# Where a deleted record of an audited table is kept (schema ``audited``, §11.4).
DELETED_RECORDS_TABLE = "sys_audit_delete"
# Delete checks read sys_audit by table, field and time (the keyset orders by
# sys_updated_on); the platform indexes it so too, and without this index each
# check scans the whole audit table (200-330 ms at 10,000 accounts).
EXTRA_INDEXES: dict[str, tuple[tuple[str, ...], ...]] = {
    "sys_audit": (("tablename", "fieldname", "sys_updated_on", "sys_id"),),
}
META_STATE_TABLE = "_emulator_state"
NUMBER_PREFIXES = {
    "task": "TASK",
    "sn_customerservice_case": "CS",
    "interaction": "IMS",
    "customer_account": "ACCT",
    "asmt_assessment_instance": "AINST",
    "sn_install_base_sold_product": "SP",
}
SYS_FIELDS = ("sys_created_on", "sys_created_by", "sys_updated_on", "sys_updated_by")
ProgressFn = Callable[[str, int], None]


@dataclass
class ApiError(Exception):
    """A refusal the HTTP layer renders as the ServiceNow error envelope."""

    status: int
    message: str
    detail: str | None = None


def to_value(value: Any) -> str:
    """A JSON body value as the string the instance stores."""
    if value is None:
        return ""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, dict):
        return to_value(value.get("value", ""))
    if isinstance(value, float) and value.is_integer():
        return str(int(value))
    return str(value)


def normalise_name(raw: str) -> str:
    """Column/table naming rules: lowercase ASCII, digits, single underscores."""
    name = re.sub(r"[^a-z0-9_]", "_", raw.strip().lower())
    return re.sub(r"_+", "_", name).strip("_")


def new_sys_id() -> str:
    return uuid.uuid4().hex


# Characters XML 1.0 cannot carry at all (a stored value may hold them).
_NOT_XML = re.compile("[^\x09\x0a\x0d\x20-\ud7ff\ue000-\ufffd\U00010000-\U0010ffff]")


def record_payload(table: str, record: dict[str, str]) -> str:
    """A record as the XML ``sys_audit_delete.payload`` keeps (update-set shape:
    ``<record_update table=T><T><field>value</field>...</T></record_update>``)."""
    root = ET.Element("record_update", table=table)
    body = ET.SubElement(root, table)
    for name, value in record.items():
        ET.SubElement(body, name).text = _NOT_XML.sub("", value)
    text = ET.tostring(root, encoding="unicode", short_empty_elements=False)
    # A literal CR would come back as LF from any XML parser; only text nodes
    # can hold one here, so the character reference is safe to substitute.
    text = text.replace("\r", "&#13;")
    return '<?xml version="1.0" encoding="UTF-8"?>' + text


def _stamp(row: dict[str, str], stamp: dict[str, str], *, keep_given: bool) -> None:
    """Set system fields; raw (server-side) writes may supply their own."""
    for key, value in stamp.items():
        if not keep_given or not row.get(key):
            row[key] = value


class Instance:
    """One emulated ServiceNow instance backed by SQLite."""

    def __init__(
        self,
        *,
        accounts: int = 0,
        seed: int = 7,
        as_of: date | None = None,
        db_path: str | None = None,
        faults: FaultSettings | None = None,
        admin_user: str = "admin",
        admin_password: str = "admin",
        integration_user: str = "integration",
        integration_password: str = "integration",
        acl_user: str = "acl_limited",
        acl_password: str = "acl_limited",
        restricted_user: str = "restricted",
        restricted_password: str = "restricted",
        client_id: str = "csm-sync",
        client_secret: str = "csm-sync-secret",
        token_lifetime_s: int = 1800,
        user_time_zones: dict[str, str] | None = None,
        clock: Callable[[], datetime] | None = None,
        progress: ProgressFn | None = None,
    ) -> None:
        self.faults = faults or FaultSettings()
        self._clock = clock or (lambda: datetime.now(UTC))
        self.admin_user, self.admin_password = admin_user, admin_password
        self.integration_user = integration_user
        self.integration_password = integration_password
        self.acl_user, self.acl_password = acl_user, acl_password
        self.restricted_user = restricted_user
        # Users live in UTC unless given a zone here (user name -> IANA zone).
        self.user_time_zones: dict[str, str] = dict(user_time_zones or {})
        self.restricted_password = restricted_password
        self.client_id, self.client_secret = client_id, client_secret
        users = [
            User(admin_user, admin_password, frozenset({"admin"})),
            User(integration_user, integration_password, frozenset({"rest_api"})),
            User(acl_user, acl_password, frozenset({"rest_api"})),
            User(restricted_user, restricted_password, frozenset()),
        ]
        self.auth = Authenticator(
            users,
            client_id=client_id,
            client_secret=client_secret,
            token_lifetime_s=token_lifetime_s,
            clock=lambda: self.now_dt().timestamp(),
        )
        self.rate_limiter = RateLimiter()
        self.store = Store(db_path)
        self.registry = Registry()
        self._sources: dict[str, str] = {}
        self._request_lock = threading.Lock()
        self.request_count = 0
        self.truth: dict[str, Any] = {}
        self.compiler = QueryCompiler(self.registry, self.source, self.now_naive)
        self._mutator: Mutator | None = None
        self._numbers: dict[str, int] = {}
        self.faults.bind_expire(self.expire_tokens)
        self.business_rules: dict[tuple[str, str], Callable[[str], str]] = {}
        self._open(accounts=accounts, seed=seed, as_of=as_of, progress=progress)

    # --- clock ---------------------------------------------------------------

    def now_dt(self) -> datetime:
        """Server time (UTC, aware), shifted by the clock-skew fault."""
        return self._clock() + timedelta(seconds=self.faults.clock_skew_seconds)

    def now_naive(self) -> datetime:
        return self.now_dt().astimezone(UTC).replace(tzinfo=None, microsecond=0)

    def now_str(self) -> str:
        return self.now_naive().strftime("%Y-%m-%d %H:%M:%S")

    def count_request(self) -> None:
        with self._request_lock:
            self.request_count += 1

    def expire_tokens(self) -> None:
        """Invalidate every OAuth access token now (C11)."""
        self.auth.expire_tokens()

    # --- startup ---------------------------------------------------------------

    def _open(
        self,
        *,
        accounts: int,
        seed: int,
        as_of: date | None,
        progress: ProgressFn | None,
    ) -> None:
        self.reused = "sys_db_object" in self.store.table_names()
        if self.reused:
            LOG.info("Reusing emulator database %r", self.store.path)
            self._load_registry()
            self._add_missing_tables()
            self._add_extra_indexes()
            self._load_state()
            return
        self._create_from_schema()
        if accounts > 0:
            self._generate(accounts=accounts, seed=seed, as_of=as_of, progress=progress)
        self._save_state({"seed": seed, "accounts": accounts, "truth": self.truth})

    def _create_from_schema(self) -> None:
        schema = registry_from_schema()
        for name in schema.tables:
            self._create_sql_table(schema, name)
        for table, rows in metadata.metadata_rows(schema).items():
            self._load_rows(schema, table, rows)
        self.store.execute(
            f"CREATE TABLE IF NOT EXISTS {META_STATE_TABLE} (key TEXT PRIMARY KEY,"
            " value TEXT)"
        )
        self._load_registry()

    def _create_sql_table(self, registry: Registry, name: str) -> None:
        fields = registry.fields(name)
        indexed = [f.name for f in fields.values() if f.is_reference]
        self.store.create_table(name, list(fields), indexed)
        for columns in EXTRA_INDEXES.get(name, ()):
            self.store.add_composite_index(name, columns)

    def _add_missing_tables(self) -> None:
        """Schema tables a database made by an older emulator lacks (e.g.
        ``sys_audit_delete``): created empty, with their dictionary rows."""
        schema = registry_from_schema()
        missing = [n for n in schema.tables if not self.registry.has_table(n)]
        if not missing:
            return
        LOG.info("Adding tables missing from the reused database: %s", missing)
        for name in missing:
            self._create_sql_table(schema, name)
        for table, rows in metadata.metadata_rows(schema).items():
            rows = [r for r in rows if r["name"] in missing]
            self._load_rows(self.registry, table, rows)
        self._load_registry()

    def _add_extra_indexes(self) -> None:
        """Indexes a database made by an older emulator may lack (cheap if there)."""
        for name, indexes in EXTRA_INDEXES.items():
            if self.registry.has_table(name):
                for columns in indexes:
                    self.store.add_composite_index(name, columns)

    def _load_registry(self) -> None:
        def rows(table: str) -> list[dict[str, str]]:
            return self._select_all(table)

        fresh = metadata.registry_from_rows(
            rows("sys_db_object"), rows("sys_dictionary"), rows("sys_choice")
        )
        self.registry.tables = fresh.tables
        self.registry.choices = fresh.choices
        self.registry._cache.clear()
        self._sources.clear()

    def _select_all(self, table: str) -> list[dict[str, str]]:
        return self.store.query_dicts(f"SELECT * FROM {quote_ident(table)}")

    def _save_state(self, state: dict[str, Any]) -> None:
        for key, value in state.items():
            self.store.execute(
                f"INSERT OR REPLACE INTO {META_STATE_TABLE} VALUES (?, ?)",
                (key, json.dumps(value, default=str)),
            )

    def _load_state(self) -> None:
        try:
            rows = self.store.query(f"SELECT key, value FROM {META_STATE_TABLE}")
        except Exception:
            rows = []
        state = {k: json.loads(v) for k, v in rows}
        self.truth = state.get("truth") or {}

    def _generate(
        self,
        *,
        accounts: int,
        seed: int,
        as_of: date | None,
        progress: ProgressFn | None,
    ) -> None:
        from connector.emulator.dataset import DatasetGenerator

        # History ends with yesterday by default: rows stamped later today would lie
        # in the server's future, which a real instance never serves.
        default_as_of = self.now_naive().date() - timedelta(days=1)
        generator = DatasetGenerator(
            seed=seed, accounts=accounts, as_of=as_of or default_as_of
        )
        for table, rows in generator.batches():
            self._load_rows(self.registry, table, rows)
            if progress:
                progress(table, len(rows))
        self.truth = generator.truth

    def _load_rows(
        self, registry: Registry, table: str, rows: list[dict[str, str]]
    ) -> None:
        """Bulk insert rows exactly as given (dataset and metadata loading)."""
        if not rows:
            return
        columns = list(registry.fields(table))
        unknown = set().union(*(r.keys() for r in rows)) - set(columns)
        if unknown:
            LOG.warning("Ignoring unknown fields for %r: %s", table, sorted(unknown))
        has_class = "sys_class_name" in columns
        defaults = {"sys_mod_count": "0"}

        def values(row: dict[str, str]) -> tuple[str, ...]:
            out = [to_value(row.get(c, defaults.get(c, ""))) for c in columns]
            if has_class and not row.get("sys_class_name"):
                out[columns.index("sys_class_name")] = table
            return tuple(out)

        col_sql = ", ".join(quote_ident(c) for c in columns)
        marks = ", ".join("?" * len(columns))
        self.store.executemany(
            f"INSERT INTO {quote_ident(table)} ({col_sql}) VALUES ({marks})",
            (values(r) for r in rows),
        )

    def load_rows(self, table: str, rows: list[dict[str, str]]) -> None:
        """Bulk-load rows verbatim (tests: hand-made scenarios at scale)."""
        self._require_table(table)
        self._load_rows(self.registry, table, rows)
        self._numbers.clear()

    def close(self) -> None:
        self.stop_mutator()
        self.store.close()

    # --- reading ---------------------------------------------------------------

    def _require_table(self, table: str) -> None:
        if not self.registry.has_table(table):
            raise ApiError(400, f"Invalid table {table}")

    def source(self, table: str) -> str:
        """FROM-clause SQL for a table, its descendants' rows projected onto it."""
        found = self._sources.get(table)
        if found is None:
            tables = [table, *self.registry.descendants(table)]
            if len(tables) == 1:
                found = quote_ident(table)
            else:
                cols = ", ".join(quote_ident(c) for c in self.registry.fields(table))
                selects = [f"SELECT {cols} FROM {quote_ident(t)}" for t in tables]
                found = "(" + " UNION ALL ".join(selects) + ")"
            self._sources[table] = found
        return found

    def tz_for(self, user: str | None) -> ZoneInfo | None:
        """The session time zone of ``user`` (None = UTC)."""
        name = self.user_time_zones.get(user or "")
        return ZoneInfo(name) if name else None

    def compile(self, table: str, query: str, user: str | None = None) -> Compiled:
        """Compile ``sysparm_query``; gs.* helpers use ``user``'s calendar."""
        if user is None:
            return self.compiler.compile(table, query)
        compiler = QueryCompiler(
            self.registry,
            self.source,
            self.now_naive,
            self.tz_for(user),
            user_id=self.user_sys_id(user),
        )
        return compiler.compile(table, query)

    @staticmethod
    def user_sys_id(user: str) -> str:
        """The (stable) sys_id of a built-in account, for ``gs.getUserID()``."""
        return stable_sys_id("sys_user", user)

    def select(
        self,
        table: str,
        compiled: Compiled,
        *,
        columns: Iterable[str] | None = None,
        walks: Iterable[str] = (),
        limit: int | None = None,
        offset: int = 0,
        shuffle: int | None = None,
    ) -> list[dict[str, str]]:
        """Rows matching a compiled query, with dot-walked values as flat keys.

        ``shuffle`` (a salt) breaks ties in a new order each time, like an
        instance whose database returns ties (or unordered rows) at random.
        """
        names = (
            list(columns) if columns is not None else list(self.registry.fields(table))
        )
        exprs = [f"t.{quote_ident(n)}" for n in names]
        for path in walks:
            resolved = self.compiler.resolve(table, path)
            if resolved is not None:
                names.append(path)
                exprs.append(resolved[0])
        order = compiled.order_by or ["t.sys_id"]
        if shuffle is not None:
            order = [*compiled.order_by, f"emu_shuffle(t.sys_id, {int(shuffle)})"]
        sql = (
            f"SELECT {', '.join(exprs)} FROM {self.source(table)} AS t"
            f" WHERE {compiled.where} ORDER BY {', '.join(order)}"
        )
        params = list(compiled.params)
        if limit is not None:
            sql += " LIMIT ? OFFSET ?"
            params += [limit, offset]
        rows = self.store.query(sql, params)
        return [dict(zip(names, row, strict=True)) for row in rows]

    def count_matching(self, table: str, compiled: Compiled) -> int:
        sql = f"SELECT COUNT(*) FROM {self.source(table)} AS t WHERE {compiled.where}"
        return int(self.store.query(sql, compiled.params)[0][0])

    def rows(self, table: str) -> list[dict[str, str]]:
        """Every stored row of a table (descendants projected), raw strings."""
        self._require_table(table)
        return self.select(table, self.compile(table, ""))

    def count(self, table: str) -> int:
        self._require_table(table)
        return self.count_matching(table, self.compile(table, ""))

    def get(self, table: str, sys_id: str) -> dict[str, str] | None:
        """One record projected onto ``table``'s fields, or None."""
        self._require_table(table)
        compiled = Compiled("t.sys_id = ?", [sys_id], [], [])
        found = self.select(table, compiled, limit=1)
        return found[0] if found else None

    def locate(self, table: str, sys_id: str) -> str | None:
        """The concrete table storing ``sys_id`` (the table or a descendant)."""
        for name in [table, *self.registry.descendants(table)]:
            sql = f"SELECT 1 FROM {quote_ident(name)} WHERE sys_id = ? LIMIT 1"
            if self.store.query(sql, (sys_id,)):
                return name
        return None

    def check_read(self, user: str, table: str) -> None:
        """Table read ACL: the ``restricted`` user may not read platform tables."""
        if user == self.restricted_user and table in RESTRICTED_TABLES:
            raise ApiError(
                403, "User Not Authorized", f"ACL restricts read access to {table}"
            )

    def is_hidden(self, user: str, row: dict[str, str], table: str) -> bool:
        """Row ACLs: ~30% of cases (by sys_id) for ``acl_limited``; every
        dictionary and choice row for ``restricted`` (200 with no rows, §11.2)."""
        if user == self.restricted_user:
            return table in ("sys_dictionary", "sys_choice")
        if user != self.acl_user:
            return False
        klass = row.get("sys_class_name") or table
        if klass != CASE_TABLE:
            return False
        digest = hashlib.md5(row.get("sys_id", "").encode()).digest()
        return digest[0] % 10 < 3

    # --- writing ---------------------------------------------------------------

    def clean(
        self, table: str, values: dict[str, Any], *, raw: bool = False
    ) -> dict[str, str]:
        """Drop unknown fields, ``sys_*`` fields and values outside a choice list."""
        fields = self.registry.fields(table)
        out: dict[str, str] = {}
        for name, value in values.items():
            if name not in fields or (name.startswith("sys_") and not raw):
                continue
            text = to_value(value)
            choices = self.registry.choice_list(table, name)
            if choices and text and text not in choices and not raw:
                LOG.debug("Dropping value %r outside the choices of %r", text, name)
                continue
            out[name] = text
        return out

    def insert(
        self,
        table: str,
        values: dict[str, Any],
        *,
        user: str = "system",
        raw: bool = False,
    ) -> dict[str, str]:
        """Create a record like a Table API POST would; returns the stored row."""
        self._require_table(table)
        with self.store.write_lock:
            row = self.clean(table, values, raw=raw)
            sys_id = to_value(values.get("sys_id", "")) or new_sys_id()
            now = self.now_str()
            stamp = {
                "sys_id": sys_id,
                "sys_created_on": now,
                "sys_created_by": user,
                "sys_updated_on": now,
                "sys_updated_by": user,
                "sys_mod_count": "0",
            }
            _stamp(row, stamp, keep_given=raw)
            fields = self.registry.fields(table)
            if "sys_class_name" in fields and not row.get("sys_class_name"):
                row["sys_class_name"] = table
            if (
                "number" in fields
                and not row.get("number")
                and table in NUMBER_PREFIXES
            ):
                row["number"] = self._next_number(table)
            if not raw:
                self._before_insert(table, row, user)
            sys_id = row["sys_id"]
            self._insert_row(table, row)
        return self.get(table, sys_id) or row

    def _insert_row(self, table: str, row: dict[str, str]) -> None:
        columns = list(row)
        col_sql = ", ".join(quote_ident(c) for c in columns)
        marks = ", ".join("?" * len(columns))
        try:
            self.store.execute(
                f"INSERT INTO {quote_ident(table)} ({col_sql}) VALUES ({marks})",
                [row[c] for c in columns],
            )
        except Exception as exc:
            if "UNIQUE" in str(exc):
                raise ApiError(
                    403, "Operation Failed", "Error during insert of " + table
                ) from exc
            raise

    def _next_number(self, table: str) -> str:
        """Next ``number`` of a table (highest stored + 1; cached per table)."""
        prefix = NUMBER_PREFIXES[table]
        top = self._numbers.get(table)
        if top is None:
            sql = (
                f"SELECT MAX(CAST(substr(number, {len(prefix) + 1}) AS INTEGER))"
                f" FROM {self.source(table)} WHERE number LIKE ?"
            )
            top = int(self.store.query(sql, (prefix + "%",))[0][0] or 1000)
        self._numbers[table] = top + 1
        return f"{prefix}{top + 1:07d}"

    def update(
        self,
        table: str,
        sys_id: str,
        values: dict[str, Any],
        *,
        user: str = "system",
        raw: bool = False,
    ) -> dict[str, str] | None:
        """Partial update (PUT == PATCH); None when the record does not exist."""
        self._require_table(table)
        with self.store.write_lock:
            concrete = self.locate(table, sys_id)
            if concrete is None:
                return None
            changes = self.clean(table, values, raw=raw)
            current = self.get(concrete, sys_id) or {}
            changes.pop("sys_id", None)
            if not raw:
                self._before_update(concrete, current, changes)
                self.apply_field_rules(concrete, changes)
            mod = int(current.get("sys_mod_count") or 0) + 1
            stamp = {
                "sys_updated_on": self.now_str(),
                "sys_updated_by": user,
                "sys_mod_count": str(mod),
            }
            _stamp(changes, stamp, keep_given=raw)
            sets = ", ".join(f"{quote_ident(c)} = ?" for c in changes)
            self.store.execute(
                f"UPDATE {quote_ident(concrete)} SET {sets} WHERE sys_id = ?",
                [*changes.values(), sys_id],
            )
            if not raw and concrete in AUDITED_TABLES:
                self._audit_changes(concrete, current, changes, user)
        return self.get(table, sys_id)

    def _audit_changes(
        self,
        table: str,
        before: dict[str, str],
        changes: dict[str, str],
        user: str,
    ) -> None:
        """One ``sys_audit`` row per changed field of an audited table."""
        for name, new in changes.items():
            if name.startswith("sys_") or before.get(name, "") == new:
                continue
            audit = {
                "tablename": table,
                "documentkey": before["sys_id"],
                "fieldname": name,
                "oldvalue": before.get(name, ""),
                "newvalue": new,
                "user": user,
                "reason": "",
                "record_checkpoint": changes["sys_mod_count"],
            }
            self.insert("sys_audit", audit, user=user, raw=True)

    def delete(self, table: str, sys_id: str, *, user: str = "system") -> bool:
        """Delete a record and write its ``sys_audit`` DELETED row (KB0634666);
        a record of an audited table is also kept in ``sys_audit_delete``."""
        self._require_table(table)
        with self.store.write_lock:
            concrete = self.locate(table, sys_id)
            if concrete is None:
                return False
            current = self.get(concrete, sys_id) or {}
            self._before_delete(concrete, current)
            self.store.execute(
                f"DELETE FROM {quote_ident(concrete)} WHERE sys_id = ?", (sys_id,)
            )
            self.insert(
                "sys_audit",
                {
                    "tablename": concrete,
                    "documentkey": sys_id,
                    "fieldname": "DELETED",
                    "oldvalue": "DELETED",
                    "newvalue": "DELETED",
                    "user": user,
                    "reason": "",
                    "record_checkpoint": "-1",
                },
                user=user,
                raw=True,
            )
            if concrete in DELETE_AUDITED_TABLES:
                self._keep_deleted(concrete, current, user)
        return True

    def _keep_deleted(self, table: str, record: dict[str, str], user: str) -> None:
        """The ``sys_audit_delete`` row of a deleted record of an audited table."""
        display = self.registry.display_field(table)
        kept = {
            "tablename": table,
            "documentkey": record.get("sys_id", ""),
            "display_value": record.get(display, "") if display else "",
            "payload": record_payload(table, record),
        }
        self.insert(DELETED_RECORDS_TABLE, kept, user=user, raw=True)

    # --- dictionary side effects -------------------------------------------------

    def _before_insert(self, table: str, row: dict[str, str], user: str) -> None:
        if table == "sys_dictionary":
            self._define_column(row)
        elif table == "sys_db_object":
            self._define_table(row, user)
        elif table == "sys_choice" and row.get("element") and row.get("value"):
            row.setdefault("language", "en")
            row.setdefault("inactive", "false")
            self.registry.add_choice(
                row.get("name", ""), row["element"], row["value"], row.get("label", "")
            )

    def _before_update(
        self, table: str, current: dict[str, str], changes: dict[str, str]
    ) -> None:
        if table == "sys_dictionary" and current.get("element"):
            meta = self.registry.field(current["name"], current["element"])
            if meta is not None and "column_label" in changes:
                meta.label = changes["column_label"]
            for frozen in ("name", "element"):
                changes.pop(frozen, None)  # a column cannot be renamed

    def _before_delete(self, table: str, current: dict[str, str]) -> None:
        if table == "sys_dictionary" and current.get("element"):
            self._drop_column(current["name"], current["element"])
        elif table == "sys_choice":
            found = self.registry.choices.get(
                (current.get("name", ""), current.get("element", ""))
            )
            if found:
                found.pop(current.get("value", ""), None)

    def _define_column(self, row: dict[str, str]) -> None:
        table = row.get("name", "")
        element = normalise_name(row.get("element", ""))
        if not self.registry.has_table(table):
            raise ApiError(400, f"Invalid table {table}")
        if not element:
            raise ApiError(403, "Operation Failed", "Column name is required")
        if element in self.registry.fields(table):
            raise ApiError(
                403, "Operation Failed", f"Column {table}.{element} already exists"
            )
        row["element"] = element
        row.setdefault("internal_type", "string")
        row.setdefault("active", "true")
        row["column_label"] = row.get("column_label") or element.replace("_", " ")
        meta = FieldMeta(
            name=element,
            table=table,
            internal_type=row["internal_type"] or "string",
            reference=row.get("reference", ""),
            max_length=int(row.get("max_length") or 40),
            label=row["column_label"],
            display=row.get("display") == "true",
        )
        for name in [table, *self.registry.descendants(table)]:
            self.store.add_column(name, element)
            if meta.is_reference:
                self.store.add_index(name, element)
        self.registry.add_field(meta)
        self._sources.clear()

    def _drop_column(self, table: str, element: str) -> None:
        if table not in self.registry.tables:
            return
        self.registry.remove_field(table, element)
        self._sources.clear()
        for name in [table, *self.registry.descendants(table)]:
            if element in self.store.columns(name):
                self.store.drop_column(name, element)

    def _define_table(self, row: dict[str, str], user: str) -> None:
        name = normalise_name(row.get("name", ""))
        if not name or self.registry.has_table(name):
            raise ApiError(403, "Operation Failed", f"Table {name!r} cannot be created")
        parent = self._resolve_parent(row.get("super_class", ""))
        row["name"] = name
        row["sys_id"] = metadata.table_row(TableMeta(name, ""))["sys_id"]
        row["label"] = row.get("label") or name
        row["super_class"] = (
            metadata.table_row(TableMeta(parent, ""))["sys_id"] if parent else ""
        )
        meta = TableMeta(name, row["label"], parent, user)
        if parent is None:
            for fmeta in schema_system_fields(name):
                meta.fields[fmeta.name] = fmeta
        self.registry.add_table(meta)
        self._sources.clear()
        self._create_sql_table(self.registry, name)
        rows = [metadata.collection_row(meta)]
        rows += [metadata.field_row(f, False) for f in meta.fields.values()]
        for dict_row in rows:
            self.insert("sys_dictionary", dict_row, user=user, raw=True)

    def _resolve_parent(self, value: str) -> str | None:
        if not value:
            return None
        if self.registry.has_table(value):
            return value
        for meta in self.registry.tables.values():
            if metadata.table_row(meta)["sys_id"] == value:
                return meta.name
        raise ApiError(400, f"Invalid table {value}")

    # --- permissions ---------------------------------------------------------------

    def check_write(
        self, user: User, table: str, op: str, values: dict[str, str]
    ) -> None:
        """Table-level write ACLs of the three built-in accounts (§8.3)."""
        if user.is_admin:
            return
        verb = {"insert": "Insert", "update": "Update", "delete": "Delete"}[op]
        denied = ApiError(
            403,
            "Operation Failed",
            f"ACL Exception {verb} Failed due to security constraints",
        )
        if table in ("sys_dictionary", "sys_db_object", "sys_choice"):
            owner = self._owner_of(values.get("name", ""))
            if (
                op == "insert"
                and table == "sys_db_object"
                and user.name == (self.integration_user)
                and normalise_name(values.get("name", "")).startswith("u_")
            ):
                return
            if owner != user.name:
                raise ApiError(
                    403,
                    "Operation Failed",
                    "Insufficient rights: requires role 'admin' or"
                    " 'personalize_dictionary'",
                )
            return
        if user.name != self.integration_user:
            raise denied
        if self._owner_of(table) == user.name:
            return
        u_only = all(name.startswith("u_") for name in values)
        if table == "customer_account" and op == "update" and u_only:
            return
        raise denied

    def _owner_of(self, table: str) -> str | None:
        meta = self.registry.tables.get(table)
        return meta.created_by if meta else None

    # --- write-back test hooks: business rules and read-only fields ------------
    # (added for the write-back role: C09 "200 but not stored as sent")

    def add_business_rule(
        self, table: str, field: str, value_fn: Callable[[str], str]
    ) -> None:
        """A before-update rule: ``field`` is stored as ``value_fn(sent)``.

        Like a real business rule it runs after ACLs, on every API update of
        ``table`` (or a table extending it) that carries ``field``.
        """
        self.business_rules[(table, field)] = value_fn

    def apply_field_rules(self, table: str, changes: dict[str, str]) -> None:
        """Drop writes to read-only fields, then run the business rules.

        A field whose sys_dictionary row says ``read_only=true`` keeps its value
        and the request still answers 200 (field-level refusal is silent, §6).
        """
        chain = self.registry.ancestry(table)
        for name in self._read_only_fields(chain):
            if not name.startswith("sys_"):
                changes.pop(name, None)
        for owner in chain:
            for (rule_table, field), value_fn in self.business_rules.items():
                if rule_table == owner and field in changes:
                    changes[field] = value_fn(changes[field])

    def _read_only_fields(self, chain: list[str]) -> set[str]:
        if not chain:
            return set()
        marks = ", ".join("?" * len(chain))
        sql = (
            "SELECT element FROM sys_dictionary WHERE read_only = 'true'"
            f" AND name IN ({marks})"
        )
        return {row[0] for row in self.store.query(sql, chain)}

    # --- mutator ---------------------------------------------------------------------

    def start_mutator(
        self,
        rate_per_second: float,
        tables: list[str] | None = None,
        seed: int = 0,
        delete_ratio: float = 0.1,
        insert_ratio: float = 0.0,
    ) -> Mutator:
        """Update, delete (and insert) random records in the background (C01)."""
        from connector.emulator.mutator import Mutator

        self.stop_mutator()
        self._mutator = Mutator(
            self,
            rate=rate_per_second,
            tables=tables or [CASE_TABLE],
            seed=seed,
            delete_ratio=delete_ratio,
            insert_ratio=insert_ratio,
        )
        self._mutator.start()
        return self._mutator

    def stop_mutator(self) -> None:
        if self._mutator is not None:
            self._mutator.stop()
            self._mutator = None
