"""``status`` output: nothing a user needs is cut to "…" on a narrow terminal."""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from rich.console import Console

from connector.sync.status import TableStatus, render_table


def status(mapping: str, rows: int, cursor: str | None) -> TableStatus:
    return TableStatus(
        mapping=mapping,
        source_table="sn_customerservice_case",
        store_table="case",
        rows=rows,
        deleted=12,
        quarantined=3,
        cursor=cursor,
        lag_seconds=90,
        last_run_mode="incremental",
        last_run_outcome="ok",
        last_run_finished="2026-12-04 16:00:01",
        last_run_error=None,
        backfill_pending=False,
    )


def rendered(rows: list[TableStatus], width: int) -> str:
    console = Console(width=width, record=True, color_system=None)
    render_table(rows, console)
    return console.export_text()


@pytest.mark.parametrize("width", [60, 80, 100])
def test_a_narrow_terminal_gets_every_value_whole(width: int) -> None:
    text = rendered(
        [status("interaction_related_record", 1_361_234, "2026-12-01 10:11:12")],
        width,
    )

    assert "…" not in text
    for value in ("interaction_related_record", "1,361,234", "12 deleted"):
        assert value in text
    assert "2026-12-01 10:11:12" in text
    assert "incremental ok at 2026-12-04 16:00:01" in text


def test_a_wide_terminal_gets_the_table() -> None:
    text = rendered([status("case", 136, None)], 160)

    header = next(line for line in text.splitlines() if "quarantined" in line)
    assert "mapping" in header and "rows" in header and "last run" in header
    assert "136" in text and "…" not in text


@settings(max_examples=30, deadline=None)
@given(
    mapping=st.from_regex(r"[a-z_]{1,40}", fullmatch=True),
    rows=st.integers(min_value=0, max_value=10**12),
    width=st.integers(min_value=40, max_value=200),
)
def test_counts_are_never_cut_whatever_the_width(
    mapping: str, rows: int, width: int
) -> None:
    text = rendered([status(mapping, rows, "2026-12-01 10:11:12")], width)

    assert f"{rows:,}" in text
    assert "…" not in text
