"""The benchmark parts; each takes the :class:`Bench` context and returns a dict.

Every tool runs as a child process against one emulator process serving the
same dataset file; rows/s is always the source row count divided by the
tool's wall time, requests are counted by the emulator.
"""

from __future__ import annotations

import json
import logging
import os
import re
import sqlite3
import subprocess
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from harness import (
    BENCH,
    CSM_SYNC,
    PYTHON,
    ROOT,
    Emulator,
    copy_db,
    load_average,
    measure,
)

log = logging.getLogger("bench")

# The shipped mappings of the code that runs (a --snapshot copy, else the tree).
MAPPINGS = (
    Path(os.environ.get("PYTHONPATH", str(ROOT)).split(os.pathsep)[0]) / "mappings"
)
if not MAPPINGS.is_dir():
    MAPPINGS = ROOT / "mappings"
PEERS = BENCH / "peers"
CHANGE_TABLE = "sn_customerservice_case"
LATENCY_TABLE = "sn_customerservice_case"
LAG_SECONDS = 5  # csm-sync's default sync.lag_seconds


@dataclass
class Bench:
    """What every part needs: the dataset, the running emulator, settings."""

    accounts: int
    workers: list[int]
    results: Path
    emulator: Emulator
    page_size: int = 1000
    slice_days: int | None = None  # None: slices by row count (product default)
    slice_pages: int = 50
    pg_url: str | None = None
    # Peers part: stop a peer after this many seconds (None: wait for it).
    peer_timeout: float | None = None
    tables: list[dict[str, Any]] = field(default_factory=list)
    source_rows: dict[str, int] = field(default_factory=dict)
    # Store of the last full backfill (reused by noop, kpi and writeback).
    synced_store: Path | None = None
    # Backfill part's runs by worker count (the scaling part reuses its size).
    backfill_runs: dict[int, dict[str, Any]] = field(default_factory=dict)

    @property
    def work(self) -> Path:
        """Scratch stores and configs, per dataset size (runs may overlap)."""
        path = self.results / f"work-{self.accounts}"
        path.mkdir(parents=True, exist_ok=True)
        return path

    @property
    def total_rows(self) -> int:
        return sum(self.source_rows.values())

    def default_workers(self) -> int:
        return 4 if 4 in self.workers else max(self.workers)


# --- dataset and configuration -----------------------------------------------


def load_tables() -> list[dict[str, Any]]:
    """The shipped mappings as plain dicts (what the bare client and peers use)."""
    from connector.mapping.loader import load_mappings
    from connector.store.models import CANONICAL_MODELS

    tables = []
    for mapping in load_mappings(MAPPINGS):
        if "^OR" in mapping.filter or "^NQ" in mapping.filter:
            raise ValueError(f"{mapping.name}: the bare client handles AND filters")
        tables.append(
            {
                "name": mapping.name,
                "source": mapping.source,
                "target": mapping.target,
                "store_table": CANONICAL_MODELS[mapping.target].__tablename__,
                "filter": mapping.filter,
                "fields": mapping.source_fields(),
                "cursor": mapping.cursor,
                "mode": mapping.mode,
            }
        )
    return tables


def count_source(bench: Bench, emu: Emulator | None = None) -> dict[str, int]:
    """Rows per mapping at the source (the mapping's filter applied)."""
    emu = emu or bench.emulator
    return {t["name"]: emu.count(t["source"], t["filter"]) for t in bench.tables}


def write_plan(bench: Bench, url: str, tables: list[dict] | None = None) -> Path:
    plan = {
        "url": url,
        "user": "admin",
        "password": "admin",
        "page_size": bench.page_size,
        "slice_days": bench.slice_days,
        "slice_pages": bench.slice_pages,
        "tables": tables or bench.tables,
    }
    path = bench.work / f"plan-{abs(hash(json.dumps(plan, sort_keys=True)))}.json"
    path.write_text(json.dumps(plan, indent=1))
    return path


def csm_config(
    bench: Bench,
    name: str,
    url: str,
    store: Path | str,
    *,
    workers: int = 4,
    writeback: dict[str, Any] | None = None,
) -> Path:
    """A csm-sync config file for ``url`` and a store (SQLite path or PG URL)."""
    store_url = store if str(store).startswith("postgresql") else f"sqlite:///{store}"
    config = {
        "instance": {
            "url": url,
            "auth": {"method": "basic", "username": "admin", "password": "admin"},
            "page_size": bench.page_size,
        },
        "store": {"url": str(store_url)},
        "mappings": str(MAPPINGS),
        "sync": {
            "workers": workers,
            "slice_days": bench.slice_days,
            "slice_pages": bench.slice_pages,
        },
        "kpi": {"nps_metric": None, "csat_metric": None},
        "writeback": writeback or {},
        "logging": {"level": "WARNING"},
    }
    path = bench.work / f"{name}.yaml"
    path.write_text(json.dumps(config, indent=1))  # JSON is YAML
    path.chmod(0o600)
    return path


def fresh(path: Path) -> Path:
    """Remove a SQLite store (and its WAL) or a folder so a run starts empty."""
    import shutil

    if path.is_dir():
        shutil.rmtree(path)
    for suffix in ("", "-wal", "-shm", "-journal"):
        Path(f"{path}{suffix}").unlink(missing_ok=True)
    return path


def stored_rows(store: Path, tables: list[dict]) -> dict[str, int]:
    """Live (not deleted) rows per mapping in a csm-sync SQLite store."""
    counts = {}
    with sqlite3.connect(store) as conn:
        for t in tables:
            (n,) = conn.execute(
                f'SELECT COUNT(*) FROM "{t["store_table"]}" WHERE deleted_at IS NULL'
            ).fetchone()
            counts[t["name"]] = n
    return counts


def stored_keys(store: Path, table: dict) -> dict[str, str]:
    with sqlite3.connect(store) as conn:
        rows = conn.execute(
            f'SELECT sys_id, sys_updated_on FROM "{table["store_table"]}" '
            "WHERE deleted_at IS NULL"
        ).fetchall()
    return {k: _stamp(v) for k, v in rows}


def _stamp(value: Any) -> str:
    """A stored timestamp as the Table API writes it (``YYYY-MM-DD HH:MM:SS``)."""
    text = str(value).replace("T", " ")
    return re.sub(r"(\.\d+)?([+-]\d\d:\d\d|Z)?$", "", text)[:19]


def _rate(rows: int, seconds: float) -> float:
    return round(rows / seconds, 1) if seconds > 0 else 0.0


def _spent(before: float | None, after: float | None) -> float | None:
    return (
        round(after - before, 2) if before is not None and after is not None else None
    )


def _run_summary(rows: int, measured: Any, requests: int) -> dict[str, Any]:
    return {
        "rows": rows,
        "seconds": round(measured.seconds, 2),
        "rows_per_s": _rate(rows, measured.seconds),
        "peak_rss_mb": round(measured.peak_rss_mb, 1),
        "cpu_seconds": round(measured.cpu_seconds, 2),
        "requests": requests,
        "exit": measured.returncode,
        "load_average_after": load_average(),  # the machine is shared
    }


# --- csm-sync ------------------------------------------------------------------


def csm_backfill(
    bench: Bench, emu: Emulator, name: str, workers: int, tables: list[str] = ()
) -> tuple[dict[str, Any], Path, Path]:
    """One ``csm-sync backfill`` into an empty SQLite store; summary, store, config."""
    store = fresh(bench.work / f"{name}.db")
    config = csm_config(bench, name, emu.url, store, workers=workers)
    argv = [CSM_SYNC, "backfill", "-c", str(config), "--workers", str(workers)]
    for table in tables:
        argv += ["--table", table]
    before, emu_cpu = emu.requests(), emu.cpu_seconds()
    run = measure(argv, cwd=bench.work).check(f"csm-sync backfill ({name})")
    requests = emu.requests() - before
    emu_cpu = _spent(emu_cpu, emu.cpu_seconds())
    selected = [t for t in bench.tables if not tables or t["name"] in tables]
    stored = stored_rows(store, selected)
    rows = sum(bench.source_rows[t["name"]] for t in selected)
    summary = _run_summary(rows, run, requests)
    summary["workers"] = workers
    summary["emulator_cpu_seconds"] = emu_cpu
    summary["stored_rows"] = sum(stored.values())
    summary["complete"] = stored == {
        t["name"]: bench.source_rows[t["name"]] for t in selected
    }
    return summary, store, config


def part_backfill(bench: Bench) -> dict[str, Any]:
    runs = []
    for workers in bench.workers:
        log.info("backfill: csm-sync, %d workers", workers)
        summary, store, _config = csm_backfill(
            bench, bench.emulator, f"backfill-w{workers}", workers
        )
        runs.append(summary)
        bench.backfill_runs[workers] = summary
        log.info("  %s", summary)
        if workers == bench.default_workers():
            bench.synced_store = store
        else:
            fresh(store)  # a 10k-account store is ~1 GB; keep only one
    return {"tool": "csm-sync", "table_count": len(bench.tables), "runs": runs}


def part_floor(bench: Bench) -> dict[str, Any]:
    """``bench/store_floor.py`` on the backfilled store: SQLite's own cost per row."""
    store = bench.synced_store
    if store is None:
        _summary, store, _ = csm_backfill(
            bench, bench.emulator, "floor", bench.default_workers()
        )
        bench.synced_store = store
    from connector.store.engine import SQLITE_WAL_AUTOCHECKPOINT_PAGES

    # The checkpoint interval csm-sync's own store connections use.
    argv = [PYTHON, str(BENCH / "store_floor.py"), str(store)]
    argv += ["--wal-autocheckpoint", str(SQLITE_WAL_AUTOCHECKPOINT_PAGES)]
    run = measure(argv).check("store floor")
    data = json.loads(run.stdout.strip().splitlines()[-1])
    data.pop("tables", None)
    return data


# --- the bare client -----------------------------------------------------------


def bare_run(bench: Bench, emu: Emulator, plan: Path, workers: int) -> dict[str, Any]:
    before, emu_cpu = emu.requests(), emu.cpu_seconds()
    argv = [PYTHON, str(BENCH / "bare_client.py"), "--plan", str(plan)]
    run = measure([*argv, "--workers", str(workers)]).check("bare client")
    requests = emu.requests() - before
    emu_cpu = _spent(emu_cpu, emu.cpu_seconds())
    fetched = json.loads(run.stdout.strip().splitlines()[-1])["rows"]
    summary = _run_summary(fetched, run, requests)
    summary["workers"] = workers
    summary["emulator_cpu_seconds"] = emu_cpu
    return summary


def part_bare(bench: Bench) -> dict[str, Any]:
    plan = write_plan(bench, bench.emulator.url)
    runs = []
    for workers in bench.workers:
        log.info("bare: %d workers", workers)
        runs.append(bare_run(bench, bench.emulator, plan, workers))
        log.info("  %s", runs[-1])
    return {"tool": "requests+json", "runs": runs}


def ratios(results: dict[str, Any]) -> dict[str, Any]:
    """csm-sync rows/s over the bare client's, per worker count and best-to-best."""
    csm = {r["workers"]: r["rows_per_s"] for r in results["backfill"]["runs"]}
    bare = {r["workers"]: r["rows_per_s"] for r in results["bare"]["runs"]}
    per = {str(w): round(csm[w] / bare[w], 3) for w in csm if bare.get(w)}
    best = max(csm.values()) / max(bare.values()) if bare and max(bare.values()) else 0
    return {"per_workers": per, "best_to_best": round(best, 3)}


# --- peers ---------------------------------------------------------------------


def peer_python(name: str) -> Path | None:
    python = PEERS / f".venv-{name}" / "bin" / "python"
    return python if python.exists() else None


def ensure_peers() -> None:
    missing = [p for p in ("dlt", "snowloader") if peer_python(p) is None]
    if missing:
        log.info("peers: creating venvs for %s", ", ".join(missing))
        subprocess.run([str(PEERS / "setup.sh"), *missing], check=True)


def dlt_run(
    bench: Bench,
    emu: Emulator,
    plan: Path,
    store: Path,
    keys: str | None = None,
    timeout: float | None = None,
) -> tuple[dict[str, Any], dict[str, Any]]:
    """One dlt pipeline run (a second run on the same store is incremental).

    Stopped after ``timeout`` seconds, it returns what it had cost by then and
    ``extra`` says ``finished: False``.
    """
    argv = [
        str(peer_python("dlt")),
        str(PEERS / "dlt_pipeline.py"),
        "--plan",
        str(plan),
        "--store",
        str(store),
    ]
    keys_out = store.parent / f"{store.name}-keys.json"
    if keys:
        argv += ["--keys", keys, "--keys-out", str(keys_out)]
    before = emu.requests()
    run = measure(argv, cwd=bench.work, timeout=timeout)
    requests = emu.requests() - before
    if run.timed_out:
        return {"seconds": run.seconds, "run": run, "requests": requests}, {
            "finished": False
        }
    run.check("dlt pipeline")
    out = json.loads(run.stdout.strip().splitlines()[-1])
    extra = {"stored": out["rows"]}
    if keys:
        extra["keys"] = json.loads(keys_out.read_text())
    return {"seconds": run.seconds, "run": run, "requests": requests}, extra


def part_peers(
    bench: Bench, which: tuple[str, ...] = ("dlt", "snowloader")
) -> dict[str, Any]:
    ensure_peers()
    plan = write_plan(bench, bench.emulator.url)
    result: dict[str, Any] = {}
    if "dlt" in which:
        result["dlt"] = _dlt_peer(bench, plan)
    if "snowloader" in which:
        result["snowloader"] = _snowloader_peer(bench, plan)
    return result


def _dlt_peer(bench: Bench, plan: Path) -> dict[str, Any]:
    log.info("peers: dlt rest_api -> sqlite")
    store = fresh(bench.work / "dlt-full")
    done, extra = dlt_run(
        bench, bench.emulator, plan, store, timeout=bench.peer_timeout
    )
    summary = _run_summary(bench.total_rows, done["run"], done["requests"])
    if extra.get("finished") is False:
        # Not done by the cap: the source rows over the cap bound its rate from
        # above, so csm-sync's lead computed from it is a lower bound.
        summary.update(finished=False, stored_rows=None)
        log.warning("peers: dlt stopped after %.0f s, unfinished", done["seconds"])
    else:
        summary["stored_rows"] = sum(extra["stored"].values())
    summary["version"] = _version("dlt")
    log.info("  %s", summary)
    return summary


def _snowloader_peer(bench: Bench, plan: Path) -> dict[str, Any]:
    log.info("peers: snowloader extract")
    workers = bench.default_workers()
    out = fresh(bench.work / "snowloader-full")
    argv = [
        str(peer_python("snowloader")),
        str(PEERS / "snowloader_extract.py"),
        "--plan",
        str(plan),
        "--out",
        str(out),
        "--workers",
        str(workers),
    ]
    before = bench.emulator.requests()
    run = measure(argv).check("snowloader")
    requests = bench.emulator.requests() - before
    reply = json.loads(run.stdout.strip().splitlines()[-1])
    summary = _run_summary(bench.total_rows, run, requests)
    summary.update(
        workers=workers,
        written_rows=sum(reply["rows"].values()),
        failed_tables=[t for t, s in reply["exit"].items() if s != 0],
        version=_version("snowloader"),
    )
    log.info("  %s", summary)
    return summary


def _version(peer: str) -> str:
    python = peer_python(peer)
    reply = subprocess.run(
        [
            str(python),
            "-c",
            f"import importlib.metadata as m; print(m.version('{peer}'))",
        ],
        capture_output=True,
        text=True,
    )
    return reply.stdout.strip()


# --- completeness under change -------------------------------------------------

# One extra pass: reads the local copy once the source has settled.
ExtraPass = Callable[[dict[str, Any]], dict[str, str]]


def part_change(bench: Bench, rate: float = 50.0) -> dict[str, Any]:
    """Each tool pages the case table while the mutator updates and deletes."""
    table = next(t for t in bench.tables if t["name"] == CHANGE_TABLE)
    result: dict[str, Any] = {"table": CHANGE_TABLE, "mutations_per_s": rate}
    first_passes = {
        "csm-sync": _change_csm,
        "dlt": _change_dlt,
        "snowloader": _change_snowloader,
    }
    tools = [t for t in first_passes if t == "csm-sync" or peer_python(t)]
    for tool in tools:
        db = copy_db(bench.emulator.db, bench.work / f"change-{tool}.db")
        with Emulator(db, bench.accounts) as emu:
            result["source_rows_before"] = emu.count(table["source"], table["filter"])
            emu.mutator(rate, tables=[table["source"]])
            started = time.perf_counter()
            summary, extra_pass = first_passes[tool](bench, emu, table)
            counts = emu.mutator(0)
            summary["mutations"] = {
                "updates": counts["mutator_updates"],
                "deletes": counts["mutator_deletes"],
                "seconds": round(time.perf_counter() - started, 1),
            }
            # csm-sync leaves the last sync.lag_seconds (5 s) for the next pass
            # (rows still committing); let that window close before the check.
            time.sleep(LAG_SECONDS + 1)
            before = emu.requests()
            local = extra_pass(summary)
            summary["extra_pass_requests"] = emu.requests() - before
            source = emu.keys(table["source"], table["filter"])
        summary.update(_compare(source, local))
        result[tool] = summary
        log.info("change %s: %s", tool, summary)
        fresh(db)
    return result


def _change_csm(
    bench: Bench, emu: Emulator, table: dict[str, Any]
) -> tuple[dict[str, Any], ExtraPass]:
    """``csm-sync backfill`` of the table, then one ``csm-sync sync``."""
    summary, store, config = csm_backfill(
        bench, emu, "change-csm", bench.default_workers(), [CHANGE_TABLE]
    )

    def extra_pass(_summary: dict[str, Any]) -> dict[str, str]:
        argv = [CSM_SYNC, "sync", "-c", str(config), "--table", CHANGE_TABLE]
        measure(argv, cwd=bench.work).check("csm-sync sync")
        return stored_keys(store, table)

    return summary, extra_pass


def _change_dlt(
    bench: Bench, emu: Emulator, table: dict[str, Any]
) -> tuple[dict[str, Any], ExtraPass]:
    """One dlt pipeline run, then the same pipeline again (its incremental)."""
    plan = write_plan(bench, emu.url, [table])
    store = fresh(bench.work / "dlt-change")
    done, _ = dlt_run(bench, emu, plan, store)

    def extra_pass(_summary: dict[str, Any]) -> dict[str, str]:
        _, extra = dlt_run(bench, emu, plan, store, keys=table["target"])
        return extra["keys"]

    return {"seconds": round(done["seconds"], 2)}, extra_pass


def _change_snowloader(
    bench: Bench, emu: Emulator, table: dict[str, Any]
) -> tuple[dict[str, Any], ExtraPass]:
    """``snowloader extract`` to JSONL, then ``reconcile`` since it started.

    snowloader keeps no store, so the extra pass is what its docs give a user
    to bring a copy up to date: ``reconcile --since <extract start>``, whose
    added and updated records replace their sys_id in the copy and whose
    deleted ids leave it. Its ``since`` test is strict (``>``) on one-second
    stamps, so the cutoff is the start's second minus one.
    """
    workers = bench.default_workers()
    since = datetime.now(UTC).replace(microsecond=0) - timedelta(seconds=1)
    out = fresh(bench.work / "snowloader-change")
    plan = write_plan(bench, emu.url, [table])
    argv = [str(peer_python("snowloader")), str(PEERS / "snowloader_extract.py")]
    argv += ["--plan", str(plan), "--out", str(out), "--workers", str(workers)]
    run = measure(argv).check("snowloader extract")  # exit 0 even if unverified
    status = json.loads(run.stdout.strip().splitlines()[-1])["exit"][table["target"]]
    extract = out / f"{table['target']}.jsonl"
    local, lines = _jsonl_keys(extract)
    summary: dict[str, Any] = {
        "seconds": round(run.seconds, 2),
        "workers": workers,
        "version": _version("snowloader"),
        "extract_exit": status,  # 1: its completeness check failed
        "extract_lines": lines,
        "extract_distinct": len(local),
        "extract_check": _errors(run.stderr)[0],  # its sweep report
    }

    def extra_pass(summary: dict[str, Any]) -> dict[str, str]:
        report = out / "reconcile.json"
        reply = _snowloader_reconcile(emu, table, since, report)
        summary["reconcile"] = {**reply, "since": f"{since:%Y-%m-%d %H:%M:%S}"}
        body = json.loads(report.read_text())
        apply_reconcile(local, body)
        if not body["deletes_read"]:
            summary["note"] = (
                f"snowloader reconcile exited {reply['cli_exit']} "
                f"({reply['cli_error']}) and wrote no report: it reads deletions "
                "only from sys_audit_delete (kept for audited tables, "
                "TABLE_API.md 11.4), which it could not read here. The extra "
                "pass is snowloader's library "
                "reconcile(include_deletes=False), its documented choice when "
                "the audit is not readable: added and updated rows applied, "
                "no deletions"
            )
        return local

    return summary, extra_pass


def _snowloader_reconcile(
    emu: Emulator, table: dict[str, Any], since: datetime, report: Path
) -> dict[str, Any]:
    """``bench/peers/snowloader_reconcile.py``: its reply and the CLI's error."""
    argv = [str(peer_python("snowloader")), str(PEERS / "snowloader_reconcile.py")]
    argv += ["--instance", emu.url, "--user", "admin", "--password", "admin"]
    argv += ["--table", table["source"], "--query", table["filter"]]
    argv += ["--since", f"{since:%Y-%m-%d %H:%M:%S}", "--out", str(report)]
    run = measure(argv).check("snowloader reconcile")
    reply = json.loads(run.stdout.strip().splitlines()[-1])
    reply["cli_error"] = _errors(run.stderr)[-1] if reply["cli_exit"] else ""
    reply["seconds"] = round(run.seconds, 2)
    return reply


def apply_reconcile(local: dict[str, str], report: dict[str, Any]) -> None:
    """A snowloader reconcile report onto ``{sys_id: sys_updated_on}`` of a copy.

    Added and updated records replace their sys_id; deleted ids leave the copy.
    """
    for record in [*report["added"], *report["updated"]]:
        local[_raw(record["sys_id"])] = _raw(record["sys_updated_on"])
    for gone in report["deleted"]:
        local.pop(_raw(gone["sys_id"]), None)


def _jsonl_keys(path: Path) -> tuple[dict[str, str], int]:
    """``{sys_id: sys_updated_on}`` of a JSONL extract (later lines win), lines."""
    keys: dict[str, str] = {}
    lines = 0
    with path.open(encoding="utf-8") as handle:
        for line in handle:
            record = json.loads(line)
            keys[_raw(record["sys_id"])] = _raw(record["sys_updated_on"])
            lines += 1
    return keys, lines


def _raw(value: Any) -> str:
    """A field value as text (``{"value": ...}`` when display values are both)."""
    return str(value.get("value", "")) if isinstance(value, dict) else str(value)


def _errors(stderr: str) -> list[str]:
    """The ``ERROR`` lines snowloader logged, without their level."""
    return [ln[6:] for ln in stderr.splitlines() if ln.startswith("ERROR ")] or [""]


def _compare(source: dict[str, str], local: dict[str, str]) -> dict[str, Any]:
    missing = set(source) - set(local)
    extra = set(local) - set(source)
    stale = [k for k in set(source) & set(local) if _stamp(local[k]) != source[k]]
    right = len(source) - len(missing) - len(stale)
    return {
        "source_rows": len(source),
        "stored_rows": len(local),
        "missing": len(missing),
        "deleted_but_kept": len(extra),
        "stale": len(stale),
        "correct_pct": round(100 * right / len(source), 3) if source else 100.0,
        "exact": not missing and not extra and not stale,
    }


# --- latency-bound throughput --------------------------------------------------


# A rate-limit rule like one an admin would give an integration user: the
# latency runs must not trip it (issue 7).
LATENCY_RATE_LIMIT = {"name": "csm-sync integration", "limit": 20_000}


def part_latency(
    bench: Bench, latency_ms: float = 300.0, per_row_ms: float = 1.0
) -> dict[str, Any]:
    """Backfill one table with injected latency; rows/s vs workers × page / latency.

    The ideal is ``workers × page_size / page_seconds`` with full pages; the
    best a tool can do on a finite table is reading ``ceil(pages / workers)``
    full pages in a row, which is also reported (``best_rows_per_s``).
    """
    table = next(t for t in bench.tables if t["name"] == LATENCY_TABLE)
    rows = bench.source_rows[LATENCY_TABLE]
    page_seconds = (latency_ms + per_row_ms * bench.page_size) / 1000
    pages = -(-rows // bench.page_size)
    emu = bench.emulator
    emu.faults(
        latency_ms=latency_ms,
        latency_per_row_ms=per_row_ms,
        rate_limit_rules=[LATENCY_RATE_LIMIT],
    )
    plan = write_plan(bench, emu.url, [table])
    runs = []
    try:
        for workers in bench.workers:
            ideal = workers * bench.page_size / page_seconds
            best = rows / (-(-pages // workers) * page_seconds)
            log.info("latency: %d workers (ideal %.0f rows/s)", workers, ideal)
            denied = emu.stats()["rate_limited"]
            summary, _store, _ = csm_backfill(
                bench, emu, f"latency-w{workers}", workers, [LATENCY_TABLE]
            )
            summary["rate_limited"] = emu.stats()["rate_limited"] - denied
            bare = bare_run(bench, emu, plan, workers)
            runs.append(
                {
                    "workers": workers,
                    "ideal_rows_per_s": round(ideal, 1),
                    "best_rows_per_s": round(best, 1),
                    "csm_sync": summary,
                    "bare": bare,
                    "csm_pct_of_ideal": round(100 * summary["rows_per_s"] / ideal, 1),
                    "bare_pct_of_ideal": round(100 * bare["rows_per_s"] / ideal, 1),
                }
            )
            log.info("  %s", runs[-1])
    finally:
        emu.faults(latency_ms=0.0, latency_per_row_ms=0.0, rate_limit_rules=[])
    return {
        "table": LATENCY_TABLE,
        "rows": rows,
        "latency_ms": latency_ms,
        "latency_per_row_ms": per_row_ms,
        "page_seconds": page_seconds,
        "rate_limit_rule": LATENCY_RATE_LIMIT,
        "runs": runs,
    }


# --- no-op incremental ---------------------------------------------------------


def part_noop(bench: Bench) -> dict[str, Any]:
    """``csm-sync sync`` twice after a backfill; the second finds nothing new."""
    store = bench.synced_store
    if store is None:
        _summary, store, _ = csm_backfill(
            bench, bench.emulator, "noop", bench.default_workers()
        )
        bench.synced_store = store
    config = csm_config(bench, "noop", bench.emulator.url, store)
    argv = [CSM_SYNC, "sync", "-c", str(config)]
    measure(argv, cwd=bench.work).check("csm-sync sync (catch-up)")
    runs = []
    for _ in range(2):
        before = bench.emulator.requests()
        run = measure(argv, cwd=bench.work).check("csm-sync sync (no-op)")
        runs.append(
            {
                "seconds": round(run.seconds, 2),
                "cpu_seconds": round(run.cpu_seconds, 2),
                "requests": bench.emulator.requests() - before,
                "peak_rss_mb": round(run.peak_rss_mb, 1),
            }
        )
    best = min(runs, key=lambda r: r["seconds"])
    return {
        "tables": len(bench.tables),
        "runs": runs,
        "seconds": best["seconds"],
        "requests": best["requests"],
        "requests_per_table": round(best["requests"] / len(bench.tables), 2),
        "in_process": _noop_in_process(bench, config),
    }


def _noop_in_process(bench: Bench, config: Path, passes: int = 3) -> dict[str, Any]:
    """The daemon's case: passes in one running process (no start-up, no imports)."""
    argv = [PYTHON, str(BENCH / "noop_pass.py"), str(config), "--passes", str(passes)]
    before = bench.emulator.requests()
    run = measure(argv, cwd=bench.work).check("no-op passes in process")
    requests = bench.emulator.requests() - before
    timed = json.loads(run.stdout.strip().splitlines()[-1])["passes"]
    return {
        "passes": timed,
        "seconds": min(p["seconds"] for p in timed),
        "requests": round(requests / (passes + 1), 1),  # the warm-up pass included
        "changed": sum(p["changed"] for p in timed),
    }


# --- KPIs ----------------------------------------------------------------------


def part_kpi(bench: Bench) -> dict[str, Any]:
    """``csm-sync kpis`` on the synced store; kpi_bench.py for SQLite vs PostgreSQL."""
    result: dict[str, Any] = {}
    if bench.synced_store is not None:
        config = csm_config(bench, "kpi", bench.emulator.url, bench.synced_store)
        argv = [CSM_SYNC, "kpis", "-c", str(config), "--format", "json"]
        argv += ["--as-of", "2026-12-01"]
        run = measure(argv, cwd=bench.work).check("csm-sync kpis")
        accounts = len(json.loads(run.stdout).get("accounts", []))
        result["synced_sqlite"] = {
            "seconds": round(run.seconds, 2),
            "peak_rss_mb": round(run.peak_rss_mb, 1),
            "accounts": accounts,
        }
        log.info("kpi (synced store): %s", result["synced_sqlite"])
    argv = [PYTHON, str(BENCH / "kpi_bench.py"), "--accounts", str(bench.accounts)]
    argv += ["--repeat", "1"]
    if bench.pg_url:
        argv += ["--pg", bench.pg_url]
    run = measure(argv, cwd=ROOT)
    result["kpi_bench"] = {"exit": run.returncode, "output": run.stdout.strip()}
    for name, seconds in re.findall(
        r"^(\w+): compute_kpis median ([\d.]+)s", run.stdout, re.M
    ):
        result[f"kpi_bench_{name}_seconds"] = float(seconds)
    if run.returncode != 0:
        result["kpi_bench"]["error"] = run.stderr.strip().splitlines()[-5:]
    log.info("kpi_bench: %s", result["kpi_bench"])
    return result


# --- write-back ----------------------------------------------------------------


def part_writeback(bench: Bench) -> dict[str, Any]:
    """Write health to every account: single PATCHes vs the Batch API."""
    import shutil

    if bench.synced_store is None:
        raise RuntimeError("writeback needs the backfill part first")
    result: dict[str, Any] = {}
    modes = {
        "single_patch": {"batch_threshold": 10**9},
        "batch_api": {"batch_threshold": 1, "batch_size": 50},
    }
    for mode, settings in modes.items():
        db = copy_db(bench.emulator.db, bench.work / f"wb-{mode}.db")
        store = fresh(bench.work / f"wb-{mode}-store.db")
        shutil.copyfile(bench.synced_store, store)
        with Emulator(db, bench.accounts) as emu:
            config = csm_config(bench, f"wb-{mode}", emu.url, store, writeback=settings)
            measure([CSM_SYNC, "install-fields", "-c", str(config)]).check(
                "install-fields"
            )
            kpis = [CSM_SYNC, "kpis", "-c", str(config), "--format", "json"]
            measure([*kpis, "--as-of", "2026-12-01"], cwd=bench.work).check("kpis")
            before = emu.requests()
            run = measure([CSM_SYNC, "writeback", "-c", str(config)], cwd=bench.work)
            requests = emu.requests() - before
        written = re.search(
            r"(\d+) accounts, (\d+) sent, (\d+) fields written", run.stderr + run.stdout
        )
        result[mode] = {
            "seconds": round(run.seconds, 2),
            "requests": requests,
            "peak_rss_mb": round(run.peak_rss_mb, 1),
            "exit": run.returncode,
            "summary": written.group(0)
            if written
            else (run.stdout + run.stderr)[-300:],
        }
        if written:
            result[mode]["accounts_sent"] = int(written.group(2))
            result[mode]["fields_written"] = int(written.group(3))
            result[mode]["accounts_per_s"] = _rate(int(written.group(2)), run.seconds)
        log.info("writeback %s: %s", mode, result[mode])
        fresh(db)
        fresh(store)
    return result


# --- scaling -------------------------------------------------------------------


def part_scaling(bench: Bench, sizes: list[int]) -> dict[str, Any]:
    """Backfill time and peak memory per dataset size (default workers)."""
    workers = bench.default_workers()
    points = []
    for accounts in sizes:
        if accounts == bench.accounts and workers in bench.backfill_runs:
            points.append({**bench.backfill_runs[workers], "accounts": accounts})
            continue  # measured by the backfill part of this run
        if accounts == bench.accounts:
            emu, own = bench.emulator, False
        else:
            db = bench.results / f"emu-{accounts}.db"
            emu, own = Emulator(db, accounts).start(), True
        try:
            source = Bench(
                accounts=bench.accounts,  # same scratch folder as this run
                workers=[workers],
                results=bench.results,
                emulator=emu,
                page_size=bench.page_size,
                slice_days=bench.slice_days,
                slice_pages=bench.slice_pages,
                tables=bench.tables,
            )
            source.source_rows = count_source(source)
            log.info("scaling: %d accounts, %d rows", accounts, source.total_rows)
            summary, store, _ = csm_backfill(source, emu, f"scale-{accounts}", workers)
            summary["accounts"] = accounts
            points.append(summary)
            log.info("  %s", summary)
            fresh(store)
        finally:
            if own:
                emu.stop()
    return {"workers": workers, "points": points}
