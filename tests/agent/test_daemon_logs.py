"""Log lines: JSON that parses, run id and table on every line, secrets masked."""

from __future__ import annotations

import io
import json
import logging
import threading

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from connector.config import settings_from_dict
from connector.logs import MASK, log_context, settings_secrets, setup_logging

SECRET = "S3cr3t-Pa55word-xyzzy"


@pytest.fixture
def capture():
    """Route the root logger to a buffer; restore the handlers afterwards."""
    root = logging.getLogger()
    saved_handlers, saved_level = list(root.handlers), root.level
    buffer = io.StringIO()
    yield buffer
    root.handlers[:] = saved_handlers
    root.setLevel(saved_level)


def test_json_lines_parse_and_carry_run_id_and_table(capture: io.StringIO) -> None:
    setup_logging(fmt="json", stream=capture)
    log = logging.getLogger("connector.sync.engine")

    with log_context(run_id="run42", table="customer_account"):
        log.info("Stored %d rows", 17)
    log.info("Outside a run")

    lines = [json.loads(line) for line in capture.getvalue().splitlines()]
    assert lines[0]["message"] == "Stored 17 rows"
    assert lines[0]["run_id"] == "run42"
    assert lines[0]["table"] == "customer_account"
    assert lines[0]["level"] == "INFO"
    assert lines[0]["logger"] == "connector.sync.engine"
    assert lines[1]["run_id"] == "-"


def test_worker_threads_inherit_a_process_wide_run_id(capture: io.StringIO) -> None:
    setup_logging(fmt="json", stream=capture)
    log = logging.getLogger("connector.sync.backfill")

    with log_context(run_id="runW", process_wide=True):
        worker = threading.Thread(target=log.info, args=("Slice done",))
        worker.start()
        worker.join()

    line = json.loads(capture.getvalue().splitlines()[0])
    assert line["run_id"] == "runW"


def test_text_lines_show_run_and_table(capture: io.StringIO) -> None:
    setup_logging(fmt="text", stream=capture)

    with log_context(run_id="abc123", table="interaction"):
        logging.getLogger("x").warning("Page was short")

    assert "[abc123 interaction] Page was short" in capture.getvalue()


def test_configured_secrets_never_appear(capture: io.StringIO) -> None:
    cfg = settings_from_dict(
        {
            "instance": {
                "url": "http://127.0.0.1:1",
                "auth": {
                    "method": "oauth_password",
                    "username": "admin",
                    "password": SECRET,
                    "client_id": "csm-sync",
                    "client_secret": "client-secret-0987",
                },
            }
        }
    )
    setup_logging(fmt="json", stream=capture, secrets=settings_secrets(cfg))
    log = logging.getLogger("connector.servicenow.client")

    log.info("Login with %s", SECRET)
    log.warning("Settings: %r", cfg.instance.auth.model_dump_json())
    try:
        raise RuntimeError(f"auth failed for admin:{SECRET}@host")
    except RuntimeError:
        log.exception("Request failed, client_secret=client-secret-0987")

    text = capture.getvalue()
    assert SECRET not in text
    assert "client-secret-0987" not in text
    assert text.count(MASK) >= 3
    assert "RuntimeError" in text


def test_credential_shapes_are_masked_without_configuration(
    capture: io.StringIO,
) -> None:
    setup_logging(fmt="text", stream=capture)
    log = logging.getLogger("connector.servicenow.auth")

    log.info("Headers {'Authorization': 'Bearer eyJhbGciOi.abc.def'}")
    log.info("POST /oauth_token.do grant_type=password&password=hunter2&x=1")
    log.info("Got access_token=tok-123456 refresh_token: ref-98765")

    text = capture.getvalue()
    for leaked in ("eyJhbGciOi", "hunter2", "tok-123456", "ref-98765"):
        assert leaked not in text
    assert "grant_type=password" in text


@settings(max_examples=60, deadline=None)
@given(
    secret=st.text(
        # Without "*": a secret made of mask characters cannot be told apart.
        alphabet=st.characters(
            codec="utf-8", exclude_categories=["Cs", "Cc"], exclude_characters="*"
        ),
        min_size=3,
        max_size=40,
    ),
    prefix=st.text(max_size=20),
)
def test_any_configured_secret_is_masked(secret: str, prefix: str) -> None:
    buffer = io.StringIO()
    root = logging.getLogger()
    saved = list(root.handlers)
    try:
        setup_logging(fmt="json", stream=buffer, secrets=[secret])
        logging.getLogger("h").error("%s%s and again %s", prefix, secret, secret)
    finally:
        root.handlers[:] = saved

    message = json.loads(buffer.getvalue())["message"]
    assert secret not in message
