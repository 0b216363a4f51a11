"""The few instance operations write-back needs, on top of ``ServiceNowClient``.

Keeps write-back code free of paging, Batch API envelopes and dictionary
quirks: reads come back as plain string dicts, batch answers keyed by sys_id.
"""

from __future__ import annotations

import logging
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any

from connector.config import Settings
from connector.errors import InstanceError
from connector.servicenow import BatchItem, BatchResponse, KeyPager, Q, ServiceNowClient
from connector.servicenow.values import unwrap

log = logging.getLogger(__name__)

PAGE_SIZE = 1000
UNSERVICED_ROUNDS = 3


@dataclass(frozen=True)
class PatchRequest:
    """One record update for the Batch API."""

    table: str
    sys_id: str
    body: dict[str, str]


@dataclass(frozen=True)
class ItemAnswer:
    """A serviced batch item: the returned record, or why it failed."""

    record: dict[str, Any] | None
    error: str = ""


@dataclass(frozen=True)
class ColumnState:
    """What sys_dictionary says about a column write-back cares about."""

    name: str
    read_only: bool


class Client:
    """Write-back's view of the instance."""

    def __init__(self, client: ServiceNowClient, *, batch_size: int = 50) -> None:
        self.client = client
        self.batch_size = batch_size

    # --- reads -------------------------------------------------------------

    def rows(
        self,
        table: str,
        *,
        query: str,
        fields: Sequence[str],
        limit: int | None = None,
    ) -> Iterator[dict[str, str]]:
        """Every matching row (keyset paged), values as plain strings."""
        if limit is not None:
            page = self.client.get_page(table, query=query, fields=fields, limit=limit)
            yield from (_plain(r) for r in page.rows)
            return
        pager = KeyPager(
            self.client, table, base_query=query, fields=fields, page_size=PAGE_SIZE
        )
        for page in pager:
            yield from (_plain(r) for r in page.rows)

    def dictionary(self, table: str) -> dict[str, ColumnState]:
        """Columns of ``table`` and its parents with their read-only flag.

        Raises PermissionDeniedError when sys_dictionary shows nothing (non-admin).
        """
        known = self.client.dictionary(table)
        chain = self.client.table_chain(table)
        query = Q.and_(Q.in_("name", chain), Q.eq("read_only", "true")).encode()
        locked = {r["element"] for r in self.rows("sys_dictionary", query=query,
                                                  fields=["element"])}  # fmt: skip
        return {name: ColumnState(name, name in locked) for name in known}

    # --- writes ------------------------------------------------------------

    def create(self, table: str, record: dict[str, str]) -> dict[str, Any]:
        return self.client.create(table, record)

    def patch(self, table: str, sys_id: str, body: dict[str, str]) -> dict[str, Any]:
        return self.client.patch(table, sys_id, body)

    def batch_patch(self, requests: Sequence[PatchRequest]) -> dict[str, ItemAnswer]:
        """One Batch API call of PATCHes; sys_ids left out were not serviced."""
        items = [
            BatchItem(
                id=r.sys_id,
                method="PATCH",
                url=_patch_url(r),
                body=r.body,
            )
            for r in requests
        ]
        result = self.client.batch(items)
        return {key: _item_answer(item) for key, item in result.serviced.items()}

    def create_many(
        self, table: str, records: list[dict[str, str]]
    ) -> tuple[int, list[str]]:
        """Insert records (Batch API in groups); returns (created, error messages)."""
        created, errors = 0, []
        pending = dict(enumerate(records))
        for _round in range(UNSERVICED_ROUNDS):
            keys = list(pending)
            for start in range(0, len(keys), self.batch_size):
                group = keys[start : start + self.batch_size]
                done, failed = self._create_group(table, {k: pending[k] for k in group})
                created += len(done)
                errors.extend(failed.values())
                for key in [*done, *failed]:
                    pending.pop(key)
            if not pending:
                break
        errors.extend(f"insert not serviced: {r}" for r in pending.values())
        return created, errors

    def _create_group(
        self, table: str, group: dict[int, dict[str, str]]
    ) -> tuple[list[int], dict[int, str]]:
        items = [
            BatchItem(id=str(k), method="POST", url=f"/api/now/table/{table}", body=r)
            for k, r in group.items()
        ]
        try:
            result = self.client.batch(items)
        except InstanceError as exc:
            return [], {k: f"insert refused: {exc}" for k in group}
        done, failed = [], {}
        for key, record in group.items():
            item = result.serviced.get(str(key))
            if item is None:
                continue
            answer = _item_answer(item)
            missing = [f for f in record if answer.record is not None
                       and f not in answer.record]  # fmt: skip
            if answer.error:
                failed[key] = f"insert failed: {answer.error}"
            elif missing:
                failed[key] = (
                    f"insert dropped {', '.join(missing)}: field does not exist or "
                    "is not writable: run `csm-sync install-fields`"
                )
            else:
                done.append(key)
        return done, failed


def _patch_url(request: PatchRequest) -> str:
    """The item URL; answers carry only the sent fields (batch output cap, §7.1).

    An unknown name in sysparm_fields is ignored, so a field that does not
    exist is still absent from the answer and the write still reads as failed.
    """
    fields = ",".join(["sys_id", *request.body])
    return (
        f"/api/now/table/{request.table}/{request.sys_id}"
        f"?sysparm_exclude_reference_link=true&sysparm_fields={fields}"
    )


def _plain(row: dict[str, Any]) -> dict[str, str]:
    return {k: "" if v is None else str(unwrap(v)) for k, v in row.items()}


def _item_answer(item: BatchResponse) -> ItemAnswer:
    body = item.body if isinstance(item.body, dict) else {}
    if not item.ok:
        error = body.get("error") if isinstance(body.get("error"), dict) else {}
        text = (
            " ".join(
                str(part)
                for part in (error.get("message"), error.get("detail"))
                if part
            )
            or item.error_message
            or item.status_text
        )
        return ItemAnswer(
            None, f"the instance refused the write ({item.status_code}): {text}"
        )
    record = body.get("result")
    if not isinstance(record, dict):
        return ItemAnswer(
            None, f"the instance answered {item.status_code} without a record"
        )
    return ItemAnswer(record)


@contextmanager
def open_client(settings: Settings) -> Iterator[Client]:
    """A write-back client for the configured instance, closed afterwards."""
    with ServiceNowClient(settings.instance) as client:
        yield Client(client, batch_size=settings.writeback.batch_size)
