"""Hostile inputs against this session's sync changes (pager count stop, row-count
backfill slices, page prefetch, metadata cache, shared audit scan).

Each test drives the real parts (loopback emulator, a real SQLite file, the real
client) and asserts a guarantee the change must keep.
"""

from __future__ import annotations

import hashlib
import http.server
import secrets
import threading
import time
from collections import Counter
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
import requests

from connector.config import InstanceSettings
from connector.emulator.server import EmulatorServer
from connector.servicenow import KeysetPager, ServiceNowClient
from connector.sync import checkpoints
from connector.sync.backfill import run_backfill
from connector.sync.runner import open_session

from .helpers import Clock, assert_store_matches_source, make_settings, shipped, stored

CASES = "sn_customerservice_case"
START = datetime(2026, 2, 1, 9, 0, 0, tzinfo=UTC)


def stamp(moment: datetime) -> str:
    return moment.strftime("%Y-%m-%d %H:%M:%S")


def acl_hidden(sys_id: str) -> bool:
    """The emulator's row ACL for ``acl_limited`` (about 30% of cases)."""
    return hashlib.md5(sys_id.encode()).digest()[0] % 10 < 3


def sys_ids(count: int, *, hidden: bool) -> list[str]:
    """``count`` random sys_ids the ``acl_limited`` user can (not) read, sorted."""
    found: list[str] = []
    while len(found) < count:
        key = secrets.token_hex(16)
        if acl_hidden(key) == hidden:
            found.append(key)
    return sorted(found)


def case(sys_id: str, moment: datetime, number: int) -> dict[str, str]:
    return {
        "sys_id": sys_id,
        "number": f"CS{number:07d}",
        "short_description": f"case {number}",
        "sys_created_on": stamp(moment),
        "sys_updated_on": stamp(moment),
        "state": "1",
    }


def client_for(url: str, user: str, password: str, **extra: Any) -> ServiceNowClient:
    settings = InstanceSettings.model_validate(
        {
            "url": url,
            "auth": {"method": "basic", "username": user, "password": password},
            "backoff_cap_seconds": 0.05,
            **extra,
        }
    )
    return ServiceNowClient(settings)


def pager_ids(pager: KeysetPager) -> list[str]:
    return [row["sys_id"] for page in pager for row in page.rows]


class HeaderProxy:
    """A loopback HTTP proxy in front of the emulator that drops or rewrites
    ``X-Total-Count`` (a gateway that strips headers it does not know)."""

    def __init__(self, upstream: str, *, total: str | None = "drop") -> None:
        self.upstream = upstream
        self.mode = total
        proxy = self

        class Handler(http.server.BaseHTTPRequestHandler):
            def log_message(self, *args: Any) -> None:
                pass

            def _forward(self) -> None:
                length = int(self.headers.get("Content-Length") or 0)
                body = self.rfile.read(length) if length else None
                headers = {
                    k: v
                    for k, v in self.headers.items()
                    if k.lower() not in ("host", "content-length", "connection")
                }
                reply = requests.request(
                    self.command,
                    proxy.upstream + self.path,
                    headers=headers,
                    data=body,
                    timeout=30,
                )
                content = reply.content
                self.send_response_only(reply.status_code)
                for key, value in reply.headers.items():
                    low = key.lower()
                    if low in (
                        "content-length",
                        "transfer-encoding",
                        "content-encoding",
                        "connection",
                    ):
                        continue
                    if low == "x-total-count":
                        if proxy.mode == "drop":
                            continue
                        if proxy.mode == "double":
                            value = str(int(value) * 2)
                    self.send_header(key, value)
                self.send_header("Content-Length", str(len(content)))
                self.end_headers()
                self.wfile.write(content)

            do_GET = do_POST = do_PUT = do_PATCH = do_DELETE = _forward

        self.server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_port}"
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)

    def __enter__(self) -> HeaderProxy:
        self.thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.server.shutdown()
        self.server.server_close()


@pytest.fixture
def blank() -> Iterator[EmulatorServer]:
    """A fresh instance without CSM data, its clock well after ``START``."""
    clock = Clock(START + timedelta(days=2))
    with EmulatorServer(accounts=0, seed=7, clock=clock) as emu:
        yield emu


# --- 1. the bounded window's count stop ------------------------------------------


def test_acl_hidden_whole_pages_at_both_ends_of_a_bounded_window(blank) -> None:
    """Whole pages of rows the user may not read, first and last, with the count
    stop on: every readable row exactly once, none of the hidden ones."""
    hidden_head = sys_ids(25, hidden=True)
    visible = sys_ids(23, hidden=False)
    hidden_tail = sys_ids(25, hidden=True)
    rows = (
        [case(k, START, n) for n, k in enumerate(hidden_head)]
        + [
            case(k, START + timedelta(seconds=1 + n % 3), 100 + n)
            for n, k in enumerate(visible)
        ]
        + [
            case(k, START + timedelta(seconds=10), 200 + n)
            for n, k in enumerate(hidden_tail)
        ]
    )
    blank.instance.load_rows(CASES, rows)
    client = client_for(blank.url, blank.acl_user, blank.acl_password)
    try:
        pager = KeysetPager(
            client,
            CASES,
            fields=["number"],
            page_size=10,
            since=None,
            until=START + timedelta(seconds=60),
        )
        got = pager_ids(pager)
    finally:
        client.close()

    assert Counter(got) == Counter(visible)


def test_rows_deleted_and_moved_out_while_a_bounded_window_is_paged(blank) -> None:
    """Deletes and updates ahead of the cursor shrink the window below the count
    its first request saw; every row left untouched still comes back once."""
    keys = sorted(secrets.token_hex(16) for _ in range(120))
    blank.instance.load_rows(
        CASES,
        [case(k, START + timedelta(seconds=n // 7), n) for n, k in enumerate(keys)],
    )
    until = START + timedelta(hours=1)
    client = client_for(blank.url, blank.admin_user, blank.admin_password)
    touched: set[str] = set()
    got: list[str] = []
    try:
        pager = KeysetPager(
            client, CASES, fields=["number"], page_size=20, since=None, until=until
        )
        for index, page in enumerate(pager):
            got += [row["sys_id"] for row in page.rows]
            if index == 0:
                ahead = [k for k in keys if k not in got]
                for key in ahead[::9]:
                    blank.instance.delete(CASES, key)
                    touched.add(key)
                for key in ahead[4::9]:
                    blank.instance.update(CASES, key, {"short_description": "x"})
                    touched.add(key)
                # New rows carry the instance's clock, past the window's end.
                blank.instance.insert(CASES, {"short_description": "new"})
    finally:
        client.close()

    assert Counter(got) - Counter(touched) == Counter(set(keys) - touched)
    assert len(got) == len(set(got))
    assert set(got) <= set(keys)


@pytest.mark.parametrize("mode", ["drop", "double"])
def test_a_proxy_dropping_or_inflating_x_total_count(blank, mode: str) -> None:
    """Without a count (or with a count too high) the pager falls back to paging
    until an empty page: no row lost, including behind hidden pages."""
    hidden = sys_ids(12, hidden=True)
    visible = sys_ids(30, hidden=False)
    rows = [case(k, START, n) for n, k in enumerate(hidden)] + [
        case(k, START + timedelta(seconds=1), 100 + n) for n, k in enumerate(visible)
    ]
    blank.instance.load_rows(CASES, rows)
    with HeaderProxy(blank.url, total=mode) as proxy:
        admin = client_for(proxy.url, blank.admin_user, blank.admin_password)
        try:
            everything = pager_ids(
                KeysetPager(
                    admin,
                    CASES,
                    fields=["number"],
                    page_size=10,
                    since=None,
                    until=START + timedelta(minutes=5),
                )
            )
        finally:
            admin.close()

    assert Counter(everything) == Counter(hidden + visible)


def test_cancelled_pages_halve_inside_a_bounded_window(blank) -> None:
    """TransactionCancelled halves the page mid-window; the count stop still ends
    on the last row, neither early nor with a duplicate."""
    keys = sorted(secrets.token_hex(16) for _ in range(260))
    blank.instance.load_rows(CASES, [case(k, START, n) for n, k in enumerate(keys)])
    client = client_for(blank.url, blank.admin_user, blank.admin_password)
    try:
        pager = KeysetPager(
            client,
            CASES,
            fields=["number"],
            page_size=200,
            since=None,
            until=START + timedelta(seconds=1),
        )
        first = next(iter(pager))
        blank.faults.update(max_page_rows=60)  # pages of 200 and 100 now cancel
        rest = pager_ids(pager)
    finally:
        client.close()

    got = [r["sys_id"] for r in first.rows] + rest
    assert pager.page_size == 50
    assert Counter(got) == Counter(keys)


# --- 2. row-count backfill slices ------------------------------------------------


def slices_of(settings) -> list:
    session = open_session(settings, tables=[CASES])
    try:
        return checkpoints.job_slices(session.store, session.prepared[0].mapping)
    finally:
        session.close()


def stored_ids(store_url: str) -> set[str]:
    return set(stored(store_url, shipped(CASES).target))


@pytest.mark.parametrize("workers", [1, 3])
def test_a_bulk_import_in_one_second_backfills_once(
    blank, tmp_sqlite_url: str, workers: int
) -> None:
    """Thousands of rows share one sys_updated_on (an import): every offset cut
    lands on that second, so no cut can split it; all rows still arrive once."""
    keys = sorted(secrets.token_hex(16) for _ in range(1200))
    rows = [case(k, START, n) for n, k in enumerate(keys)]
    rows += [
        case(secrets.token_hex(16), START + timedelta(hours=h), 5000 + h)
        for h in range(1, 4)
    ]
    blank.instance.load_rows(CASES, rows)
    settings = make_settings(
        blank,
        tmp_sqlite_url,
        tables=[CASES],
        workers=workers,
        slice_pages=2,
        instance={"page_size": 100},
    )

    (result,) = run_backfill(settings)

    slices = slices_of(settings)
    assert result.outcome == "ok" and result.inserted == len(rows)
    assert sum(s.rows for s in slices) == len(rows)
    assert all(s.done for s in slices)
    assert_store_matches_source(blank, tmp_sqlite_url, shipped(CASES))


@pytest.mark.parametrize("count", [0, 1])
def test_empty_and_one_row_tables(blank, tmp_sqlite_url: str, count: int) -> None:
    blank.instance.load_rows(
        CASES, [case(secrets.token_hex(16), START, n) for n in range(count)]
    )
    settings = make_settings(blank, tmp_sqlite_url, tables=[CASES], workers=4)

    (result,) = run_backfill(settings)
    # A second backfill and an incremental pass after it change nothing.
    (again,) = run_backfill(settings)

    assert result.outcome == again.outcome == "ok"
    assert result.inserted == count and again.inserted == 0
    assert len(stored_ids(tmp_sqlite_url)) == count


@pytest.mark.parametrize("mode", [None, "drop"])
def test_a_hidden_oldest_row_does_not_empty_or_explode_the_backfill(
    blank, tmp_sqlite_url: str, mode: str | None
) -> None:
    """The oldest case is hidden from the integration user (row ACL), with and
    without a proxy stripping X-Total-Count, and day slices configured: every
    readable row is backfilled, and the job does not start in 1970."""
    hidden = sys_ids(3, hidden=True)
    visible = sys_ids(40, hidden=False)
    rows = [case(k, START, n) for n, k in enumerate(hidden)] + [
        case(k, START + timedelta(days=n % 2, seconds=5), 100 + n)
        for n, k in enumerate(visible)
    ]
    blank.instance.load_rows(CASES, rows)
    with HeaderProxy(blank.url, total=mode or "keep") as proxy:
        settings = make_settings(
            blank,
            tmp_sqlite_url,
            tables=[CASES],
            workers=2,
            slice_days=1,
            instance={
                "url": proxy.url,
                "page_size": 10,
                "auth": {
                    "method": "basic",
                    "username": blank.acl_user,
                    "password": blank.acl_password,
                },
            },
        )
        before = blank.instance.request_count
        (result,) = run_backfill(settings)
        requests_made = blank.instance.request_count - before
        slices = slices_of(settings)

    assert result.outcome == "ok"
    assert stored_ids(tmp_sqlite_url) == set(visible)
    assert checkpoints.as_utc(slices[0].job_since) >= START - timedelta(days=1)
    assert len(slices) <= 4
    assert requests_made < 60


# --- 3. the page read ahead on a thread -------------------------------------------


class StopAfter:
    """Backfill progress that runs ``action`` once ``pages`` pages are stored."""

    def __init__(self, pages: int, action) -> None:
        self.pages, self.action, self.seen = pages, action, 0
        self.fired_at: float | None = None

    def start(self, table: str, total: int | None) -> None:
        pass

    def advance(self, table: str, rows: int) -> None:
        self.seen += 1
        if self.seen == self.pages:
            self.fired_at = time.monotonic()
            self.action()

    def finish(self, table: str) -> None:
        pass


def fetch_threads() -> list[str]:
    return [t.name for t in threading.enumerate() if t.name.startswith("fetch-")]


def spread_cases(emu: EmulatorServer, count: int) -> list[str]:
    keys = sorted(secrets.token_hex(16) for _ in range(count))
    emu.instance.load_rows(
        CASES,
        [case(k, START + timedelta(seconds=n), n) for n, k in enumerate(keys)],
    )
    return keys


def checkpoint_rows(settings) -> tuple[int, datetime | None]:
    (piece,) = slices_of(settings)
    cursor = checkpoints.as_utc(piece.cursor_ts) if piece.cursor_ts else None
    return piece.rows, cursor


def test_a_stop_keeps_the_checkpoint_on_the_last_stored_page(
    blank, tmp_sqlite_url: str
) -> None:
    """Stop after the first stored page while the next one is being read ahead:
    the read-ahead page is dropped, the checkpoint names the stored page's last
    row, the stop waits for at most the one request in flight, and a resume
    stores the rest exactly once."""
    spread_cases(blank, 45)
    stop = threading.Event()
    settings = make_settings(
        blank, tmp_sqlite_url, tables=[CASES], workers=1, instance={"page_size": 10}
    )
    blank.faults.update(latency_ms=400)
    progress = StopAfter(1, stop.set)

    (result,) = run_backfill(settings, progress=progress, stop_event=stop)
    waited = time.monotonic() - (progress.fired_at or 0)

    rows, cursor = checkpoint_rows(settings)
    local = stored(tmp_sqlite_url, "case")
    assert result.outcome == "stopped"
    assert rows == len(local) == 10
    assert cursor == max(r["sys_updated_on"] for r in local.values()).replace(
        tzinfo=UTC
    )
    assert waited < 2.0  # the one read-ahead request (400 ms) and no more
    assert fetch_threads() == []

    blank.faults.update(latency_ms=0)
    (resumed,) = run_backfill(settings)
    assert resumed.outcome == "ok" and resumed.inserted == 35
    assert_store_matches_source(blank, tmp_sqlite_url, shipped(CASES))


def test_an_error_in_the_fetch_thread_fails_the_run_at_its_page(
    blank, tmp_sqlite_url: str
) -> None:
    """The instance starts failing after the first stored page: the error reaches
    the run, the checkpoint covers exactly the stored rows, no thread is left."""
    spread_cases(blank, 45)
    settings = make_settings(
        blank, tmp_sqlite_url, tables=[CASES], workers=1, instance={"page_size": 10}
    )
    progress = StopAfter(1, lambda: blank.faults.update(rate_500=1.0))

    (result,) = run_backfill(settings, progress=progress)
    blank.faults.update(rate_500=0.0)  # reading the checkpoint asks the instance

    rows, _ = checkpoint_rows(settings)
    assert result.outcome == "failed"
    assert rows == len(stored(tmp_sqlite_url, "case")) in (10, 20)
    assert fetch_threads() == []
    (resumed,) = run_backfill(settings)
    assert resumed.outcome == "ok"
    assert_store_matches_source(blank, tmp_sqlite_url, shipped(CASES))


def test_an_error_while_storing_ends_the_reader_and_keeps_the_checkpoint(
    blank, tmp_sqlite_url: str
) -> None:
    """The store breaks between pages (its table vanishes under it): the store's
    error is not the instance's, so it is recorded and raised at once; the reader
    thread ends and the checkpoint stays on the stored page."""
    import sqlite3

    from sqlalchemy.exc import OperationalError

    spread_cases(blank, 45)
    settings = make_settings(
        blank, tmp_sqlite_url, tables=[CASES], workers=1, instance={"page_size": 10}
    )
    path = tmp_sqlite_url.removeprefix("sqlite:///")

    def break_store() -> None:
        with sqlite3.connect(path) as conn:
            conn.execute('ALTER TABLE "case" RENAME TO case_gone')

    with pytest.raises(OperationalError, match="no such table"):
        run_backfill(settings, progress=StopAfter(1, break_store))

    with sqlite3.connect(path) as conn:
        kept = conn.execute("SELECT count(*) FROM case_gone").fetchone()[0]
        conn.execute('ALTER TABLE case_gone RENAME TO "case"')
    rows, _ = checkpoint_rows(settings)
    assert rows == kept == 10
    assert fetch_threads() == []
    with sqlite3.connect(path) as conn:
        (outcome,) = conn.execute(
            "SELECT outcome FROM sync_run ORDER BY id DESC LIMIT 1"
        ).fetchone()
    assert outcome == "failed"
