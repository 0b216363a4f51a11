"""Long-form reliability runs (issue 8); CI runs the short forms in tests/reliability.

Usage::

    .venv/bin/python bench/reliability.py crash --kills 50 [--modes ...] [--seed 1]
    .venv/bin/python bench/reliability.py load --minutes 5 [--accounts 200]

``crash`` SIGKILLs ``csm-sync backfill``, ``sync`` and ``writeback`` (and a
store being created, and backfills inside SQLite commits) ``--kills`` times per
mode at seeded random points, restarts them and checks the store against the
instance after each; it exits 1 when any scenario found a problem.

``load`` runs the daemon (``csm-sync run``) against a larger emulated instance
with the mutator on, samples RSS, open file descriptors, sockets and lag (from
``/metrics``) every few seconds, then stops the mutator, waits for one more sync
and compares the store with the instance. Figures go to stdout and, as JSON, to
``--out``.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import statistics
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO / "tests"))

MODES = ("backfill", "power", "sync", "writeback", "migration")


def crash_main(args: argparse.Namespace) -> int:
    from reliability import crash

    workdir = Path(tempfile.mkdtemp(prefix="csm-crash-"))
    runs = {
        "backfill": lambda: crash.backfill_crashes(
            workdir / "backfill", seed=args.seed, kills=args.kills, per_cycle=5
        ),
        "power": lambda: crash.backfill_crashes(
            workdir / "power",
            seed=args.seed + 1,
            kills=args.kills,
            per_cycle=5,
            power_cut=True,
            accounts=20,
        ),
        "sync": lambda: crash.sync_crashes(
            workdir / "sync", seed=args.seed + 2, kills=args.kills
        ),
        "writeback": lambda: crash.writeback_crashes(
            workdir / "writeback", seed=args.seed + 3, kills=args.kills, reset_every=5
        ),
        "migration": lambda: crash.migration_kills(
            workdir / "migration", seed=args.seed + 4, kills=args.kills
        ),
    }
    failed = 0
    summary = []
    for mode in args.modes.split(","):
        started = time.monotonic()
        report = runs[mode]()
        seconds = time.monotonic() - started
        print(f"{report.line()} [{seconds:.0f} s]", flush=True)
        for problem in report.problems:
            print(f"  PROBLEM {problem}", flush=True)
        failed += bool(report.problems)
        summary.append(
            {
                "mode": report.mode,
                "kills": report.kills,
                "cycles": report.cycles,
                "ended_before_kill": report.finished_before_kill,
                "delays": report.delays,
                "notes": report.notes,
                "problems": report.problems,
                "seconds": round(seconds, 1),
            }
        )
    if args.out:
        Path(args.out).write_text(json.dumps(summary, indent=2), encoding="utf-8")
    print(f"work files: {workdir}")
    return 1 if failed else 0


# --- load ---------------------------------------------------------------------------


def _proc_sample(pid: int) -> dict[str, int]:
    status = Path(f"/proc/{pid}/status").read_text()
    rss_kb = int(
        next(x for x in status.splitlines() if x.startswith("VmRSS")).split()[1]
    )
    threads = int(
        next(x for x in status.splitlines() if x.startswith("Threads")).split()[1]
    )
    fds = sockets = 0
    for fd in os.listdir(f"/proc/{pid}/fd"):
        fds += 1
        with contextlib.suppress(OSError):  # the fd closed meanwhile
            sockets += os.readlink(f"/proc/{pid}/fd/{fd}").startswith("socket:")
    return {
        "rss_mb": rss_kb // 1024,
        "fds": fds,
        "sockets": sockets,
        "threads": threads,
    }


def _metrics(port: int) -> dict[str, float]:
    import requests

    text = requests.get(f"http://127.0.0.1:{port}/metrics", timeout=5).text
    lags = [
        float(line.rsplit(" ", 1)[1])
        for line in text.splitlines()
        if line.startswith("csm_sync_lag_seconds{")
    ]
    rows = sum(
        float(line.rsplit(" ", 1)[1])
        for line in text.splitlines()
        if line.startswith("csm_sync_rows_synced_total{")
    )
    return {"max_lag_s": max(lags) if lags else -1.0, "rows_metric": rows}


def load_main(args: argparse.Namespace) -> int:
    from agent.daemon_harness import (
        Agent,
        free_port,
        install_fields,
        start_emulator,
        sync_runs,
        wait_for,
        write_config,
    )
    from reliability import kit

    workdir = Path(tempfile.mkdtemp(prefix="csm-load-"))
    print(f"generating an instance of {args.accounts} accounts ...", flush=True)
    emu = start_emulator(accounts=args.accounts)
    samples: list[dict[str, Any]] = []
    try:
        port = free_port()
        config = write_config(
            workdir,
            emu.url,
            emu.instance.truth,
            http_port=port,
            sync_interval_seconds=args.interval,
        )
        install_fields(config)
        agent = Agent(config, workdir / "daemon.log")
        try:
            started = time.monotonic()
            wait_for(
                lambda: sync_runs(port) >= 1,
                timeout=1800,
                what="the backfill",
                agent=agent,
            )
            backfill_s = time.monotonic() - started
            print(f"first sync (backfill) done in {backfill_s:.0f} s", flush=True)
            emu.instance.start_mutator(
                rate_per_second=args.mutations,
                tables=["sn_customerservice_case", "interaction"],
                delete_ratio=0.05,
            )
            end = time.monotonic() + args.minutes * 60
            while time.monotonic() < end:
                sample = {"t": round(time.monotonic() - started)}
                sample |= _proc_sample(agent.pid)
                sample |= _metrics(port)
                sample["syncs"] = sync_runs(port)
                samples.append(sample)
                print(json.dumps(sample), flush=True)
                time.sleep(args.every)
            emu.instance.stop_mutator()
            done = sync_runs(port)
            time.sleep(1.1)
            wait_for(
                lambda: sync_runs(port) >= done + 2,
                timeout=600,
                what="two syncs after the mutator stopped",
                agent=agent,
            )
            code, stop_s = agent.terminate()
        finally:
            agent.kill()
        mismatches = kit.store_mismatches(
            emu,
            f"sqlite:///{workdir / 'csm.db'}",
            kit.shipped_mappings(),
        )
    finally:
        emu.stop()
    result = _summarise(samples, backfill_s, code, stop_s, mismatches, args)
    print(json.dumps(result, indent=2))
    if args.out:
        Path(args.out).write_text(
            json.dumps({"summary": result, "samples": samples}, indent=2),
            encoding="utf-8",
        )
    return 1 if mismatches or code != 0 else 0


def _summarise(
    samples: list[dict[str, Any]],
    backfill_s: float,
    code: int,
    stop_s: float,
    mismatches: list[str],
    args: argparse.Namespace,
) -> dict[str, Any]:
    def span(key: str) -> list[float]:
        values = [s[key] for s in samples]
        return [min(values), statistics.median(values), max(values)]

    half = len(samples) // 2
    return {
        "accounts": args.accounts,
        "minutes": args.minutes,
        "mutations_per_s": args.mutations,
        "sync_interval_s": args.interval,
        "backfill_s": round(backfill_s, 1),
        "syncs": samples[-1]["syncs"] - samples[0]["syncs"] if samples else 0,
        "rss_mb_min_med_max": span("rss_mb"),
        "rss_mb_first_half_max_vs_second_half_max": [
            max(s["rss_mb"] for s in samples[:half] or samples),
            max(s["rss_mb"] for s in samples[half:]),
        ],
        "fds_min_med_max": span("fds"),
        "sockets_min_med_max": span("sockets"),
        "threads_min_med_max": span("threads"),
        "lag_s_min_med_max": span("max_lag_s"),
        "exit_code": code,
        "stop_seconds": round(stop_s, 1),
        "store_mismatches": mismatches,
    }


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    sub = parser.add_subparsers(dest="command", required=True)
    crash = sub.add_parser("crash", help="SIGKILL runs at random points")
    crash.add_argument("--kills", type=int, default=50)
    crash.add_argument("--modes", default=",".join(MODES))
    crash.add_argument("--seed", type=int, default=1)
    crash.add_argument("--out", default=None)
    load = sub.add_parser("load", help="the daemon under a changing instance")
    load.add_argument("--minutes", type=float, default=5)
    load.add_argument("--accounts", type=int, default=200)
    load.add_argument("--mutations", type=float, default=20)
    load.add_argument("--interval", type=int, default=10)
    load.add_argument("--every", type=float, default=5)
    load.add_argument("--out", default=None)
    args = parser.parse_args()
    return crash_main(args) if args.command == "crash" else load_main(args)


if __name__ == "__main__":
    sys.exit(main())
