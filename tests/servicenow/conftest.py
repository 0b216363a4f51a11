"""Fixtures: an emulated instance over loopback HTTP and clients for its users."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import Any

import pytest

from connector.config import InstanceSettings
from connector.emulator.faults import FaultSettings
from connector.emulator.server import EmulatorServer
from connector.servicenow import ServiceNowClient

CASES = "sn_customerservice_case"


class RecordingSleep:
    """An injected sleep: records every wait instead of sleeping."""

    def __init__(self) -> None:
        self.waits: list[float] = []

    def __call__(self, seconds: float) -> None:
        self.waits.append(seconds)


@pytest.fixture(scope="module")
def shared_emu() -> Iterator[EmulatorServer]:
    """A small instance (5 accounts, ~70 cases) shared by one test module."""
    with EmulatorServer(accounts=5, seed=7) as server:
        yield server


@pytest.fixture
def emu(shared_emu: EmulatorServer) -> Iterator[EmulatorServer]:
    """The module's instance with every fault switch reset after the test.

    Data written by a test stays; tests derive expectations from the instance.
    """
    yield shared_emu
    shared_emu.instance.stop_mutator()
    shared_emu.faults.update(**FaultSettings().as_dict())


@pytest.fixture
def empty_emu() -> Iterator[EmulatorServer]:
    """A fresh instance with metadata but no CSM data."""
    with EmulatorServer(accounts=0, seed=7) as server:
        yield server


def settings_for(
    server: EmulatorServer, *, user: str = "admin", method: str = "basic", **extra: Any
) -> InstanceSettings:
    """Settings to reach ``server`` as ``user`` (whose password equals the name)."""
    auth: dict[str, Any] = {"method": method}
    if method in ("basic", "oauth_password"):
        auth.update(username=user, password=user)
    if method.startswith("oauth"):
        auth.update(client_id=server.client_id, client_secret=server.client_secret)
    return InstanceSettings(url=server.url, auth=auth, **extra)


@pytest.fixture
def sleep() -> RecordingSleep:
    return RecordingSleep()


@pytest.fixture
def make_client(
    sleep: RecordingSleep,
) -> Iterator[Callable[..., ServiceNowClient]]:
    """Build clients (closed at teardown) with the recording sleep injected."""
    made: list[ServiceNowClient] = []

    def make(server: EmulatorServer, **kwargs: Any) -> ServiceNowClient:
        client = ServiceNowClient(settings_for(server, **kwargs), sleep=sleep)
        made.append(client)
        return client

    yield make
    for client in made:
        client.close()
