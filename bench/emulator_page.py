"""Time one keyset page of 1000 rows from a 500k-row case table.

Usage: ``.venv/bin/python bench/emulator_page.py [--rows 500000] [--repeat 20]``

Prints the median (and p95) of the server-side time (the WSGI app called in
process, no socket; wall clock and CPU time) and of a loopback HTTP round
trip, for the plain keyset query, the compound (``^NQ``) cursor and
with/without ``X-Total-Count``.
"""

from __future__ import annotations

import argparse
import random
import statistics
import time
from datetime import datetime, timedelta

import requests
from werkzeug.test import Client

from connector.emulator.app import EmulatorApp
from connector.emulator.server import EmulatorServer

CASE = "sn_customerservice_case"
START = datetime(2024, 1, 1)


def make_rows(n: int, seed: int = 1) -> list[dict[str, str]]:
    """n cases; many share a second so the sys_id tiebreak matters."""
    rng = random.Random(seed)
    rows = []
    for i in range(n):
        updated = (START + timedelta(seconds=i * 60 // 7)).strftime("%Y-%m-%d %H:%M:%S")
        rows.append(
            {
                "sys_id": f"{rng.getrandbits(128):032x}",
                "number": f"CS{i + 1:07d}",
                "short_description": f"Case {i} about something",
                "state": rng.choice(["1", "10", "3", "6"]),
                "priority": str(rng.randint(1, 4)),
                "active": rng.choice(["true", "false"]),
                "opened_at": updated,
                "account": f"{rng.getrandbits(128):032x}",
                "reassignment_count": str(rng.randint(0, 5)),
                "sys_created_on": updated,
                "sys_updated_on": updated,
                "sys_created_by": "system",
                "sys_updated_by": "system",
            }
        )
    return rows


def timed(fn, repeat: int, clock=time.perf_counter) -> tuple[float, float]:
    """Median and p95 in ms; ``clock=time.process_time`` gives CPU time, which a
    busy machine (other processes) does not inflate."""
    samples = []
    for _ in range(repeat):
        started = clock()
        fn()
        samples.append((clock() - started) * 1000)
    samples.sort()
    return statistics.median(samples), samples[int(len(samples) * 0.95) - 1]


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--rows", type=int, default=500_000)
    parser.add_argument("--repeat", type=int, default=20)
    args = parser.parse_args()

    with EmulatorServer(accounts=0) as emu:
        started = time.perf_counter()
        rows = make_rows(args.rows)
        for i in range(0, len(rows), 50_000):
            emu.instance.load_rows(CASE, rows[i : i + 50_000])
        print(f"loaded {len(rows):,} rows in {time.perf_counter() - started:.1f} s")
        middle = sorted(r["sys_updated_on"] for r in rows)[len(rows) // 2]
        tie_id = min(r["sys_id"] for r in rows if r["sys_updated_on"] == middle)
        del rows

        plain = f"sys_updated_on>={middle}^ORDERBYsys_updated_on^ORDERBYsys_id"
        compound = (
            f"sys_updated_on>=2024-01-01 00:00:00^sys_updated_on>{middle}"
            f"^NQsys_updated_on>=2024-01-01 00:00:00^sys_updated_on={middle}"
            f"^sys_id>{tie_id}^ORDERBYsys_updated_on^ORDERBYsys_id"
        )
        app = Client(EmulatorApp(emu.instance))
        auth = {"Authorization": "Basic YWRtaW46YWRtaW4="}
        session = requests.Session()
        session.auth = ("admin", "admin")
        for label, query, no_count in (
            ("keyset, no count", plain, "true"),
            ("keyset, with X-Total-Count", plain, "false"),
            ("compound ^NQ cursor, no count", compound, "true"),
        ):
            params = {
                "sysparm_query": query,
                "sysparm_limit": "1000",
                "sysparm_display_value": "false",
                "sysparm_exclude_reference_link": "true",
                "sysparm_no_count": no_count,
            }
            page = app.get(f"/api/now/table/{CASE}", query_string=params, headers=auth)
            assert page.status_code == 200 and len(page.json["result"]) == 1000

            def call(p: dict[str, str] = params) -> None:
                app.get(f"/api/now/table/{CASE}", query_string=p, headers=auth)

            server = timed(call, args.repeat)
            cpu = timed(call, args.repeat, clock=time.process_time)
            http = timed(
                lambda p=params: session.get(
                    f"{emu.url}/api/now/table/{CASE}", params=p
                ),
                args.repeat,
            )
            print(
                f"{label:30s} server {server[0]:6.1f} ms (p95 {server[1]:6.1f})"
                f" cpu {cpu[0]:6.1f} ms | HTTP {http[0]:6.1f} ms (p95 {http[1]:6.1f})"
            )


if __name__ == "__main__":
    main()
