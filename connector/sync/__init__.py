"""Sync engine: incremental windows, backfills, deletes, run records.

Entry points for other roles (the daemon, the demo) are loaded on first use so
that ``csm-sync --help`` stays quick::

    from connector.sync import run_backfill, run_incremental, run_reconcile

    results = run_incremental(settings, stop_event=event)  # list[RunResult]
"""

from __future__ import annotations

from importlib import import_module
from typing import Any

_EXPORTS = {
    "run_backfill": "connector.sync.backfill",
    "run_incremental": "connector.sync.incremental",
    "run_reconcile": "connector.sync.incremental",
    "run_check": "connector.sync.checks",
    "collect_status": "connector.sync.status",
    "open_session": "connector.sync.runner",
    "RunResult": "connector.sync.runner",
    "SyncSession": "connector.sync.runner",
}

__all__ = sorted(_EXPORTS)


def __getattr__(name: str) -> Any:
    if name in _EXPORTS:
        return getattr(import_module(_EXPORTS[name]), name)
    raise AttributeError(f"module 'connector.sync' has no attribute {name!r}")
