"""Tables synced by full reads (``mode: full``): re-read by sys_id, sweep the rest."""

from __future__ import annotations

import threading

from connector.sync.deletes import full_refresh
from connector.sync.prepare import PreparedMapping
from connector.sync.pull import RunStats
from connector.sync.runner import RunResult, SyncSession, run_table


def full_table(
    session: SyncSession,
    prepared: PreparedMapping,
    mode: str,
    *,
    run: bool = True,
    stop_event: threading.Event | None = None,
) -> RunResult:
    """One recorded full re-read of a ``mode: full`` table (no-op unless ``run``)."""

    def body(run_id: int, stats: RunStats) -> bool:
        if not run:
            return True
        return full_refresh(
            client=session.client,
            store=session.store,
            prepared=prepared,
            page_size=session.settings.instance.page_size,
            stats=stats,
            run_id=run_id,
            stop_event=stop_event,
            batch_size=session.settings.store.batch_size,
        )

    return run_table(session, prepared, mode, (None, None), body)
