"""Smoke test of the benchmark harness: ``bench/run.py`` at a tiny scale.

Runs the real harness (emulator process, ``csm-sync backfill`` and ``sync``
subprocesses, the bare client) on 5 accounts and checks the result file and
the regenerated markdown. No peers: they need their own virtualenvs.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]


def test_run_writes_sane_json_and_markdown(tmp_path: Path) -> None:
    out, docs = tmp_path / "result.json", tmp_path / "benchmarks.md"
    docs.write_text("# Benchmarks\n\nHand-written text stays.\n")
    argv = [
        sys.executable, str(ROOT / "bench" / "run.py"),
        "--accounts", "5", "--workers", "2", "--parts", "backfill,bare,floor,noop",
        "--results", str(tmp_path / "results"),
        "--out", str(out), "--docs", str(docs),
    ]  # fmt: skip

    done = subprocess.run(argv, capture_output=True, text=True, timeout=300)

    assert done.returncode == 0, done.stderr[-2000:]
    result = json.loads(out.read_text())
    assert result["errors"] == {}
    assert len(result["code"]["commit"]) == 40
    assert result["machine"]["cores"] >= 1
    assert len(result["load_average_start"]) == 3
    assert result["dataset"]["source_rows"] > 100
    tables = result["dataset"]["tables"]
    assert len(tables) == 16 and tables["customer_account"] == 5

    (csm,) = result["parts"]["backfill"]["runs"]
    (bare,) = result["parts"]["bare"]["runs"]
    assert csm["complete"] is True
    assert csm["stored_rows"] == csm["rows"] == result["dataset"]["source_rows"]
    assert bare["rows"] == csm["rows"]  # the bare client saw the same rows
    for run in (csm, bare):
        assert run["rows_per_s"] > 0 and run["requests"] > 0
        assert 10 < run["peak_rss_mb"] < 2000
    ratio = result["parts"]["backfill"]["ratio_to_bare"]
    assert ratio["best_to_best"] > 0 and set(ratio["per_workers"]) == {"2"}

    assert csm["emulator_cpu_seconds"] > 0 and bare["emulator_cpu_seconds"] > 0
    floor = result["parts"]["floor"]
    assert floor["rows"] == csm["rows"] and floor["cpu_us_per_row"] > 0

    noop = result["parts"]["noop"]
    assert noop["requests"] > 0 and noop["seconds"] > 0
    inside = noop["in_process"]  # the daemon's case: no start-up, same requests
    assert len(inside["passes"]) == 3 and inside["changed"] == 0
    assert all(p["ok"] for p in inside["passes"])
    assert 0 < inside["seconds"] < noop["seconds"]
    assert inside["requests"] == noop["requests"]
    names = {t["target"] for t in result["targets"]}
    assert {"backfill vs bare client", "no-op incremental"} <= names

    text = docs.read_text()
    assert text.startswith("# Benchmarks\n\nHand-written text stays.")
    assert "<!-- bench:begin accounts=5 " in text and "| workers |" in text
    assert f"{csm['rows']:,}" in text
    assert "Store floor" in text
