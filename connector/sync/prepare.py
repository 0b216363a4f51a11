"""Get mappings ready to run: validated against the instance, choice labels loaded.

Done by ``csm-sync check`` and before every sync: a mapping that names a field
the instance does not have would otherwise run a query the instance silently
widens to the whole table (C09).
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from typing import Any

from connector.errors import InvalidTableError, MappingError, Problem
from connector.mapping.dictionary import check_against_dictionary
from connector.mapping.model import Mapping
from connector.mapping.rows import RowMapper
from connector.servicenow.client import ServiceNowClient
from connector.store.models import CANONICAL_MODELS, SyncedRecord

log = logging.getLogger(__name__)

AUDIT_TABLE = "sys_audit"


@dataclass
class PreparedMapping:
    """A mapping checked against the instance, with its row mapper."""

    mapping: Mapping
    model: type[SyncedRecord]
    mapper: RowMapper
    fields: list[str]
    warned_choices: set[tuple[str, str]] = field(default_factory=set)
    # False once the store is known to hold no quarantined row of this mapping,
    # which spares every page a DELETE (set by open_session, True when unsure).
    may_have_quarantine: bool = True

    @property
    def name(self) -> str:
        return self.mapping.name


def dictionary_lookup(client: ServiceNowClient):  # type: ignore[no-untyped-def]
    """``table -> {element: FieldInfo}``; an unknown table gives an empty mapping."""

    def lookup(table: str) -> dict[str, Any]:
        try:
            return client.dictionary(table)
        except InvalidTableError:
            return {}

    return lookup


def check_mappings(client: ServiceNowClient, mappings: list[Mapping]) -> None:
    """Check every mapping against the instance's dictionary; list every problem.

    Raises:
        MappingError: some mapping names a table or field the instance lacks.
    """
    prefetch(client, mappings)
    lookup = dictionary_lookup(client)
    problems: list[Problem] = []
    for mapping in mappings:
        problems += check_against_dictionary(mapping, lookup)
    if problems:
        raise MappingError(problems)


def prepare(client: ServiceNowClient, mappings: list[Mapping]) -> list[PreparedMapping]:
    """Check the mappings, then load the choice labels each one asks for.

    The client's dictionary is read in bulk first (a few requests in all rather
    than a few per table); with a snapshot adopted it is not read at all.
    """
    check_mappings(client, mappings)
    return [
        PreparedMapping(
            mapping=m,
            model=CANONICAL_MODELS[m.target],
            mapper=RowMapper(m, labels=load_labels(client, m)),
            fields=m.source_fields(),
        )
        for m in mappings
    ]


def prefetch(client: ServiceNowClient, mappings: list[Mapping]) -> None:
    """Read the dictionary and choice lists the mappings need, in bulk.

    Dot-walked references are looked up later one table at a time; sys_audit
    is included because every incremental pass pages it (delete detection).
    """
    tables = [*dict.fromkeys(m.source for m in mappings), AUDIT_TABLE]
    labels: dict[str, list[str]] = {}
    for mapping in mappings:
        wanted = [spec.field for spec in mapping.fields.values() if spec.label]
        if wanted:
            labels.setdefault(mapping.source, []).extend(wanted)
    client.prefetch_metadata(tables, labels)


def load_labels(
    client: ServiceNowClient, mapping: Mapping
) -> dict[str, dict[str, str]]:
    """Column → {code: label} for the mapping's ``label: true`` choice fields.

    Labels are merged from the root table down to the source table, so a code
    defined only on the parent (``task``) still gets a label and a child's own
    choice list wins where both define a code (C08).
    """
    labels: dict[str, dict[str, str]] = {}
    chain = list(reversed(client.table_chain(mapping.source)))
    for column, spec in mapping.fields.items():
        if not spec.label:
            continue
        merged: dict[str, str] = {}
        for owner in chain:
            merged.update(client.choices(owner, spec.field))
        labels[column] = merged
    return labels
