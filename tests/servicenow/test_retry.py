"""Retry policy against injected faults: what is retried, how long, and what not."""

from __future__ import annotations

import socket
import time

import pytest

from connector.config import InstanceSettings
from connector.errors import (
    InstanceUnreachableError,
    InvalidTableError,
    NotFoundError,
    PermissionDeniedError,
    RateLimitCeilingError,
    RetriableInstanceError,
)
from connector.servicenow import KeysetPager, ServiceNowClient
from connector.servicenow.responses import retry_after_seconds

from .conftest import CASES, RecordingSleep


def all_case_ids(client) -> list[str]:
    pager = KeysetPager(
        client, CASES, fields=["sys_id"], page_size=10, since=None, until=None
    )
    return [row["sys_id"] for page in pager for row in page.rows]


def test_429_retry_after_is_honoured_exactly(emu, make_client, sleep):
    emu.faults.update(rate_429=0.4, retry_after=2, seed=11)
    client = make_client(emu)
    expected = sorted(row["sys_id"] for row in emu.instance.rows(CASES))

    got = all_case_ids(client)

    assert sorted(got) == expected
    assert len(got) == len(expected)
    assert sleep.waits
    assert sleep.waits == [2.0] * len(sleep.waits)
    assert client.metrics.rate_limited == len(sleep.waits) == client.metrics.retries


def test_retry_after_above_ceiling_stops_at_once(emu, make_client, sleep):
    emu.faults.update(rate_429=1.0, retry_after=1740)
    client = make_client(emu)
    before = emu.instance.request_count

    with pytest.raises(RateLimitCeilingError) as caught:
        client.get_page(CASES, query="", fields=["sys_id"], limit=10)

    assert caught.value.retry_after == 1740
    assert "900" in str(caught.value)
    assert emu.instance.request_count - before == 1
    assert sleep.waits == []


def test_rate_limit_rule_retry_after_counts_against_ceiling(emu, make_client, sleep):
    emu.faults.update(rate_limit_rules=[{"limit": 2, "user": "integration"}])
    client = make_client(emu, user="integration", retry_after_ceiling_seconds=0)
    client.get_page(CASES, query="", fields=["sys_id"], limit=1)
    client.get_page(CASES, query="", fields=["sys_id"], limit=1)

    with pytest.raises(RateLimitCeilingError) as caught:
        client.get_page(CASES, query="", fields=["sys_id"], limit=1)

    assert 0 < caught.value.retry_after <= 3600
    assert sleep.waits == []


def test_429_without_retry_after_backs_off_and_reraises(emu, make_client, sleep):
    emu.faults.update(rate_429=1.0, retry_after=None)
    client = make_client(emu, max_retries=3, backoff_cap_seconds=5)
    before = emu.instance.request_count

    with pytest.raises(RetriableInstanceError) as caught:
        client.get_page(CASES, query="", fields=["sys_id"], limit=10)

    assert caught.value.status == 429
    assert caught.value.retry_after is None
    assert emu.instance.request_count - before == 4
    assert len(sleep.waits) == 3
    assert all(0 <= wait <= 5 for wait in sleep.waits)


@pytest.mark.parametrize(
    ("fault", "status"),
    [
        ("rate_500", "500"),
        ("rate_502", "502"),
        ("rate_503", "503"),
        ("rate_202_empty", "202"),
        ("rate_html", "200"),
        ("rate_truncated", "200"),
    ],
)
def test_fault_bursts_are_retried_and_data_is_exact(
    emu, make_client, sleep, fault, status
):
    emu.faults.update(**{fault: 0.4, "seed": 5})
    client = make_client(emu)
    expected = sorted(row["sys_id"] for row in emu.instance.rows(CASES))

    got = all_case_ids(client)

    assert len(got) == len(expected)
    assert sorted(got) == expected
    assert client.metrics.retries == len(sleep.waits) > 0
    assert client.metrics.requests_by_status[status] > 0


def test_hung_requests_time_out_and_are_retried(emu, make_client, sleep):
    emu.faults.update(rate_hang=0.3, hang_seconds=0.5, seed=3)
    client = make_client(emu, timeout_seconds=0.2)
    expected = sorted(row["sys_id"] for row in emu.instance.rows(CASES))

    got = all_case_ids(client)
    time.sleep(0.6)  # let the emulator's hung handlers finish before teardown

    assert sorted(got) == expected
    assert client.metrics.requests_by_status["error"] > 0


def test_403_is_not_retried(emu, make_client, sleep):
    client = make_client(emu, user="acl_limited")
    before = emu.instance.request_count

    with pytest.raises(PermissionDeniedError) as caught:
        client.stats(CASES)

    assert emu.instance.request_count - before == 1
    assert caught.value.status == 403
    assert "Insufficient rights" in str(caught.value)
    assert sleep.waits == []


def test_404_is_not_retried(emu, make_client, sleep):
    client = make_client(emu)
    before = emu.instance.request_count

    with pytest.raises(NotFoundError):
        client.patch("customer_account", "f" * 32, {"name": "x"})

    assert emu.instance.request_count - before == 1
    assert sleep.waits == []


def test_400_invalid_table_is_not_retried(emu, make_client, sleep):
    client = make_client(emu)
    before = emu.instance.request_count

    with pytest.raises(InvalidTableError):
        client.get_page("u_missing", query="", fields=None, limit=1)

    assert emu.instance.request_count - before == 1
    assert sleep.waits == []


def test_post_is_not_resent_after_an_ambiguous_failure(emu, make_client, sleep):
    emu.faults.update(rate_500=1.0, include_writes=True)
    client = make_client(emu)
    before_rows = emu.instance.count("customer_account")
    before = emu.instance.request_count

    with pytest.raises(RetriableInstanceError):
        client.create("customer_account", {"name": "Once Only"})

    assert emu.instance.request_count - before == 1
    assert emu.instance.count("customer_account") == before_rows


def test_patch_is_retried_as_idempotent(emu, make_client, sleep):
    emu.faults.update(rate_503=1.0, include_writes=True)
    client = make_client(emu, max_retries=2)
    account = emu.instance.rows("customer_account")[0]
    before = emu.instance.request_count

    with pytest.raises(RetriableInstanceError) as caught:
        client.patch("customer_account", account["sys_id"], {"name": "x"})

    assert caught.value.status == 503
    assert emu.instance.request_count - before == 3
    assert len(sleep.waits) == 2


def test_retry_after_falls_back_to_rate_limit_reset():
    now = 1_767_225_600.0

    with_header = retry_after_seconds({"Retry-After": "2"}, lambda: now)
    from_reset = retry_after_seconds(
        {"X-RateLimit-Reset": str(int(now) + 1740)}, lambda: now
    )
    http_date = retry_after_seconds(
        {"Retry-After": "Thu, 01 Jan 2026 00:00:30 GMT"}, lambda: now
    )

    assert with_header == 2.0
    assert from_reset == 1740.0
    assert http_date == 30.0
    assert retry_after_seconds({}, lambda: now) is None


def test_a_closed_port_fails_in_a_few_short_attempts_naming_the_host() -> None:
    with socket.socket() as probe:  # find a port nothing listens on
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    settings = InstanceSettings(
        url=f"http://127.0.0.1:{port}",
        auth={"method": "basic", "username": "admin", "password": "admin"},
    )
    sleep = RecordingSleep()

    with (
        ServiceNowClient(settings, sleep=sleep) as client,
        pytest.raises(InstanceUnreachableError) as caught,
    ):
        client.get_page("sys_user", query="", fields=["sys_id"], limit=1)

    assert len(sleep.waits) == 2
    assert all(wait <= 2.0 for wait in sleep.waits)
    assert f"127.0.0.1:{port}" in str(caught.value)
    assert "connection refused" in str(caught.value)
