"""``csm-sync check``: config, mappings, store and instance, checked together."""

from __future__ import annotations

from dataclasses import dataclass, field

from connector.config import Settings
from connector.errors import InstanceError, PermissionDeniedError
from connector.mapping.loader import load_mappings
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
    store = open_store(settings.store.url)
    store.dispose()
    report.lines.append(f"store ready ({store.engine.dialect.name}, migrated to head)")
    return report


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
