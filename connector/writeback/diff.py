"""Decide what to send: desired values against what the instance is known to hold.

"Known to hold" is the last confirmed value in ``writeback_state`` (and the value
the instance returned for it, so a sanitising rule that rewrites text on every
write does not cause a write on every run), or, for an account never written,
the value read from the instance itself.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from connector.writeback.fields import FieldSpec
from connector.writeback.models import WritebackState
from connector.writeback.normalise import normalise, same_value

# Written only together with a real change: a new timestamp alone is no news.
COMPANION_KEYS = frozenset({"updated"})


@dataclass(frozen=True)
class FieldWrite:
    """One field of one account that differs from what the instance holds."""

    account: str
    spec: FieldSpec
    old: str
    new: str


@dataclass
class AccountDiff:
    """The fields of one account to send (empty when nothing changed)."""

    account: str
    writes: list[FieldWrite] = field(default_factory=list)
    # Fields whose instance value already equals the desired one (first run):
    # field -> (normalised value, raw value as read).
    confirmed: dict[str, tuple[str, str]] = field(default_factory=dict)

    @property
    def body(self) -> dict[str, str]:
        return {w.spec.element: w.new for w in self.writes}


@dataclass(frozen=True)
class Known:
    """What the instance holds for one field, as far as csm-sync knows."""

    value: str
    returned: str = ""
    from_state: bool = False

    def matches(self, desired: str, internal_type: str) -> bool:
        if same_value(desired, self.value, internal_type):
            return True
        return bool(self.returned) and same_value(desired, self.returned, internal_type)


def known_from_state(rows: list[WritebackState]) -> dict[tuple[str, str], Known]:
    """Index confirmed state rows by (account, field)."""
    return {(r.account, r.field): Known(r.value, r.returned, True) for r in rows}


def known_from_instance(
    records: dict[str, dict[str, str]], specs: list[FieldSpec]
) -> dict[tuple[str, str], Known]:
    """Index instance reads by (account, field); absent fields stay unknown."""
    known = {}
    for account, record in records.items():
        for spec in specs:
            if spec.element in record:
                raw = record[spec.element]
                known[(account, spec.element)] = Known(raw, raw)
    return known


def diff_account(
    account: str,
    desired: dict[str, str],
    specs: list[FieldSpec],
    known: dict[tuple[str, str], Known],
) -> AccountDiff:
    """The writes one account needs; companions ride along with real changes."""
    result = AccountDiff(account)
    companions = []
    for spec in specs:
        wanted = desired[spec.element]
        have = known.get((account, spec.element))
        if have is None and not wanted:
            # Nothing known and nothing to say: an empty write would only show
            # as an empty -> empty change (a field absent from the read).
            continue
        if have is not None and have.matches(wanted, spec.internal_type):
            if not have.from_state:
                normal = normalise(have.value, spec.internal_type)
                result.confirmed[spec.element] = (normal, have.returned)
            continue
        write = FieldWrite(account, spec, have.value if have else "", wanted)
        if spec.key in COMPANION_KEYS:
            companions.append(write)
        else:
            result.writes.append(write)
    if result.writes:
        result.writes.extend(companions)
    return result
