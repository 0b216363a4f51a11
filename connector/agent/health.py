"""What the daemon knows about its own health: last success and failure per job.

``/healthz`` is answered from this state alone (no store or instance call), so a
probe never waits on a busy database or a slow instance.
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

import requests

from connector.errors import AuthError, InstanceError, RetriableInstanceError, TLSError

SYNC_JOB = "sync"

Clock = Callable[[], datetime]


def utcnow() -> datetime:
    """Return the current time, timezone-aware in UTC."""
    return datetime.now(UTC)


@dataclass
class JobStatus:
    """The latest outcome of one scheduled job."""

    last_success: datetime | None = None
    last_failure: datetime | None = None
    last_error: str | None = None
    # "unreachable" or "auth" when the last failure needs an operator, not time.
    blocked: str | None = None
    runs: int = 0
    failures: int = 0

    def as_dict(self) -> dict[str, Any]:
        """Return a JSON-ready view."""
        return {
            "last_success": _iso(self.last_success),
            "last_failure": _iso(self.last_failure),
            "last_error": self.last_error,
            "runs": self.runs,
            "failures": self.failures,
        }


class HealthState:
    """Thread-safe record of job outcomes, judged against the staleness limit."""

    def __init__(self, *, max_staleness_seconds: float, clock: Clock = utcnow) -> None:
        self.max_staleness_seconds = max_staleness_seconds
        self._clock = clock
        self.started_at = clock()
        self._jobs: dict[str, JobStatus] = {}
        self._lock = threading.Lock()

    def record_success(self, job: str) -> datetime:
        """Note that ``job`` just succeeded; return the time recorded."""
        now = self._clock()
        with self._lock:
            status = self._jobs.setdefault(job, JobStatus())
            status.last_success, status.runs = now, status.runs + 1
            status.blocked, status.last_error = None, None
        return now

    def record_failure(self, job: str, exc: BaseException) -> None:
        """Note that ``job`` just failed with ``exc``."""
        now = self._clock()
        with self._lock:
            status = self._jobs.setdefault(job, JobStatus())
            status.last_failure, status.runs = now, status.runs + 1
            status.failures += 1
            status.last_error = f"{type(exc).__name__}: {exc}"[:500]
            status.blocked = blocking_kind(exc)

    def job(self, job: str) -> JobStatus:
        """Return a copy of one job's status."""
        with self._lock:
            return JobStatus(**vars(self._jobs.get(job, JobStatus())))

    def evaluate(self) -> tuple[bool, dict[str, Any]]:
        """Return (healthy, body) for ``/healthz``."""
        now = self._clock()
        with self._lock:
            jobs = {name: s.as_dict() for name, s in self._jobs.items()}
            sync = self._jobs.get(SYNC_JOB, JobStatus())
        reason = self._unhealthy_reason(sync, now)
        body = {
            "status": "unhealthy" if reason else "ok",
            "reason": reason,
            "checked_at": _iso(now),
            "started_at": _iso(self.started_at),
            "max_staleness_seconds": self.max_staleness_seconds,
            "jobs": jobs,
        }
        return reason is None, body

    def _unhealthy_reason(self, sync: JobStatus, now: datetime) -> str | None:
        failed_last = sync.last_failure is not None and (
            sync.last_success is None or sync.last_failure > sync.last_success
        )
        if failed_last and sync.blocked == "unreachable":
            return f"the last sync could not reach the instance ({sync.last_error})"
        if failed_last and sync.blocked == "auth":
            return (
                "the instance rejected csm-sync's credentials on the last sync "
                f"({sync.last_error})"
            )

        # Before the first success the clock starts at daemon start.
        since = sync.last_success or self.started_at
        age = (now - since).total_seconds()
        if age > self.max_staleness_seconds:
            what = "last successful sync" if sync.last_success else "no successful sync"
            return (
                f"{what} {age:.0f} s ago exceeds max_staleness_seconds "
                f"{self.max_staleness_seconds}"
                + (f"; last error: {sync.last_error}" if sync.last_error else "")
            )
        return None


def blocking_kind(exc: BaseException) -> str | None:
    """ "unreachable" or "auth" for failures that waiting will not cure, else None."""
    if is_unreachable(exc):
        return "unreachable"
    if _in_chain(exc, AuthError):
        return "auth"
    return None


def _in_chain(exc: BaseException, kind: type[BaseException]) -> bool:
    seen: set[int] = set()
    current: BaseException | None = exc
    while current is not None and id(current) not in seen:
        if isinstance(current, kind):
            return True
        seen.add(id(current))
        current = current.__cause__ or current.__context__
    return False


def is_unreachable(exc: BaseException) -> bool:
    """True when the error means the instance could not be reached at all."""
    seen: set[int] = set()
    current: BaseException | None = exc
    while current is not None and id(current) not in seen:
        seen.add(id(current))
        if isinstance(current, requests.ConnectionError | requests.Timeout | TLSError):
            return True
        if isinstance(current, ConnectionError | TimeoutError):
            return True
        # A retriable error without an HTTP status is a transport failure.
        if isinstance(current, RetriableInstanceError) and current.status is None:
            return True
        if isinstance(current, InstanceError) and current.status is not None:
            return False
        current = current.__cause__ or current.__context__
    return False


def _iso(value: datetime | None) -> str | None:
    return value.isoformat(timespec="seconds") if value else None
