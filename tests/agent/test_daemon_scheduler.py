"""C18: explicit job defaults, late runs still run, failures counted in a window."""

from __future__ import annotations

import threading
from datetime import UTC, datetime, timedelta

import pytest
from apscheduler.events import (
    EVENT_JOB_ERROR,
    EVENT_JOB_MAX_INSTANCES,
    EVENT_JOB_MISSED,
    JobEvent,
    JobExecutionEvent,
)
from apscheduler.schedulers.background import BackgroundScheduler

from connector.agent.daemon import (
    EXIT_CONFIG,
    EXIT_FAILED,
    Daemon,
    FailureBudget,
    build_scheduler,
    job_defaults_for,
)
from connector.config import DaemonSettings, settings_from_dict
from connector.errors import MappingError, Problem

T0 = datetime(2026, 3, 29, 0, 59, 0, tzinfo=UTC)  # an hour before Berlin's DST jump


class FrozenClock:
    def __init__(self, start: datetime) -> None:
        self.now = start

    def __call__(self) -> datetime:
        return self.now


def _settings(**daemon: object):
    return settings_from_dict(
        {
            "instance": {
                "url": "http://127.0.0.1:9",
                "auth": {"method": "basic", "username": "u", "password": "p4ssw0rd"},
            },
            "daemon": daemon,
        }
    )


def _late_job_runs(scheduler: BackgroundScheduler, late_by: float) -> bool:
    ran, missed = threading.Event(), threading.Event()
    scheduler.add_listener(lambda _e: missed.set(), EVENT_JOB_MISSED)
    scheduler.start()
    try:
        scheduler.add_job(
            ran.set,
            "interval",
            seconds=60,
            next_run_time=datetime.now(UTC) - timedelta(seconds=late_by),
        )
        for _ in range(50):
            if ran.wait(0.1) or missed.is_set():
                break
    finally:
        scheduler.shutdown(wait=False)
    return ran.is_set()


def test_job_defaults_are_passed_as_job_defaults() -> None:
    daemon = DaemonSettings(sync_interval_seconds=900, reconcile_interval_seconds=86400)

    scheduler = build_scheduler(daemon)
    scheduler.start(paused=True)
    job = scheduler.add_job(print, "interval", seconds=900)
    scheduler.shutdown(wait=False)

    assert job_defaults_for(daemon) == {
        "coalesce": True,
        "max_instances": 1,
        "misfire_grace_time": 86400,
    }
    assert scheduler._job_defaults == job_defaults_for(daemon)
    assert job.misfire_grace_time >= 900
    assert job.coalesce is True
    assert job.max_instances == 1
    assert str(scheduler.timezone) == "UTC"


def test_a_run_two_seconds_late_still_runs() -> None:
    scheduler = build_scheduler(DaemonSettings(sync_interval_seconds=60))

    assert _late_job_runs(scheduler, late_by=2.0)


def test_the_library_default_would_have_dropped_it() -> None:
    # Why the defaults are explicit: APScheduler's own grace is 1 s (C18).
    assert not _late_job_runs(BackgroundScheduler(timezone="UTC"), late_by=2.0)


def test_missed_ticks_coalesce_into_one_run() -> None:
    scheduler = build_scheduler(DaemonSettings(sync_interval_seconds=60))
    runs: list[datetime] = []
    scheduler.start()
    try:
        scheduler.add_job(
            lambda: runs.append(datetime.now(UTC)),
            "interval",
            seconds=1,
            next_run_time=datetime.now(UTC) - timedelta(seconds=4.5),
        )
        threading.Event().wait(0.4)
    finally:
        scheduler.shutdown(wait=True)

    assert len(runs) == 1


def test_failure_budget_counts_within_the_window_only() -> None:
    clock = FrozenClock(T0)
    budget = FailureBudget(max_failures=3, window_seconds=60, clock=clock)

    counts = [budget.spend(), budget.spend()]
    clock.now += timedelta(seconds=61)
    counts.append(budget.spend())
    counts += [budget.spend(), budget.spend()]

    assert counts == [1, 2, 1, 2, 3]
    assert budget.exhausted(counts[-1])
    assert not budget.exhausted(counts[-2])


def _event(code: int, exc: BaseException | None = None) -> JobExecutionEvent:
    return JobExecutionEvent(code, "sync", "default", T0, exception=exc)


def test_a_failed_job_is_logged_with_its_consequence(
    caplog: pytest.LogCaptureFixture,
) -> None:
    daemon = Daemon(_settings(max_failures=3), clock=FrozenClock(T0))

    daemon._on_job_event(_event(EVENT_JOB_ERROR, RuntimeError("boom")))
    daemon._on_job_event(_event(EVENT_JOB_MISSED))
    daemon._on_job_event(JobEvent(EVENT_JOB_MAX_INSTANCES, "sync", "default"))

    assert "will retry on the next tick (1 of 3 failures" in caplog.text
    assert "RuntimeError: boom" in caplog.text
    assert "was missed; it is skipped and the next tick catches up" in caplog.text
    assert "still running from an earlier tick; this tick is skipped" in caplog.text
    assert not daemon.stop_event.is_set()


def test_too_many_failures_stop_the_daemon_with_status_1(
    caplog: pytest.LogCaptureFixture,
) -> None:
    daemon = Daemon(
        _settings(max_failures=2, failure_window_seconds=300), clock=FrozenClock(T0)
    )

    for _ in range(2):
        daemon._on_job_event(_event(EVENT_JOB_ERROR, ConnectionError("refused")))

    assert daemon.stop_event.is_set()
    assert daemon.exit_code == EXIT_FAILED
    assert "2 failures within 300 s" in caplog.text


def test_a_configuration_error_in_a_job_stops_with_status_2(
    caplog: pytest.LogCaptureFixture,
) -> None:
    daemon = Daemon(_settings(max_failures=5), clock=FrozenClock(T0))
    problem = Problem("mappings/case.yaml", "fields.u_tier", "no such field")

    daemon._on_job_event(_event(EVENT_JOB_ERROR, MappingError(problem)))

    assert daemon.stop_event.is_set()
    assert daemon.exit_code == EXIT_CONFIG
    assert "retrying cannot help" in caplog.text
    assert "mappings/case.yaml: fields.u_tier: no such field" in caplog.text
