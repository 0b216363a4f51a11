"""Check every instance response and map faults onto the error tree.

One status table (``STATUS_ERRORS``) decides what each HTTP status means. A 200 is
not trusted either: the body must be JSON (a login page or proxy answers HTML),
non-empty (a queued session answers 202 with no body, TABLE_API §9.3), complete
(big pages come back truncated, C12) and free of a top-level ``error`` key.
"""

from __future__ import annotations

import json
import ssl
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from email.utils import parsedate_to_datetime
from typing import Any
from urllib.parse import urlsplit

import requests
import urllib3

from connector.errors import (
    AuthError,
    InstanceError,
    InstanceUnreachableError,
    InvalidTableError,
    NotFoundError,
    PermissionDeniedError,
    RetriableInstanceError,
    TLSError,
    TransactionCancelledError,
)

SNIPPET_CHARS = 200
TRANSIENT = "Usually transient; csm-sync retries it before giving up."
CANCELLED_MARKER = "transaction cancelled"
# OpenSSL's reasons when the peer answers the TLS hello with something else,
# typically an HTTP error page from a plain-HTTP port.
NOT_TLS_REASONS = frozenset(
    {"WRONG_VERSION_NUMBER", "RECORD_LAYER_FAILURE", "PACKET_LENGTH_TOO_LONG"}
)


class UnauthorizedResponse(AuthError):
    """A 401 on a resource call; the client refreshes the token once and replays."""


# status -> (error class, what it means, what to do next)
STATUS_ERRORS: dict[int, tuple[type[InstanceError], str, str]] = {
    400: (InstanceError, "rejected the request", "Check the table and parameters."),
    401: (
        UnauthorizedResponse,
        "did not accept the credentials",
        "Check instance.auth (user, password, client id and secret).",
    ),
    403: (
        PermissionDeniedError,
        "refused access",
        "Grant the integration user read rights (roles/ACLs) on this table.",
    ),
    404: (
        NotFoundError,
        "found no such record or resource",
        "The record may be deleted or hidden by an ACL.",
    ),
    414: (
        InstanceError,
        "refused an over-long URL",
        "Shorten the query; chunk IN lists (chunked_in).",
    ),
    429: (RetriableInstanceError, "is rate limiting", "Waiting before retrying."),
    500: (RetriableInstanceError, "had an internal error", TRANSIENT),
    502: (RetriableInstanceError, "is unreachable (502)", TRANSIENT),
    503: (RetriableInstanceError, "is unavailable", TRANSIENT),
    504: (RetriableInstanceError, "timed out at a gateway", TRANSIENT),
}


@dataclass(frozen=True)
class CheckedResponse:
    """A response that passed every check; ``payload`` is the parsed JSON body."""

    status: int
    headers: Mapping[str, str]
    payload: Any
    size: int


@dataclass(frozen=True)
class Context:
    """What a request was for, so error messages can say it."""

    action: str
    table: str | None
    path: str

    def describe(self) -> str:
        """E.g. ``reading 'sn_customerservice_case'``."""
        return f"{self.action} {self.table!r}" if self.table else self.action


def snippet_of(text: str) -> str:
    """A short single-line excerpt of a body, for error messages."""
    flat = " ".join(text.split())
    return flat if len(flat) <= SNIPPET_CHARS else flat[:SNIPPET_CHARS] + "..."


def check_response(
    response: requests.Response,
    context: Context,
    *,
    clock: Callable[[], float] = time.time,
) -> CheckedResponse:
    """Return the parsed response or raise the matching :class:`InstanceError`."""
    body = response.content or b""
    text = body[:2000].decode("utf-8", errors="replace")
    status = response.status_code
    if status == 204:
        return CheckedResponse(status, response.headers, None, 0)

    payload, parse_problem = _parse_json(response, body)
    message = _error_message(payload)
    if status >= 300 or message is not None:
        raise _error_for(response, context, message, text, clock)

    if parse_problem is not None:
        raise RetriableInstanceError(
            f"{context.describe().capitalize()} failed: the instance answered "
            f"{status} with {parse_problem}: {snippet_of(text)!r}. {TRANSIENT}",
            status=status,
            url=context.path,
            snippet=snippet_of(text),
        )
    return CheckedResponse(status, response.headers, payload, len(body))


def _parse_json(response: requests.Response, body: bytes) -> tuple[Any, str | None]:
    """Parse the body; on failure say why (empty, HTML, truncated) instead."""
    if not body.strip():
        return None, "an empty body (a queued or dropped session)"
    content_type = response.headers.get("Content-Type", "").lower()
    if "json" not in content_type:
        return None, f"{content_type or 'no content type'} instead of JSON"
    try:
        return json.loads(body), None
    except ValueError:
        return None, "truncated or invalid JSON"


def _error_message(payload: Any) -> str | None:
    """The instance's ``error.message`` (plus detail), if the body carries one."""
    if not isinstance(payload, dict) or "error" not in payload:
        return None
    error = payload["error"]
    if not isinstance(error, dict):
        return str(error)
    parts = [str(error.get(key) or "") for key in ("message", "detail")]
    return ": ".join(part for part in parts if part) or "unspecified error"


def _error_for(
    response: requests.Response,
    context: Context,
    message: str | None,
    text: str,
    clock: Callable[[], float],
) -> InstanceError:
    """Build the error for a non-2xx status or an error envelope."""
    status = response.status_code
    shown = message or snippet_of(text) or response.reason or ""
    cls, meaning, advice = classify(status, message)
    kwargs: dict[str, Any] = {
        "status": status,
        "url": context.path,
        "snippet": snippet_of(shown),
    }
    if status == 429:
        wait = retry_after_seconds(response.headers, clock)
        kwargs["retry_after"] = wait
        advice = f"Retry after {wait if wait is not None else 'a backoff'} seconds."

    head = f"{context.describe().capitalize()} failed: the instance"
    return cls(f"{head} {meaning} ({status}): {shown!r}. {advice}", **kwargs)


def classify(status: int, message: str | None) -> tuple[type[InstanceError], str, str]:
    """Error class, meaning and advice for a status and the body's message."""
    lowered = (message or "").lower()
    if CANCELLED_MARKER in lowered:
        return (
            TransactionCancelledError,
            "cancelled the transaction",
            "A smaller page (sysparm_limit) may pass.",
        )
    if status == 400 and lowered.startswith("invalid table"):
        return (
            InvalidTableError,
            "does not know the table",
            "Check the table name in the mapping.",
        )
    if status in STATUS_ERRORS:
        return STATUS_ERRORS[status]
    if status >= 500:
        return RetriableInstanceError, "failed", TRANSIENT
    return InstanceError, "refused the request", "Check the request."


def retry_after_seconds(
    headers: Mapping[str, str], clock: Callable[[], float] = time.time
) -> float | None:
    """Seconds to wait from ``Retry-After``, else ``X-RateLimit-Reset`` − now."""
    raw = headers.get("Retry-After")
    if raw:
        try:
            return max(0.0, float(raw))
        except ValueError:
            return _seconds_until_http_date(raw, clock)
    reset = headers.get("X-RateLimit-Reset")
    if reset:
        try:
            return max(0.0, float(reset) - clock())
        except ValueError:
            return None
    return None


def _seconds_until_http_date(raw: str, clock: Callable[[], float]) -> float | None:
    """``Retry-After`` may also be an HTTP date (RFC 9110 §10.2.3)."""
    try:
        return max(0.0, parsedate_to_datetime(raw).timestamp() - clock())
    except (TypeError, ValueError):
        return None


def _unreachable_reason(exc: requests.RequestException) -> str | None:
    """Why no connection could be opened at all, or None for other faults."""
    if not isinstance(exc, requests.ConnectionError) or isinstance(
        exc, requests.exceptions.SSLError | requests.exceptions.ProxyError
    ):
        return None
    reason = exc.args[0] if exc.args else None
    reason = getattr(reason, "reason", reason)
    if isinstance(reason, urllib3.exceptions.NameResolutionError):
        return "the host name does not resolve"
    if isinstance(reason, urllib3.exceptions.NewConnectionError):
        text = str(reason).lower()
        if "refused" in text:
            return "connection refused: nothing is listening on that port"
        return "no route to the host"
    return None


def _host_of(exc: requests.RequestException) -> str:
    """``host:port`` of the failed request; never credentials or the query."""
    url = getattr(exc.request, "url", None) or ""
    parts = urlsplit(url)
    host = parts.hostname or "the instance"
    return f"{host}:{parts.port}" if parts.port else host


def _ssl_error_of(exc: BaseException) -> ssl.SSLError | None:
    """The ``ssl.SSLError`` under requests' and urllib3's wrappers, if any."""
    seen: set[int] = set()
    current: Any = exc
    while current is not None and id(current) not in seen:
        if isinstance(current, ssl.SSLError):
            return current
        seen.add(id(current))
        inner = getattr(current, "reason", None)
        if not isinstance(inner, BaseException):
            inner = current.args[0] if current.args else None
        current = inner if isinstance(inner, BaseException) else None
    return None


def _tls_error(exc: requests.RequestException, context: Context) -> TLSError:
    """Tell a port that answers plain HTTP apart from an untrusted certificate."""
    doing = f"{context.describe().capitalize()} failed"
    cause = _ssl_error_of(exc)
    if cause is not None and cause.reason in NOT_TLS_REASONS:
        # An https:// URL on a plain-HTTP port (the emulator without --tls):
        # the TLS hello is answered with HTTP text, so no certificate is involved.
        return TLSError(
            f"{doing}: {_host_of(exc)} does not speak TLS, so this is not a "
            "certificate problem. If that port serves plain HTTP (as "
            "'csm-sync emulator' does without --tls), use http:// in instance.url.",
            url=context.path,
        )
    if cause is not None and not isinstance(cause, ssl.SSLCertVerificationError):
        return TLSError(
            f"{doing}: the TLS handshake with {_host_of(exc)} failed "
            f"({cause.reason or cause}). Check instance.url and that the port "
            "serves HTTPS.",
            url=context.path,
        )
    return TLSError(
        f"{doing}: the instance's TLS certificate could not be verified. Set "
        "instance.ca_file to the CA bundle that signed it (verify_tls: false only "
        "in a lab).",
        url=context.path,
    )


def error_for_transport(exc: requests.RequestException, context: Context) -> Exception:
    """Map a requests exception (no usable response) onto the error tree."""
    kind = type(exc).__name__
    if isinstance(exc, requests.exceptions.SSLError):
        return _tls_error(exc, context)
    unreachable = _unreachable_reason(exc)
    if unreachable:
        return InstanceUnreachableError(
            f"{context.describe().capitalize()} failed: could not connect to "
            f"{_host_of(exc)} ({unreachable}). Check instance.url and that the "
            "instance is reachable from this machine.",
            url=context.path,
        )
    if isinstance(
        exc,
        requests.ConnectionError
        | requests.Timeout
        | requests.exceptions.ChunkedEncodingError,
    ):
        return RetriableInstanceError(
            f"{context.describe().capitalize()} failed: no complete answer from "
            f"the instance ({kind}). {TRANSIENT}",
            url=context.path,
        )
    return InstanceError(
        f"{context.describe().capitalize()} failed: the request could not be "
        f"sent ({kind}). Check instance.url.",
        url=context.path,
    )


def result_of(checked: CheckedResponse, kind: Any, table: str) -> Any:
    """``payload['result']`` of the expected type(s), else an InstanceError."""
    payload = checked.payload
    result = payload.get("result") if isinstance(payload, dict) else None
    if not isinstance(result, kind):
        raise InstanceError(
            f"The answer for {table!r} had no usable 'result' "
            f"(got {type(result).__name__}). Check that the URL points at an "
            "instance and not a proxy page.",
            status=checked.status,
        )
    return result


def total_count(headers: Mapping[str, str]) -> int | None:
    """``X-Total-Count`` as an int (ACL-blind, TABLE_API §5.1), if sent."""
    raw = headers.get("X-Total-Count")
    return int(raw) if raw and raw.strip().isdigit() else None


def server_date(headers: Mapping[str, str]) -> datetime | None:
    """The instance's clock from the ``Date`` header, as aware UTC."""
    raw = headers.get("Date")
    if not raw:
        return None
    try:
        return parsedate_to_datetime(raw).astimezone(UTC)
    except (TypeError, ValueError):
        return None
