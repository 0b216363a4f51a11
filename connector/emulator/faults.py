"""Fault switches: the ways a real instance misbehaves, on demand.

Every probability is drawn from one seeded :class:`random.Random`, one draw per
fault per request in a fixed order, so a given seed and request sequence gives
the same faults every run.
"""

from __future__ import annotations

import dataclasses
import hashlib
import random
import threading
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

# Order matters: it fixes the sequence of random draws per request.
RATE_FAULTS = (
    "rate_429",
    "rate_500",
    "rate_502",
    "rate_503",
    "rate_202_empty",
    "rate_html",
    "rate_truncated",
    "rate_cancelled",
)


@dataclass
class RateLimitRule:
    """A ``sys_rate_limit_rules`` row: requests per hour for one user or all."""

    limit: int
    user: str | None = None
    sys_id: str = ""
    name: str = "Table API"

    def __post_init__(self) -> None:
        if not self.sys_id:
            key = f"rate-limit-rule:{self.user}:{self.limit}:{self.name}"
            self.sys_id = hashlib.md5(key.encode()).hexdigest()


@dataclass
class FaultSettings:
    """Run-time switches; mutate fields directly or use :meth:`update`."""

    latency_ms: float = 0.0
    latency_per_row_ms: float = 0.0
    rate_429: float = 0.0
    retry_after: int | None = 60
    rate_500: float = 0.0
    rate_502: float = 0.0
    rate_503: float = 0.0
    rate_202_empty: float = 0.0
    rate_html: float = 0.0
    rate_truncated: float = 0.0
    rate_cancelled: float = 0.0
    max_page_rows: int | None = None
    rate_hang: float = 0.0
    hang_seconds: float = 0.0
    clock_skew_seconds: float = 0.0
    include_writes: bool = False
    seed: int = 0
    invalid_query_returns_no_rows: bool = False
    unstable_order: bool = False
    # Requests allowed to queue on one JSESSIONID before 202-empty (None = off).
    session_queue_limit: int | None = None
    batch_time_budget_s: float = 30.0
    batch_max_output_bytes: int = 10 * 1024 * 1024
    rate_limit_rules: list[RateLimitRule] = field(default_factory=list)

    def __post_init__(self) -> None:
        self._rng = random.Random(self.seed)
        self._rng_lock = threading.Lock()
        self._expire: Callable[[], None] | None = None

    def bind_expire(self, callback: Callable[[], None]) -> None:
        """Called by the instance so :meth:`expire_tokens` reaches its tokens."""
        self._expire = callback

    def expire_tokens(self) -> None:
        """Make every OAuth access token invalid now (C11)."""
        if self._expire is not None:
            self._expire()

    def update(self, **changes: Any) -> None:
        """Set several fields; a new ``seed`` restarts the random sequence."""
        names = {f.name for f in dataclasses.fields(self)}
        for key, value in changes.items():
            if key not in names:
                raise ValueError(f"unknown fault setting {key!r}")
            if key == "rate_limit_rules":
                value = [
                    r if isinstance(r, RateLimitRule) else RateLimitRule(**r)
                    for r in value
                ]
            setattr(self, key, value)
        if "seed" in changes:
            self.reseed(self.seed)

    def reseed(self, seed: int) -> None:
        with self._rng_lock:
            self.seed = seed
            self._rng = random.Random(seed)

    def draw(self) -> tuple[str | None, bool]:
        """Pick this request's fault (first hit wins) and whether it hangs."""
        with self._rng_lock:
            hang = self._rng.random() < self.rate_hang
            chosen = None
            for name in RATE_FAULTS:
                hit = self._rng.random() < getattr(self, name)
                if hit and chosen is None:
                    chosen = name
        return chosen, hang

    def salt(self) -> int:
        """A fresh tie-breaking salt for ``unstable_order`` (seeded)."""
        with self._rng_lock:
            return self._rng.randrange(2**31)

    def as_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)
