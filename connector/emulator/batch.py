"""Batch API: ``POST /api/now/v1/batch`` (TABLE_API.md §7.1)."""

from __future__ import annotations

import base64
import time
from typing import TYPE_CHECKING, Any

from werkzeug.test import EnvironBuilder
from werkzeug.wrappers import Request, Response

from connector.emulator.auth import User
from connector.emulator.instance import ApiError
from connector.emulator.responses import error_response, json_response

if TYPE_CHECKING:
    from connector.emulator.app import EmulatorApp


def batch(app: EmulatorApp, request: Request, user: User) -> Response:
    """``POST /api/now/v1/batch``: run each item through the same router."""
    data = request.get_json(force=True, silent=True)
    if not isinstance(data, dict):
        raise ApiError(400, "Exception while reading request", "Invalid JSON body")
    faults = app.instance.faults
    started = time.monotonic()
    served: list[dict[str, Any]] = []
    unserviced: list[str] = []
    output = 0
    for item in data.get("rest_requests") or []:
        over_time = time.monotonic() - started > faults.batch_time_budget_s
        over_size = output > faults.batch_max_output_bytes
        if served and (over_time or over_size):
            unserviced.append(str(item.get("id", "")))
            continue
        result = _batch_item(app, request, user, item)
        output += len(result["body"])
        served.append(result)
    return json_response(
        {
            "batch_request_id": str(data.get("batch_request_id", "")),
            "serviced_requests": served,
            "unserviced_requests": unserviced,
        }
    )


def _batch_item(
    app: EmulatorApp, outer: Request, user: User, item: dict[str, Any]
) -> dict[str, Any]:
    started = time.monotonic()
    headers = {h["name"]: h["value"] for h in item.get("headers") or []}
    body = base64.b64decode(item["body"]) if item.get("body") else None
    environ = EnvironBuilder(
        path=item.get("url", "/"),
        base_url=outer.host_url,
        method=item.get("method", "GET").upper(),
        headers=headers,
        data=body,
    ).get_environ()
    inner = Request(environ)
    try:
        response = app.dispatch(inner, user, inner.method)
    except ApiError as exc:
        response = error_response(exc.status, exc.message, exc.detail)
    answer: dict[str, Any] = {
        "id": str(item.get("id", "")),
        "status_code": response.status_code,
        "status_text": response.status.split(" ", 1)[-1],
        "headers": []
        if item.get("exclude_response_headers")
        else [{"name": k, "value": v} for k, v in response.headers.items()],
        "body": base64.b64encode(response.get_data()).decode(),
        "execution_time": int((time.monotonic() - started) * 1000),
    }
    return answer
