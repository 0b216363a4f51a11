"""Turn Table API strings into typed values, by the mapping's declared type.

Every value arrives as a string and ``""`` means empty (C07): ``'false'`` is
False, ``''`` is NULL (never 0), money is :class:`~decimal.Decimal`, a duration is
seconds since the 1970 epoch form, a date-time is the UTC ``value`` (never a
display value, C04), a reference is a sys_id (C06). A value that does not fit its
type raises :class:`CoercionError`; the caller quarantines the row.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from datetime import UTC, date, datetime
from decimal import Decimal, InvalidOperation
from functools import lru_cache
from typing import Any

from connector.servicenow.values import (
    normalize_reference,
    parse_datetime_utc,
    parse_duration,
)

_INTEGER = re.compile(r"^[+-]?[0-9]+$")
_DECIMAL = re.compile(r"^[+-]?([0-9]+(\.[0-9]*)?|\.[0-9]+)([eE][+-]?[0-9]+)?$")
_DATE = re.compile(r"^[0-9]{4}-[0-9]{2}-[0-9]{2}$")
_DATETIME = re.compile(r"^[0-9]{4}-[0-9]{2}-[0-9]{2} [0-9]{2}:[0-9]{2}:[0-9]{2}$")
_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
_BOOLEANS = {"true": True, "false": False, "1": True, "0": False}
_GUID = re.compile(r"[0-9a-fA-F]{32}")


class CoercionError(ValueError):
    """A value does not fit the type its mapping declares."""


def coerce_value(raw: Any, kind: str) -> Any:
    """Coerce one Table API value to the mapping ``kind``; ``''``/None → None.

    Raises:
        CoercionError: the value cannot be read as ``kind``.
    """
    return _COERCERS[kind](raw)


def coercer(kind: str) -> Callable[[Any], Any]:
    """``coerce_value`` for one ``kind``, to look up once per mapping column.

    Raises:
        KeyError: ``kind`` is not a mapping type.
    """
    return _COERCERS[kind]


def _typed(parse: Callable[[str], Any]) -> Callable[[Any], Any]:
    def coerce(raw: Any) -> Any:
        # Nearly every value is a plain string: one type check, no unwrapping.
        if raw.__class__ is str:
            return parse(raw) if raw else None
        return _unwrapped(raw, parse)

    return coerce


def _unwrapped(raw: Any, parse: Callable[[str], Any]) -> Any:
    if isinstance(raw, dict):
        if "value" not in raw:
            # Only a display value: its format and zone are the user's (C04).
            raise CoercionError(f"expected a stored value, got only {raw!r}")
        raw = raw["value"]
    if raw is None or raw == "":
        return None
    if not isinstance(raw, str):
        raw = str(raw)
    return parse(raw)


def _string(raw: str) -> str:
    if "\x00" in raw:
        # PostgreSQL text cannot hold NUL; refuse on every store alike.
        raise CoercionError(f"text contains a NUL character: {raw[:40]!r}")
    return raw


def _integer(raw: str) -> int:
    if len(raw) < 19 and raw.isdigit() and raw.isascii():
        return int(raw)  # the usual '0'..'99': no regex, within 64 bits
    if not _INTEGER.match(raw.strip()):
        raise CoercionError(f"expected an integer, got {raw!r}")
    return _int64(int(raw), raw)


def _int64(value: int, raw: str) -> int:
    if not -(2**63) <= value < 2**63:
        # No store column holds it: refusing here quarantines the row instead
        # of failing the whole page's upsert with OverflowError.
        raise CoercionError(f"integer out of the 64-bit range, got {raw[:40]!r}")
    return value


def _decimal(raw: str) -> Decimal:
    if not _DECIMAL.match(raw.strip()):
        # '2,209,752' is a display value (C07): refuse rather than guess.
        raise CoercionError(f"expected a decimal number, got {raw!r}")
    try:
        value = Decimal(raw.strip())
        if value and not -30 <= value.adjusted() <= 30:
            # Stores overflow (PostgreSQL) or round to inf/0 (SQLite) far out.
            raise InvalidOperation
        return value
    except InvalidOperation as exc:
        raise CoercionError(f"expected a decimal number, got {raw!r}") from exc


def _boolean(raw: str) -> bool:
    value = _BOOLEANS.get(raw)
    if value is not None:
        return value
    value = _BOOLEANS.get(raw.strip().lower())
    if value is None:
        raise CoercionError(f"expected 'true' or 'false', got {raw!r}")
    return value


@lru_cache(maxsize=4096)
def _datetime(raw: str) -> datetime:
    # Cached: a record repeats its stamps (created = opened, updated = closed)
    # and neighbouring records share them; a failure is not cached.
    if _DATETIME.match(raw):
        # The stored form; fromisoformat is ~50x faster than strptime, and
        # reading the zone is faster than replace(tzinfo=...) afterwards.
        try:
            return datetime.fromisoformat(raw + "+00:00")
        except ValueError as exc:  # '2026-02-30 10:00:00', non-ASCII digits
            raise CoercionError(
                f"expected a UTC date-time 'YYYY-MM-DD HH:MM:SS', got {raw!r}"
            ) from exc
    try:
        value = parse_datetime_utc(raw)
    except ValueError as exc:
        raise CoercionError(
            f"expected a UTC date-time 'YYYY-MM-DD HH:MM:SS', got {raw!r}"
        ) from exc
    if value is None:
        raise CoercionError(f"expected a UTC date-time, got {raw!r}")
    return value


def _date(raw: str) -> date:
    text = raw.strip()
    if not _DATE.match(text):
        raise CoercionError(f"expected a date 'YYYY-MM-DD', got {raw!r}")
    try:
        return date.fromisoformat(text)
    except ValueError as exc:
        raise CoercionError(f"expected a date 'YYYY-MM-DD', got {raw!r}") from exc


def _duration(raw: str) -> int:
    if _DATETIME.match(raw):
        return int((_datetime(raw) - _EPOCH).total_seconds())
    try:
        value = parse_duration(raw)
    except ValueError as exc:
        raise CoercionError(
            f"expected a duration as a 1970 date-time ('1970-01-22 21:46:21'), "
            f"got {raw!r}"
        ) from exc
    if value is None:
        raise CoercionError(f"expected a duration, got {raw!r}")
    return int(value)


def _reference(raw: Any) -> str | None:
    reference = normalize_reference(raw)
    if reference.display_only:
        # Display text instead of a sys_id (C06): never store a name as a key.
        raise CoercionError(f"expected a sys_id reference, got display text {raw!r}")
    return reference.sys_id


def _fast_reference(raw: Any) -> str | None:
    if raw.__class__ is str:
        if not raw:
            return None
        if _GUID.fullmatch(raw):
            return raw
    return _reference(raw)


def _text(raw: Any) -> Any:
    # _typed(_string) in one call: most mapped columns are strings or choices.
    if raw.__class__ is str:
        if "\x00" in raw:
            return _string(raw)  # raises
        return raw or None
    return _unwrapped(raw, _string)


_PARSERS: dict[str, Callable[[str], Any]] = {
    "string": _string,
    "choice": _string,
    "integer": _integer,
    "decimal": _decimal,
    "boolean": _boolean,
    "datetime": _datetime,
    "date": _date,
    "duration": _duration,
}

_COERCERS: dict[str, Callable[[Any], Any]] = {
    kind: _typed(parse) for kind, parse in _PARSERS.items()
}
# A sys_id is checked before any unwrapping; other shapes go the long way (C06).
_COERCERS.update(string=_text, choice=_text, reference=_fast_reference)
