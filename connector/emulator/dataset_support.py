"""Plumbing for the dataset generator: ids, time strings, bursts and row sinks.

Everything here is hot: the generator formats millions of timestamps and builds
millions of rows, so time strings come from precomputed tables and rows are
copies of a per-table template rather than freshly assembled dicts.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import math
import random
from collections import defaultdict

from connector.emulator.schema import SYSTEM_FIELDS, TABLES_BY_NAME

DAY = 86_400
HOUR = 3_600
EPOCH = dt.date(1970, 1, 1)


def fixed_sys_id(name: str) -> str:
    """A sys_id that is the same for every seed (reference data other code names)."""
    return hashlib.md5(f"csm-sync-emulator:{name}".encode()).hexdigest()


def table_fields(table: str) -> tuple[str, ...]:
    """Field names of ``table`` including system fields and inherited ones."""
    names = [f.name for f in SYSTEM_FIELDS]
    chain = []
    current = TABLES_BY_NAME.get(table)
    while current is not None:
        chain.append(current)
        current = TABLES_BY_NAME.get(current.parent) if current.parent else None
    for tdef in reversed(chain):
        names += [f.name for f in tdef.fields if f.name not in names]
    return tuple(names)


def epoch_day(day: dt.date) -> int:
    """Days since 1970-01-01."""
    return (day - EPOCH).days


def month_index(day: int) -> int:
    """Month number (year * 12 + month - 1) of an epoch day."""
    date = EPOCH + dt.timedelta(days=day)
    return date.year * 12 + date.month - 1


def month_start(month: int) -> int:
    """Epoch day of the first day of a month number."""
    return epoch_day(dt.date(month // 12, month % 12 + 1, 1))


def poisson(rng: random.Random, lam: float) -> int:
    """Poisson draw; normal approximation above 30 keeps it O(1)."""
    if lam <= 0:
        return 0
    if lam > 30:
        return max(0, round(rng.gauss(lam, math.sqrt(lam))))
    limit, k, p = math.exp(-lam), 0, rng.random()
    while p > limit:
        k += 1
        p *= rng.random()
    return k


class Clock:
    """Formats epoch seconds as ServiceNow stores them, from lookup tables."""

    def __init__(self, first_day: int, last_day: int) -> None:
        self._first = first_day
        self._dates = [
            (EPOCH + dt.timedelta(days=d)).isoformat()
            for d in range(first_day, last_day + 1)
        ]
        self._stamp_days = [d + " " for d in self._dates]
        self._tod = [
            f"{s // HOUR:02d}:{s // 60 % 60:02d}:{s % 60:02d}" for s in range(DAY)
        ]

    def stamp(self, ts: int) -> str:
        """``YYYY-MM-DD HH:MM:SS`` (UTC) of epoch seconds."""
        day, sec = divmod(ts, DAY)
        return self._stamp_days[day - self._first] + self._tod[sec]

    def date(self, day: int) -> str:
        """``YYYY-MM-DD`` of an epoch day."""
        return self._dates[day - self._first]

    def duration(self, seconds: int) -> str:
        """glide_duration: the duration as a datetime after 1970-01-01 00:00:00."""
        day, sec = divmod(max(0, seconds), DAY)
        return f"{EPOCH + dt.timedelta(days=day)} {self._tod[sec]}"


class Bursts:
    """Hands out timestamps for batch jobs that write many rows per second.

    Real scheduled jobs (auto-close, imports, usage loads) stamp hundreds of
    rows with the same ``sys_updated_on`` second; ``rate`` rows share each second.
    """

    def __init__(self) -> None:
        self._used: dict[int, int] = defaultdict(int)

    def at(self, start: int, rate: int) -> int:
        """Next stamp of a job that started at ``start`` and writes ``rate``/s."""
        n = self._used[start]
        self._used[start] = n + 1
        return start + n // rate


class Sink:
    """Per-table row lists; each row starts as a copy of its table's template."""

    def __init__(self, seed: int) -> None:
        self.rows: dict[str, list[dict[str, str]]] = defaultdict(list)
        self._templates: dict[str, dict[str, str]] = {}
        self._ids = random.Random(f"{seed}:sys_id")

    def new_id(self) -> str:
        """A fresh 32-hex sys_id, deterministic from the seed."""
        return f"{self._ids.getrandbits(128):032x}"

    def add(
        self,
        table: str,
        sys_id: str,
        stamps: tuple[str, str],
        users: tuple[str, str],
        mod_count: int,
        values: dict[str, str],
    ) -> dict[str, str]:
        """Append a row; ``stamps``/``users`` are (created, updated) pairs."""
        template = self._templates.get(table)
        if template is None:
            template = self._templates[table] = dict.fromkeys(table_fields(table), "")
        row = template.copy()
        row.update(values)
        row["sys_id"] = sys_id
        row["sys_created_on"], row["sys_updated_on"] = stamps
        row["sys_created_by"], row["sys_updated_by"] = users
        row["sys_mod_count"] = str(mod_count)
        self.rows[table].append(row)
        return row


class World:
    """Shared state of one generation run: rng, clock, sink and the time frame.

    ``end`` is the last second that exists (``as_of`` 23:59:59); anything the
    simulation schedules later has not happened yet and is not written.
    """

    def __init__(self, *, seed: int, as_of: dt.date, years: int = 3) -> None:
        self.rng = random.Random(seed)
        self.sink = Sink(seed)
        self.bursts = Bursts()
        self.last_day = epoch_day(as_of)
        self.first_day = self.last_day - 365 * years
        self.end = self.last_day * DAY + DAY - 1
        # Contract end dates run up to three years (plus a renewal lead) past as_of.
        self.clock = Clock(self.first_day - 400, self.last_day + 1300)
        self.agents: list[tuple[str, str]] = []
        self.csms: list[tuple[str, str]] = []
        self.support_managers: list[tuple[str, str]] = []

    def stamp(self, ts: int) -> str:
        """Shortcut for ``clock.stamp``."""
        return self.clock.stamp(ts)

    def work_time(self, day: int) -> int:
        """A business-hours second on ``day`` (UTC 07:00-18:59, peak late morning)."""
        rng = self.rng
        hour = 7 + min(11, int(abs(rng.gauss(3.5, 2.6))))
        return day * DAY + hour * HOUR + rng.randrange(HOUR)

    def weekday_day(self, low: int, high: int) -> int:
        """A day in ``[low, high]``, mostly Monday to Friday."""
        rng = self.rng
        day = rng.randint(low, high)
        for _ in range(3):
            if (day + 3) % 7 < 5 or rng.random() < 0.15:
                break
            day = rng.randint(low, high)
        return day
