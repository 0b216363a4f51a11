"""Fetch a worker's next page while its current page is mapped and stored.

Without this a worker takes turns: it waits for the instance, then keeps the
instance waiting while it maps and upserts. :func:`ahead` runs the pager one
page ahead on its own thread, so on a slow instance the store work hides behind
the next request. At most ``depth`` pages wait in the queue (two pages per worker
in memory with the one being stored), and checkpoints are unchanged: the caller
still commits each page's own ``last_cursor`` after storing it.
"""

from __future__ import annotations

import contextvars
import queue
import threading
from collections.abc import Iterable, Iterator
from typing import TypeVar

T = TypeVar("T")

_ITEM, _END, _ERROR = "item", "end", "error"
_POLL_SECONDS = 0.1


def ahead(items: Iterable[T], *, depth: int = 1, name: str = "prefetch") -> Iterator[T]:
    """Yield ``items`` in order while a thread produces up to ``depth`` more.

    An exception raised while producing is raised here, where its item would
    have come. Closing the generator early (a stop, an error while storing) tells
    the producer to quit; it finishes the request it is in and its page is
    dropped, never stored.
    """
    waiting: queue.Queue[tuple[str, object]] = queue.Queue(maxsize=depth)
    gone = threading.Event()

    def put(entry: tuple[str, object]) -> bool:
        while not gone.is_set():
            try:
                waiting.put(entry, timeout=_POLL_SECONDS)
                return True
            except queue.Full:
                continue
        return False

    def produce() -> None:
        try:
            for item in items:
                if not put((_ITEM, item)):
                    return
            put((_END, None))
        except BaseException as exc:  # handed to the consumer, raised there
            put((_ERROR, exc))

    # The producer logs with the caller's context (run id, table).
    context = contextvars.copy_context()
    thread = threading.Thread(
        target=context.run, args=(produce,), name=name, daemon=True
    )
    thread.start()
    try:
        while True:
            kind, value = waiting.get()
            if kind == _END:
                return
            if kind == _ERROR:
                assert isinstance(value, BaseException)
                raise value
            yield value  # type: ignore[misc]
    finally:
        gone.set()
        thread.join()
