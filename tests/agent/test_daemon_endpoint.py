"""/healthz and /metrics: judged with an injected clock, served over loopback."""

from __future__ import annotations

import json
import socket
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta

import pytest
import requests
from prometheus_client.parser import text_string_to_metric_families

from connector import __version__
from connector.agent.endpoint import OperatorApp, OperatorServer, parse_listen
from connector.agent.health import HealthState, is_unreachable
from connector.agent.metrics import AgentMetrics
from connector.errors import (
    AuthError,
    ConfigError,
    CsmSyncError,
    InstanceError,
    RetriableInstanceError,
)

T0 = datetime(2026, 12, 3, 12, 0, tzinfo=UTC)


class FrozenClock:
    """A clock the test moves by hand."""

    def __init__(self, start: datetime) -> None:
        self.now = start

    def __call__(self) -> datetime:
        return self.now

    def advance(self, seconds: float) -> None:
        self.now += timedelta(seconds=seconds)


@pytest.fixture
def clock() -> FrozenClock:
    return FrozenClock(T0)


@pytest.fixture
def served(clock: FrozenClock) -> Iterator[tuple[str, HealthState, AgentMetrics]]:
    health = HealthState(max_staleness_seconds=600, clock=clock)
    metrics = AgentMetrics()
    server = OperatorServer(OperatorApp(health, metrics), "127.0.0.1", 0)
    server.start()
    yield server.url, health, metrics
    server.stop()


def test_healthy_while_syncs_succeed(clock: FrozenClock) -> None:
    health = HealthState(max_staleness_seconds=600, clock=clock)
    clock.advance(300)
    health.record_success("sync")
    clock.advance(599)

    healthy, body = health.evaluate()

    assert healthy
    assert body["jobs"]["sync"]["last_success"] == "2026-12-03T12:05:00+00:00"


def test_unhealthy_when_the_last_success_is_too_old(clock: FrozenClock) -> None:
    health = HealthState(max_staleness_seconds=600, clock=clock)
    health.record_success("sync")
    clock.advance(601)

    healthy, body = health.evaluate()

    assert not healthy
    assert "601 s ago exceeds max_staleness_seconds 600" in body["reason"]


def test_unhealthy_at_once_when_the_instance_is_unreachable(clock: FrozenClock) -> None:
    health = HealthState(max_staleness_seconds=600, clock=clock)
    health.record_success("sync")
    clock.advance(10)
    error = RetriableInstanceError("connection refused by 127.0.0.1:9")

    health.record_failure("sync", error)
    healthy, body = health.evaluate()

    assert not healthy
    assert "could not reach the instance" in body["reason"]
    assert body["jobs"]["sync"]["failures"] == 1


def test_unhealthy_at_once_when_the_instance_rejects_the_credentials(
    clock: FrozenClock,
) -> None:
    health = HealthState(max_staleness_seconds=600, clock=clock)
    health.record_success("sync")
    clock.advance(10)

    health.record_failure("sync", AuthError("User Not Authenticated (401)", status=401))
    healthy, body = health.evaluate()

    assert not healthy
    assert "rejected csm-sync's credentials" in body["reason"]


def test_a_refused_request_is_not_unreachable(clock: FrozenClock) -> None:
    health = HealthState(max_staleness_seconds=600, clock=clock)
    health.record_failure("sync", InstanceError("forbidden", status=403))

    healthy, _ = health.evaluate()

    assert healthy
    assert not is_unreachable(InstanceError("forbidden", status=403))
    assert is_unreachable(requests.ConnectionError("refused"))


def test_endpoint_serves_health_and_metrics(served) -> None:
    url, health, metrics = served
    at = health.record_success("sync")
    metrics.job_succeeded("sync", at, 1.5)
    metrics.add_rows("customer_account", {"inserted": 200, "updated": 3})
    for status in (200, 200, 429, 429, None):
        metrics.client.record_response(status, 100)
    metrics.client.record_retry()
    metrics.add_writebacks({"written": 40, "unchanged": 160})
    metrics.set_lag("customer_account", 7.0)

    healthz = requests.get(f"{url}/healthz", timeout=5)
    scraped = requests.get(f"{url}/metrics", timeout=5)

    assert healthz.status_code == 200
    assert healthz.json()["status"] == "ok"
    samples = {
        (s.name, tuple(sorted(s.labels.items()))): s.value
        for family in text_string_to_metric_families(scraped.text)
        for s in family.samples
    }
    assert (
        samples[
            (
                "csm_sync_rows_synced_total",
                (("outcome", "inserted"), ("table", "customer_account")),
            )
        ]
        == 200
    )
    assert samples[("csm_sync_instance_requests_total", (("status", "429"),))] == 2
    assert samples[("csm_sync_instance_requests_total", (("status", "error"),))] == 1
    assert samples[("csm_sync_instance_rate_limited_total", ())] == 2
    assert samples[("csm_sync_instance_retries_total", ())] == 1
    assert samples[("csm_sync_writebacks_total", (("outcome", "written"),))] == 40
    assert samples[("csm_sync_lag_seconds", (("table", "customer_account"),))] == 7
    assert ("csm_sync_build_info", (("version", __version__),)) in samples
    assert samples[("process_resident_memory_bytes", ())] > 0
    assert (
        samples[("csm_sync_last_success_timestamp_seconds", (("job", "sync"),))]
        == T0.timestamp()
    )


def test_endpoint_answers_503_with_the_reason(served, clock: FrozenClock) -> None:
    url, _, _ = served
    clock.advance(601)

    response = requests.get(f"{url}/healthz", timeout=5)

    assert response.status_code == 503
    assert "no successful sync 601 s ago" in json.loads(response.text)["reason"]
    assert requests.get(f"{url}/nope", timeout=5).status_code == 404


@pytest.mark.parametrize("address", ["127.0.0.1:9464", "[::1]:9464", "localhost:1"])
def test_loopback_addresses_are_accepted(address: str) -> None:
    host, port = parse_listen(address, allow_remote=False)

    assert host in ("127.0.0.1", "::1", "localhost")
    assert port == int(address.rsplit(":", 1)[1])


def test_a_public_address_is_refused_unless_allowed(
    caplog: pytest.LogCaptureFixture,
) -> None:
    with pytest.raises(ConfigError) as refused:
        parse_listen("0.0.0.0:9464", allow_remote=False)

    assert "daemon.http_allow_remote" in str(refused.value)
    assert parse_listen("0.0.0.0:9464", allow_remote=True) == ("0.0.0.0", 9464)
    assert "without authentication" in caplog.text


@pytest.mark.parametrize("address", ["9464", "127.0.0.1:", "host:port", ":9464"])
def test_malformed_addresses_name_the_key(address: str) -> None:
    with pytest.raises(ConfigError) as refused:
        parse_listen(address, allow_remote=False)

    assert refused.value.problems[0].key == "daemon.http"


def test_a_busy_port_is_a_clear_error(clock: FrozenClock) -> None:
    app = OperatorApp(
        HealthState(max_staleness_seconds=60, clock=clock), AgentMetrics()
    )
    with socket.socket() as busy:
        busy.bind(("127.0.0.1", 0))
        busy.listen()
        port = busy.getsockname()[1]

        with pytest.raises(CsmSyncError) as refused:
            OperatorServer(app, "127.0.0.1", port)

    assert f"127.0.0.1:{port}" in str(refused.value)
    assert "set daemon.http to a free port" in str(refused.value)
