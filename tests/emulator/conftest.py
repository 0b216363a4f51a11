"""Fixtures of the emulator tests (authenticated clients per built-in user)."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from connector.emulator.server import EmulatorServer

from .helpers import Api, make_api


@pytest.fixture
def admin(empty_emulator: EmulatorServer) -> Iterator[Api]:
    api = make_api(
        empty_emulator, empty_emulator.admin_user, empty_emulator.admin_password
    )
    yield api
    api.session.close()


@pytest.fixture
def integration(empty_emulator: EmulatorServer) -> Iterator[Api]:
    emu = empty_emulator
    api = make_api(emu, emu.integration_user, emu.integration_password)
    yield api
    api.session.close()


@pytest.fixture
def acl_api(empty_emulator: EmulatorServer) -> Iterator[Api]:
    emu = empty_emulator
    api = make_api(emu, emu.acl_user, emu.acl_password)
    yield api
    api.session.close()
