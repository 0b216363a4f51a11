"""The daemon: scheduled incremental syncs, KPIs, write-back and delete reconciliation.

APScheduler 3.x runs the jobs on UTC interval triggers, so there are no wall-clock
gaps or folds at DST changes (C18). Its job defaults are set explicitly: one
instance per job, coalesced catch-up, and a misfire grace as long as the longest
interval, because the 1-second default silently drops a run that starts late.
Syncs are watermark-driven, so a skipped or coalesced run is caught up by the next.

A stop (SIGINT/SIGTERM or too many failures) sets one event: the sync in hand
finishes its page, commits its cursor and returns; then the scheduler shuts down.
"""

from __future__ import annotations

import logging
import os
import signal
import threading
import time
from collections import deque
from collections.abc import Callable
from contextlib import AbstractContextManager
from datetime import timedelta
from types import FrameType
from typing import Any

from apscheduler.events import (
    EVENT_JOB_ERROR,
    EVENT_JOB_MAX_INSTANCES,
    EVENT_JOB_MISSED,
    JobEvent,
)
from apscheduler.executors.pool import ThreadPoolExecutor
from apscheduler.schedulers.background import BackgroundScheduler
from apscheduler.triggers.interval import IntervalTrigger

from connector.agent import steps
from connector.agent.endpoint import OperatorApp, OperatorServer, parse_listen
from connector.agent.health import SYNC_JOB, Clock, HealthState, utcnow
from connector.agent.lock import DaemonLock
from connector.agent.metrics import AgentMetrics
from connector.config import DaemonSettings, Settings
from connector.errors import ConfigError
from connector.logs import log_context, new_run_id

log = logging.getLogger(__name__)

RECONCILE_JOB = "reconcile"
KPI_STEP = "kpi"
WRITEBACK_STEP = "writeback"
EXIT_OK = 0
EXIT_FAILED = 1
EXIT_CONFIG = 2


def job_defaults_for(daemon: DaemonSettings) -> dict[str, Any]:
    """The explicit APScheduler job defaults (C18): passed AS ``job_defaults``."""
    longest = max(daemon.sync_interval_seconds, daemon.reconcile_interval_seconds)
    return {"coalesce": True, "max_instances": 1, "misfire_grace_time": longest}


def build_scheduler(daemon: DaemonSettings) -> BackgroundScheduler:
    """A UTC background scheduler with the daemon's job defaults."""
    # Two threads: sync and reconcile may both be due; the work lock orders them.
    return BackgroundScheduler(
        executors={"default": ThreadPoolExecutor(max_workers=2)},
        job_defaults=job_defaults_for(daemon),
        timezone="UTC",
    )


class FailureBudget:
    """Counts job failures in a sliding window; spent when ``max_failures`` is hit."""

    def __init__(
        self, *, max_failures: int, window_seconds: float, clock: Clock
    ) -> None:
        self.max_failures = max_failures
        self.window = timedelta(seconds=window_seconds)
        self._clock = clock
        self._times: deque = deque()
        self._lock = threading.Lock()

    def spend(self) -> int:
        """Record one failure; return the failures within the window."""
        now = self._clock()
        with self._lock:
            self._times.append(now)
            while self._times and now - self._times[0] > self.window:
                self._times.popleft()
            return len(self._times)

    def exhausted(self, count: int) -> bool:
        """True when ``count`` failures in the window end the daemon."""
        return count >= self.max_failures


class Daemon:
    """Owns the scheduler, the lock, the endpoint and the stop event of one agent."""

    def __init__(
        self, settings: Settings, *, clock: Clock = utcnow, source: str = "config"
    ) -> None:
        self.settings = settings
        self.source = source  # the config file, named in config problems
        self.clock = clock
        self.stop_event = threading.Event()
        self.exit_code = EXIT_OK
        self.health = HealthState(
            max_staleness_seconds=settings.daemon.max_staleness_seconds, clock=clock
        )
        self.metrics = AgentMetrics()
        self.budget = FailureBudget(
            max_failures=settings.daemon.max_failures,
            window_seconds=settings.daemon.failure_window_seconds,
            clock=clock,
        )
        self.scheduler = build_scheduler(settings.daemon)
        self.scheduler.add_listener(
            self._on_job_event,
            EVENT_JOB_ERROR | EVENT_JOB_MISSED | EVENT_JOB_MAX_INSTANCES,
        )
        # Sync, KPIs, write-back and reconcile never overlap: one writer (C19).
        self._work_lock = threading.Lock()
        self._server: OperatorServer | None = None
        self._signals = 0
        self._run_ids: dict[str, str] = {}

    # --- lifecycle ---------------------------------------------------------

    def run(self) -> int:
        """Run until a signal or the failure budget stops it; return the exit status."""
        host, port = parse_listen(
            self.settings.daemon.http,
            allow_remote=self.settings.daemon.http_allow_remote,
            source=self.source,
        )
        # The listener logs each job error, miss and overlap once, with its
        # consequence; APScheduler's own lines would say it twice.
        logging.getLogger("apscheduler.executors").setLevel(logging.CRITICAL)
        logging.getLogger("apscheduler.scheduler").setLevel(logging.ERROR)
        with DaemonLock(self.settings.store.url):
            steps.prepare(self.settings)
            self._server = OperatorServer(
                OperatorApp(self.health, self.metrics), host, port
            )
            self._server.start()
            restore = self._install_signal_handlers()
            try:
                self._schedule_jobs()
                self.scheduler.start()
                log.info(
                    "Daemon started: sync every %s s, reconcile every %s s",
                    self.settings.daemon.sync_interval_seconds,
                    self.settings.daemon.reconcile_interval_seconds,
                )
                while not self.stop_event.wait(0.5):
                    pass
            finally:
                self._shutdown()
                restore()
        log.info("Daemon stopped (exit status %d)", self.exit_code)
        return self.exit_code

    def stop(self, reason: str) -> None:
        """Ask every job to finish its page and the daemon to shut down."""
        if not self.stop_event.is_set():
            log.info("Stopping: %s; the sync in hand finishes its page first", reason)
        self.stop_event.set()

    def _shutdown(self) -> None:
        self.stop_event.set()
        if self.scheduler.running:
            # Waits for the job in hand, which returns after its current page.
            self.scheduler.shutdown(wait=True)
        if self._server is not None:
            self._server.stop()

    def _install_signal_handlers(self) -> Callable[[], None]:
        if threading.current_thread() is not threading.main_thread():
            return lambda: None
        previous = {
            sig: signal.signal(sig, self._on_signal)
            for sig in (signal.SIGINT, signal.SIGTERM)
        }

        def restore() -> None:
            for sig, handler in previous.items():
                signal.signal(sig, handler)

        return restore

    def _on_signal(self, signum: int, _frame: FrameType | None) -> None:
        self._signals += 1
        name = signal.Signals(signum).name
        if self._signals > 1:
            log.warning("Second %s: stopping now without waiting for the page", name)
            logging.shutdown()
            os._exit(130)
        self.stop(f"received {name}")

    # --- jobs --------------------------------------------------------------

    def _schedule_jobs(self) -> None:
        daemon = self.settings.daemon
        self.scheduler.add_job(
            self.sync_job,
            IntervalTrigger(seconds=daemon.sync_interval_seconds, timezone="UTC"),
            id=SYNC_JOB,
            name=SYNC_JOB,
            next_run_time=self.clock(),
        )
        if self.settings.sync.reconcile_deletes:
            self.scheduler.add_job(
                self.reconcile_job,
                IntervalTrigger(
                    seconds=daemon.reconcile_interval_seconds, timezone="UTC"
                ),
                id=RECONCILE_JOB,
                name=RECONCILE_JOB,
            )

    def sync_job(self) -> None:
        """Sync (a backfill where one is needed), then KPIs, then write-back."""
        with self._work_lock, self._run_context(SYNC_JOB):
            if self.stop_event.is_set():
                return
            self._step(SYNC_JOB, self._sync)
            if self.stop_event.is_set():
                return
            self._step(KPI_STEP, self._kpis)
            if self.settings.writeback.enabled and not self.stop_event.is_set():
                self._step(WRITEBACK_STEP, self._writeback)

    def reconcile_job(self) -> None:
        """Key reconciliation: mark rows deleted without an audit row."""
        with self._work_lock, self._run_context(RECONCILE_JOB):
            if not self.stop_event.is_set():
                self._step(RECONCILE_JOB, self._reconcile)

    def _run_context(self, job: str) -> AbstractContextManager[str | None]:
        """A fresh run id for every line of this run, worker threads included."""
        self._run_ids[job] = run_id = new_run_id()
        return log_context(run_id=run_id, process_wide=True)

    def _step(self, name: str, action: Callable[[], None]) -> None:
        started = time.monotonic()
        try:
            action()
        except BaseException as exc:
            self.health.record_failure(name, exc)
            self.metrics.job_failed(name, time.monotonic() - started)
            raise
        at = self.health.record_success(name)
        self.metrics.job_succeeded(name, at, time.monotonic() - started)

    def _sync(self) -> None:
        results = steps.sync(
            self.settings,
            stop_event=self.stop_event,
            client_metrics=self.metrics.client,
        )
        steps.export_sync_metrics(
            self.settings, results, self.metrics, now=self.clock()
        )

    def _kpis(self) -> None:
        started = time.monotonic()
        steps.compute_kpis(self.settings, as_of=self.clock().date())
        self.metrics.kpi_duration.set(time.monotonic() - started)

    def _writeback(self) -> None:
        try:
            outcomes = steps.writeback(self.settings)
        except steps.PartialWriteback as exc:
            self.metrics.add_writebacks(exc.outcomes)
            raise
        self.metrics.add_writebacks(outcomes)

    def _reconcile(self) -> None:
        results = steps.reconcile(self.settings, client_metrics=self.metrics.client)
        steps.export_sync_metrics(
            self.settings, results, self.metrics, now=self.clock()
        )

    # --- scheduler events --------------------------------------------------

    def _on_job_event(self, event: JobEvent) -> None:
        with log_context(run_id=self._run_ids.get(event.job_id)):
            self._log_job_event(event)

    def _log_job_event(self, event: JobEvent) -> None:
        if event.code == EVENT_JOB_MAX_INSTANCES:
            log.warning(
                "Job %r is still running from an earlier tick; this tick is skipped "
                "(the run in hand catches up; if this repeats, the interval is "
                "shorter than a run)",
                event.job_id,
            )
            return
        if event.code == EVENT_JOB_MISSED:
            log.warning(
                "Run of job %r due at %s was missed; it is skipped and the next "
                "tick catches up from the stored cursor",
                event.job_id,
                getattr(event, "scheduled_run_time", None),
            )
            return
        self._spend_failure(event.job_id, getattr(event, "exception", None))

    def _spend_failure(self, job_id: str, exception: BaseException | None) -> None:
        if isinstance(exception, ConfigError):
            # A mapping naming a field the instance lacks fails the same way
            # on every tick: say so once and stop, as a bad config at start would.
            log.error(
                "Job %r failed on the configuration: %s; retrying cannot help, so "
                "the daemon stops with exit status 2 (fix it, then start again)",
                job_id,
                _describe(exception),
            )
            self.exit_code = EXIT_CONFIG
            self.stop("configuration error")
            return
        count = self.budget.spend()
        limit = self.budget.max_failures
        if self.budget.exhausted(count):
            log.error(
                "Job %r failed: %s; that is %d failures within %d s "
                "(daemon.max_failures %d), so the daemon stops with exit status 1",
                job_id,
                _describe(exception),
                count,
                self.settings.daemon.failure_window_seconds,
                limit,
            )
            self.exit_code = EXIT_FAILED
            self.stop("too many failures")
            return
        log.error(
            "Job %r failed: %s; will retry on the next tick (%d of %d failures "
            "allowed within %d s)",
            job_id,
            _describe(exception),
            count,
            limit,
            self.settings.daemon.failure_window_seconds,
        )
        log.debug("Traceback of the failed job", exc_info=exception)


def _describe(exc: BaseException | None) -> str:
    if exc is None:
        return "unknown error"
    return f"{type(exc).__name__}: {exc}"
