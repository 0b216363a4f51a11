"""ahead(): pages keep their order, errors arrive in place, a stop stops the reader."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from contextlib import closing

import pytest
from hypothesis import given
from hypothesis import strategies as st

from connector.sync.prefetch import ahead


class Boom(Exception):
    pass


def produced(items: list[int], fail_at: int | None, log: list[int]) -> Iterator[int]:
    for index, item in enumerate(items):
        if index == fail_at:
            raise Boom(index)
        log.append(item)
        yield item


@given(
    items=st.lists(st.integers(), max_size=30),
    depth=st.integers(min_value=1, max_value=4),
    fail_at=st.none() | st.integers(min_value=0, max_value=30),
)
def test_items_come_in_order_and_an_error_comes_where_it_happened(
    items: list[int], depth: int, fail_at: int | None
) -> None:
    log: list[int] = []
    got: list[int] = []
    failing = fail_at is not None and fail_at < len(items)

    if failing:
        with pytest.raises(Boom) as raised:
            for item in ahead(produced(items, fail_at, log), depth=depth):
                got.append(item)
        assert raised.value.args == (fail_at,)
        assert got == items[:fail_at]
    else:
        got = list(ahead(produced(items, fail_at, log), depth=depth))
        assert got == items


def test_the_reader_runs_at_most_depth_items_ahead_and_stops_when_closed() -> None:
    handed: list[int] = []
    released = threading.Semaphore(0)

    def source() -> Iterator[int]:
        for n in range(100):
            handed.append(n)
            released.release()
            yield n

    with closing(ahead(source(), depth=2)) as pages:
        first = next(pages)
        # One item taken and two more read: a request starts only for a free slot.
        for _ in range(3):
            assert released.acquire(timeout=5)
        assert not released.acquire(timeout=0.3)
    threads = [t.name for t in threading.enumerate() if t.name == "prefetch"]

    assert first == 0
    assert handed == [0, 1, 2]
    assert threads == []  # the reader thread ended with the generator
