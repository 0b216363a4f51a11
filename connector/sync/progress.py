"""Backfill progress: a rich bar per table on a terminal, log lines otherwise."""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager

from rich.progress import (
    BarColumn,
    MofNCompleteColumn,
    Progress,
    ProgressColumn,
    Task,
    TextColumn,
    TimeElapsedColumn,
    TimeRemainingColumn,
)
from rich.text import Text

log = logging.getLogger(__name__)

LOG_EVERY_SECONDS = 10.0


class RowRateColumn(ProgressColumn):
    """Rows per second (rich's speed column speaks bytes)."""

    def render(self, task: Task) -> Text:
        speed = task.finished_speed or task.speed
        return Text(f"{speed:,.0f} rows/s" if speed else "- rows/s")


class RichProgress:
    """One bar per table: rows, rate, ETA (total from X-Total-Count)."""

    def __init__(self, progress: Progress) -> None:
        self.progress = progress
        self.tasks: dict[str, int] = {}
        self.lock = threading.Lock()

    def start(self, table: str, total: int | None) -> None:
        with self.lock:
            self.tasks[table] = self.progress.add_task(table, total=total)

    def advance(self, table: str, rows: int) -> None:
        with self.lock:
            self.progress.advance(self.tasks[table], rows)

    def finish(self, table: str) -> None:
        with self.lock:
            task = self.tasks[table]
            done = self.progress.tasks[task].completed
            self.progress.update(task, total=done, completed=done)


class LogProgress:
    """Plain INFO lines: at the start, every few seconds, and at the end."""

    def __init__(self) -> None:
        self.rows: dict[str, int] = {}
        self.totals: dict[str, int | None] = {}
        self.started: dict[str, float] = {}
        self.last: dict[str, float] = {}
        self.lock = threading.Lock()

    def start(self, table: str, total: int | None) -> None:
        with self.lock:
            self.rows[table], self.totals[table] = 0, total
            self.started[table] = self.last[table] = time.monotonic()
        log.info(
            "Backfilling %r: about %s rows to pull",
            table,
            total if total is not None else "?",
        )

    def advance(self, table: str, rows: int) -> None:
        with self.lock:
            self.rows[table] += rows
            now = time.monotonic()
            if now - self.last[table] < LOG_EVERY_SECONDS:
                return
            self.last[table] = now
            done, elapsed = self.rows[table], now - self.started[table]
        rate = done / elapsed if elapsed else 0.0
        log.info("Backfilling %r: %d rows, %.0f rows/s", table, done, rate)

    def finish(self, table: str) -> None:
        with self.lock:
            done, elapsed = self.rows[table], time.monotonic() - self.started[table]
        log.debug("Backfill of %r pulled %d rows in %.1f s", table, done, elapsed)


@contextmanager
def backfill_progress(terminal: bool) -> Iterator[RichProgress | LogProgress]:
    """The progress reporter for this output: rich on a TTY, log lines otherwise."""
    if not terminal:
        yield LogProgress()
        return
    columns = (
        TextColumn("{task.description:<32}"),
        BarColumn(),
        MofNCompleteColumn(),
        RowRateColumn(),
        TimeElapsedColumn(),
        TimeRemainingColumn(),
    )
    with Progress(*columns) as progress:
        yield RichProgress(progress)
