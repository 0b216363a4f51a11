"""Response helpers shared by the handlers: ServiceNow's JSON and error shapes."""

from __future__ import annotations

import json
from typing import Any

from werkzeug.wrappers import Response

JSON_TYPE = "application/json;charset=UTF-8"
CANCELLED = (
    "Transaction cancelled: maximum execution time exceeded",
    "Transaction cancelled: maximum execution time exceeded Check logs for error"
    " trace or enable glide.rest.debug property to verify REST request processing",
)


def json_response(
    body: Any, status: int = 200, headers: dict[str, str] | None = None
) -> Response:
    """A JSON response with ServiceNow's exact content type."""
    data = json.dumps(body, ensure_ascii=False, separators=(",", ":"))
    return Response(
        data.encode(), status=status, headers=headers, content_type=JSON_TYPE
    )


def error_response(status: int, message: str, detail: str | None = None) -> Response:
    """The ServiceNow error envelope (§8.1)."""
    body = {"error": {"message": message, "detail": detail}, "status": "failure"}
    return json_response(body, status)


def unauthenticated() -> Response:
    return error_response(
        401, "User Not Authenticated", "Required to provide Auth information"
    )
