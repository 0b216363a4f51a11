"""The harness's measured runs: peak memory is the child's own; the time cap."""

from __future__ import annotations

import sys
import time

from . import load_bench_module

harness = load_bench_module("harness")
TOUCH_MB = 60
# A child that holds TOUCH_MB of touched memory for a moment, then exits.
HOLD = (
    f"b = bytearray({TOUCH_MB} * 1024 * 1024)\n"
    "for i in range(0, len(b), 4096): b[i] = 1\n"
    "import time; time.sleep(0.4)\n"
)


def test_peak_memory_is_the_childs_own_not_the_harness_size() -> None:
    """Linux hands a parent's resident size to its child's ru_maxrss across
    fork and exec; a harness that has grown must not inflate the figure."""
    grown = bytearray(300 * 1024 * 1024)
    for i in range(0, len(grown), 4096):
        grown[i] = 1

    run = harness.measure([sys.executable, "-c", HOLD])

    assert run.returncode == 0
    assert TOUCH_MB <= run.peak_rss_mb < TOUCH_MB + 60  # not ~300 MB
    del grown


def test_a_run_past_its_timeout_is_killed_and_says_so() -> None:
    started = time.perf_counter()

    run = harness.measure(
        [sys.executable, "-c", "import time; time.sleep(30)"], timeout=0.5
    )

    assert run.timed_out is True
    assert time.perf_counter() - started < 10
    try:
        run.check("sleeper")
    except RuntimeError as exc:
        assert "did not finish in" in str(exc)
    else:
        raise AssertionError("a timed-out run must not pass check()")


def test_a_run_within_its_timeout_is_not_marked() -> None:
    run = harness.measure([sys.executable, "-c", "pass"], timeout=30)

    assert run.timed_out is False and run.returncode == 0
