"""Cookie-bound sessions: one transaction at a time per session (§9.3).

An instance runs the requests of one ``JSESSIONID`` one after the other; when
too many queue on one session it answers ``202`` with an empty body and the
request never runs (pysnow #122). Clients that share one cookie jar across
parallel workers hit this; a jar per worker does not.
"""

from __future__ import annotations

import secrets
import threading
from collections.abc import Iterator
from contextlib import contextmanager


class SessionQueues:
    """In-flight counts and a run-one-at-a-time lock per session id."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._waiting: dict[str, int] = {}
        self._locks: dict[str, threading.Lock] = {}

    @staticmethod
    def new_id() -> str:
        return secrets.token_hex(16).upper()

    @contextmanager
    def run(self, session_id: str, limit: int) -> Iterator[bool]:
        """Yield False (do not run: answer 202) when ``limit`` are already queued."""
        with self._lock:
            queued = self._waiting.get(session_id, 0)
            if queued >= limit:
                admitted = False
            else:
                admitted = True
                self._waiting[session_id] = queued + 1
                lock = self._locks.setdefault(session_id, threading.Lock())
        if not admitted:
            yield False
            return
        try:
            with lock:
                yield True
        finally:
            with self._lock:
                self._waiting[session_id] -= 1
