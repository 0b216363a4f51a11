"""Peer: dlt's ``rest_api`` source into SQLite, configured as its docs show.

Runs inside ``bench/peers/.venv-dlt`` (``bench/peers/setup.sh dlt``)::

    .venv-dlt/bin/python dlt_pipeline.py --plan plan.json --store DIR \
        [--keys TABLE --keys-out FILE]

One resource per mapped table: ``GET /api/now/table/<source>`` with the same
fields and page size as csm-sync, HTTP basic auth, the offset paginator over
``sysparm_offset``/``sysparm_limit`` (ServiceNow's documented paging), ordered
``sys_updated_on`` then ``sys_id`` so ties cannot reorder between pages,
``write_disposition: merge`` on ``primary_key: sys_id`` and ``sys_updated_on``
as the incremental cursor (``{incremental.start_value}`` placeholder in
``sysparm_query``, dlt's documented way to pass the cursor). Tables csm-sync
reads whole (``mode: full``) get merge without a cursor. The pipeline state
lives in ``--store`` so a second run is incremental. Load workers are set to 1
(``LOAD__WORKERS``): with dlt's default parallel load jobs SQLite reported
"database is locked" on the shared benchmark machine.

Prints ``{"rows": {table: stored rows}}``; with ``--keys`` also writes
``{sys_id: sys_updated_on}`` of that table's stored rows to ``--keys-out``.
"""

from __future__ import annotations

import argparse
import json
import os
import sqlite3
from pathlib import Path

os.environ.setdefault("RUNTIME__DLTHUB_TELEMETRY", "false")
# dlt loads with parallel workers by default; on SQLite they lock each other out
# ("database is locked") on a busy machine, so load one job at a time (dlt's
# documented ``[load] workers`` setting).
os.environ.setdefault("LOAD__WORKERS", "1")

import dlt
from dlt.sources.rest_api import rest_api_source


def source_config(plan: dict) -> dict:
    """The rest_api configuration a user would write for these tables."""
    resources = []
    for table in plan["tables"]:
        fields = list(dict.fromkeys([*table["fields"], "sys_id", "sys_updated_on"]))
        base = table["filter"]
        endpoint: dict = {
            "path": f"table/{table['source']}",
            "params": {"sysparm_fields": ",".join(fields)},
        }
        if table["mode"] == "incremental":
            cursor = table["cursor"]
            where = f"{base}^" if base else ""
            endpoint["params"]["sysparm_query"] = (
                f"{where}{cursor}>={{incremental.start_value}}"
                f"^ORDERBY{cursor}^ORDERBYsys_id"
            )
            endpoint["incremental"] = {
                "cursor_path": cursor,
                "initial_value": "1970-01-01 00:00:00",
            }
        else:
            where = f"{base}^" if base else ""
            endpoint["params"]["sysparm_query"] = f"{where}ORDERBYsys_id"
        resources.append({"name": table["target"], "endpoint": endpoint})
    return {
        "client": {
            "base_url": plan["url"].rstrip("/") + "/api/now/",
            "auth": {
                "type": "http_basic",
                "username": plan["user"],
                "password": plan["password"],
            },
            "paginator": {
                "type": "offset",
                "limit": int(plan["page_size"]),
                "offset_param": "sysparm_offset",
                "limit_param": "sysparm_limit",
                "total_path": None,
                "stop_after_empty_page": True,
            },
        },
        "resource_defaults": {
            "primary_key": "sys_id",
            "write_disposition": "merge",
            "endpoint": {
                "data_selector": "result",
                "params": {
                    "sysparm_exclude_reference_link": "true",
                    "sysparm_display_value": "false",
                },
            },
        },
        "resources": resources,
    }


def _dataset_files(store: Path) -> list[Path]:
    """The destination's SQLite files, without the merge staging dataset."""
    return [p for p in store.glob("*.db") if "_staging" not in p.name]


def stored_rows(store: Path, tables: list[str]) -> dict[str, int]:
    """Rows per table in every SQLite file the destination wrote."""
    counts: dict[str, int] = {}
    for path in _dataset_files(store):
        with sqlite3.connect(path) as conn:
            names = {r[0] for r in conn.execute("SELECT name FROM sqlite_master")}
            for table in tables:
                if table in names:
                    (n,) = conn.execute(f'SELECT COUNT(*) FROM "{table}"').fetchone()
                    counts[table] = counts.get(table, 0) + n
    return counts


def stored_keys(store: Path, table: str) -> dict[str, str]:
    keys: dict[str, str] = {}
    for path in _dataset_files(store):
        with sqlite3.connect(path) as conn:
            names = {r[0] for r in conn.execute("SELECT name FROM sqlite_master")}
            if table in names:
                rows = conn.execute(f'SELECT sys_id, sys_updated_on FROM "{table}"')
                keys.update((k, str(v)) for k, v in rows)
    return keys


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--plan", required=True)
    parser.add_argument("--store", required=True, help="folder for DB + state")
    parser.add_argument("--keys", help="store table whose keys to dump")
    parser.add_argument("--keys-out")
    args = parser.parse_args()
    plan = json.loads(Path(args.plan).read_text())
    store = Path(args.store).resolve()
    store.mkdir(parents=True, exist_ok=True)
    pipeline = dlt.pipeline(
        pipeline_name="servicenow_csm",
        destination=dlt.destinations.sqlalchemy(f"sqlite:///{store / 'csm.db'}"),
        dataset_name="main",
        pipelines_dir=str(store / "pipelines"),
    )
    pipeline.run(rest_api_source(source_config(plan)))
    targets = [t["target"] for t in plan["tables"]]
    result = {"rows": stored_rows(store, targets)}
    if args.keys and args.keys_out:
        Path(args.keys_out).write_text(json.dumps(stored_keys(store, args.keys)))
    print(json.dumps(result))


if __name__ == "__main__":
    main()
