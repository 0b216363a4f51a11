"""Turn Table API strings into typed values (C04, C06, C07).

Every value arrives as a JSON string: ``""`` means NULL even for numbers,
booleans are ``"true"``/``"false"``, date-times are UTC ``YYYY-MM-DD HH:MM:SS``,
durations are date-times counted from 1970-01-01, and reference fields take five
shapes depending on request flags. Display values are never parsed: their format
and zone belong to the API user (C04).
"""

from __future__ import annotations

import re
from datetime import UTC, date, datetime
from decimal import Decimal, InvalidOperation
from typing import Any, NamedTuple

SN_DATETIME = "%Y-%m-%d %H:%M:%S"
SN_DATE = "%Y-%m-%d"
EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
SYS_ID_RE = re.compile(r"^[0-9a-fA-F]{32}$")
# Reference targets keyed by something other than a GUID (sys_domain -> 'global').
KNOWN_NON_GUID_KEYS = frozenset({"global"})

BOOLEAN_TYPES = frozenset({"boolean"})
INTEGER_TYPES = frozenset({"integer", "longint"})
DECIMAL_TYPES = frozenset({"decimal", "float", "currency", "price"})
DATETIME_TYPES = frozenset({"glide_date_time", "due_date"})
DURATION_TYPES = frozenset({"glide_duration", "timer"})
REFERENCE_TYPES = frozenset({"reference", "domain_id"})


class ReferenceValue(NamedTuple):
    """A normalised reference: ``sys_id`` (or None) and whether only text came.

    ``display_only`` is True when the instance sent a display name instead of a
    key; the caller must look it up or quarantine the row, never store the name.
    """

    sys_id: str | None
    display_only: bool


def unwrap(value: Any) -> Any:
    """The raw ``value`` of a ``{display_value, value}`` pair; other input as is.

    Raises ValueError for a pair without ``value`` (display text only), since a
    display value is in the user's format and zone and must not be guessed at.
    """
    if not isinstance(value, dict):
        return value
    if "value" in value:
        return value["value"]
    raise ValueError(
        f"Only a display value was sent ({str(value)[:80]}); request "
        "sysparm_display_value=false or all to get the stored value."
    )


def parse_datetime_utc(value: Any) -> datetime | None:
    """``'2026-01-02 10:00:00'`` (UTC) -> aware datetime; ``''``/None -> None."""
    text = unwrap(value)
    if text in ("", None):
        return None
    try:
        parsed = datetime.strptime(str(text).strip(), SN_DATETIME)
    except ValueError:
        raise ValueError(
            f"{text!r} is not an instance date-time (expected YYYY-MM-DD HH:MM:SS "
            "in UTC; display values are not accepted)."
        ) from None
    return parsed.replace(tzinfo=UTC)


def parse_date(value: Any) -> date | None:
    """``'2026-01-02'`` -> date; ``''``/None -> None."""
    text = unwrap(value)
    if text in ("", None):
        return None
    try:
        return datetime.strptime(str(text).strip(), SN_DATE).date()
    except ValueError:
        raise ValueError(f"{text!r} is not an instance date (YYYY-MM-DD).") from None


def parse_duration(value: Any) -> int | None:
    """A glide_duration as seconds: ``'1970-01-22 21:46:21'`` -> 1892781."""
    moment = parse_datetime_utc(value)
    if moment is None:
        return None
    return int((moment - EPOCH).total_seconds())


def parse_boolean(value: Any) -> bool | None:
    """``'true'``/``'false'`` (also ``'1'``/``'0'``) -> bool; ``''`` -> None."""
    text = unwrap(value)
    if text in ("", None):
        return None
    lowered = str(text).strip().lower()
    if lowered in ("true", "1"):
        return True
    if lowered in ("false", "0"):
        return False
    raise ValueError(f"{text!r} is not a boolean ('true' or 'false').")


def parse_integer(value: Any) -> int | None:
    """``'3'`` -> 3; ``''`` -> None (not 0, C07)."""
    text = unwrap(value)
    if text in ("", None):
        return None
    try:
        return int(str(text).strip())
    except ValueError:
        raise ValueError(f"{text!r} is not an integer.") from None


def parse_decimal(value: Any) -> Decimal | None:
    """``'139.99'`` -> Decimal('139.99'); ``''`` -> None."""
    text = unwrap(value)
    if text in ("", None):
        return None
    try:
        return Decimal(str(text).strip())
    except InvalidOperation:
        raise ValueError(f"{text!r} is not a number.") from None


def normalize_reference(value: Any) -> ReferenceValue:
    """Any reference shape (C06) -> ``ReferenceValue(sys_id, display_only)``.

    ``{link, value}`` / ``{display_value, value}`` -> value; ``{display_value,
    link}`` -> last path segment of the link; a bare 32-hex string or a known
    non-GUID key such as ``'global'`` -> itself; ``''``/None -> (None, False);
    anything else is display text -> (None, True).
    """
    if value is None or (isinstance(value, str) and not value.strip()):
        return ReferenceValue(None, False)
    if isinstance(value, dict):
        return _reference_from_dict(value)
    text = str(value).strip()
    if _is_key(text):
        return ReferenceValue(text, False)
    return ReferenceValue(None, True)


def _reference_from_dict(value: dict[str, Any]) -> ReferenceValue:
    raw = value.get("value")
    if isinstance(raw, str) and raw.strip():
        return ReferenceValue(raw.strip(), False)
    link = value.get("link")
    if isinstance(link, str) and link.strip():
        segment = link.split("?", 1)[0].rstrip("/").rsplit("/", 1)[-1]
        if _is_key(segment):
            return ReferenceValue(segment, False)
    display = value.get("display_value")
    return ReferenceValue(None, bool(isinstance(display, str) and display.strip()))


def _is_key(text: str) -> bool:
    return bool(SYS_ID_RE.match(text)) or text in KNOWN_NON_GUID_KEYS


def coerce(value: Any, internal_type: str) -> Any:
    """Convert one raw value by its dictionary ``internal_type`` (C07).

    Unknown and text types come back unchanged (``''`` stays ``''``); every
    typed field maps ``''`` to None. References become a sys_id or None and
    raise ValueError when only display text came (quarantine the row).
    """
    kind = internal_type.lower()
    if kind in BOOLEAN_TYPES:
        return parse_boolean(value)
    if kind in INTEGER_TYPES:
        return parse_integer(value)
    if kind in DECIMAL_TYPES:
        return parse_decimal(value)
    if kind in DATETIME_TYPES:
        return parse_datetime_utc(value)
    if kind == "glide_date":
        return parse_date(value)
    if kind in DURATION_TYPES:
        return parse_duration(value)
    if kind in REFERENCE_TYPES:
        return _coerce_reference(value)
    return unwrap(value)


def _coerce_reference(value: Any) -> str | None:
    reference = normalize_reference(value)
    if reference.display_only:
        raise ValueError(
            f"Reference {str(value)[:80]!r} holds display text, not a sys_id; "
            "look it up or quarantine the row."
        )
    return reference.sys_id
