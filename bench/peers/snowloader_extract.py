"""Peer: snowloader's ``extract`` command over every mapped table (extract only).

Runs inside ``bench/peers/.venv-snowloader``::

    .venv-snowloader/bin/python snowloader_extract.py --plan plan.json \
        --out DIR [--workers 4]

Calls ``snowloader extract`` (its documented CLI, in-process so one process
can be measured) per table with the same fields and page size as csm-sync,
raw values (``--display-value false``) and its completeness check on. It
writes JSONL files and nothing else: no store, no merge, no incremental pass.
Prints ``{"rows": {table: lines written}, "exit": {table: status}}``.
"""

from __future__ import annotations

import argparse
import json
import re
from pathlib import Path

import snowloader.connection as snow_connection
from snowloader.cli import main as snowloader_cli

# snowloader only accepts instance URLs with a domain name (``x.service-now.com``);
# the emulator listens on 127.0.0.1, so widen the check. Nothing else changes.
snow_connection._INSTANCE_URL_PATTERN = re.compile(r"^https?://\S+")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--plan", required=True)
    parser.add_argument("--out", required=True)
    parser.add_argument("--workers", type=int, default=0)
    args = parser.parse_args()
    plan = json.loads(Path(args.plan).read_text())
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    rows: dict[str, int] = {}
    status: dict[str, int] = {}
    for table in plan["tables"]:
        target = out / f"{table['target']}.jsonl"
        fields = list(dict.fromkeys([*table["fields"], "sys_id", table["cursor"]]))
        argv = [
            "--instance", plan["url"], "--user", plan["user"],
            "--password", plan["password"], "--quiet",
            "extract", table["source"], "--out", str(target), "--overwrite",
            "--fields", ",".join(fields), "--display-value", "false",
            "--page-size", str(plan["page_size"]), "--workers", str(args.workers),
        ]  # fmt: skip
        if table["filter"]:
            argv += ["--query", table["filter"]]
        status[table["target"]] = snowloader_cli(argv)
        with target.open("rb") as handle:
            rows[table["target"]] = sum(1 for _ in handle)
    print(json.dumps({"rows": rows, "exit": status}))


if __name__ == "__main__":
    main()
