"""Fixtures of the agent tests."""

from __future__ import annotations

import os

import pytest


@pytest.fixture
def pg_url() -> str:
    """The test PostgreSQL URL; skip (or fail when CSM_SYNC_REQUIRE_PG=1) without it."""
    url = os.environ.get("CSM_SYNC_TEST_PG_URL")
    if not url:
        if os.environ.get("CSM_SYNC_REQUIRE_PG") == "1":
            pytest.fail("CSM_SYNC_REQUIRE_PG=1 but CSM_SYNC_TEST_PG_URL is not set")
        pytest.skip("CSM_SYNC_TEST_PG_URL is not set")
    return url
