"""Prometheus metrics of the daemon, on a registry of their own.

Labels are tables, jobs, HTTP statuses and outcomes only: no account names or ids
ever become label values, so a metrics scrape carries no customer data.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from datetime import datetime

from prometheus_client import (
    CollectorRegistry,
    Counter,
    Gauge,
    Histogram,
    Info,
    ProcessCollector,
)
from prometheus_client.core import CounterMetricFamily, Metric
from prometheus_client.registry import Collector

from connector import __version__
from connector.servicenow.metrics import ClientMetrics

NAMESPACE = "csm_sync"


class ClientCollector(Collector):
    """Export the HTTP client's own counters at scrape time (no copies to drift)."""

    def __init__(self, client: ClientMetrics) -> None:
        self.client = client

    def collect(self) -> Iterator[Metric]:
        snap = self.client.snapshot()
        requests = CounterMetricFamily(
            f"{NAMESPACE}_instance_requests",
            "HTTP requests to the instance by status ('error': no response).",
            labels=["status"],
        )
        for status, count in sorted(snap["requests_by_status"].items()):
            requests.add_metric([status], count)
        yield requests
        yield CounterMetricFamily(
            f"{NAMESPACE}_instance_retries",
            "Requests sent again after a transient fault.",
            value=snap["retries"],
        )
        yield CounterMetricFamily(
            f"{NAMESPACE}_instance_rate_limited",
            "429 Too Many Requests answers.",
            value=snap["rate_limited"],
        )


class AgentMetrics:
    """Counters and gauges the daemon updates after each job."""

    def __init__(self, client: ClientMetrics | None = None) -> None:
        self.client = client or ClientMetrics()
        self.registry = CollectorRegistry()
        self.registry.register(ClientCollector(self.client))
        # Standard process_* series (CPU, memory, open files, start time).
        ProcessCollector(registry=self.registry)
        Info(
            "build", "csm-sync version.", namespace=NAMESPACE, registry=self.registry
        ).info({"version": __version__})
        counter, gauge = self._factory(Counter), self._factory(Gauge)
        self.rows_synced = counter(
            "rows_synced", "Rows stored per table and outcome.", "table", "outcome"
        )
        self.lag = gauge(
            "lag_seconds", "How far each table trails the instance clock.", "table"
        )
        self.writebacks = counter(
            "writebacks", "Write-back field writes by outcome.", "outcome"
        )
        self.last_success = gauge(
            "last_success_timestamp_seconds", "Unix time of the last success.", "job"
        )
        self.job_failures = counter("job_failures", "Job runs that failed.", "job")
        self.job_duration = Histogram(
            "job_duration_seconds",
            "Wall time of each job run.",
            ["job"],
            namespace=NAMESPACE,
            registry=self.registry,
            buckets=(0.5, 1, 2, 5, 10, 30, 60, 120, 300, 900, 3600),
        )
        self.kpi_duration = gauge(
            "kpi_run_duration_seconds", "Wall time of the last KPI computation."
        )

    def _factory(self, kind: type[Counter] | type[Gauge]):  # type: ignore[no-untyped-def]
        def make(name: str, doc: str, *labels: str):  # type: ignore[no-untyped-def]
            return kind(name, doc, labels, namespace=NAMESPACE, registry=self.registry)

        return make

    def job_succeeded(self, job: str, at: datetime, seconds: float) -> None:
        """Record one successful job run."""
        self.last_success.labels(job=job).set(at.timestamp())
        self.job_duration.labels(job=job).observe(seconds)

    def job_failed(self, job: str, seconds: float) -> None:
        """Record one failed job run."""
        self.job_failures.labels(job=job).inc()
        self.job_duration.labels(job=job).observe(seconds)

    def add_rows(self, table: str, counts: Mapping[str, int]) -> None:
        """Add a run's row counts (inserted, updated, deleted, quarantined)."""
        for outcome, count in counts.items():
            if count:
                self.rows_synced.labels(table=table, outcome=outcome).inc(count)

    def add_writebacks(self, by_outcome: Mapping[str, int]) -> None:
        """Add write-back counts by outcome (written, unchanged, failed, ...)."""
        for outcome, count in by_outcome.items():
            if count:
                self.writebacks.labels(outcome=outcome).inc(count)

    def set_lag(self, table: str, seconds: float) -> None:
        """Set how far ``table`` trails the instance, in seconds."""
        self.lag.labels(table=table).set(max(seconds, 0.0))
