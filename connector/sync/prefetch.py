"""Fetch a worker's next page while its current page is mapped and stored.

Without this a worker takes turns: it waits for the instance, then keeps the
instance waiting while it maps and upserts. :func:`ahead` runs the pager one
page ahead on its own thread, so on a slow instance the store work hides behind
the next request. The producer starts a request only when fewer than ``depth``
pages are waiting or being fetched, so with the default a worker holds two pages
(the one being stored and the next), and a stop or an error while storing page
*n* leaves at most page *n + 1* read and dropped. Checkpoints are unchanged: the
caller still commits each page's own ``last_cursor`` after storing it.
"""

from __future__ import annotations

import contextvars
import queue
import threading
from collections.abc import Iterable, Iterator
from typing import TypeVar

from connector.servicenow.retry import CANCEL

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
    waiting: queue.SimpleQueue[tuple[str, object]] = queue.SimpleQueue()
    # One slot per page fetched but not yet taken: taken before each request,
    # given back when the consumer takes a page.
    slots = threading.Semaphore(depth)
    gone = threading.Event()

    def claim() -> bool:
        while not gone.is_set():
            if slots.acquire(timeout=_POLL_SECONDS):
                return not gone.is_set()
        return False

    def produce() -> None:
        try:
            pages = iter(items)
            while claim():
                try:
                    item = next(pages)
                except StopIteration:
                    waiting.put((_END, None))
                    return
                waiting.put((_ITEM, item))
        except BaseException as exc:  # handed to the consumer, raised there
            waiting.put((_ERROR, exc))

    # The producer logs with the caller's context (run id, table).
    context = contextvars.copy_context()
    context.run(CANCEL.set, gone)
    thread = threading.Thread(
        target=context.run, args=(produce,), name=name, daemon=True
    )
    thread.start()
    try:
        while True:
            kind, value = waiting.get()
            slots.release()
            if kind == _END:
                return
            if kind == _ERROR:
                assert isinstance(value, BaseException)
                raise value
            yield value  # type: ignore[misc]
    finally:
        gone.set()
        thread.join()
