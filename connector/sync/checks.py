"""``csm-sync check``: config, mappings, store and instance, checked together."""

from __future__ import annotations

from dataclasses import dataclass, field

from connector.config import Settings
from connector.errors import InstanceError, PermissionDeniedError
from connector.mapping.loader import load_mappings
from connector.mapping.model import Mapping
from connector.servicenow.client import ServiceNowClient
from connector.store.engine import open_store
from connector.sync.deletes import AUDIT_TABLE
from connector.sync.prepare import check_mappings


@dataclass
class CheckReport:
    """What ``check`` found: lines to print and warnings that do not fail it."""

    lines: list[str] = field(default_factory=list)
    warnings: list[str] = field(default_factory=list)


def run_check(settings: Settings) -> CheckReport:
    """Validate mappings (shape and instance dictionary), open and migrate the store.

    Raises:
        MappingError: listing every problem in every mapping file.
        InstanceError: the instance cannot be reached or refuses the user.
        StoreError: the store cannot be opened or migrated.
    """
    report = CheckReport()
    mappings = load_mappings(settings.mappings_dir, tables=settings.sync.tables)
    with ServiceNowClient(settings.instance) as client:
        check_mappings(client, mappings)
        report.lines.append(
            f"{len(mappings)} mappings match the instance's dictionary "
            f"({settings.instance.url}): " + ", ".join(m.name for m in mappings)
        )
        report.warnings += _audit_warnings(client)
        for mapping in mappings:
            report.warnings += _filter_canary(client, mapping)
            report.warnings += _acl_canary(client, mapping)
    store = open_store(settings.store.url)
    store.dispose()
    report.lines.append(f"store ready ({store.engine.dialect.name}, migrated to head)")
    return report


def _filter_canary(client: ServiceNowClient, mapping: Mapping) -> list[str]:
    """A filter that matches every row may have been dropped by the instance (C09)."""
    if not mapping.filter:
        return []
    counts = [
        client.get_page(
            mapping.source, query=query, fields=["sys_id"], limit=1, count=True
        ).total
        for query in (mapping.filter, "")
    ]
    if counts[0] is None or counts[0] != counts[1] or not counts[0]:
        return []
    return [
        f"{mapping.path}: filter {mapping.filter!r} matches all {counts[0]} rows of "
        f"{mapping.source!r}; if it should select fewer, the instance may be "
        "ignoring part of it (check operators and values)"
    ]


# Rows the ACL canary reads from each table (ids only).
ACL_PROBE_ROWS = 100


def _acl_canary(client: ServiceNowClient, mapping: Mapping) -> list[str]:
    """Rows counted but not returned on the first page are hidden by ACLs.

    ``sysparm_limit`` and ``X-Total-Count`` are applied before row ACLs, so a
    user who cannot read some rows gets short pages and an ``ok`` sync with a
    gap (TABLE_API §5.2). One page of ids shows it before a backfill does.
    """
    page = client.get_page(
        mapping.source,
        query=mapping.filter,
        fields=["sys_id"],
        limit=ACL_PROBE_ROWS,
        count=True,
    )
    expected = min(page.total or 0, ACL_PROBE_ROWS)
    hidden = expected - len(page.rows)
    if hidden <= 0:
        return []
    return [
        f"{mapping.path}: {hidden} of the first {expected} rows of "
        f"{mapping.source!r} are hidden from this user by access controls (ACLs); "
        "a sync stores only the rows it can read, and KPIs will miss the rest. "
        "Grant the integration user read access to every row of the table."
    ]


def _audit_warnings(client: ServiceNowClient) -> list[str]:
    """Delete detection needs sys_audit; say so loudly when it is closed (C13)."""
    try:
        client.get_page(
            AUDIT_TABLE, query="fieldname=DELETED", fields=["sys_id"], limit=1
        )
    except PermissionDeniedError:
        return [
            "the integration user cannot read sys_audit: deletes will only be "
            "found by the daily key reconciliation; grant read on sys_audit"
        ]
    except InstanceError as exc:
        return [f"could not read sys_audit ({exc}); deletes rely on reconciliation"]
    return []
