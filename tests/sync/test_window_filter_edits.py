"""Bounded windows that end on X-Total-Count: can a slice stop before its end?"""

from __future__ import annotations

from pathlib import Path

from connector.emulator.server import EmulatorServer
from connector.sync.backfill import run_backfill
from connector.sync.incremental import run_incremental

from .helpers import SHIPPED, Clock, make_settings, stored
from .test_cases import CASES, add_case, at


def test_backfill_slice_with_dot_walked_filter_reads_to_its_end(
    tmp_path: Path,
) -> None:
    """Rows enter a past window without a new stamp when a dot-walked filter
    starts to match (the account is edited). The slice must still read every
    row that matched from the start, not stop after the first count's worth."""
    store_url = f"sqlite:///{tmp_path / 'store.db'}"
    mappings = tmp_path / "mappings"
    mappings.mkdir()
    text = (SHIPPED / f"{CASES}.yaml").read_text()
    (mappings / f"{CASES}.yaml").write_text(text + "filter: account.country=Germany\n")
    clock = Clock(at("2026-01-02 12:00:00"))
    with EmulatorServer(accounts=0, clock=clock) as emu:
        de = emu.instance.insert(
            "customer_account",
            {
                "sys_id": "a" * 32,
                "name": "DE",
                "country": "Germany",
                "sys_updated_on": "2026-01-01 00:00:00",
            },
            raw=True,
        )["sys_id"]
        fr = emu.instance.insert(
            "customer_account",
            {
                "sys_id": "b" * 32,
                "name": "FR",
                "country": "France",
                "sys_updated_on": "2026-01-01 00:00:00",
            },
            raw=True,
        )["sys_id"]
        german = [
            add_case(emu, n, f"2026-01-02 10:{n:02d}:00", account=de) for n in range(30)
        ]
        [  # French cases stamped between German ones
            add_case(emu, 100 + n, f"2026-01-02 10:25:3{n}", account=fr)
            for n in range(5)
        ]
        settings = make_settings(
            emu,
            store_url,
            mappings=mappings,
            tables=[CASES],
            instance={"page_size": 10},
            workers=1,
        )

        class Progress:
            pages = 0

            def start(self, name: str, total: int | None) -> None:
                pass

            def advance(self, name: str, rows: int) -> None:
                self.pages += 1
                if self.pages == 1:  # after page 1 is stored: FR now matches
                    emu.instance.update("customer_account", fr, {"country": "Germany"})

            def finish(self, name: str) -> None:
                pass

        (run,) = run_backfill(settings, progress=Progress())
        clock.advance(10)
        run_incremental(settings, reconcile=False)

        have = set(stored(store_url, "case"))
        assert run.outcome == "ok"
        # Every row that matched the filter all along is stored.
        assert set(german) <= have, sorted(set(german) - have)
