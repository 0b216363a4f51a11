"""Retry policy (tenacity): only transient faults, ``Retry-After`` honoured exactly.

Rules (TABLE_API §9.4, C10): retry :class:`RetriableInstanceError` only; when the
instance says ``Retry-After`` wait exactly that long (jitter would wake us early
into another 429); when it asks for longer than ``retry_after_ceiling_seconds``
raise :class:`RateLimitCeilingError` at once so the sync checkpoints and stops;
otherwise wait capped, jittered exponential backoff. The original error is
re-raised after the last attempt (no ``RetryError`` leaks).
"""

from __future__ import annotations

import contextvars
import logging
import threading
import time
from collections.abc import Callable
from typing import TypeVar

from tenacity import (
    RetryCallState,
    Retrying,
    retry_if_exception,
    stop_after_attempt,
    wait_random_exponential,
)

from connector.config import InstanceSettings
from connector.errors import (
    InstanceUnreachableError,
    RateLimitCeilingError,
    RetriableInstanceError,
)
from connector.servicenow.metrics import ClientMetrics

logger = logging.getLogger(__name__)

T = TypeVar("T")
BACKOFF_MULTIPLIER_SECONDS = 0.5
# A refused connection or an unknown host rarely heals within a minute; retry it
# briefly (an instance restarting) and let the next run or tick try again, so
# that a wrong URL fails in seconds rather than after the whole backoff ladder.
UNREACHABLE_ATTEMPTS = 3
UNREACHABLE_WAIT_CAP_SECONDS = 2.0


def is_retriable(exc: BaseException) -> bool:
    """Any transient fault; safe for reads and idempotent writes (PATCH, DELETE)."""
    return isinstance(exc, RetriableInstanceError)


def is_not_executed(exc: BaseException) -> bool:
    """Only faults where the instance certainly did not run the request (429).

    Used for POST: a 5xx, a timeout or an empty 202 may hide a record that was
    created anyway, so re-sending could duplicate it.
    """
    return isinstance(exc, RetriableInstanceError) and exc.status == 429


def _stop_when_unreachable(state: RetryCallState) -> bool:
    exc = state.outcome.exception() if state.outcome else None
    return (
        isinstance(exc, InstanceUnreachableError)
        and state.attempt_number >= UNREACHABLE_ATTEMPTS
    )


# Set on a read-ahead thread (connector.sync.prefetch): retries stop waiting
# once the pages it reads are no longer wanted.
CANCEL: contextvars.ContextVar[threading.Event | None] = contextvars.ContextVar(
    "retry_cancel", default=None
)


class RetryCancelled(Exception):
    """A retry wait given up because its reader was closed."""


class RetryPolicy:
    """Runs a call with the instance's retry settings and an injectable sleep."""

    def __init__(
        self,
        settings: InstanceSettings,
        *,
        metrics: ClientMetrics,
        sleep: Callable[[float], None] = time.sleep,
    ) -> None:
        self.settings = settings
        self.metrics = metrics
        self.sleep = sleep
        self._backoff = wait_random_exponential(
            multiplier=BACKOFF_MULTIPLIER_SECONDS, max=settings.backoff_cap_seconds
        )

    def call(
        self,
        attempt: Callable[[], T],
        *,
        what: str,
        retry_on: Callable[[BaseException], bool] = is_retriable,
    ) -> T:
        """Run ``attempt`` until it succeeds, fails for good, or retries run out."""
        retrying = Retrying(
            retry=retry_if_exception(retry_on),
            stop=stop_after_attempt(self.settings.max_retries + 1)
            | _stop_when_unreachable,
            wait=self._wait,
            sleep=self._sleep,
            before_sleep=lambda state: self._before_sleep(state, what),
            reraise=True,
        )
        return retrying(self._guard_ceiling, attempt)

    def _sleep(self, seconds: float) -> None:
        """Wait before a retry; a reader whose consumer has gone stops waiting.

        An injected sleep (tests, a fake clock) is always called, so it sees
        every wait; only the real one is swapped for the cancellable wait.
        """
        cancel = CANCEL.get()
        if cancel is None or self.sleep is not time.sleep:
            self.sleep(seconds)
        else:
            cancel.wait(seconds)
        if cancel is not None and cancel.is_set():
            raise RetryCancelled("the reader's consumer has gone")

    def _guard_ceiling(self, attempt: Callable[[], T]) -> T:
        """Turn a too-long ``Retry-After`` into a clean stop instead of a wait."""
        try:
            return attempt()
        except RetriableInstanceError as exc:
            ceiling = self.settings.retry_after_ceiling_seconds
            if exc.retry_after is not None and exc.retry_after > ceiling:
                raise RateLimitCeilingError(
                    f"The instance asked to wait {exc.retry_after:.0f} s before "
                    f"retrying, above the {ceiling:.0f} s ceiling "
                    "(instance.retry_after_ceiling_seconds). Stopping this run; "
                    "the next scheduled run resumes from the saved cursor.",
                    retry_after=exc.retry_after,
                    status=exc.status,
                    url=exc.url,
                    snippet=exc.snippet,
                ) from exc
            raise

    def _wait(self, state: RetryCallState) -> float:
        """``Retry-After`` exactly when given, else capped jittered backoff."""
        exc = state.outcome.exception() if state.outcome else None
        retry_after = getattr(exc, "retry_after", None)
        if retry_after is not None:
            return float(retry_after)
        if isinstance(exc, InstanceUnreachableError):
            return min(float(self._backoff(state)), UNREACHABLE_WAIT_CAP_SECONDS)
        return float(self._backoff(state))

    def _before_sleep(self, state: RetryCallState, what: str) -> None:
        self.metrics.record_retry()
        exc = state.outcome.exception() if state.outcome else None
        wait = state.next_action.sleep if state.next_action else 0.0
        logger.warning(
            "Retrying %s in %.1f s (attempt %d of %d): %s",
            what,
            wait,
            state.attempt_number + 1,
            self.settings.max_retries + 1,
            exc,
        )
