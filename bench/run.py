"""Reproduce the csm-sync benchmark figures (issue 7).

Usage::

    .venv/bin/python bench/run.py [--accounts 10000] [--workers 1,2,4,8]
        [--parts backfill,bare,floor,peers,change,latency,noop,kpi,writeback,scaling]
        [--scaling 1000,10000] [--out bench/results/latest.json]
        [--docs docs/benchmarks.md | --no-docs] [--pg URL]

The dataset is generated once per account count into
``bench/results/emu-<N>.db`` and reused; the emulator runs as its own process
(``bench/emulator_proc.py``), every measured tool as another. Writes the JSON
result file and regenerates the figures section of ``docs/benchmarks.md``
(between the ``bench:begin``/``bench:end`` markers).
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))

import parts
from harness import (
    BENCH,
    ROOT,
    Emulator,
    load_average,
    machine,
    now_iso,
    write_json,
)
from report import evaluate_targets, update_docs

ALL_PARTS = (
    "backfill",
    "bare",
    "floor",
    "peers",
    "change",
    "latency",
    "noop",
    "kpi",
    "writeback",
    "scaling",
)
log = logging.getLogger("bench")
SNAPSHOT_ENV = "CSM_BENCH_SNAPSHOT"


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--accounts", type=int, default=10_000)
    parser.add_argument("--workers", default="1,2,4,8")
    parser.add_argument("--parts", default=",".join(ALL_PARTS))
    parser.add_argument("--scaling", default="1000,10000", help="account counts")
    parser.add_argument("--page-size", type=int, default=1000)
    parser.add_argument(
        "--slice-days",
        type=int,
        default=None,
        help="sync.slice_days: fixed day slices (default: slices by row count)",
    )
    parser.add_argument(
        "--slice-pages", type=int, default=50, help="sync.slice_pages (default 50)"
    )
    parser.add_argument("--results", type=Path, default=BENCH / "results")
    parser.add_argument("--out", type=Path, default=BENCH / "results" / "latest.json")
    parser.add_argument("--docs", type=Path, default=ROOT / "docs" / "benchmarks.md")
    parser.add_argument("--no-docs", action="store_true")
    parser.add_argument(
        "--merge",
        action="store_true",
        help="keep the other parts already in --out (same --accounts)",
    )
    parser.add_argument("--pg", default=os.environ.get("CSM_SYNC_TEST_PG_URL"))
    parser.add_argument(
        "--snapshot",
        action="store_true",
        help="run csm-sync and the emulator from a git-archive of HEAD (a tree "
        "others are editing must not change the code between measurements)",
    )
    parser.add_argument("--peers", default="dlt,snowloader", help="peer tools")
    parser.add_argument(
        "--peer-timeout",
        type=float,
        default=None,
        metavar="SECONDS",
        help="stop dlt after this long and report its rate as at most the source "
        "rows over SECONDS (default: wait for it)",
    )
    parser.add_argument(
        "--render",
        nargs="+",
        type=Path,
        metavar="JSON",
        help="only regenerate --docs from these result files (no measuring)",
    )
    parser.add_argument("--mutations-per-s", type=float, default=50.0)
    parser.add_argument(
        "--latency-ms", type=float, default=300.0, help="latency part: per request"
    )
    parser.add_argument(
        "--latency-per-row-ms", type=float, default=1.0, help="latency part: per row"
    )
    args = parser.parse_args(argv)
    args.workers = [int(w) for w in args.workers.split(",") if w]
    args.parts = [p for p in args.parts.split(",") if p]
    unknown = set(args.parts) - set(ALL_PARTS)
    if unknown:
        parser.error(f"unknown parts: {', '.join(sorted(unknown))}")
    args.scaling = [int(n) for n in args.scaling.split(",") if n]
    return args


def snapshot_and_reexec(args: argparse.Namespace) -> None:
    """Export HEAD's ``connector`` and ``mappings`` and re-run from that copy.

    Every child inherits ``PYTHONPATH`` (which wins over the editable install),
    so the emulator, csm-sync and this harness all run the same commit.
    """
    commit = subprocess.run(
        ["git", "rev-parse", "HEAD"], cwd=ROOT, capture_output=True, text=True
    ).stdout.strip()
    target = args.results / f"code-{commit[:12]}"
    if not (target / "connector").exists():
        target.mkdir(parents=True, exist_ok=True)
        archive = subprocess.run(
            ["git", "archive", commit, "connector", "mappings"],
            cwd=ROOT,
            capture_output=True,
            check=True,
        ).stdout
        subprocess.run(["tar", "-x", "-C", str(target)], input=archive, check=True)
    env = {**os.environ, "PYTHONPATH": str(target), SNAPSHOT_ENV: commit}
    os.execve(sys.executable, [sys.executable, __file__, *sys.argv[1:]], env)


def code_version() -> dict[str, Any]:
    """Which code ran: the snapshot commit, else HEAD and whether it is dirty."""
    if os.environ.get(SNAPSHOT_ENV):
        return {"commit": os.environ[SNAPSHOT_ENV], "snapshot": True}
    head = subprocess.run(
        ["git", "rev-parse", "HEAD"], cwd=ROOT, capture_output=True, text=True
    ).stdout.strip()
    dirty = subprocess.run(
        ["git", "status", "--porcelain", "connector", "mappings"],
        cwd=ROOT,
        capture_output=True,
        text=True,
    ).stdout.strip()
    return {"commit": head, "snapshot": False, "dirty_tree": bool(dirty)}


def main(argv: list[str] | None = None) -> dict[str, Any]:
    args = parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(message)s")
    if args.render:
        for path in args.render:
            saved = json.loads(path.read_text())
            finish(saved)
            update_docs(args.docs, saved)
        return {}
    if args.snapshot and not os.environ.get(SNAPSHOT_ENV):
        args.results.mkdir(parents=True, exist_ok=True)
        snapshot_and_reexec(args)
    import connector

    log.info("csm-sync code: %s", Path(connector.__file__).parent)
    args.results.mkdir(parents=True, exist_ok=True)
    result: dict[str, Any] = {
        "date": now_iso(),
        "code": code_version(),
        "machine": machine(),
        "load_average_start": load_average(),
        "accounts": args.accounts,
        "workers": args.workers,
        "page_size": args.page_size,
        "slice_days": args.slice_days,
        "slice_pages": args.slice_pages,
        "parts_run": args.parts,
        "parts": {},
        "errors": {},
    }
    if args.merge and args.out.exists():
        result = _merged(args, result)
    started = time.perf_counter()
    db = args.results / f"emu-{args.accounts}.db"
    with Emulator(db, args.accounts) as emu:
        bench = parts.Bench(
            accounts=args.accounts,
            workers=args.workers,
            results=args.results,
            emulator=emu,
            page_size=args.page_size,
            slice_days=args.slice_days,
            slice_pages=args.slice_pages,
            pg_url=args.pg,
            peer_timeout=args.peer_timeout,
            tables=parts.load_tables(),
        )
        bench.source_rows = parts.count_source(bench)
        synced = bench.work / f"backfill-w{bench.default_workers()}.db"
        if args.merge and "backfill" not in args.parts and synced.exists():
            bench.synced_store = synced  # from an earlier run of the backfill part
        result["dataset"] = {
            "db": str(db.relative_to(ROOT) if db.is_relative_to(ROOT) else db),
            "emulator_ready_seconds": round(emu.ready_seconds, 1),
            "source_rows": bench.total_rows,
            "tables": bench.source_rows,
        }
        log.info("dataset: %d rows in %d tables", bench.total_rows, len(bench.tables))
        for name in ALL_PARTS:
            if name in args.parts:
                _run_part(name, bench, args, result)
                write_json(args.out, result)
    result["load_average_end"] = load_average()
    result["total_seconds"] = round(time.perf_counter() - started, 1)
    finish(result)
    write_json(args.out, result)
    if not args.no_docs:
        update_docs(args.docs, result)
    log.info("wrote %s", args.out)
    return result


def finish(result: dict[str, Any]) -> None:
    """Derived figures: the csm-sync / bare ratios and the targets."""
    if "backfill" in result["parts"] and "bare" in result["parts"]:
        result["parts"]["backfill"]["ratio_to_bare"] = parts.ratios(result["parts"])
    result["targets"] = evaluate_targets(result)


def _merged(args: argparse.Namespace, fresh: dict[str, Any]) -> dict[str, Any]:
    """The earlier result file with this run's settings; its parts are kept."""
    old = json.loads(args.out.read_text())
    if old.get("accounts") != args.accounts:
        raise SystemExit(f"--merge: {args.out} is for {old.get('accounts')} accounts")
    old.setdefault("runs", []).append(
        {
            k: fresh[k]
            for k in ("date", "code", "load_average_start", "parts_run", "workers")
        }
    )
    old["parts_run"] = sorted(
        set(old.get("parts_run", [])) | set(args.parts), key=ALL_PARTS.index
    )
    if {"backfill", "bare", "latency"} & set(args.parts):
        old["workers"] = sorted(set(old.get("workers", [])) | set(args.workers))
    for name in args.parts:
        old.get("errors", {}).pop(name, None)
    if "peers" in args.parts and "peers" in old.get("parts", {}):
        # --peers dlt then --peers snowloader: keep both
        args.keep_peers = old["parts"]["peers"]
    old.setdefault("errors", {})
    return old


def _run_part(
    name: str, bench: parts.Bench, args: argparse.Namespace, result: dict[str, Any]
) -> None:
    """Run one part; a failing part is recorded and the others still run."""
    log.info("== %s (load %s)", name, load_average())
    part_started = time.perf_counter()
    try:
        if name == "change":
            data = parts.part_change(bench, rate=args.mutations_per_s)
        elif name == "latency":
            data = parts.part_latency(bench, args.latency_ms, args.latency_per_row_ms)
        elif name == "peers":
            data = parts.part_peers(bench, tuple(args.peers.split(",")))
        elif name == "scaling":
            data = parts.part_scaling(bench, args.scaling)
        else:
            data = getattr(parts, f"part_{name}")(bench)
    except Exception as exc:  # a part's failure is a result, not a crash
        log.exception("part %s failed", name)
        result["errors"][name] = f"{type(exc).__name__}: {exc}"
        return
    if name == "peers":
        data = {**getattr(args, "keep_peers", {}), **data}
    data["load_average"] = load_average()
    data["date"] = now_iso()
    data["part_seconds"] = round(time.perf_counter() - part_started, 1)
    result["parts"][name] = data


if __name__ == "__main__":
    main()
