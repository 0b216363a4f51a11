"""Transient faults and token expiry mid-run leave the store exact (C10, C11, C12)."""

from __future__ import annotations

from connector.emulator.server import EmulatorServer
from connector.servicenow.client import ServiceNowClient
from connector.sync.backfill import run_backfill
from connector.sync.incremental import run_incremental
from connector.sync.runner import open_session

from .helpers import Clock, assert_store_matches_source, make_settings, shipped

TABLES = ["sn_customerservice_case", "interaction", "customer_account"]


class ExpireTokensEveryPages:
    """Backfill progress hook that expires every OAuth token every few pages."""

    def __init__(self, emu: EmulatorServer, every: int) -> None:
        self.emu, self.every, self.pages = emu, every, 0

    def start(self, table: str, total: int | None) -> None: ...

    def finish(self, table: str) -> None: ...

    def advance(self, table: str, rows: int) -> None:
        self.pages += 1
        if self.pages % self.every == 0:
            self.emu.instance.expire_tokens()


def test_fault_storms_and_token_expiry_leave_the_store_exact(store_url: str) -> None:
    clock = Clock()
    with EmulatorServer(accounts=5, seed=9, clock=clock) as emu:
        settings = make_settings(
            emu,
            store_url,
            tables=TABLES,
            slice_days=180,
            workers=2,
            instance={
                "page_size": 20,
                "max_retries": 12,
                "auth": {
                    "method": "oauth_password",
                    "username": emu.admin_user,
                    "password": emu.admin_password,
                    "client_id": emu.client_id,
                    "client_secret": emu.client_secret,
                },
            },
        )
        waits: list[float] = []
        client = ServiceNowClient(settings.instance, sleep=waits.append)
        session = open_session(settings, client=client)
        clock.advance(3)
        emu.instance.faults.update(
            rate_429=0.15,
            retry_after=30,
            rate_500=0.05,
            rate_502=0.05,
            rate_503=0.05,
            rate_202_empty=0.05,
            rate_truncated=0.05,
            rate_html=0.05,
            seed=4,
        )

        backfill = run_backfill(
            settings, session=session, progress=ExpireTokensEveryPages(emu, 3)
        )
        for table in TABLES[:2]:
            for row in emu.instance.rows(table)[:5]:
                emu.instance.update(table, row["sys_id"], {"short_description": "x"})
        emu.instance.delete(
            "customer_account", emu.instance.rows("customer_account")[0]["sys_id"]
        )
        emu.instance.expire_tokens()
        clock.advance(3)
        incremental = run_incremental(settings, session=session)

        assert all(r.ok for r in backfill + incremental), [
            r.error for r in backfill + incremental
        ]
        assert sum(r.retries for r in backfill + incremental) >= 10
        assert 30.0 in waits  # Retry-After honoured exactly
        assert client.metrics.token_refreshes >= 3
        assert sum(r.updated for r in incremental) == 10
        assert sum(r.deleted for r in incremental) == 1
        for table in TABLES:
            assert_store_matches_source(emu, store_url, shipped(table))
        session.close()


def test_a_429_beyond_the_ceiling_checkpoints_and_stops_then_resumes(
    tmp_sqlite_url: str,
) -> None:
    clock = Clock()
    # Enough accounts that the first table needs more pages than the one read ahead.
    with EmulatorServer(accounts=60, seed=9, clock=clock) as emu:
        settings = make_settings(
            emu, tmp_sqlite_url, tables=TABLES, instance={"page_size": 10}
        )
        clock.advance(3)

        def rate_limit_after_first_page(_table: str, _rows: int) -> None:
            emu.instance.faults.update(rate_429=1.0, retry_after=3600)

        stopped = run_incremental(settings, progress=rate_limit_after_first_page)
        emu.instance.faults.update(rate_429=0.0)
        resumed = run_incremental(settings)

        assert [r.outcome for r in stopped] == ["stopped"]
        assert "resume later" in stopped[0].error
        assert stopped[0].inserted == stopped[0].fetched > 0
        assert all(r.ok for r in resumed)
        assert sum(r.unchanged + r.updated for r in resumed) == 0
        for table in TABLES:
            assert_store_matches_source(emu, tmp_sqlite_url, shipped(table))
