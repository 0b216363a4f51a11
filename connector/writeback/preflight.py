"""Check that the instance can take the write-back fields before anything is sent.

A PATCH naming a field that does not exist (or is read-only) still answers 200
(case C09). Without this check, a run before ``install-fields`` would send an
update to every account, write nothing and report every field as failed.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence

from connector.errors import PermissionDeniedError, WriteBackError
from connector.writeback import instance as sn
from connector.writeback.fields import FieldSpec
from connector.writeback.verify import FIX_MISSING, FIX_READ_ONLY, RunProblem

log = logging.getLogger(__name__)

MISSING = "missing"
READ_ONLY = "read_only"


class FieldsNotReadyError(WriteBackError):
    """sys_dictionary lacks write-back fields or marks them read-only (exit 1)."""

    def __init__(self, table: str, unusable: dict[str, str]) -> None:
        self.table = table
        self.missing = [f for f, why in unusable.items() if why == MISSING]
        self.read_only = [f for f, why in unusable.items() if why == READ_ONLY]
        sentences = [
            *_missing_sentence(table, self.missing),
            *_read_only_sentence(table, self.read_only),
            "Nothing was sent.",
        ]
        super().__init__(" ".join(sentences))

    def problems(self) -> list[RunProblem]:
        """One audit entry per unusable field, with its own fix."""
        fixes = {
            **dict.fromkeys(self.missing, FIX_MISSING),
            **dict.fromkeys(self.read_only, FIX_READ_ONLY),
        }
        return [
            RunProblem(self.table, name, fix.format(table=self.table, field=name))
            for name, fix in fixes.items()
        ]


def _missing_sentence(table: str, missing: Sequence[str]) -> list[str]:
    if not missing:
        return []
    return [
        f"The write-back {_subject(missing)} not installed on "
        f"{table!r}: run `csm-sync install-fields` first (or correct the "
        "names under writeback.fields), then run write-back again."
    ]


def _read_only_sentence(table: str, read_only: Sequence[str]) -> list[str]:
    if not read_only:
        return []
    return [
        f"The write-back {_subject(read_only)} read-only on {table!r} "
        "(sys_dictionary read_only=true): clear the flag or remove the field from "
        "writeback.fields."
    ]


def _subject(fields: Sequence[str]) -> str:
    """``field 'a' is`` or ``fields 'a', 'b' are``."""
    names = ", ".join(repr(f) for f in fields)
    return f"field {names} is" if len(fields) == 1 else f"fields {names} are"


def unusable_fields(
    client: sn.Client, table: str, specs: list[FieldSpec]
) -> dict[str, str]:
    """Fields sys_dictionary says are missing or read-only (empty if unreadable).

    Non-admins often read zero dictionary rows (TABLE_API §11.2); then the
    read-back check after each write is the only evidence, which is enough.
    """
    try:
        known = client.dictionary(table)
    except PermissionDeniedError as exc:
        log.info(
            "Cannot read sys_dictionary for %r (%s); relying on read-back", table, exc
        )
        return {}
    if not known:
        return {}

    unusable = {}
    for spec in specs:
        info = known.get(spec.element)
        if info is None:
            unusable[spec.element] = MISSING
        elif info.read_only:
            unusable[spec.element] = READ_ONLY
    return unusable


def ensure_fields_ready(client: sn.Client, table: str, specs: list[FieldSpec]) -> None:
    """Raise FieldsNotReadyError when any configured field cannot be written."""
    unusable = unusable_fields(client, table, specs)
    if unusable:
        raise FieldsNotReadyError(table, unusable)
