"""Typed results the client returns: pages, dictionary entries, batch answers."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

# (cursor field value, sys_id): the KeysetPager position (KeyPager uses a bare sys_id).
Cursor = tuple[datetime, str]


@dataclass(frozen=True)
class Page:
    """One Table API page.

    ``total`` is ``X-Total-Count`` when a count was asked for (ACL-blind, so never
    "rows you will get"); ``server_time`` comes from the ``Date`` header; the
    pagers set ``last_cursor`` to the cursor of the page's last row.
    """

    rows: list[dict[str, Any]]
    total: int | None
    server_time: datetime | None
    headers: Mapping[str, str]
    last_cursor: Cursor | str | None = None


@dataclass(frozen=True)
class FieldInfo:
    """One column from ``sys_dictionary``; ``table`` is where it is defined."""

    name: str
    internal_type: str
    reference: str | None
    max_length: int | None
    table: str


@dataclass(frozen=True)
class BatchItem:
    """One request inside a Batch API call; ``url`` is relative (``/api/now/...``)."""

    id: str
    method: str
    url: str
    body: Mapping[str, Any] | None = None
    headers: Mapping[str, str] = field(default_factory=dict)


@dataclass(frozen=True)
class BatchResponse:
    """The instance's answer to one batch item; ``body`` is decoded JSON or None."""

    id: str
    status_code: int
    status_text: str
    body: Any
    headers: Mapping[str, str]
    error_message: str | None = None

    @property
    def ok(self) -> bool:
        """True for a 2xx inner status."""
        return 200 <= self.status_code < 300


@dataclass(frozen=True)
class BatchResult:
    """Serviced answers by item id, and ids the instance did not run (limits)."""

    serviced: dict[str, BatchResponse]
    unserviced: list[str]
