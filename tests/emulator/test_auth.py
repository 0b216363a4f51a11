"""OAuth token endpoint, Bearer auth and token expiry (C11)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import requests

from connector.emulator.server import EmulatorServer

from .helpers import CASE


def token(emu: EmulatorServer, **form: str) -> requests.Response:
    body = {"client_id": emu.client_id, "client_secret": emu.client_secret, **form}
    return requests.post(f"{emu.url}/oauth_token.do", data=body, timeout=10)


def bearer_get(emu: EmulatorServer, access: str) -> requests.Response:
    return requests.get(
        f"{emu.url}/api/now/table/{CASE}",
        headers={"Authorization": f"Bearer {access}"},
        timeout=10,
    )


def test_password_grant_gives_access_and_refresh(
    empty_emulator: EmulatorServer,
) -> None:
    response = token(
        empty_emulator, grant_type="password", username="admin", password="admin"
    )

    body = response.json()
    assert response.status_code == 200
    assert set(body) == {
        "access_token",
        "refresh_token",
        "scope",
        "token_type",
        "expires_in",
    }
    assert body["token_type"] == "Bearer"
    assert body["scope"] == "useraccount"
    assert body["expires_in"] == 1800
    assert bearer_get(empty_emulator, body["access_token"]).status_code == 200


def test_valid_token_is_reused_and_refresh_keeps_its_token(
    empty_emulator: EmulatorServer,
) -> None:
    first = token(
        empty_emulator, grant_type="password", username="admin", password="admin"
    ).json()
    again = token(
        empty_emulator, grant_type="password", username="admin", password="admin"
    ).json()
    refreshed = token(
        empty_emulator, grant_type="refresh_token", refresh_token=first["refresh_token"]
    ).json()

    assert again["access_token"] == first["access_token"]
    assert refreshed["refresh_token"] == first["refresh_token"]
    assert refreshed["access_token"] == first["access_token"]


def test_failures_share_one_body(empty_emulator: EmulatorServer) -> None:
    expected = {"error_description": "access_denied", "error": "server_error"}
    attempts = [
        token(empty_emulator, grant_type="password", username="admin", password="x"),
        token(empty_emulator, grant_type="refresh_token", refresh_token="nope"),
        requests.post(
            f"{empty_emulator.url}/oauth_token.do",
            data={"grant_type": "client_credentials", "client_id": "csm-sync"},
            timeout=10,
        ),
    ]

    assert [(r.status_code, r.json()) for r in attempts] == [(401, expected)] * 3


def test_client_credentials_run_as_the_integration_user(
    empty_emulator: EmulatorServer,
) -> None:
    access = token(empty_emulator, grant_type="client_credentials").json()

    response = requests.post(
        f"{empty_emulator.url}/api/now/table/{CASE}",
        json={"short_description": "x"},
        headers={"Authorization": f"Bearer {access['access_token']}"},
        timeout=10,
    )

    assert "refresh_token" not in access
    assert response.status_code == 403  # integration may not create cases


def test_expired_tokens_get_401_and_refresh_recovers(
    empty_emulator: EmulatorServer,
) -> None:
    first = token(
        empty_emulator, grant_type="password", username="admin", password="admin"
    ).json()

    empty_emulator.instance.expire_tokens()
    expired = bearer_get(empty_emulator, first["access_token"])
    renewed = token(
        empty_emulator, grant_type="refresh_token", refresh_token=first["refresh_token"]
    ).json()

    assert expired.status_code == 401
    assert expired.json()["error"]["message"] == "User Not Authenticated"
    assert renewed["access_token"] != first["access_token"]
    assert bearer_get(empty_emulator, renewed["access_token"]).status_code == 200


def test_tokens_expire_by_the_server_clock() -> None:
    now = [datetime(2026, 1, 1, tzinfo=UTC)]
    with EmulatorServer(accounts=0, clock=lambda: now[0], token_lifetime_s=60) as emu:
        access = token(
            emu, grant_type="password", username="admin", password="admin"
        ).json()
        now[0] += timedelta(seconds=59)
        still = bearer_get(emu, access["access_token"]).status_code
        now[0] += timedelta(seconds=2)
        after = bearer_get(emu, access["access_token"]).status_code

    assert access["expires_in"] == 60
    assert (still, after) == (200, 401)


def test_fault_endpoint_expires_tokens_and_needs_admin(
    empty_emulator: EmulatorServer,
) -> None:
    access = token(
        empty_emulator, grant_type="password", username="admin", password="admin"
    ).json()["access_token"]
    url = f"{empty_emulator.url}/emulator/faults"

    refused = requests.post(
        url,
        json={"expire_tokens": True},
        auth=("integration", "integration"),
        timeout=10,
    )
    still = bearer_get(empty_emulator, access).status_code
    done = requests.post(
        url, json={"expire_tokens": True}, auth=("admin", "admin"), timeout=10
    )

    assert refused.status_code == 403
    assert still == 200
    assert done.status_code == 200
    assert bearer_get(empty_emulator, access).status_code == 401
