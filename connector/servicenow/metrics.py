"""Plain counters the client keeps; the daemon exports them to Prometheus."""

from __future__ import annotations

import threading
from collections import Counter
from dataclasses import dataclass, field


@dataclass
class ClientMetrics:
    """Thread-safe request counters, shared by a client and its clones.

    ``requests_by_status`` is keyed by the HTTP status as a string, or by
    ``"error"`` when no response arrived (connection failure, timeout).
    """

    requests_by_status: Counter[str] = field(default_factory=Counter)
    retries: int = 0
    rate_limited: int = 0
    bytes_received: int = 0
    token_refreshes: int = 0
    _lock: threading.Lock = field(
        default_factory=threading.Lock, repr=False, compare=False
    )

    def record_response(self, status: int | None, size: int) -> None:
        """Count one finished request (``status`` None when nothing came back)."""
        with self._lock:
            self.requests_by_status[str(status) if status else "error"] += 1
            self.bytes_received += size
            if status == 429:
                self.rate_limited += 1

    def record_retry(self) -> None:
        """Count one retry (a request sent again after a retriable fault)."""
        with self._lock:
            self.retries += 1

    def record_token_refresh(self) -> None:
        """Count one OAuth token fetch or refresh."""
        with self._lock:
            self.token_refreshes += 1

    @property
    def requests(self) -> int:
        """All requests sent so far, whatever their outcome."""
        with self._lock:
            return sum(self.requests_by_status.values())

    def snapshot(self) -> dict[str, object]:
        """A consistent copy of every counter, for export or a summary line."""
        with self._lock:
            return {
                "requests_by_status": dict(self.requests_by_status),
                "retries": self.retries,
                "rate_limited": self.rate_limited,
                "bytes_received": self.bytes_received,
                "token_refreshes": self.token_refreshes,
            }
