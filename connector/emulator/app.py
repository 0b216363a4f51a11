"""The WSGI application: routing, authentication, rate limits and faults.

The Table API handlers live in ``handlers.py``; this module decides who is
asking, whether they may ask now, and whether a fault answers instead.
"""

from __future__ import annotations

import logging
import re
import time
from collections.abc import Callable, Iterable
from typing import Any

from werkzeug.http import http_date
from werkzeug.wrappers import Request, Response

from connector.emulator import aggregate, batch, forms, handlers
from connector.emulator.auth import User
from connector.emulator.instance import ApiError, Instance
from connector.emulator.responses import (
    CANCELLED,
    error_response,
    json_response,
    unauthenticated,
)
from connector.emulator.sessions import SessionQueues

LOG = logging.getLogger(__name__)

MAX_URL_BYTES = 8192
TABLE_RE = re.compile(r"^/api/now(?:/(v1|v2))?/table/([^/]+)(?:/([^/]+))?/?$")
STATS_RE = re.compile(r"^/api/now(?:/v1)?/stats/([^/]+)/?$")
BATCH_RE = re.compile(r"^/api/now(?:/v1)?/batch/?$")
LOGIN_PAGE = (
    "<html><head><title>Log in | ServiceNow</title></head><body>"
    '<form id="loginPage" action="login.do" method="post">'
    '<input name="user_name"/><input name="user_password" type="password"/>'
    "</form></body></html>"
)
HTML_414 = (
    "<html><head><title>414 Request-URI Too Long</title></head><body>"
    "<center><h1>414 Request-URI Too Long</h1></center></body></html>"
)


class EmulatorApp:
    """WSGI callable serving one :class:`Instance`."""

    def __init__(self, instance: Instance) -> None:
        self.instance = instance
        self.faults = instance.faults
        self.sessions = SessionQueues()

    def __call__(
        self, environ: dict[str, Any], start_response: Callable[..., Any]
    ) -> Iterable[bytes]:
        request = Request(environ)
        try:
            response = self.handle(request)
        except ApiError as exc:
            response = error_response(exc.status, exc.message, exc.detail)
        except Exception:
            LOG.exception("Unhandled error for %s %s", request.method, request.path)
            response = error_response(500, "Internal server error", None)
        response.headers["Date"] = http_date(self.instance.now_dt())
        response.headers.setdefault("Server", "ServiceNow")
        return response(environ, start_response)

    # --- top-level flow ------------------------------------------------------------

    def handle(self, request: Request) -> Response:
        self.instance.count_request()
        target = request.environ.get("RAW_URI") or request.full_path
        if len(target.encode()) > MAX_URL_BYTES:
            return Response(HTML_414, status=414, content_type="text/html")
        method = request.headers.get("X-http-method-override", request.method).upper()
        path = request.path
        if path == "/oauth_token.do" and method == "POST":
            return self.oauth(request)
        if method == "GET" and forms.is_form_path(path):
            return forms.serve(self.instance, request)  # UI pages (write-back role)
        user = self.instance.auth.from_header(request.headers.get("Authorization"))
        if user is None:
            return unauthenticated()
        if path == "/emulator/faults":
            return self.fault_endpoint(request, user, method)
        if not path.startswith("/api/"):
            return error_response(
                400, "Requested URI does not represent any resource", None
            )
        rate_headers, denied = self.rate_limit(user)
        if denied is not None:
            return denied
        response = self.in_session(request, user, method)
        response.headers.update(rate_headers)
        return response

    def in_session(self, request: Request, user: User, method: str) -> Response:
        """Serialise requests of one JSESSIONID when session queues are on."""
        session_id = request.cookies.get("JSESSIONID")
        limit = self.faults.session_queue_limit
        if session_id is None or limit is None:
            response = self.faulted(request, user, method)
            if session_id is None:
                response.set_cookie("JSESSIONID", self.sessions.new_id(), httponly=True)
            return response
        with self.sessions.run(session_id, limit) as admitted:
            if not admitted:
                return Response(b"", status=202, headers={"Content-Length": "0"})
            return self.faulted(request, user, method)

    def faulted(self, request: Request, user: User, method: str) -> Response:
        """Serve the request, unless a fault switch answers instead."""
        is_table = TABLE_RE.match(request.path) is not None
        applies = is_table and (method in ("GET", "HEAD") or self.faults.include_writes)
        if not applies:
            return self.dispatch(request, user, method)
        fault, hang = self.faults.draw()
        if hang and self.faults.hang_seconds > 0:
            time.sleep(self.faults.hang_seconds)
        if self.faults.latency_ms > 0:
            time.sleep(self.faults.latency_ms / 1000)
        if fault is None or fault == "rate_truncated":
            response = self.dispatch(request, user, method)
            if fault == "rate_truncated":
                data = response.get_data()
                response.set_data(data[: len(data) // 2])
            return response
        return self.fault_response(fault)

    def fault_response(self, fault: str) -> Response:
        if fault == "rate_429":
            response = error_response(
                429,
                "Rate limit exceeded",
                "Rate limit of 100 requests per hour for Table API exceeded",
            )
            if self.faults.retry_after is not None:
                response.headers["Retry-After"] = str(self.faults.retry_after)
            return response
        if fault == "rate_500":
            return error_response(500, "Internal server error", None)
        if fault in ("rate_502", "rate_503"):
            # Gateway errors come from the load balancer: HTML, not JSON.
            status = int(fault[-3:])
            return Response(
                f"<html><body>{status} Error</body></html>",
                status=status,
                content_type="text/html",
            )
        if fault == "rate_202_empty":
            return Response(b"", status=202, headers={"Content-Length": "0"})
        if fault == "rate_html":
            return Response(LOGIN_PAGE, status=200, content_type="text/html")
        return error_response(500, *CANCELLED)

    def dispatch(self, request: Request, user: User, method: str) -> Response:
        """Route an authenticated request (also used for batch items)."""
        path = request.path
        match = TABLE_RE.match(path)
        if match:
            version, table, sys_id = match.groups()
            return handlers.table(
                self.instance, request, user, method, table, sys_id, version
            )
        match = STATS_RE.match(path)
        if match and method == "GET":
            return aggregate.stats(self.instance, request, user, match.group(1))
        if BATCH_RE.match(path) and method == "POST":
            return batch.batch(self, request, user)
        return error_response(
            400, "Requested URI does not represent any resource", None
        )

    # --- rate limits ---------------------------------------------------------------

    def rate_limit(self, user: User) -> tuple[dict[str, str], Response | None]:
        """Apply the matching rule; headers only when one matches (§9.1)."""
        rule = self.instance.rate_limiter.rule_for(
            self.faults.rate_limit_rules, user.name
        )
        if rule is None:
            return {}, None
        allowed, reset, wait = self.instance.rate_limiter.hit(
            rule, user.name, self.instance.now_dt()
        )
        headers = {
            "X-RateLimit-Limit": str(rule.limit),
            "X-RateLimit-Reset": str(reset),
            "X-RateLimit-Rule": rule.sys_id,
        }
        if allowed:
            return headers, None
        response = error_response(
            429,
            "Rate limit exceeded",
            f"Rate limit of {rule.limit} requests per hour for {rule.name} exceeded",
        )
        response.headers.update(headers)
        response.headers["Retry-After"] = str(wait)
        return headers, response

    # --- OAuth and the fault endpoint ----------------------------------------------

    def oauth(self, request: Request) -> Response:
        answer = self.instance.auth.grant(request.form.to_dict())
        if answer is None:
            body = {"error_description": "access_denied", "error": "server_error"}
            return json_response(body, 401)
        return json_response(answer)

    def fault_endpoint(self, request: Request, user: User, method: str) -> Response:
        """``POST /emulator/faults`` (admin): change switches; GET shows them."""
        if not user.is_admin:
            return error_response(403, "User Not Authorized", "Requires role 'admin'")
        if method == "POST":
            changes = request.get_json(force=True, silent=True) or {}
            if changes.pop("expire_tokens", False):
                self.instance.expire_tokens()
            try:
                self.faults.update(**changes)
            except (TypeError, ValueError) as exc:
                return error_response(400, "Invalid fault settings", str(exc))
        return json_response({"result": self.faults.as_dict()})
