"""The one exception tree of csm-sync.

Every error raised on purpose derives from :class:`CsmSyncError`. Families map to
exit codes in the CLI: configuration and mapping problems exit 2, everything else
that ends a run exits 1.
"""

from __future__ import annotations

from dataclasses import dataclass


class CsmSyncError(Exception):
    """Root of every error csm-sync raises on purpose."""

    exit_code: int = 1


@dataclass(frozen=True)
class Problem:
    """One validation problem: where it is, and what was expected."""

    source: str
    key: str
    message: str

    def __str__(self) -> str:
        if self.key in ("", "-"):
            return f"{self.source}: {self.message}"
        return f"{self.source}: {self.key}: {self.message}"


class ConfigError(CsmSyncError):
    """The config or a mapping file is invalid; every problem is listed at once."""

    exit_code = 2

    def __init__(self, problems: list[Problem] | Problem | str) -> None:
        if isinstance(problems, str):
            problems = [Problem("config", "-", problems)]
        elif isinstance(problems, Problem):
            problems = [problems]
        self.problems = list(problems)
        super().__init__("\n".join(str(p) for p in self.problems))


class MappingError(ConfigError):
    """A mapping file is invalid or names a field the instance does not have."""


class UsageError(CsmSyncError):
    """The command line asks for something that cannot be done as asked."""

    exit_code = 2


# --- instance (HTTP) family -------------------------------------------------


class InstanceError(CsmSyncError):
    """The instance answered with something csm-sync cannot use."""

    def __init__(
        self,
        message: str,
        *,
        status: int | None = None,
        url: str | None = None,
        snippet: str | None = None,
    ) -> None:
        self.status = status
        self.url = url
        self.snippet = snippet
        super().__init__(message)


class RetriableInstanceError(InstanceError):
    """A transient fault (429, 5xx, 202-empty, connection); worth retrying."""

    def __init__(self, message: str, *, retry_after: float | None = None, **kw) -> None:
        self.retry_after = retry_after
        super().__init__(message, **kw)


class InstanceUnreachableError(RetriableInstanceError):
    """No connection could be made (refused, unknown host): retried only briefly."""


class RateLimitCeilingError(InstanceError):
    """A 429 asked to wait longer than the configured ceiling: checkpoint and stop."""

    def __init__(self, message: str, *, retry_after: float, **kw) -> None:
        self.retry_after = retry_after
        super().__init__(message, **kw)


class TransactionCancelledError(InstanceError):
    """The instance cancelled the transaction (quota); a smaller page may pass."""


class AuthError(InstanceError):
    """Authentication failed (401) after the one allowed token refresh."""


class PermissionDeniedError(InstanceError):
    """The instance refused the request (403): an ACL, a role or a data policy."""


class NotFoundError(InstanceError):
    """The record or resource does not exist or an ACL hides it (404)."""


class InvalidTableError(InstanceError):
    """The instance does not know the table (400 Invalid table)."""


class TLSError(InstanceError):
    """TLS failed: an unverifiable certificate, or a port that does not speak TLS."""


# --- local families ---------------------------------------------------------


class StoreError(CsmSyncError):
    """The local store cannot be opened, migrated or written."""


class LockedError(CsmSyncError):
    """Another process holds the store's daemon lock."""


class WriteBackError(CsmSyncError):
    """A write-back could not be completed or verified."""
