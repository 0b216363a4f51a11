"""The HTTP session a client sends through: TLS trust as configured."""

from __future__ import annotations

from typing import Any

import requests

from connector.config import InstanceSettings


class ConfiguredTrustSession(requests.Session):
    """A session whose configured ``verify`` beats ``REQUESTS_CA_BUNDLE``.

    requests lets the environment bundle override ``Session.verify`` (a ca_file
    or verify=False) because pysnow passes no per-request ``verify``. Measured:
    with REQUESTS_CA_BUNDLE set, a configured ca_file failed verification.
    """

    def merge_environment_settings(self, *args: Any, **kwargs: Any) -> dict[str, Any]:
        settings = super().merge_environment_settings(*args, **kwargs)
        if self.verify is not True:
            settings["verify"] = self.verify
        return settings


def new_session(settings: InstanceSettings) -> requests.Session:
    """A session trusting ``ca_file`` when set (it wins over verify_tls: false)."""
    session = ConfiguredTrustSession()
    if settings.ca_file is not None:
        session.verify = str(settings.ca_file)
    else:
        session.verify = settings.verify_tls
    return session
