"""``check``: a filter that matches the whole table is flagged (C09 canary)."""

from __future__ import annotations

from pathlib import Path

from connector.emulator.server import EmulatorServer
from connector.sync.checks import run_check

from .helpers import make_settings


def test_a_filter_matching_every_row_is_flagged(
    tmp_path: Path, emulator: EmulatorServer
) -> None:
    folder = tmp_path / "mappings"
    folder.mkdir()
    one = emulator.instance.rows("customer_account")[0]["number"]
    (folder / "everything.yaml").write_text(
        "source: sys_user\ntarget: sn_user\nfilter: nameISNOTEMPTY\n"
        "fields: {name: name}\n"
    )
    (folder / "narrow.yaml").write_text(
        f"source: customer_account\ntarget: account\nfilter: number={one}\n"
        "fields: {name: name}\n"
    )
    settings = make_settings(emulator, f"sqlite:///{tmp_path}/s.db", mappings=folder)

    report = run_check(settings)

    assert "2 mappings match the instance's dictionary" in report.lines[0]
    assert len(report.warnings) == 1
    assert "everything.yaml: filter 'nameISNOTEMPTY' matches all" in report.warnings[0]
