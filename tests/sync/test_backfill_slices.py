"""Backfill slices of equal row counts, read from X-Total-Count (issue 7)."""

from __future__ import annotations

from datetime import timedelta

from hypothesis import given
from hypothesis import strategies as st

from connector.emulator.server import EmulatorServer
from connector.mapping.loader import load_mappings
from connector.store.engine import open_store
from connector.sync import checkpoints
from connector.sync.backfill import run_backfill, slice_offsets
from connector.sync.runner import open_session

from .helpers import Clock, assert_store_matches_source, make_settings, shipped

CASES = "sn_customerservice_case"


@given(
    total=st.integers(min_value=0, max_value=200_000),
    page_size=st.integers(min_value=10, max_value=2000),
    workers=st.integers(min_value=1, max_value=32),
    max_pages=st.integers(min_value=1, max_value=200),
)
def test_slice_offsets_are_whole_pages_and_balanced(
    total: int, page_size: int, workers: int, max_pages: int
) -> None:
    offsets = slice_offsets(total, page_size, workers, max_pages)

    starts = [0, *offsets]
    sizes = [end - start for start, end in zip(starts, [*offsets, total], strict=True)]
    pages = -(-total // page_size)
    assert offsets == sorted(set(offsets))
    assert all(0 < o < total and o % page_size == 0 for o in offsets)
    assert all(size > 0 for size in sizes) or total == 0
    if pages <= 1:
        assert offsets == []
    if offsets:
        # Every slice but the last is the same whole number of pages, and no
        # more slices than needed to give each worker a share or respect the cap.
        assert len({size for size in sizes[:-1]}) == 1
        per = sizes[0] // page_size
        assert sizes[-1] <= sizes[0]
        assert per <= max_pages or per <= -(-pages // workers)
        ideal = -(-pages // max(workers, -(-pages // max_pages)))
        assert per <= ideal + 1
    if offsets:
        # Slices are handed to workers in rounds; the busiest worker reads at most
        # one page per round more than a perfect split of the pages would give it.
        rounds = -(-len(starts) // workers)
        per = sizes[0] // page_size
        assert per * rounds <= -(-pages // workers) + rounds - 1


def test_a_backfill_cuts_each_table_into_balanced_slices(tmp_sqlite_url: str) -> None:
    clock = Clock()
    with EmulatorServer(accounts=12, seed=5, clock=clock) as emu:
        clock.advance(5)
        settings = make_settings(
            emu,
            tmp_sqlite_url,
            tables=[CASES],
            workers=3,
            slice_pages=100,
            instance={"page_size": 10},
        )
        total = emu.instance.count(CASES)
        before = emu.instance.request_count

        results = run_backfill(settings)

        requests = emu.instance.request_count - before
        session = open_session(settings, tables=[CASES])
        slices = checkpoints.job_slices(session.store, session.prepared[0].mapping)
        session.close()
        assert_store_matches_source(emu, tmp_sqlite_url, shipped(CASES))

    assert [r.outcome for r in results] == ["ok"]
    assert results[0].inserted == total > 60
    # One slice per worker, each a third of the rows (whole pages of 10; rows
    # sharing a second at a cut go to one side).
    assert len(slices) == 3 and all(s.done for s in slices)
    share = -(-total // 10 // 3) * 10
    assert [abs(s.rows - share) <= 5 for s in slices[:-1]] == [True, True]
    assert sum(s.rows for s in slices) == total
    # Pages of 10, none empty: at most one short page per slice, plus the
    # survey, the two cuts, the clock and the session's metadata lookups.
    pages = -(-total // 10) + len(slices)
    assert requests <= pages + 4 + 40


def test_until_past_the_instance_clock_is_pulled_back(tmp_sqlite_url: str) -> None:
    clock = Clock()
    with EmulatorServer(accounts=3, seed=5, clock=clock) as emu:
        clock.advance(5)
        settings = make_settings(emu, tmp_sqlite_url, tables=[CASES], lag_seconds=30)
        future = clock.now + timedelta(days=400)

        run_backfill(settings, until=future)

        store = open_store(tmp_sqlite_url, migrate=False)
        mapping = load_mappings(settings.mappings_dir, tables=[CASES])[0]
        slices = checkpoints.job_slices(store, mapping)
        store.dispose()
    assert checkpoints.as_utc(slices[0].job_until) == (
        clock.now.replace(microsecond=0) - timedelta(seconds=30)
    )
