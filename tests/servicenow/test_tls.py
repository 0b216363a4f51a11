"""TLS: verified with the emulator's CA, refused without it, warned when off."""

from __future__ import annotations

import logging
from collections.abc import Iterator

import pytest

from connector.emulator.server import EmulatorServer
from connector.errors import TLSError
from connector.servicenow import ServiceNowClient

from .conftest import settings_for


@pytest.fixture(scope="module")
def tls_emu() -> Iterator[EmulatorServer]:
    with EmulatorServer(accounts=0, seed=7, tls=True) as server:
        yield server


def test_ca_file_makes_tls_work(tls_emu):
    settings = settings_for(tls_emu, ca_file=tls_emu.ca_file)

    with ServiceNowClient(settings) as client:
        page = client.get_page("sys_db_object", query="", fields=["sys_id"], limit=1)

    assert tls_emu.url.startswith("https://")
    assert len(page.rows) == 1


def test_untrusted_certificate_is_tls_error_and_not_retried(tls_emu):
    settings = settings_for(tls_emu)
    before = tls_emu.instance.request_count

    with ServiceNowClient(settings) as client, pytest.raises(TLSError) as caught:
        client.get_page("sys_db_object", query="", fields=["sys_id"], limit=1)

    assert "ca_file" in str(caught.value)
    assert tls_emu.instance.request_count == before
    assert client.metrics.requests_by_status["error"] == 1


def test_verify_off_works_and_warns(tls_emu, caplog):
    settings = settings_for(tls_emu, verify_tls=False)
    caplog.set_level(logging.WARNING, logger="connector.servicenow")

    with ServiceNowClient(settings) as client:
        page = client.get_page("sys_db_object", query="", fields=["sys_id"], limit=1)

    assert len(page.rows) == 1
    warnings = [r for r in caplog.records if r.levelno == logging.WARNING]
    assert any("verification is OFF" in r.getMessage() for r in warnings)


@pytest.mark.parametrize("verify_tls", [True, False])
def test_https_url_on_plain_http_port_says_the_port_does_not_speak_tls(
    empty_emu, verify_tls
):
    plain = settings_for(empty_emu, verify_tls=verify_tls)
    settings = plain.model_copy(
        update={"url": plain.url.replace("http://", "https://", 1)}
    )

    with ServiceNowClient(settings) as client, pytest.raises(TLSError) as caught:
        client.get_page("sys_db_object", query="", fields=["sys_id"], limit=1)

    message = str(caught.value)
    assert empty_emu.url.startswith("http://")
    assert f"127.0.0.1:{empty_emu.port} does not speak TLS" in message
    assert "use http:// in instance.url" in message
    assert "ca_file" not in message
