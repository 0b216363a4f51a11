"""Fault switches and rate-limit rules (C10, C12)."""

from __future__ import annotations

import time
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime
from email.utils import parsedate_to_datetime

import pytest
import requests

from connector.emulator.faults import FaultSettings, RateLimitRule
from connector.emulator.server import EmulatorServer

from .helpers import CASE, Api, seed_cases

ADMIN = ("admin", "admin")
CANCELLED = {
    "error": {
        "message": "Transaction cancelled: maximum execution time exceeded",
        "detail": "Transaction cancelled: maximum execution time exceeded Check logs"
        " for error trace or enable glide.rest.debug property to verify REST"
        " request processing",
    },
    "status": "failure",
}


def test_429_with_and_without_retry_after(
    empty_emulator: EmulatorServer, admin: Api
) -> None:
    empty_emulator.faults.update(rate_429=1.0, retry_after=1740)
    with_header = admin.get(f"/api/now/table/{CASE}")
    empty_emulator.faults.retry_after = None
    without = admin.get(f"/api/now/table/{CASE}")

    assert with_header.status_code == 429
    assert with_header.headers["Retry-After"] == "1740"
    assert with_header.json()["error"]["message"] == "Rate limit exceeded"
    assert without.status_code == 429
    assert "Retry-After" not in without.headers


@pytest.mark.parametrize("status", [500, 502, 503])
def test_5xx_faults(empty_emulator: EmulatorServer, admin: Api, status: int) -> None:
    empty_emulator.faults.update(**{f"rate_{status}": 1.0})

    response = admin.get(f"/api/now/table/{CASE}")

    assert response.status_code == status
    kind = "application/json" if status == 500 else "text/html"
    assert response.headers["Content-Type"].startswith(kind)


def test_202_empty_body(empty_emulator: EmulatorServer, admin: Api) -> None:
    empty_emulator.faults.rate_202_empty = 1.0

    response = admin.get(f"/api/now/table/{CASE}")

    assert response.status_code == 202
    assert response.content == b""
    assert response.headers["Content-Length"] == "0"
    assert response.headers["Server"] == "ServiceNow"


def test_html_login_page_with_200(empty_emulator: EmulatorServer, admin: Api) -> None:
    empty_emulator.faults.rate_html = 1.0

    response = admin.get(f"/api/now/table/{CASE}")

    assert response.status_code == 200
    assert response.headers["Content-Type"].startswith("text/html")
    assert "<form" in response.text


def test_truncated_json(empty_emulator: EmulatorServer, admin: Api) -> None:
    seed_cases(empty_emulator, 5)
    whole = admin.get(f"/api/now/table/{CASE}").content
    empty_emulator.faults.rate_truncated = 1.0

    response = admin.get(f"/api/now/table/{CASE}")

    assert response.status_code == 200
    assert response.content == whole[: len(whole) // 2]
    with pytest.raises(ValueError):
        response.json()


def test_cancelled_body_and_max_page_rows(
    empty_emulator: EmulatorServer, admin: Api
) -> None:
    empty_emulator.faults.max_page_rows = 100
    small = admin.get(f"/api/now/table/{CASE}", sysparm_limit=100)
    big = admin.get(f"/api/now/table/{CASE}", sysparm_limit=101)
    default = admin.get(f"/api/now/table/{CASE}")
    empty_emulator.faults.update(max_page_rows=None, rate_cancelled=1.0)
    random_cancel = admin.get(f"/api/now/table/{CASE}", sysparm_limit=1)

    assert small.status_code == 200
    assert (big.status_code, big.json()) == (500, CANCELLED)
    assert default.status_code == 500
    assert (random_cancel.status_code, random_cancel.json()) == (500, CANCELLED)


def test_faults_spare_writes_unless_asked(
    empty_emulator: EmulatorServer, admin: Api
) -> None:
    empty_emulator.faults.rate_503 = 1.0
    spared = admin.post("/api/now/table/customer_account", {"name": "a"})
    empty_emulator.faults.include_writes = True
    hit = admin.post("/api/now/table/customer_account", {"name": "b"})

    assert spared.status_code == 201
    assert hit.status_code == 503


def test_seeded_fault_sequence_repeats(
    empty_emulator: EmulatorServer, admin: Api
) -> None:
    def run() -> list[int]:
        empty_emulator.faults.update(rate_500=0.3, rate_429=0.2, seed=42)
        return [admin.get(f"/api/now/table/{CASE}").status_code for _ in range(30)]

    first, second = run(), run()

    assert first == second
    assert {200, 429, 500} <= set(first)


def test_hang_delays_the_answer(empty_emulator: EmulatorServer, admin: Api) -> None:
    empty_emulator.faults.update(rate_hang=1.0, hang_seconds=0.6)

    with pytest.raises(requests.exceptions.ReadTimeout):
        admin.session.get(f"{admin.url}/api/now/table/{CASE}", timeout=0.2)
    started = time.monotonic()
    admin.get(f"/api/now/table/{CASE}")

    assert time.monotonic() - started >= 0.6


def test_latency_per_request(empty_emulator: EmulatorServer, admin: Api) -> None:
    empty_emulator.faults.latency_ms = 300

    started = time.monotonic()
    admin.get(f"/api/now/table/{CASE}")

    assert time.monotonic() - started >= 0.3


def test_clock_skew_moves_date_header_and_sys_fields(
    empty_emulator: EmulatorServer, admin: Api
) -> None:
    empty_emulator.faults.clock_skew_seconds = 3600

    response = admin.post("/api/now/table/customer_account", {"name": "a"})

    served = parsedate_to_datetime(response.headers["Date"])
    drift = (served - datetime.now(UTC)).total_seconds()
    assert 3590 < drift < 3610
    created = datetime.fromisoformat(response.json()["result"]["sys_created_on"])
    assert (created.replace(tzinfo=UTC) - datetime.now(UTC)).total_seconds() > 3590


def test_fault_endpoint_sets_switches(
    empty_emulator: EmulatorServer, admin: Api
) -> None:
    response = requests.post(
        f"{empty_emulator.url}/emulator/faults",
        json={"rate_503": 1.0},
        auth=("admin", "admin"),
        timeout=10,
    )
    bad = requests.post(
        f"{empty_emulator.url}/emulator/faults",
        json={"no_such_switch": 1},
        auth=("admin", "admin"),
        timeout=10,
    )

    assert response.json()["result"]["rate_503"] == 1.0
    assert admin.get(f"/api/now/table/{CASE}").status_code == 503
    assert bad.status_code == 400


def test_rate_limit_rule_headers_and_429() -> None:
    now = datetime(2026, 1, 1, 10, 59, 0, tzinfo=UTC)
    faults = FaultSettings(rate_limit_rules=[RateLimitRule(limit=2, user="admin")])
    with EmulatorServer(accounts=0, faults=faults, clock=lambda: now) as emu:
        auth = ("admin", "admin")
        url = f"{emu.url}/api/now/table/{CASE}"
        answers = [requests.get(url, auth=auth, timeout=10) for _ in range(3)]
        other = requests.get(url, auth=("integration", "integration"), timeout=10)

    rule = faults.rate_limit_rules[0]
    reset = str(int(datetime(2026, 1, 1, 11, 0, tzinfo=UTC).timestamp()))
    assert [a.status_code for a in answers] == [200, 200, 429]
    for answer in answers:
        assert answer.headers["X-RateLimit-Limit"] == "2"
        assert answer.headers["X-RateLimit-Reset"] == reset
        assert answer.headers["X-RateLimit-Rule"] == rule.sys_id
        assert "X-RateLimit-Remaining" not in answer.headers
    assert answers[2].headers["Retry-After"] == "60"
    assert answers[2].json() == {
        "error": {
            "message": "Rate limit exceeded",
            "detail": "Rate limit of 2 requests per hour for Table API exceeded",
        },
        "status": "failure",
    }
    assert other.status_code == 200
    assert "X-RateLimit-Limit" not in other.headers


def test_latency_per_row(empty_emulator: EmulatorServer, admin: Api) -> None:
    seed_cases(empty_emulator, 5)
    empty_emulator.faults.latency_per_row_ms = 100

    started = time.monotonic()
    few = admin.get(f"/api/now/table/{CASE}", sysparm_limit=1)
    one_row = time.monotonic() - started
    started = time.monotonic()
    admin.get(f"/api/now/table/{CASE}")
    five_rows = time.monotonic() - started

    assert len(few.json()["result"]) == 1
    assert five_rows >= 0.5
    assert one_row < five_rows


def test_expire_tokens_from_the_fault_settings(empty_emulator: EmulatorServer) -> None:
    form = {
        "grant_type": "password",
        "client_id": empty_emulator.client_id,
        "client_secret": empty_emulator.client_secret,
        "username": "admin",
        "password": "admin",
    }
    access = requests.post(
        f"{empty_emulator.url}/oauth_token.do", data=form, timeout=10
    ).json()["access_token"]
    headers = {"Authorization": f"Bearer {access}"}
    url = f"{empty_emulator.url}/api/now/table/{CASE}"

    before = requests.get(url, headers=headers, timeout=10).status_code
    empty_emulator.instance.faults.expire_tokens()
    after = requests.get(url, headers=headers, timeout=10).status_code

    assert (before, after) == (200, 401)


def test_one_session_runs_one_request_at_a_time_and_overflows_to_202(
    empty_emulator: EmulatorServer, admin: Api
) -> None:
    url = f"{empty_emulator.url}/api/now/table/{CASE}"
    cookie = admin.get(f"/api/now/table/{CASE}").cookies["JSESSIONID"]
    empty_emulator.faults.update(session_queue_limit=2, latency_ms=400)

    def shared(_: int) -> int:
        jar = {"JSESSIONID": cookie}
        return requests.get(url, auth=ADMIN, cookies=jar, timeout=30).status_code

    def own(_: int) -> int:
        return requests.get(url, auth=ADMIN, timeout=30).status_code

    started = time.monotonic()
    with ThreadPoolExecutor(max_workers=6) as pool:
        codes = list(pool.map(shared, range(6)))
    serial = time.monotonic() - started
    with ThreadPoolExecutor(max_workers=6) as pool:
        separate = list(pool.map(own, range(6)))

    assert sorted(codes) == [200, 200, 202, 202, 202, 202]
    assert serial >= 0.8  # the two admitted requests ran one after the other
    assert separate == [200] * 6
