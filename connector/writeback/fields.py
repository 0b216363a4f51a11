"""What write-back writes: the account fields, the history table and their types.

The names come from ``settings.writeback.fields``; the type, label, length and
choice list of each logical field are fixed here because the KPI values they
carry are fixed. ``install-fields`` creates exactly these, the guard allows
exactly these.
"""

from __future__ import annotations

from dataclasses import dataclass

from connector.config import Settings

ACCOUNT_TABLE = "customer_account"
HISTORY_TABLE = "u_csm_health_snapshot"
HISTORY_LABEL = "CSM health snapshot"

BAND_CHOICES: tuple[tuple[str, str], ...] = (
    ("green", "Green"),
    ("yellow", "Yellow"),
    ("red", "Red"),
)


@dataclass(frozen=True)
class FieldSpec:
    """One column csm-sync owns: where it lives and how ServiceNow types it."""

    key: str
    table: str
    element: str
    internal_type: str
    label: str
    max_length: int = 40
    reference: str = ""
    choices: tuple[tuple[str, str], ...] = ()


@dataclass(frozen=True)
class _Logical:
    internal_type: str
    label: str
    max_length: int = 40
    choices: tuple[tuple[str, str], ...] = ()


# Logical write-back field → its ServiceNow type. Order is the form/list order.
ACCOUNT_FIELDS: dict[str, _Logical] = {
    "score": _Logical("integer", "Health score"),
    "band": _Logical("choice", "Health band", 40, BAND_CHOICES),
    "trend": _Logical("integer", "Health trend"),
    "nps": _Logical("integer", "NPS"),
    "reason": _Logical("string", "Health reason", 255),
    "updated": _Logical("glide_date_time", "Health updated"),
}

HISTORY_FIELDS: tuple[FieldSpec, ...] = (
    FieldSpec(
        "account", HISTORY_TABLE, "u_account", "reference", "Account", 32,
        ACCOUNT_TABLE,
    ),
    FieldSpec("date", HISTORY_TABLE, "u_date", "glide_date", "Date"),
    FieldSpec("score", HISTORY_TABLE, "u_score", "integer", "Score"),
    FieldSpec("band", HISTORY_TABLE, "u_band", "string", "Band"),
    FieldSpec("nps", HISTORY_TABLE, "u_nps", "integer", "NPS"),
    FieldSpec(
        "components", HISTORY_TABLE, "u_components", "string", "Components", 4000
    ),
)  # fmt: skip


def account_fields(settings: Settings) -> list[FieldSpec]:
    """The configured account fields (a field set to ``None`` is skipped)."""
    names = settings.writeback.fields
    specs = []
    for key, logical in ACCOUNT_FIELDS.items():
        element = getattr(names, key)
        if not element:
            continue
        specs.append(
            FieldSpec(
                key=key,
                table=writeback_table(settings),
                element=element,
                internal_type=logical.internal_type,
                label=logical.label,
                max_length=logical.max_length,
                choices=logical.choices,
            )
        )
    return specs


def writeback_table(settings: Settings) -> str:
    """The table write-back targets (only ``customer_account`` passes the guard)."""
    return settings.writeback.table


def history_fields(settings: Settings) -> list[FieldSpec]:
    """The history table's columns, or none when history is off."""
    return list(HISTORY_FIELDS) if settings.writeback.history else []
