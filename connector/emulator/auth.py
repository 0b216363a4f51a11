"""Users, Basic/Bearer authentication, OAuth tokens and rate-limit rules."""

from __future__ import annotations

import base64
import secrets
import threading
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime

from connector.emulator.faults import RateLimitRule
from connector.emulator.registry import stable_sys_id

REFRESH_LIFETIME_S = 8_640_000  # 100 days, the ServiceNow default (§10.2)


@dataclass(frozen=True)
class User:
    """An account on the emulated instance."""

    name: str
    password: str
    roles: frozenset[str] = field(default_factory=frozenset)

    @property
    def is_admin(self) -> bool:
        return "admin" in self.roles


@dataclass
class Token:
    value: str
    user: str
    client_id: str
    expires: float


class Authenticator:
    """Checks credentials and issues/validates OAuth tokens."""

    def __init__(
        self,
        users: list[User],
        *,
        client_id: str,
        client_secret: str,
        token_lifetime_s: int,
        clock: Callable[[], float],
    ) -> None:
        self.users = {u.name: u for u in users}
        self.client_id = client_id
        self.client_secret = client_secret
        self.token_lifetime_s = token_lifetime_s
        self.clock = clock
        self._access: dict[str, Token] = {}
        self._refresh: dict[str, Token] = {}
        self._lock = threading.Lock()

    def check_password(self, name: str, password: str) -> User | None:
        user = self.users.get(name)
        if user is None or not secrets.compare_digest(user.password, password):
            return None
        return user

    def from_header(self, header: str | None) -> User | None:
        """The user named by an ``Authorization`` header, or None."""
        if not header:
            return None
        scheme, _, cred = header.partition(" ")
        if scheme.lower() == "basic":
            try:
                name, _, password = base64.b64decode(cred).decode().partition(":")
            except (ValueError, UnicodeDecodeError):
                return None
            return self.check_password(name, password)
        if scheme.lower() == "bearer":
            return self._bearer(cred.strip())
        return None

    def _bearer(self, value: str) -> User | None:
        with self._lock:
            token = self._access.get(value)
        if token is None or token.expires <= self.clock():
            return None
        return self.users.get(token.user)

    # --- OAuth -----------------------------------------------------------------

    def grant(self, form: dict[str, str]) -> dict[str, object] | None:
        """Answer ``/oauth_token.do``; None means the failure body (401)."""
        if (
            form.get("client_id") != self.client_id
            or form.get("client_secret") != self.client_secret
        ):
            return None
        grant_type = form.get("grant_type")
        if grant_type == "password":
            user = self.check_password(
                form.get("username", ""), form.get("password", "")
            )
            return self._issue(user.name, with_refresh=True) if user else None
        if grant_type == "refresh_token":
            return self._refresh_grant(form.get("refresh_token", ""))
        if grant_type == "client_credentials":
            # The OAuth Application User of the client entity (Washington DC+).
            return self._issue("integration", with_refresh=False)
        return None

    def _refresh_grant(self, value: str) -> dict[str, object] | None:
        with self._lock:
            token = self._refresh.get(value)
        if token is None or token.expires <= self.clock():
            return None
        answer = self._issue(token.user, with_refresh=False)
        answer["refresh_token"] = token.value
        return answer

    def _issue(self, user: str, *, with_refresh: bool) -> dict[str, object]:
        now = self.clock()
        with self._lock:
            # A password grant while the current token is valid returns it again.
            access = next(
                (
                    t
                    for t in self._access.values()
                    if t.user == user
                    and t.client_id == self.client_id
                    and t.expires > now
                ),
                None,
            )
            if access is None:
                access = Token(
                    secrets.token_urlsafe(40),
                    user,
                    self.client_id,
                    now + self.token_lifetime_s,
                )
                self._access[access.value] = access
            answer: dict[str, object] = {
                "access_token": access.value,
                "scope": "useraccount",
                "token_type": "Bearer",
                "expires_in": max(int(access.expires - now), 0),
            }
            if with_refresh:
                refresh = next(
                    (
                        t
                        for t in self._refresh.values()
                        if t.user == user and t.expires > now
                    ),
                    None,
                )
                if refresh is None:
                    refresh = Token(
                        secrets.token_urlsafe(40),
                        user,
                        self.client_id,
                        now + REFRESH_LIFETIME_S,
                    )
                    self._refresh[refresh.value] = refresh
                answer["refresh_token"] = refresh.value
        return answer

    def expire_tokens(self) -> None:
        """Make every access token invalid now (refresh tokens keep working)."""
        with self._lock:
            for token in self._access.values():
                token.expires = 0.0


class RateLimiter:
    """Hourly request counts per (rule, user), as ``sys_rate_limit_count`` does."""

    def __init__(self) -> None:
        self._counts: dict[tuple[str, str, int], int] = {}
        self._lock = threading.Lock()

    @staticmethod
    def rule_for(rules: list[RateLimitRule], user: str) -> RateLimitRule | None:
        """Single-user rules beat all-user rules; the lowest limit wins a tie."""
        own = [r for r in rules if r.user == user]
        if own:
            return min(own, key=lambda r: r.limit)
        every = [r for r in rules if r.user is None]
        return min(every, key=lambda r: r.limit) if every else None

    def hit(
        self, rule: RateLimitRule, user: str, now: datetime
    ) -> tuple[bool, int, int]:
        """Count one request; returns (allowed, reset_epoch, seconds_to_reset)."""
        window = int(now.timestamp()) // 3600
        reset = (window + 1) * 3600
        key = (rule.sys_id or stable_sys_id("rule", str(id(rule))), user, window)
        with self._lock:
            count = self._counts.get(key, 0) + 1
            self._counts[key] = count
        return count <= rule.limit, reset, max(reset - int(now.timestamp()), 1)
