"""The change part's snowloader pass: its extract and reconcile report, scored.

The bench code that applies snowloader's ``reconcile`` report to its JSONL
extract, then the same scoring csm-sync and dlt get, and the rendered row.
The measuring itself needs snowloader's own virtualenv (``bench/peers``).
"""

from __future__ import annotations

import json
from pathlib import Path

from . import load_bench_module

parts = load_bench_module("parts")
report = load_bench_module("report")
OLD, NEW = "2026-12-03 20:00:00", "2026-12-03 20:00:07"


def _extract(path: Path, rows: list[tuple[str, str]]) -> Path:
    lines = [
        json.dumps({"sys_id": k, "sys_updated_on": v, "number": k}) for k, v in rows
    ]
    path.write_text("\n".join(lines) + "\n")
    return path


def test_reconcile_report_brings_the_extract_level_with_the_source(
    tmp_path: Path,
) -> None:
    # The sweep read "b" twice (a shifted page) and missed nothing; then "a"
    # was edited, "c" deleted and "d" created.
    rows = [("a", OLD), ("b", OLD), ("b", OLD), ("c", OLD)]
    extract = _extract(tmp_path / "e.jsonl", rows)
    local, lines = parts._jsonl_keys(extract)
    assert (lines, sorted(local)) == (4, ["a", "b", "c"])

    parts.apply_reconcile(
        local,
        {
            "added": [{"sys_id": "d", "sys_updated_on": NEW}],
            "updated": [{"sys_id": {"value": "a"}, "sys_updated_on": NEW}],
            "deleted": [{"sys_id": "c", "table": "t", "deleted_at": NEW}],
        },
    )
    source = {"a": NEW, "b": OLD, "d": NEW}

    assert local == source
    assert parts._compare(source, local)["exact"] is True


def test_without_deletions_the_deleted_rows_are_kept_and_counted() -> None:
    local = {"a": OLD, "b": OLD, "c": OLD}
    parts.apply_reconcile(
        local,
        {
            "added": [],
            "updated": [{"sys_id": "a", "sys_updated_on": NEW}],
            "deleted": [],
        },
    )

    score = parts._compare({"a": NEW, "b": OLD}, local)

    assert (score["missing"], score["deleted_but_kept"], score["stale"]) == (0, 1, 0)
    assert score["correct_pct"] == 100.0 and score["exact"] is False


def test_change_table_has_a_snowloader_row_and_says_what_it_could_not_do() -> None:
    scored = parts._compare({"a": NEW, "b": OLD}, {"a": NEW, "b": OLD, "c": OLD})
    snow = {
        "seconds": 5.43,
        "mutations": {"updates": 131, "deletes": 10, "seconds": 6.1},
        "extra_pass_requests": 4,
        "extract_exit": 1,
        "extract_lines": 38780,
        "extract_distinct": 38780,
        "extract_check": "Sweep did not return every record: missing=5",
        "reconcile": {"since": "2026-12-03 20:02:36"},
        "note": "no deletions",
        **scored,
    }
    change = {"table": "t", "mutations_per_s": 50.0, "snowloader": snow}

    text = "\n".join(report._change_section({"change": change}))

    assert "| snowloader | 5.4 | 131 / 10 | 2 | 3 | 0 | 1 | 0 | 100.0% | 4 |" in text
    assert "exit 1, completeness check failed: Sweep did not return" in text
    assert "38,780 lines" in text and "Note: no deletions" in text
