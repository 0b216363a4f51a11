"""Send account diffs: single PATCHes for a few accounts, the Batch API for many.

Both paths end in the same place: for each account, the record the instance
returned (or why there is none), handed to :mod:`verify`. Batch items the
instance did not service (time or size limit, TABLE_API §7.1) are sent again in
a later batch, a bounded number of times.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass

from connector.errors import (
    AuthError,
    InstanceError,
    RateLimitCeilingError,
    RetriableInstanceError,
    TLSError,
)
from connector.writeback import instance as sn
from connector.writeback.diff import AccountDiff

log = logging.getLogger(__name__)

UNSERVICED_ROUNDS = 3
# Errors about the connection, not the record: every further write would fail
# the same way, so the run stops instead of logging thousands of failures.
RUN_ENDING = (AuthError, RateLimitCeilingError, RetriableInstanceError, TLSError)


@dataclass(frozen=True)
class Answer:
    """The instance's answer to one account's write: a record or an error."""

    account: str
    record: dict[str, object] | None
    error: str = ""


Guard = Callable[[str, Sequence[str]], None]


def send_diffs(
    client: sn.Client,
    table: str,
    diffs: list[AccountDiff],
    *,
    threshold: int,
    batch_size: int,
    guard: Guard,
) -> Iterator[Answer]:
    """PATCH each diff (below ``threshold`` accounts) or send them in batches."""
    for diff in diffs:
        guard(table, list(diff.body))
    if len(diffs) < threshold:
        yield from (_patch_one(client, table, d) for d in diffs)
    else:
        yield from _send_batches(client, table, diffs, batch_size)


def _patch_one(client: sn.Client, table: str, diff: AccountDiff) -> Answer:
    try:
        record = client.patch(table, diff.account, diff.body)
    except RUN_ENDING:
        raise
    except InstanceError as exc:
        return Answer(diff.account, None, _request_error(exc))
    return Answer(diff.account, record)


def _request_error(exc: InstanceError) -> str:
    status = f" ({exc.status})" if exc.status else ""
    return f"the instance refused the write{status}: {exc}"


def _chunks(items: list[AccountDiff], size: int) -> Iterator[list[AccountDiff]]:
    for start in range(0, len(items), size):
        yield items[start : start + size]


def _send_batches(
    client: sn.Client, table: str, diffs: list[AccountDiff], batch_size: int
) -> Iterator[Answer]:
    pending = diffs
    for round_no in range(1, UNSERVICED_ROUNDS + 1):
        unserviced: list[AccountDiff] = []
        for group in _chunks(pending, batch_size):
            answers, left = _send_batch(client, table, group)
            yield from answers
            unserviced.extend(left)
        if not unserviced:
            return
        log.warning(
            "Batch API left %d writes unserviced; retrying (round %d of %d)",
            len(unserviced),
            round_no,
            UNSERVICED_ROUNDS,
        )
        pending = unserviced
    for diff in pending:
        yield Answer(
            diff.account,
            None,
            f"not serviced by the Batch API after {UNSERVICED_ROUNDS} rounds "
            "(instance time or size limit): run write-back again",
        )


def _send_batch(
    client: sn.Client, table: str, group: list[AccountDiff]
) -> tuple[list[Answer], list[AccountDiff]]:
    """One Batch API call; returns answers and the diffs left unserviced."""
    requests = [sn.PatchRequest(table, d.account, d.body) for d in group]
    try:
        outcome = client.batch_patch(requests)
    except RUN_ENDING:
        raise
    except InstanceError as exc:
        return [Answer(d.account, None, _request_error(exc)) for d in group], []

    answers, left = [], []
    for diff in group:
        item = outcome.get(diff.account)
        if item is None:
            left.append(diff)
        elif item.error:
            answers.append(Answer(diff.account, None, item.error))
        else:
            answers.append(Answer(diff.account, item.record))
    return answers, left
