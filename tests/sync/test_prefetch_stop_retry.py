"""A stop while storing page n must not wait for the read-ahead of page n+1."""

from __future__ import annotations

import threading
import time
from pathlib import Path

from connector.emulator.responses import error_response  # noqa: F401  (emulator side)
from connector.emulator.server import EmulatorServer
from connector.sync.incremental import run_incremental

from .helpers import Clock, make_settings, stored
from .test_cases import CASES, add_case, at, cursor


def test_stop_during_store_does_not_wait_out_a_429_on_the_page_read_ahead(
    tmp_path: Path,
) -> None:
    store_url = f"sqlite:///{tmp_path / 'store.db'}"
    clock = Clock(at("2026-01-02 12:00:00"))
    with EmulatorServer(accounts=0, clock=clock) as emu:
        ids = [add_case(emu, n, f"2026-01-02 10:{n:02d}:00") for n in range(30)]
        app = emu._server.app  # the emulator's WSGI app (test infrastructure)
        real = app.faulted
        pages: list[str] = []

        def faulted(request, user, method):  # type: ignore[no-untyped-def]
            if CASES in request.path and "ORDERBY" in request.args.get(
                "sysparm_query", ""
            ):
                pages.append(request.args.get("sysparm_query", ""))
                if len(pages) == 2:  # the page read ahead: rate limited once
                    response = app.fault_response("rate_429")
                    response.headers["Retry-After"] = "6"
                    return response
            return real(request, user, method)

        app.faulted = faulted
        settings = make_settings(
            emu, store_url, tables=[CASES], instance={"page_size": 10}
        )
        stop = threading.Event()
        stop.set()  # "finish the page in hand, commit and stop"

        started = time.monotonic()
        (run,) = run_incremental(settings, stop_event=stop)
        took = time.monotonic() - started

        assert (run.outcome, run.inserted) == ("stopped", 10)
        assert cursor(store_url) == (at("2026-01-02 10:09:00"), ids[9])
        assert len(stored(store_url, "case")) == 10
        assert [t for t in threading.enumerate() if t.name.startswith("fetch-")] == []
        # Before the read-ahead, a stop after page 1 returned at once.
        assert took < 3, took
