"""Judge each write by what the instance answered, never by the status code.

A PATCH to a field that does not exist, is read-only or has no write ACL still
answers 200 (case C09); a business rule may store another value. So every sent
field is looked up in the returned record and compared after normalising: a
field missing or different is a failed write, reported with its likely cause.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

from connector.writeback.diff import FieldWrite
from connector.writeback.normalise import same_value

Outcome = Literal["ok", "failed"]

FIX_MISSING = (
    "field does not exist or is not writable: run `csm-sync install-fields` "
    "(and check the field is spelled as on the instance and the integration "
    "user may write it)"
)
FIX_CHANGED = (
    "a business rule or ACL changed the value: check the business rules and "
    "write ACLs on {table}.{field}, or exclude the field from writeback.fields"
)
FIX_CHOICE = (
    "the instance dropped a value outside the field's choice list: run "
    "`csm-sync install-fields` to add the missing sys_choice rows of {table}.{field}"
)
FIX_READ_ONLY = (
    "the field is read-only (sys_dictionary read_only=true): clear the flag "
    "on {table}.{field} or exclude it from writeback.fields"
)


@dataclass(frozen=True)
class FieldResult:
    """The verdict on one field write."""

    write: FieldWrite
    outcome: Outcome
    returned: str | None
    message: str = ""

    @property
    def ok(self) -> bool:
        return self.outcome == "ok"


@dataclass(frozen=True)
class RunProblem:
    """A failure that belongs to no single account write (a field, history)."""

    table: str
    field: str
    message: str

    def __str__(self) -> str:
        where = f"{self.table}.{self.field}" if self.field else self.table
        return f"{where}: {self.message}"


def verify_record(
    writes: list[FieldWrite],
    record: dict[str, object],
    *,
    read_only: frozenset[str] = frozenset(),
) -> list[FieldResult]:
    """Compare each sent field with the record the instance returned."""
    return [_verify_field(w, record, read_only) for w in writes]


def _verify_field(
    write: FieldWrite, record: dict[str, object], read_only: frozenset[str]
) -> FieldResult:
    element, table = write.spec.element, write.spec.table
    if element not in record:
        message = f"{element} missing from the response: {FIX_MISSING}"
        return FieldResult(write, "failed", None, message)

    returned = _as_text(record[element])
    if same_value(write.new, returned, write.spec.internal_type):
        return FieldResult(write, "ok", returned)

    if element in read_only:
        fix = FIX_READ_ONLY
    elif write.spec.choices and not returned.strip():
        fix = FIX_CHOICE  # glide.rest.choice.allow_non_existing_value=false (§6)
    else:
        fix = FIX_CHANGED
    message = (
        f"{element} stored as {returned!r} instead of {write.new!r}: "
        + fix.format(table=table, field=element)
    )
    return FieldResult(write, "failed", returned, message)


def _as_text(value: object) -> str:
    if isinstance(value, dict):
        # display_value=all or a reference link object; compare the raw value.
        value = value.get("value", "")
    return "" if value is None else str(value)


def failed_request(writes: list[FieldWrite], reason: str) -> list[FieldResult]:
    """Every field of a request the instance refused or never serviced."""
    return [FieldResult(w, "failed", None, reason) for w in writes]
