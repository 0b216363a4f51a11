"""Normalise field values so "what was sent" and "what came back" compare fairly.

The instance answers every value as a string and may reformat it without
changing its meaning: ``72`` comes back as ``72`` or ``72.0``, text is
HTML-escaped (``&amp;``) or trimmed by sanitising business rules, date-times
lose sub-second parts. Two values are the same write when their normal forms
are equal; anything else means the instance stored something else (C09).
"""

from __future__ import annotations

import html
import re
from datetime import UTC, date, datetime
from decimal import Decimal, InvalidOperation

INTEGER_TYPES = frozenset({"integer", "longint"})
DECIMAL_TYPES = frozenset({"decimal", "float", "currency", "price", "numeric"})
DATETIME_FORMAT = "%Y-%m-%d %H:%M:%S"
DATE_FORMAT = "%Y-%m-%d"
_SPACES = re.compile(r"\s+")


def to_text(value: object) -> str:
    """The wire form of a Python value: ServiceNow strings, ``""`` for empty."""
    if value is None:
        return ""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, datetime):
        if value.tzinfo is not None:
            value = value.astimezone(UTC).replace(tzinfo=None)
        return value.strftime(DATETIME_FORMAT)
    if isinstance(value, date):
        return value.strftime(DATE_FORMAT)
    if isinstance(value, float):
        return format_number(Decimal(repr(value)))
    if isinstance(value, Decimal):
        return format_number(value)
    return str(value)


def format_number(value: Decimal) -> str:
    """Plain decimal notation without trailing zeros (``72.0`` → ``72``)."""
    if value == value.to_integral_value():
        return str(int(value))
    return format(value.normalize(), "f")


def normalise(value: object, internal_type: str = "string") -> str:
    """The canonical form of a value of the given ServiceNow type."""
    if isinstance(value, dict):
        # A reference that slipped through as {link, value}.
        value = value.get("value")
    text = to_text(value).strip()
    if not text:
        return ""
    if internal_type in INTEGER_TYPES or internal_type in DECIMAL_TYPES:
        return _normalise_number(html.unescape(text))
    if internal_type in ("glide_date_time", "due_date"):
        return _normalise_datetime(html.unescape(text))
    if internal_type == "glide_date":
        return html.unescape(text)[:10]
    return _SPACES.sub(" ", text)


def comparable_forms(value: object, internal_type: str = "string") -> set[str]:
    """The value as written and as an HTML-unescaped reading of it.

    A sanitising rule escapes text once (``&`` → ``&amp;``); text that already
    looks like an entity (``&lt``) must still match its escaped echo, so both
    readings of each side are compared.
    """
    plain = normalise(value, internal_type)
    return {plain, normalise(html.unescape(plain), internal_type)}


def _normalise_number(text: str) -> str:
    try:
        return format_number(Decimal(text.replace(",", "")))
    except InvalidOperation:
        return text


def _normalise_datetime(text: str) -> str:
    candidate = text.replace("T", " ").removesuffix("Z")
    try:
        parsed = datetime.fromisoformat(candidate)
    except ValueError:
        return text
    return to_text(parsed.replace(microsecond=0))


def same_value(sent: object, returned: object, internal_type: str) -> bool:
    """True when the instance stored what was sent, up to harmless reformatting."""
    return bool(
        comparable_forms(sent, internal_type)
        & comparable_forms(returned, internal_type)
    )
