"""Authentication: basic, and OAuth (password / client_credentials) with refresh.

An authenticator is a :class:`requests.auth.AuthBase`, so it is asked for the
current credentials on every request (a refreshed token is used at once; tap-zendesk
captured a token once per generator and kept sending the stale one, C11). One
authenticator is shared by a client and its clones; its lock serialises token
fetches across worker threads. Secrets never appear in reprs, logs or errors.
"""

from __future__ import annotations

import logging
import threading
import time
from base64 import b64encode
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import requests
from pydantic import SecretStr
from requests.auth import AuthBase

from connector.config import InstanceSettings
from connector.errors import AuthError, InstanceError, RetriableInstanceError
from connector.servicenow.metrics import ClientMetrics
from connector.servicenow.responses import TRANSIENT, snippet_of
from connector.servicenow.session import new_session

logger = logging.getLogger(__name__)

TOKEN_PATH = "/oauth_token.do"
# Refresh this long before expires_in runs out, so no request races the expiry.
REFRESH_MARGIN_SECONDS = 60.0


class Authenticator(AuthBase):
    """Base: adds credentials; ``refresh_after_rejection`` handles one 401."""

    method = "none"

    def can_refresh(self) -> bool:
        """Whether a 401 is worth one refresh and replay."""
        return False

    def refresh_after_rejection(self, rejected: str | None) -> None:
        """Replace the credentials the instance rejected (no-op by default)."""

    def __repr__(self) -> str:
        return f"<{type(self).__name__} method={self.method}>"


class BasicAuthenticator(Authenticator):
    """HTTP basic auth; a 401 cannot be fixed by retrying."""

    method = "basic"

    def __init__(self, username: str, password: SecretStr) -> None:
        self.username = username
        self._password = password

    def __call__(self, request: requests.PreparedRequest) -> requests.PreparedRequest:
        pair = f"{self.username}:{self._password.get_secret_value()}".encode()
        request.headers["Authorization"] = "Basic " + b64encode(pair).decode("ascii")
        return request


@dataclass(frozen=True, repr=False)
class _Token:
    access: str
    refresh: str | None
    expires_at: float

    def __repr__(self) -> str:
        return f"<token expires_at={self.expires_at:.0f}>"

    def header(self) -> str:
        return f"Bearer {self.access}"


class OAuthAuthenticator(Authenticator):
    """OAuth 2 bearer tokens from ``/oauth_token.do`` (form-encoded, TABLE_API §10.2).

    Fetches a token on first use, refreshes ``REFRESH_MARGIN_SECONDS`` before it
    expires (with the refresh_token grant when one was issued, else the original
    grant), and on a 401 fetches a new one unless another thread already did.
    """

    def __init__(
        self,
        *,
        base_url: str,
        grant: str,
        client_id: str,
        client_secret: SecretStr,
        username: str | None = None,
        password: SecretStr | None = None,
        session: requests.Session,
        timeout: float,
        metrics: ClientMetrics,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.method = f"oauth_{grant}"
        self._url = base_url + TOKEN_PATH
        self._grant = grant
        self._client_id = client_id
        self._client_secret = client_secret
        self._username = username
        self._password = password
        self._session = session
        self._timeout = timeout
        self._metrics = metrics
        self._clock = clock
        self._token: _Token | None = None
        self._lock = threading.Lock()

    def __call__(self, request: requests.PreparedRequest) -> requests.PreparedRequest:
        request.headers["Authorization"] = self.current_header()
        return request

    def can_refresh(self) -> bool:
        return True

    def current_header(self) -> str:
        """The ``Authorization`` value to send now, refreshing when due."""
        with self._lock:
            token = self._token
            if token is None or self._clock() >= token.expires_at:
                token = self._renew(token)
            return token.header()

    def refresh_after_rejection(self, rejected: str | None) -> None:
        """Fetch a new token unless another thread already replaced ``rejected``."""
        with self._lock:
            if self._token is not None and self._token.header() != rejected:
                return
            logger.info("Access token rejected by the instance; fetching a new one")
            self._token = self._renew(self._token)

    def _renew(self, old: _Token | None) -> _Token:
        """Refresh grant if possible (falling back to the main grant), then store."""
        token = None
        if old is not None and old.refresh:
            try:
                token = self._request_token(
                    {"grant_type": "refresh_token", "refresh_token": old.refresh}
                )
            except AuthError:
                logger.warning("Refresh token refused; requesting a new token")
        if token is None:
            token = self._request_token(self._grant_fields())
        if token.refresh is None and old is not None:
            token = _Token(token.access, old.refresh, token.expires_at)
        self._token = token
        return token

    def _grant_fields(self) -> dict[str, str]:
        if self._grant == "password":
            return {
                "grant_type": "password",
                "username": self._username or "",
                "password": self._password.get_secret_value() if self._password else "",
            }
        return {"grant_type": "client_credentials"}

    def _request_token(self, fields: dict[str, str]) -> _Token:
        """POST one grant to the token endpoint and parse the answer."""
        form = {
            **fields,
            "client_id": self._client_id,
            "client_secret": self._client_secret.get_secret_value(),
        }
        self._metrics.record_token_refresh()
        try:
            response = self._session.post(
                self._url, data=form, timeout=self._timeout, auth=_NoAuth()
            )
        except requests.RequestException as exc:
            raise RetriableInstanceError(
                "Requesting an OAuth token failed: no answer from "
                f"{TOKEN_PATH} ({type(exc).__name__}). {TRANSIENT}",
                url=TOKEN_PATH,
            ) from None
        self._metrics.record_response(response.status_code, len(response.content))
        return self._parse_token(response, fields["grant_type"])

    def _parse_token(self, response: requests.Response, grant: str) -> _Token:
        body = _json_or_none(response)
        access = body.get("access_token") if body else None
        if response.status_code >= 500:
            raise RetriableInstanceError(
                f"Requesting an OAuth token failed: {TOKEN_PATH} answered "
                f"{response.status_code}. {TRANSIENT}",
                status=response.status_code,
                url=TOKEN_PATH,
            )
        if response.status_code != 200 or not access:
            reason = snippet_of(str(body.get("error_description") or body.get("error")))
            raise AuthError(
                f"The instance refused the OAuth {grant} grant for client "
                f"{self._client_id!r} ({response.status_code}: {reason!r}). Check "
                "instance.auth client_id, client_secret and user credentials, and "
                "that the grant type is enabled on the instance.",
                status=response.status_code,
                url=TOKEN_PATH,
            )
        lifetime = float(body.get("expires_in") or 1800)
        expires_at = self._clock() + max(0.0, lifetime - REFRESH_MARGIN_SECONDS)
        return _Token(str(access), body.get("refresh_token") or None, expires_at)


class _NoAuth(AuthBase):
    """Keeps the session's own authenticator off the token request."""

    def __call__(self, request: requests.PreparedRequest) -> requests.PreparedRequest:
        return request


def _json_or_none(response: requests.Response) -> dict[str, Any]:
    try:
        body = response.json()
    except ValueError:
        return {}
    return body if isinstance(body, dict) else {}


def build_authenticator(
    settings: InstanceSettings, *, metrics: ClientMetrics
) -> Authenticator:
    """The authenticator ``settings.auth`` asks for (OAuth gets its own session)."""
    auth = settings.auth
    if auth.method == "basic":
        return BasicAuthenticator(auth.username or "", auth.password or SecretStr(""))
    if not auth.client_id or auth.client_secret is None:
        raise InstanceError("OAuth needs instance.auth.client_id and client_secret.")
    return OAuthAuthenticator(
        base_url=settings.url,
        grant="password" if auth.method == "oauth_password" else "client_credentials",
        client_id=auth.client_id,
        client_secret=auth.client_secret,
        username=auth.username,
        password=auth.password,
        session=new_session(settings),
        timeout=settings.timeout_seconds,
        metrics=metrics,
    )
