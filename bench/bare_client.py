"""The limit: the backfill's pages fetched by plain ``requests`` + ``json``.

Usage::

    python bench/bare_client.py --plan plan.json --workers 4 [--out result.json]

``plan.json`` (written by ``bench/run.py`` from the shipped mappings)::

    {"url": ..., "user": ..., "password": ..., "page_size": 1000,
     "slice_days": null, "slice_pages": 50,
     "tables": [{"source": ..., "filter": ..., "fields": [...],
     "cursor": "sys_updated_on", "mode": "incremental"}, ...]}

Per table, as csm-sync's backfill does: one counted request for the oldest row
and the window's row count (``X-Total-Count``), the window ``[oldest, now)`` cut
into slices of equal row counts (one page-aligned share per worker, at most
``slice_pages`` pages each; their first stamps read with one-row requests at
those offsets) or, when ``slice_days`` is set, into fixed day slices; the slices
pulled on ``workers`` threads, each paged with the same keyset query
(``F>S^F<U^NQF=S^sys_id>ID^F<U^ORDERBYF^ORDERBYsys_id``), fields and page size,
counting on its first request and stopping once that many rows are in (or on an
empty page). ``mode: full`` tables are paged by sys_id.
Rows are parsed and counted, never stored: no mapping, no coercion, no SQL.
This script imports nothing from csm-sync so its memory is the floor.
"""

from __future__ import annotations

import argparse
import json
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime, timedelta
from itertools import pairwise

import requests

STAMP = "%Y-%m-%d %H:%M:%S"


class Bare:
    """One table's pages, counted; a requests.Session per thread."""

    def __init__(self, plan: dict) -> None:
        self.url = plan["url"].rstrip("/")
        self.auth = (plan["user"], plan["password"])
        self.page_size = int(plan["page_size"])
        self.local = threading.local()
        self.lock = threading.Lock()
        self.rows = 0
        self.requests = 0
        self.per_table: dict[str, int] = {}

    def session(self) -> requests.Session:
        if not hasattr(self.local, "session"):
            self.local.session = requests.Session()
            self.local.session.auth = self.auth
        return self.local.session

    def get(
        self,
        table: str,
        query: str,
        fields: list[str],
        limit: int,
        *,
        offset: int = 0,
        count: bool = False,
    ) -> tuple[list, int | None]:
        params = {
            "sysparm_query": query,
            "sysparm_fields": ",".join(fields),
            "sysparm_limit": str(limit),
            "sysparm_offset": str(offset),
            "sysparm_display_value": "false",
            "sysparm_exclude_reference_link": "true",
            "sysparm_suppress_pagination_header": "true",
        }
        if not count:
            params["sysparm_no_count"] = "true"
        response = self.session().get(
            f"{self.url}/api/now/table/{table}",
            params=params,
            headers={"Accept": "application/json"},
            timeout=120,
        )
        response.raise_for_status()
        rows = json.loads(response.content)["result"]
        total = response.headers.get("X-Total-Count")
        with self.lock:
            self.requests += 1
            if limit > 1:  # the one-row survey and cut probes are not data pages
                self.rows += len(rows)
                self.per_table[table] = self.per_table.get(table, 0) + len(rows)
        return rows, int(total) if count and total is not None else None


def _and(*parts: str) -> str:
    return "^".join(p for p in parts if p)


def keyset_query(base: str, field: str, cursor: tuple[str, str], until: str) -> str:
    stamp, key = cursor
    bound = f"{field}<{until}"
    if not key:
        after = _and(base, f"{field}>={stamp}", bound)
    else:
        after = (
            _and(base, f"{field}>{stamp}", bound)
            + "^NQ"
            + _and(base, f"{field}={stamp}", f"sys_id>{key}", bound)
        )
    return f"{after}^ORDERBY{field}^ORDERBYsys_id"


def pull_slice(bare: Bare, table: dict, since: str, until: str) -> None:
    field, cursor = table["cursor"], (since, "")
    fields = list(dict.fromkeys([*table["fields"], field, "sys_id"]))
    ahead, seen = None, 0
    while ahead is None or seen < ahead:
        query = keyset_query(table["filter"], field, cursor, until)
        rows, total = bare.get(
            table["source"], query, fields, bare.page_size, count=ahead is None
        )
        if not rows:
            return
        ahead = ahead if total is None else total
        seen += len(rows)
        last = rows[-1]
        cursor = (last[field], last["sys_id"])


def pull_keys(bare: Bare, table: dict) -> None:
    fields = list(dict.fromkeys([*table["fields"], "sys_id"]))
    after = ""
    while True:
        key = f"sys_id>{after}" if after else ""
        query = _and(table["filter"], key) + "^ORDERBYsys_id"
        rows, _ = bare.get(table["source"], query, fields, bare.page_size)
        if not rows:
            return
        after = rows[-1]["sys_id"]


def day_slices(since: datetime, until: datetime, days: int) -> list[str]:
    cuts, start = [], since + timedelta(days=days)
    while start < until:
        cuts.append(start.strftime(STAMP))
        start += timedelta(days=days)
    return cuts


def offsets(total: int, page_size: int, workers: int, max_pages: int) -> list[int]:
    pages = -(-total // page_size)
    if pages <= 1 or (workers <= 1 and pages <= max_pages):
        return []
    count = max(workers, -(-pages // max_pages))
    count = -(-count // workers) * workers
    step = -(-pages // count) * page_size
    return list(range(step, total, step))


def pull_table(bare: Bare, table: dict, workers: int, plan: dict) -> None:
    if table["mode"] == "full":
        pull_keys(bare, table)
        return
    field = table["cursor"]
    now = datetime.now(UTC).replace(microsecond=0)
    window = _and(table["filter"], f"{field}<{now.strftime(STAMP)}")
    order = _and(window, f"ORDERBY{field}^ORDERBYsys_id")
    first, total = bare.get(table["source"], order, [field, "sys_id"], 1, count=True)
    if not first:
        return
    oldest = first[0][field]
    with ThreadPoolExecutor(max_workers=workers) as pool:
        if plan.get("slice_days"):
            start = datetime.strptime(oldest, STAMP).replace(tzinfo=UTC)
            cuts = day_slices(start, now, int(plan["slice_days"]))
        else:
            at = offsets(total or 0, bare.page_size, workers, plan["slice_pages"])
            probes = [
                pool.submit(bare.get, table["source"], order, [field], 1, offset=offset)
                for offset in at
            ]
            stamps = {
                rows[0][field] for rows, _ in (p.result() for p in probes) if rows
            }
            cuts = sorted(s for s in stamps if oldest < s)
        bounds = [oldest, *cuts, now.strftime(STAMP)]
        futures = [
            pool.submit(pull_slice, bare, table, start, end)
            for start, end in pairwise(bounds)
        ]
        for future in futures:
            future.result()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--plan", required=True)
    parser.add_argument("--workers", type=int, default=4)
    parser.add_argument("--out", help="write {rows, requests, seconds} here")
    args = parser.parse_args()
    with open(args.plan) as handle:
        plan = json.load(handle)
    bare = Bare(plan)
    started = time.perf_counter()
    for table in plan["tables"]:
        pull_table(bare, table, args.workers, plan)
    result = {
        "rows": bare.rows,
        "requests": bare.requests,
        "seconds": time.perf_counter() - started,
        "tables": bare.per_table,
    }
    if args.out:
        with open(args.out, "w") as handle:
            json.dump(result, handle)
    print(json.dumps(result))


if __name__ == "__main__":
    main()
