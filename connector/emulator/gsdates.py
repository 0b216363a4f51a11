"""The ``javascript:gs.*`` date helpers that encoded queries use.

Each returns ``YYYY-MM-DD HH:MM:SS``. The emulator's users all live in UTC, so
"start of the user's day" is the start of the UTC day (TABLE_API.md §3.3).
"""

from __future__ import annotations

import calendar
import re
from collections.abc import Callable
from datetime import UTC, date, datetime, timedelta, tzinfo

FMT = "%Y-%m-%d %H:%M:%S"
_CALL = re.compile(r"^\s*gs\.(\w+)\((.*)\)\s*;?\s*$", re.S)
_DAY = timedelta(days=1)


def _fmt(moment: datetime) -> str:
    return moment.strftime(FMT)


def _start(day: date) -> datetime:
    return datetime(day.year, day.month, day.day)


def _end(day: date) -> datetime:
    return datetime(day.year, day.month, day.day, 23, 59, 59)


def _add_months(day: date, months: int) -> date:
    index = day.year * 12 + day.month - 1 + months
    year, month = divmod(index, 12)
    last = calendar.monthrange(year, month + 1)[1]
    return date(year, month + 1, min(day.day, last))


def _month_bounds(day: date) -> tuple[datetime, datetime]:
    first = day.replace(day=1)
    last = day.replace(day=calendar.monthrange(day.year, day.month)[1])
    return _start(first), _end(last)


def _quarter_bounds(day: date) -> tuple[datetime, datetime]:
    first = date(day.year, 3 * ((day.month - 1) // 3) + 1, 1)
    return _start(first), _month_bounds(_add_months(first, 2))[1]


def _week_bounds(day: date) -> tuple[datetime, datetime]:
    monday = day - timedelta(days=day.weekday())
    return _start(monday), _end(monday + timedelta(days=6))


def _year_bounds(day: date) -> tuple[datetime, datetime]:
    return _start(date(day.year, 1, 1)), _end(date(day.year, 12, 31))


def _period(name: str, today: date) -> tuple[datetime, datetime] | None:
    """Bounds of a named period (``ThisWeek``, ``LastMonth`` ...)."""
    shifts: dict[str, tuple[Callable[[date], tuple[datetime, datetime]], date]] = {
        "Today": (lambda d: (_start(d), _end(d)), today),
        "Yesterday": (lambda d: (_start(d), _end(d)), today - _DAY),
        "Tomorrow": (lambda d: (_start(d), _end(d)), today + _DAY),
        "ThisWeek": (_week_bounds, today),
        "LastWeek": (_week_bounds, today - timedelta(days=7)),
        "NextWeek": (_week_bounds, today + timedelta(days=7)),
        "ThisMonth": (_month_bounds, today),
        "LastMonth": (_month_bounds, _add_months(today, -1)),
        "NextMonth": (_month_bounds, _add_months(today, 1)),
        "ThisQuarter": (_quarter_bounds, today),
        "LastQuarter": (_quarter_bounds, _add_months(today, -3)),
        "NextQuarter": (_quarter_bounds, _add_months(today, 3)),
        "ThisYear": (_year_bounds, today),
        "LastYear": (_year_bounds, date(today.year - 1, 1, 1)),
        "NextYear": (_year_bounds, date(today.year + 1, 1, 1)),
    }
    found = shifts.get(name)
    return found[0](found[1]) if found else None


def _args(raw: str) -> list[str]:
    return [a.strip().strip("'\"") for a in raw.split(",") if a.strip()]


def _ago(func: str, args: list[str], now: datetime) -> datetime | None:
    """``daysAgo``/``hoursAgoStart``/``monthsAgoEnd`` and friends."""
    match = re.fullmatch(
        r"(days|hours|minutes|months|quarters|years)Ago(Start|End)?", func
    )
    if not match:
        return None
    unit, edge = match.groups()
    n = int(float(args[0])) if args else 0
    if unit in ("days", "hours", "minutes"):
        moment = now - timedelta(**{unit: n})
        return _edge_of(unit, moment, edge)
    months = {"months": n, "quarters": 3 * n, "years": 12 * n}[unit]
    moment = datetime.combine(_add_months(now.date(), -months), now.time())
    if edge is None:
        return moment
    if unit == "months":
        bounds = _month_bounds(moment.date())
    elif unit == "quarters":
        bounds = _quarter_bounds(moment.date())
    else:
        bounds = _year_bounds(moment.date())
    return bounds[0] if edge == "Start" else bounds[1]


def _edge_of(unit: str, moment: datetime, edge: str | None) -> datetime:
    if edge is None:
        return moment
    if unit == "days":
        return _start(moment.date()) if edge == "Start" else _end(moment.date())
    if unit == "hours":
        base = moment.replace(minute=0, second=0, microsecond=0)
        return base if edge == "Start" else base.replace(minute=59, second=59)
    base = moment.replace(second=0, microsecond=0)
    return base if edge == "Start" else base.replace(second=59)


def _date_generate(args: list[str]) -> str | None:
    if not args:
        return None
    day = args[0]
    when = args[1] if len(args) > 1 else "start"
    if when == "start":
        return f"{day} 00:00:00"
    if when == "end":
        return f"{day} 23:59:59"
    return f"{day} {when}"


def evaluate(expression: str, now: datetime, tz: tzinfo | None = None) -> str | None:
    """Evaluate ``gs.xxx(...)`` (without the ``javascript:`` prefix), or None.

    ``now`` is UTC. With a user time zone ``tz`` the calendar (start of day,
    week, month) and ``dateGenerate`` literals are the user's, and the answer
    is converted back to UTC, as the platform does (TABLE_API.md §3.3).
    """
    utc_now = now.replace(microsecond=0, tzinfo=None)
    if tz is None:
        return _evaluate_local(expression, utc_now)
    local_now = utc_now.replace(tzinfo=UTC).astimezone(tz).replace(tzinfo=None)
    local = _evaluate_local(expression, local_now)
    if local is None or len(local) != len("YYYY-MM-DD HH:MM:SS"):
        return local
    moment = datetime.strptime(local, FMT).replace(tzinfo=tz)
    return _fmt(moment.astimezone(UTC).replace(tzinfo=None))


def _evaluate_local(expression: str, now: datetime) -> str | None:
    match = _CALL.match(expression)
    if not match:
        return None
    func, args = match.group(1), _args(match.group(2))
    if func == "now":
        return now.strftime("%Y-%m-%d")
    if func == "nowDateTime" or func == "nowNoTZ":
        return _fmt(now)
    if func == "dateGenerate":
        return _date_generate(args)
    for prefix, index in (("beginningOf", 0), ("endOf", 1)):
        if func.startswith(prefix):
            bounds = _period(func[len(prefix) :], now.date())
            return _fmt(bounds[index]) if bounds else None
    try:
        moment = _ago(func, args, now)
    except ValueError:
        return None
    return _fmt(moment) if moment else None
