"""Encode and decode Batch API payloads (``POST /api/now/v1/batch``, TABLE_API §7.1).

Item bodies travel base64-encoded in both directions. The outer call answers 200
even when items fail; each item carries its own status, and items the instance did
not run (size or 30 s time limits) are listed as unserviced.
"""

from __future__ import annotations

import base64
import json
import uuid
from collections.abc import Mapping, Sequence
from typing import Any

from connector.errors import InstanceError
from connector.servicenow.models import BatchItem, BatchResponse, BatchResult


def encode_batch(items: Sequence[BatchItem]) -> str:
    """The JSON request body for a batch of ``items``."""
    payload = {
        "batch_request_id": uuid.uuid4().hex,
        "rest_requests": [_encode_item(item) for item in items],
    }
    return json.dumps(payload)


def decode_batch(payload: Any) -> BatchResult:
    """Serviced answers (inner bodies decoded) and unserviced item ids."""
    if not isinstance(payload, dict):
        raise InstanceError("The Batch API answer was not a JSON object.")
    serviced = {}
    for item in payload.get("serviced_requests") or []:
        response = _decode_item(item)
        serviced[response.id] = response
    unserviced = [_item_id(item) for item in payload.get("unserviced_requests") or []]
    return BatchResult(serviced=serviced, unserviced=unserviced)


def _encode_item(item: BatchItem) -> dict[str, Any]:
    headers = {"Accept": "application/json", **item.headers}
    if item.body is not None:
        headers.setdefault("Content-Type", "application/json")
    request: dict[str, Any] = {
        "id": item.id,
        "method": item.method.upper(),
        "url": item.url,
        "headers": [{"name": k, "value": v} for k, v in headers.items()],
        "exclude_response_headers": False,
    }
    if item.body is not None:
        raw = json.dumps(dict(item.body)).encode()
        request["body"] = base64.b64encode(raw).decode("ascii")
    return request


def _item_id(item: Any) -> str:
    """Unserviced entries may be bare ids or ``{"id": ...}`` objects."""
    return str(item.get("id") if isinstance(item, dict) else item)


def _decode_item(item: Mapping[str, Any]) -> BatchResponse:
    raw = base64.b64decode(item.get("body") or "")
    try:
        body = json.loads(raw) if raw.strip() else None
    except ValueError:
        body = raw.decode("utf-8", errors="replace")
    headers = {h.get("name", ""): h.get("value", "") for h in item.get("headers") or []}
    return BatchResponse(
        id=str(item.get("id")),
        status_code=int(item.get("status_code") or 0),
        status_text=str(item.get("status_text") or ""),
        body=body,
        headers=headers,
        error_message=item.get("error_message") or None,
    )
