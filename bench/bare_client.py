"""The limit: the backfill's pages fetched by plain ``requests`` + ``json``.

Usage::

    python bench/bare_client.py --plan plan.json --workers 4 [--out result.json]

``plan.json`` (written by ``bench/run.py`` from the shipped mappings)::

    {"url": ..., "user": ..., "password": ..., "page_size": 1000,
     "slice_days": 30, "tables": [{"source": ..., "filter": ..., "fields": [...],
     "cursor": "sys_updated_on", "mode": "incremental"}, ...]}

Per table, as csm-sync's backfill does: one request for the oldest row, the
window ``[oldest, now)`` cut into ``slice_days`` slices pulled on ``workers``
threads, each slice paged with the same keyset query
(``F>S^F<U^NQF=S^sys_id>ID^F<U^ORDERBYF^ORDERBYsys_id``) and the same fields
and page size, until an empty page. ``mode: full`` tables are paged by sys_id.
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

    def get(self, table: str, query: str, fields: list[str], limit: int) -> list:
        params = {
            "sysparm_query": query,
            "sysparm_fields": ",".join(fields),
            "sysparm_limit": str(limit),
            "sysparm_display_value": "false",
            "sysparm_exclude_reference_link": "true",
            "sysparm_suppress_pagination_header": "true",
            "sysparm_no_count": "true",
        }
        response = self.session().get(
            f"{self.url}/api/now/table/{table}",
            params=params,
            headers={"Accept": "application/json"},
            timeout=120,
        )
        response.raise_for_status()
        rows = json.loads(response.content)["result"]
        with self.lock:
            self.requests += 1
            if limit > 1:  # the one-row "oldest" probes are not data pages
                self.rows += len(rows)
                self.per_table[table] = self.per_table.get(table, 0) + len(rows)
        return rows


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
    while True:
        query = keyset_query(table["filter"], field, cursor, until)
        rows = bare.get(table["source"], query, fields, bare.page_size)
        if not rows:
            return
        last = rows[-1]
        cursor = (last[field], last["sys_id"])


def pull_keys(bare: Bare, table: dict) -> None:
    fields = list(dict.fromkeys([*table["fields"], "sys_id"]))
    after = ""
    while True:
        key = f"sys_id>{after}" if after else ""
        query = _and(table["filter"], key) + "^ORDERBYsys_id"
        rows = bare.get(table["source"], query, fields, bare.page_size)
        if not rows:
            return
        after = rows[-1]["sys_id"]


def slices(since: datetime, until: datetime, days: int) -> list[tuple[str, str]]:
    bounds, start = [], since
    while start < until:
        end = min(start + timedelta(days=days), until)
        bounds.append((start.strftime(STAMP), end.strftime(STAMP)))
        start = end
    return bounds


def pull_table(bare: Bare, table: dict, workers: int, days: int) -> None:
    if table["mode"] == "full":
        pull_keys(bare, table)
        return
    field = table["cursor"]
    order = _and(table["filter"], f"ORDERBY{field}^ORDERBYsys_id")
    first = bare.get(table["source"], order, [field, "sys_id"], 1)
    if not first:
        return
    oldest = datetime.strptime(first[0][field], STAMP).replace(tzinfo=UTC)
    now = datetime.now(UTC).replace(microsecond=0)
    with ThreadPoolExecutor(max_workers=workers) as pool:
        futures = [
            pool.submit(pull_slice, bare, table, start, end)
            for start, end in slices(oldest, now, days)
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
        pull_table(bare, table, args.workers, int(plan["slice_days"]))
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
