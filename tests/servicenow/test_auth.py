"""Basic and OAuth authentication, token expiry mid-run, and secret hygiene."""

from __future__ import annotations

import logging
import threading

import pytest
from pydantic import SecretStr

from connector.emulator.server import EmulatorServer
from connector.errors import AuthError
from connector.servicenow import KeysetPager, ServiceNowClient
from connector.servicenow.client import AUTH_REFRESHES

from .conftest import CASES, settings_for


def test_basic_auth_reads(emu, make_client):
    client = make_client(emu, user="integration")

    page = client.get_page(CASES, query="", fields=["sys_id"], limit=2)

    assert len(page.rows) == 2


@pytest.mark.parametrize("method", ["oauth_password", "oauth_client_credentials"])
def test_oauth_grants_read_with_one_token(emu, make_client, method):
    client = make_client(emu, user="integration", method=method)

    for _ in range(3):
        client.get_page(CASES, query="", fields=["sys_id"], limit=1)

    assert client.metrics.token_refreshes == 1
    assert client.metrics.requests_by_status["200"] == 4  # token + 3 reads


def test_token_expiry_mid_run_refreshes_once_and_replays(emu, make_client):
    client = make_client(emu, user="integration", method="oauth_password")
    pager = KeysetPager(
        client, CASES, fields=["sys_id"], page_size=10, since=None, until=None
    )
    pages = iter(pager)
    seen = [row["sys_id"] for row in next(pages).rows]

    emu.instance.expire_tokens()
    seen += [row["sys_id"] for page in pages for row in page.rows]

    assert sorted(seen) == sorted(row["sys_id"] for row in emu.instance.rows(CASES))
    assert client.metrics.requests_by_status["401"] == 1
    assert client.metrics.token_refreshes == 2


def test_parallel_clones_share_one_refresh(emu, make_client):
    client = make_client(emu, user="integration", method="oauth_password")
    client.get_page(CASES, query="", fields=["sys_id"], limit=1)
    clones = [client.clone() for _ in range(4)]
    emu.instance.expire_tokens()
    errors: list[BaseException] = []

    def read(worker: ServiceNowClient) -> None:
        try:
            worker.get_page(CASES, query="", fields=["sys_id"], limit=1)
        except BaseException as exc:  # pragma: no cover - reported below
            errors.append(exc)

    threads = [threading.Thread(target=read, args=(c,)) for c in clones]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()

    assert errors == []
    assert client.metrics.token_refreshes == 2


def test_wrong_client_secret_is_auth_error_without_the_secret(emu, caplog):
    settings = settings_for(emu, user="integration", method="oauth_password")
    bad = settings.model_copy(
        update={
            "auth": settings.auth.model_copy(
                update={"client_secret": SecretStr("wrong-Secret-4711")}
            )
        }
    )
    caplog.set_level(logging.DEBUG)

    with ServiceNowClient(bad) as client, pytest.raises(AuthError) as caught:
        client.get_page(CASES, query="", fields=["sys_id"], limit=1)

    text = str(caught.value) + repr(caught.value) + repr(client) + caplog.text
    assert "wrong-Secret-4711" not in text
    assert "client_secret" in str(caught.value)
    assert caught.value.status == 401


def test_wrong_basic_password_is_not_retried(emu, caplog):
    settings = settings_for(emu, user="integration")
    bad = settings.model_copy(
        update={
            "auth": settings.auth.model_copy(update={"password": SecretStr("Nope-987")})
        }
    )
    before = emu.instance.request_count
    caplog.set_level(logging.DEBUG)

    with ServiceNowClient(bad) as client, pytest.raises(AuthError) as caught:
        client.get_page(CASES, query="", fields=["sys_id"], limit=1)

    assert emu.instance.request_count - before == 1
    assert "Nope-987" not in str(caught.value) + caplog.text
    assert "401" in str(caught.value)


def test_a_401_after_every_refresh_is_auth_error():
    # Tokens that are already expired when issued: refreshing cannot help. One
    # extra refresh is allowed for a revocation racing the first (AUTH_REFRESHES).
    with EmulatorServer(accounts=0, seed=7, token_lifetime_s=0) as server:
        settings = settings_for(server, user="integration", method="oauth_password")
        with ServiceNowClient(settings) as client, pytest.raises(AuthError) as caught:
            client.get_page("sys_user", query="", fields=["sys_id"], limit=1)

    assert "refreshed 2 times and still refused" in str(caught.value)
    assert AUTH_REFRESHES == 2
    assert client.metrics.requests_by_status["401"] == 1 + AUTH_REFRESHES


def test_a_token_revoked_right_after_its_refresh_gets_one_more_refresh():
    """The revocation lands between the refresh and the replay (workers share
    one token and another thread, or the instance, revokes it)."""
    with EmulatorServer(accounts=0, seed=7) as server:
        settings = settings_for(server, user="integration", method="oauth_password")
        with ServiceNowClient(settings) as client:
            client.get_page("sys_user", query="", fields=["sys_id"], limit=1)
            server.instance.expire_tokens()
            renew = client._auth.refresh_after_rejection

            def renew_then_revoke(rejected):  # type: ignore[no-untyped-def]
                renew(rejected)
                if client.metrics.requests_by_status["401"] == 1:
                    server.instance.expire_tokens()  # the fresh token, at once

            client._auth.refresh_after_rejection = renew_then_revoke
            page = client.get_page("sys_user", query="", fields=["sys_id"], limit=1)

    # Refused twice (the old token, then the fresh one revoked at once), then
    # answered: no AuthError, and the page came back.
    assert client.metrics.requests_by_status["401"] == 2
    assert page.rows == []  # an instance with no users


def test_token_is_refreshed_before_it_expires_not_after():
    # A 30 s token is inside the 60 s refresh margin: every request renews first,
    # so the instance never sees an expired token.
    with EmulatorServer(accounts=0, seed=7, token_lifetime_s=30) as server:
        settings = settings_for(server, user="integration", method="oauth_password")
        with ServiceNowClient(settings) as client:
            for _ in range(3):
                client.get_page("sys_db_object", query="", fields=["sys_id"], limit=1)

    assert client.metrics.requests_by_status["401"] == 0
    assert client.metrics.token_refreshes == 3


def test_reprs_hold_no_secret(emu, make_client):
    client = make_client(emu, user="integration", method="oauth_password")
    client.get_page(CASES, query="", fields=["sys_id"], limit=1)
    token = client._auth.current_header().split()[1]

    shown = repr(client) + repr(client._auth) + repr(vars(client._auth))

    assert token not in shown
    assert emu.client_secret not in shown
    assert shown.count("SecretStr('**********')") == 2  # client secret, password
